"""One plain function per command (SPEC §3), each returning a ``Result``.  No printing, no typer.

The engine, numpy and the language are imported inside the functions, so that importing this
module (and ``gradcli --help``) stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import GradcliError


@dataclass
class Result:
    """What a command computed; ``render`` turns it into text."""
    command: str
    program: str
    value: object = None                   # the output as a numpy array
    shape: tuple = ()
    dtype: str = "float64"
    grad_fn: str | None = None
    extra: dict = field(default_factory=dict)      # command keys of SPEC §4 (JSON)
    plain: list = field(default_factory=list)      # (name, value) items for plain / table
    rows: tuple | None = None                      # (columns, rows) for a table, else plain items
    text: str | None = None                        # ready text (graph tree / dot)
    notes: list = field(default_factory=list)      # messages for stderr
    ok: bool = True                                # False: exit 1 (check mismatch)

    def items(self):
        return list(self.plain)


@dataclass
class Inputs:
    """Everything a command needs to run a program (the shared options)."""
    program: str
    values: list = field(default_factory=list)     # NAME=VALUE texts
    values_file: str | None = None
    dtype: str = "float64"
    device: str = "cpu"
    seed: int | None = None
    plugins: list = field(default_factory=list)
    freeze: list = field(default_factory=list)
    retain: list = field(default_factory=list)


class _Run:
    """A parsed program with its input tensors, runnable again on substituted inputs."""

    def __init__(self, spec: Inputs):
        import gradcli as G
        from . import values as V
        from .language import parse, run

        self.G, self._run = G, run
        import numpy as np
        np.seterr(all="ignore")    # inf and nan are answers here (as in PyTorch), not warnings
        if spec.device != "cpu":
            from .backend import get_xp
            get_xp(spec.device)                    # a clear "dependency" error without cupy
        if spec.seed is not None:
            G.manual_seed(spec.seed)
        self.program = parse(spec.program)
        self.functions = {}
        if spec.plugins:
            from .plugins import load_plugins
            self.functions = load_plugins(spec.plugins)
        given = {}
        if spec.values_file:
            given.update(V.load_values(spec.values_file, dtype=spec.dtype, device=spec.device))
        for text in spec.values:
            name, value = V.parse_assignment(text)
            given[name] = V.parse_value(value, dtype=spec.dtype, device=spec.device)
        inputs = list(self.program.inputs)
        unknown = [n for n in given if n not in inputs]
        if unknown:
            raise GradcliError("value", f"unknown input '{unknown[0]}': the program's inputs are "
                               f"{', '.join(inputs) or '(none)'}")
        for name in spec.freeze:
            if name not in inputs:
                raise GradcliError("option", f"--freeze {name}: not an input of the program "
                                   f"(inputs: {', '.join(inputs) or 'none'})")
        self.inputs = {}
        for name in inputs:
            if name in given:
                tensor = given[name].detach()
                if _floating(tensor) and name not in spec.freeze:
                    tensor.requires_grad_()
                self.inputs[name] = tensor
        self.spec = spec
        self.evaluation = self.run(self.inputs)
        self.output = self.evaluation.output

    def run(self, inputs):
        return self._run(self.program, inputs, self.functions or None,
                         dtype=self.spec.dtype, device=self.spec.device)

    def wrt(self, names, default_all=True):
        names = list(names) or (list(self.inputs) if default_all else [])
        for name in names:
            if name not in self.inputs:
                raise GradcliError("option", f"--wrt {name}: not an input of the program "
                                   f"(inputs: {', '.join(self.inputs) or 'none'})")
        return names

    def function(self, names):
        """f(*tensors) -> output, with ``names`` replaced: for jacobian, hessian and check."""
        def f(*tensors):
            inputs = dict(self.inputs)
            inputs.update(zip(names, tensors))
            return self.run(inputs).output
        return f

    def result(self, command):
        out = self.output
        grad_fn = out.grad_fn.name() if getattr(out, "grad_fn", None) is not None else None
        return Result(command, self.program.source, value=array(out), shape=tuple(out.shape),
                      dtype=str(out.dtype).removeprefix("torch."), grad_fn=grad_fn)


def array(tensor):
    if tensor is None:
        return None
    from .backend import to_numpy
    data = tensor.detach().data if hasattr(tensor, "detach") else tensor
    return to_numpy(data)


def _floating(tensor) -> bool:
    return str(tensor.dtype).removeprefix("torch.") in ("float64", "float32", "float16")


def _autograd(exc) -> GradcliError:
    return GradcliError("autograd", str(exc))


def _grad_output(run, text):
    out = run.output
    if text is None:
        if _numel(out) != 1:
            raise GradcliError("autograd", "grad can be implicitly created only for scalar outputs: "
                               f"the output has shape {tuple(out.shape)}; give --grad-output VALUE "
                               "or --grad-output ones")
        return None
    G = run.G
    if text.strip() == "ones":
        return G.ones(*out.shape, dtype=run.spec.dtype) if out.shape else G.tensor(1.0, dtype=run.spec.dtype)
    from .values import parse_value
    seed = parse_value(text, dtype=run.spec.dtype, device=run.spec.device)
    if tuple(seed.shape) != tuple(out.shape):
        raise GradcliError("shape", f"--grad-output has shape {tuple(seed.shape)} but the output has "
                           f"shape {tuple(out.shape)}")
    return seed


def _numel(tensor):
    n = 1
    for s in tensor.shape:
        n *= s
    return n


def _requires(run, command):
    if not getattr(run.output, "requires_grad", False):
        raise GradcliError("autograd", "element 0 of tensors does not require grad and does not have "
                           f"a grad_fn: the output depends on no input that requires grad ({command})")


# ---------------------------------------------------------------------------------------------
# the commands

def evaluate(spec: Inputs) -> Result:
    """``eval``: the program's output."""
    run = _Run(spec)
    result = run.result("eval")
    result.plain = [(run.evaluation.output_name or "value", result.value)]
    return result


def grad(spec: Inputs, wrt=(), grad_output=None) -> Result:
    """``grad``: d output / d input for each ``--wrt`` input (None when unused)."""
    run = _Run(spec)
    names = run.wrt(wrt)
    result = run.result("grad")
    seed = _grad_output(run, grad_output)
    _requires(run, "grad")
    tensors = [run.inputs[n] for n in names]
    needing = [t for t in tensors if t.requires_grad]
    try:
        found = iter(run.G.autograd.grad([run.output], needing, grad_outputs=None if seed is None else [seed],
                                         allow_unused=True) if needing else ())
    except RuntimeError as exc:
        raise _autograd(exc) from None
    grads = {}
    for name, tensor in zip(names, tensors):
        g = next(found) if tensor.requires_grad else None
        grads[name] = array(g)
        if g is None:
            result.notes.append(f"note: the output does not depend on '{name}'"
                                + (" (frozen)" if not tensor.requires_grad else "") + ": its gradient is null")
    result.extra["grads"] = grads
    result.plain = list(grads.items())
    return result


def backward(spec: Inputs, grad_output=None, times: int = 1, zero_grad: bool = False) -> Result:
    """``backward``: ``output.backward(gradient)`` K times; every named tensor with its grad."""
    run = _Run(spec)
    tensors = run.evaluation.tensors
    output_name = run.evaluation.output_name
    for name in spec.retain:
        if name not in tensors:
            raise GradcliError("option", f"--retain {name}: not a named tensor of the program")
        if tensors[name].requires_grad:
            tensors[name].retain_grad()
    seed = _grad_output(run, grad_output)
    _requires(run, "backward")
    if times < 1:
        raise GradcliError("option", "--times must be at least 1")
    named = list(tensors.items())
    if output_name is None:
        named.append(("output", run.output))
    try:
        for k in range(times):
            if zero_grad and k:
                for _, t in named:
                    if t.grad is not None:
                        t.grad = None
            run.output.backward(seed, retain_graph=times > 1)
    except RuntimeError as exc:
        raise _autograd(exc) from None
    result = run.result("backward")
    rows, records = [], []
    for name, t in named:
        g = t.grad if (t.is_leaf or getattr(t, "retains_grad", False)) else None
        fn = t.grad_fn.name() if t.grad_fn is not None else None
        records.append({"name": name, "shape": list(t.shape), "value": array(t), "requires_grad": bool(t.requires_grad),
                        "is_leaf": bool(t.is_leaf), "grad_fn": fn, "grad": array(g)})
        rows.append((name, str(tuple(t.shape)), array(t), str(bool(t.requires_grad)), str(bool(t.is_leaf)),
                     fn or "-", array(g)))
    result.extra["tensors"] = records
    result.rows = (("name", "shape", "value", "requires_grad", "is_leaf", "grad_fn", "grad"), rows)
    result.plain = [(r["name"], r["grad"]) for r in records]
    return result


def jacobian(spec: Inputs, wrt=()) -> Result:
    """``jacobian``: d output / d input, shape output.shape + input.shape, per input."""
    run = _Run(spec)
    names = run.wrt(wrt)
    _guard_size("Jacobian", _numel(run.output) * sum(_numel(run.inputs[n]) for n in names), names)
    from .autograd import functional
    try:
        blocks = functional.jacobian(run.function(names), tuple(run.inputs[n] for n in names))
    except RuntimeError as exc:
        raise _autograd(exc) from None
    if not isinstance(blocks, (tuple, list)):
        blocks = (blocks,)
    result = run.result("jacobian")
    result.extra["jacobian"] = {n: array(b) for n, b in zip(names, blocks)}
    result.plain = list(result.extra["jacobian"].items())
    return result


MAX_NUMBERS = 50_000_000     # 400 MB of float64: beyond that a result is surely a mistake


def _guard_size(what, count, names):
    if count > MAX_NUMBERS:
        raise GradcliError("value", f"the {what} w.r.t. {', '.join(names)} would have {count:,} numbers "
                           f"(more than {MAX_NUMBERS:,}): choose fewer inputs with --wrt")


def hessian(spec: Inputs, wrt=()) -> Result:
    """``hessian``: every block d²output / da db of a scalar output."""
    run = _Run(spec)
    names = run.wrt(wrt)
    if _numel(run.output) != 1:
        raise GradcliError("autograd", f"hessian needs a scalar output; the output has shape {tuple(run.output.shape)}")
    _guard_size("Hessian", sum(_numel(run.inputs[n]) for n in names) ** 2, names)
    from .autograd import functional
    try:
        blocks = functional.hessian(run.function(names), tuple(run.inputs[n] for n in names))
    except RuntimeError as exc:
        raise _autograd(exc) from None
    if not isinstance(blocks, (tuple, list)):
        blocks = ((blocks,),)
    table = {a: {b: array(blocks[i][j]) for j, b in enumerate(names)} for i, a in enumerate(names)}
    result = run.result("hessian")
    result.extra["hessian"] = table
    result.plain = [(f"{a},{b}", v) for a, row in table.items() for b, v in row.items()]
    return result


def diff(spec: Inputs, wrt=(), order: int | None = None) -> Result:
    """``diff``: d^n output / d wrt[0] ... d wrt[n-1], summing non-scalar intermediates."""
    run = _Run(spec)
    names = list(wrt)
    if order is not None:
        if len(names) > 1:
            raise GradcliError("option", "--order repeats one input: give a single --wrt with it")
        names = names or list(run.inputs)[:1]
        names = names * order
    if not names:
        raise GradcliError("option", "diff needs --wrt NAME[,NAME...] or --order N")
    run.wrt(names, default_all=False)
    G = run.G
    current = run.output
    for name in names:
        x = run.inputs[name]
        if _numel(current) != 1:
            current = current.sum()
        g = None
        if current is not None and current.requires_grad and x.requires_grad:
            try:
                (g,) = G.autograd.grad([current], [x], create_graph=True, allow_unused=True)
            except RuntimeError as exc:
                raise _autograd(exc) from None
        current = g if g is not None else G.zeros(*x.shape, dtype=spec.dtype) if x.shape else G.tensor(0.0, dtype=spec.dtype)
    result = run.result("diff")
    result.extra["wrt"] = names
    result.extra["derivative"] = array(current)
    result.plain = [("derivative", array(current))]
    return result


def graph(spec: Inputs, fmt: str = "tree") -> Result:
    """``graph``: the grad_fn graph, walked iteratively, as a tree, dot or nodes."""
    run = _Run(spec)
    names = {id(t): n for n, t in run.inputs.items()}
    names.update({id(t): n for n, t in run.evaluation.tensors.items() if n not in names})
    root = run.output.grad_fn
    ids, nodes, order = {}, [], []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in ids:
            continue
        ids[id(node)] = len(ids)
        order.append(node)
        nexts = [n for n, _ in getattr(node, "next_functions", ()) if n is not None]
        stack.extend(reversed(nexts))
    for node in order:
        variable = getattr(node, "variable", None)
        nodes.append({"id": ids[id(node)], "name": node.name(),
                      "next": [ids[id(n)] for n, _ in getattr(node, "next_functions", ()) if n is not None],
                      "input": names.get(id(variable)) if variable is not None else None})
    result = run.result("graph")
    result.extra["nodes"] = nodes
    if fmt == "dot":
        result.text = _dot(nodes)
    elif fmt != "json":
        result.text = _tree(nodes)
    return result


def _label(node):
    return node["name"] + (f" ({node['input']})" if node["input"] else "")


def _tree(nodes) -> str:
    if not nodes:
        return "(no graph: the output does not require grad)"
    lines, seen = [], set()
    stack = [(0, "", "", True)]
    by_id = {n["id"]: n for n in nodes}
    while stack:
        nid, prefix, branch, _ = stack.pop()
        node = by_id[nid]
        again = nid in seen
        lines.append(prefix + branch + _label(node) + (" (shown above)" if again and node["next"] else ""))
        if again:
            continue
        seen.add(nid)
        child_prefix = prefix + ("" if not branch else ("    " if branch.startswith("└") else "│   "))
        kids = node["next"]
        for i in reversed(range(len(kids))):
            stack.append((kids[i], child_prefix, "└── " if i == len(kids) - 1 else "├── ", True))
    return "\n".join(lines)


def _dot(nodes) -> str:
    out = ["digraph gradcli {", "  node [shape=box];"]
    for n in nodes:
        label = _label(n).replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'  n{n["id"]} [label="{label}"];')
    for n in nodes:
        for m in n["next"]:
            out.append(f"  n{n['id']} -> n{m};")
    out.append("}")
    return "\n".join(out)


def check(spec: Inputs, wrt=(), order: int = 1) -> Result:
    """``check``: analytic vs finite-difference derivatives; ``ok`` False means exit 1."""
    run = _Run(spec)
    names = [n for n in run.wrt(wrt) if run.inputs[n].requires_grad]
    from .autograd.gradcheck import compare
    try:
        found = compare(run.function(names), tuple(run.inputs[n] for n in names), order=order)
    except RuntimeError as exc:
        raise _autograd(exc) from None
    result = run.result("check")
    for key in ("ok", "max_abs_error", "max_rel_error"):
        result.extra[key] = found[key]
    result.ok = bool(found["ok"])
    result.plain = [(k, result.extra[k]) for k in ("ok", "max_abs_error", "max_rel_error")]
    if not result.ok:
        result.notes.append("check: analytic and finite-difference derivatives differ beyond tolerance")
    return result
