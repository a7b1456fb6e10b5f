"""One plain function per command (SPEC §3), each returning a ``Result``.  No printing, no typer.

The engine, numpy and the language are imported inside the functions, so that importing this
module (and ``gradcli --help``) stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import GradcliError


@dataclass
class Result:
    """What a command computed; ``render`` turns it into text."""

    command: str
    program: str
    value: object = None  # the output as a numpy array
    shape: tuple = ()
    dtype: str = "float64"
    grad_fn: str | None = None
    extra: dict = field(default_factory=dict)  # command keys of SPEC §4 (JSON)
    plain: list = field(default_factory=list)  # (name, value) items for plain / table
    rows: tuple | None = None  # (columns, rows) for a table, else plain items
    text: str | None = None  # ready text for plain / table (functions; "no graph")
    notes: list = field(default_factory=list)  # messages for stderr
    warnings: list = field(default_factory=list)  # PyTorch's warnings, told once each: table footnotes,
    # JSON "warnings", stderr lines for plain output
    ok: bool = True  # False: exit 1 (check mismatch)
    header: list = field(default_factory=list)  # lines shown between a table's title and the table
    view: object = None  # (fmt, color) -> text or rich renderable: a command's
    # own plain / table view (explain's steps)

    def items(self):
        return list(self.plain)


@dataclass
class Inputs:
    """Everything a command needs to run a program (the shared options)."""

    program: str
    values: list = field(default_factory=list)  # NAME=VALUE texts
    values_file: str | None = None
    dtype: str = "float64"
    device: str = "cpu"
    seed: int | None = None
    plugins: list = field(default_factory=list)
    freeze: list = field(default_factory=list)
    retain: list = field(default_factory=list)  # --retain-grad names
    progress: object = None  # (total, description) -> context manager giving tick(k): the CLI's bar
    # set by --each (gradcli.each), which parses once and gives each line's values as tensors
    parsed: object = None  # the program's parsed tree (else parse ``program``)
    given: dict | None = None  # name -> Tensor, beside ``values`` / ``values_file``
    functions: dict | None = None  # plugin functions already loaded (else ``plugins``)
    stdin_owner: str | None = None  # "the program" when PROGRAM was read from standard input
    # issue 13 (gradcli.anomaly.guarded, gradcli.limits)
    max_elements: int | None = None  # --max-elements (else GRADCLI_MAX_ELEMENTS or 2^27)
    detect_anomaly: bool = False  # --detect-anomaly: the first NaN/inf is an error (exit 1)
    strict: bool = False  # --strict: a non-finite answer is an error (exit 1)


class _Run:
    """A parsed program with its input tensors, runnable again on substituted inputs."""

    def __init__(self, spec: Inputs):
        import gradcli as G

        from . import values as V
        from .language import parse, run

        self.G, self._run = G, run
        if spec.device != "cpu":
            from .backend import get_xp

            get_xp(spec.device)  # a clear "dependency" error without cupy
        if spec.seed is not None:
            if not 0 <= spec.seed < 2**64:
                raise GradcliError("option", f"--seed {spec.seed}: expected a whole number from 0 to 2^64 - 1")
            G.manual_seed(spec.seed)
        self.program = spec.parsed if spec.parsed is not None else parse(spec.program)
        self.functions = {}
        if spec.functions is not None:
            self.functions = spec.functions
        elif spec.plugins:
            from .plugins import load_plugins

            self.functions = load_plugins(spec.plugins)
        inputs = list(self.program.inputs)
        given, self.notes = V.gather(
            spec.values, spec.values_file, inputs, dtype=spec.dtype, device=spec.device, stdin=V.Stdin(spec.stdin_owner)
        )
        if spec.given:
            unknown = [n for n in spec.given if n not in inputs]
            if unknown:
                raise GradcliError(
                    "value", f"unknown input '{unknown[0]}': the program's inputs are {', '.join(inputs) or '(none)'}"
                )
            given.update(spec.given)
        for name in spec.freeze:
            if name not in inputs:
                raise GradcliError(
                    "option", f"--freeze {name}: not an input of the program (inputs: {', '.join(inputs) or 'none'})"
                )
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
        return self._run(self.program, inputs, self.functions or None, dtype=self.spec.dtype, device=self.spec.device)

    def wrt(self, names, default_all=True, intermediates=False, option="--wrt"):
        """The names asked for, checked: inputs, and with ``intermediates`` assigned names too."""
        names = list(names) or (list(self.inputs) if default_all else [])
        assigned = [n for n in self.evaluation.tensors if n not in self.inputs] if intermediates else []
        for name in names:
            if name not in self.inputs and name not in assigned:
                known = f"inputs: {', '.join(self.inputs) or 'none'}"
                if intermediates:
                    known += f"; intermediates: {', '.join(assigned) or 'none'}"
                elif name in self.evaluation.tensors:
                    known += (
                        f"; {name} is an intermediate, which {option} takes only in grad, jacobian, hessian and diff"
                    )
                raise GradcliError(
                    "option",
                    f"{option} {name}: not {'a named tensor' if intermediates else 'an input'} "
                    f"of the program ({known})",
                )
        return names

    def named(self, name):
        """The tensor called ``name``: an input, else the value last assigned to it."""
        return self.inputs[name] if name in self.inputs else self.evaluation.tensors[name]

    def why_no_grad(self, name=None) -> str:
        from .language.nograd import why_no_grad

        return "; ".join(why_no_grad(self.evaluation, name)) or None

    def why_unused(self, name) -> str:
        from .language.nograd import why_unused

        return "; ".join(why_unused(self.evaluation, name)) or None

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
        return Result(
            command,
            self.program.source,
            value=array(out),
            shape=tuple(out.shape),
            dtype=str(out.dtype).removeprefix("torch."),
            grad_fn=grad_fn,
            notes=list(self.notes),
        )


def array(tensor):
    if tensor is None:
        return None
    from .backend import to_numpy

    data = tensor.detach()._data if hasattr(tensor, "detach") else tensor
    return to_numpy(data)


def _floating(tensor) -> bool:
    return str(tensor.dtype).removeprefix("torch.") in ("float64", "float32", "float16")


def _autograd(exc):
    from .autograd import AnomalyError

    if isinstance(exc, AnomalyError):  # --detect-anomaly: anomaly.guarded locates it
        return exc
    return GradcliError("autograd", str(exc))


def _grad_output(run, text):
    out = run.output
    if text is None:
        if _numel(out) != 1:
            raise GradcliError(
                "autograd",
                "grad can be implicitly created only for scalar outputs: "
                f"the output has shape {tuple(out.shape)}; give --grad-output VALUE "
                "or --grad-output ones",
            )
        return None
    G = run.G
    if text.strip() == "ones":
        return G.ones(*out.shape, dtype=run.spec.dtype) if out.shape else G.tensor(1.0, dtype=run.spec.dtype)
    from .values import parse_value

    seed = parse_value(text, dtype=run.spec.dtype, device=run.spec.device)
    if tuple(seed.shape) != tuple(out.shape):
        raise GradcliError(
            "shape", f"--grad-output has shape {tuple(seed.shape)} but the output has shape {tuple(out.shape)}"
        )
    return seed


def _numel(tensor):
    n = 1
    for s in tensor.shape:
        n *= s
    return n


def _requires(run):
    """PyTorch's error for differentiating an output that does not require grad, and why not."""
    if not getattr(run.output, "requires_grad", False):
        raise GradcliError(
            "autograd", "element 0 of tensors does not require grad and does not have a grad_fn", hint=run.why_no_grad()
        )


def _no_gradient(run, name, tensor) -> str:
    """The note for a gradient that is None: what is true of ``name``."""
    if not tensor.requires_grad:
        if name in run.inputs and _floating(tensor):
            return f"note: {name} is frozen (requires_grad=False): no gradient"
        why = run.why_no_grad(name)
        return f"note: {name} does not require grad" + (f": {why}" if why else "") + "; no gradient"
    why = run.why_unused(name) or f"{name} is not in the graph of the output"
    if why.startswith("the output does not use"):
        return f"note: {why}: its gradient is null"
    return f"note: no gradient reaches {name}: {why}; its gradient is null"


# ---------------------------------------------------------------------------------------------
# the commands


def evaluate(spec: Inputs) -> Result:
    """``eval``: the program's output."""
    run = _Run(spec)
    result = run.result("eval")
    result.plain = [(run.evaluation.output_name or "value", result.value)]
    return result


def grad(spec: Inputs, wrt=(), grad_output=None, formula: bool = False) -> Result:
    """``grad``: d output / d input for each ``--wrt`` input (None when unused); with ``formula``
    each also as an expression of the language (``gradcli.formula``)."""
    run = _Run(spec)
    names = run.wrt(wrt, intermediates=True)
    result = run.result("grad")
    seed = _grad_output(run, grad_output)
    _requires(run)
    tensors = [run.named(n) for n in names]
    needing = [t for t in tensors if t.requires_grad]
    try:
        found = iter(
            run.G.autograd.grad([run.output], needing, grad_outputs=None if seed is None else [seed], allow_unused=True)
            if needing
            else ()
        )
    except RuntimeError as exc:
        raise _autograd(exc) from None
    grads = {}
    for name, tensor in zip(names, tensors):
        g = next(found) if tensor.requires_grad else None
        grads[name] = array(g)
        if g is None:
            result.notes.append(_no_gradient(run, name, tensor))
    result.extra["grads"] = grads
    result.plain = list(grads.items())
    if formula:
        from .formula import for_grad

        _formulas(result, *for_grad(run, names, seed))
    return result


def _formulas(result, formulas, notes, label=None):
    """``--formula``: the JSON key "formulas" and one plain item per formula (``label`` names the one
    of ``diff``)."""
    result.extra["formulas"] = formulas
    result.plain += [(label or f"{name} formula", text) for name, text in formulas.items()]
    result.notes += notes


FOOTNOTES = "¹²³⁴⁵⁶⁷⁸⁹"
CREATE_GRAPH_WARNING = (
    "PyTorch warns that backward() with create_graph=True creates a reference cycle between "
    "each leaf and its .grad (a possible memory leak): autograd.grad, here 'gradcli grad', "
    "avoids it"
)


def backward(
    spec: Inputs,
    grad_output=None,
    times: int = 1,
    zero_grad: bool = False,
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs=(),
) -> Result:
    """``backward``: ``output.backward(gradient, retain_graph, create_graph, inputs)`` K times;
    every named tensor with its grad, as PyTorch shows it (None, with its warning, for a
    non-leaf whose grad is not retained)."""
    import warnings

    run = _Run(spec)
    tensors = run.evaluation.tensors
    for name in spec.retain:
        if name not in tensors:
            raise GradcliError(
                "option",
                f"--retain-grad {name}: not a named tensor of the program (named: {', '.join(tensors) or 'none'})",
            )
        if not tensors[name].requires_grad:
            raise GradcliError(
                "autograd",
                "can't retain_grad on Tensor that has requires_grad=False",
                hint=f"--retain-grad {name}: " + (run.why_no_grad(name) or f"{name} does not require grad"),
            )
        tensors[name].retain_grad()
    chosen = None
    if inputs:
        run.wrt(inputs, default_all=False, intermediates=True, option="--inputs")
        chosen = [run.named(n) for n in inputs]
        for tensor in chosen:
            if not tensor.is_leaf:
                tensor.retain_grad()  # as PyTorch does for a non-leaf in inputs=
    seed = _grad_output(run, grad_output)
    _requires(run)
    if times < 1:
        raise GradcliError("option", "--times must be at least 1")
    named = list(tensors.items())
    if all(t is not run.output for _, t in named):
        named.append(("output", run.output))
    kept = [t for _, t in named if t.is_leaf or t.retains_grad]
    told = []
    for k in range(times):
        if zero_grad and k:
            for t in kept:
                t.grad = None
        try:
            with warnings.catch_warnings(record=True) as caught:  # told once each, never raw on stderr
                warnings.simplefilter("always")
                run.output.backward(seed, retain_graph=retain_graph or None, create_graph=create_graph, inputs=chosen)
            told.extend(_told(caught))
        except RuntimeError as exc:
            hint = None
            if k and not (retain_graph or create_graph) and "second time" in str(exc):
                hint = (
                    f"--times {times} runs backward {times} times through one graph: add --retain-graph "
                    "to keep it after each pass"
                )
            raise GradcliError("autograd", str(exc), hint=hint) from None
    result = run.result("backward")
    rows, records, unread = [], [], []
    for name, t in named:
        # PyTorch warns when .grad of a non-leaf that does not retain it is read: that warning
        # becomes the footnote, and nothing reaches stderr raw
        caught = not t.is_leaf and not t.retains_grad
        if caught:
            unread.append(name)
            g = None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = t.grad
        fn = t.grad_fn.name() if t.grad_fn is not None else None
        record = {
            "name": name,
            "shape": list(t.shape),
            "value": array(t),
            "requires_grad": bool(t.requires_grad),
            "is_leaf": bool(t.is_leaf),
            "grad_fn": fn,
            "grad": array(g),
        }
        cell = array(g) if g is not None else "None" + (" " + FOOTNOTES[0] if caught else "")
        if create_graph:
            record["grad_grad_fn"] = _grad_fn(g)
            if record["grad_grad_fn"]:
                cell = (cell, f"grad_fn=<{record['grad_grad_fn']}>")  # as PyTorch prints the grad
        records.append(record)
        rows.append(
            (name, str(tuple(t.shape)), array(t), str(bool(t.requires_grad)), str(bool(t.is_leaf)), fn or "None", cell)
        )
    if unread:
        one = len(unread) == 1
        result.warnings.append(
            f"{_listing(unread)} {'is not a leaf' if one else 'are not leaves'}: PyTorch warns "
            "that the .grad of a non-leaf tensor is not populated during backward() (it reads "
            f"None); add --retain-grad {','.join(unread)} to keep {'it' if one else 'them'} "
            f"({unread[0]}.retain_grad())"
        )
    result.warnings.extend(dict.fromkeys(told))
    result.extra["tensors"] = records
    result.extra["warnings"] = list(result.warnings)
    result.rows = (("name", "shape", "value", "requires_grad", "is_leaf", "grad_fn", "grad"), rows)
    result.plain = [(r["name"], r["grad"]) for r in records]
    return result


def _told(caught) -> list:
    """The texts of the warnings the engine gave (PyTorch's), one line each."""
    texts = []
    for warning in caught:
        text = str(warning.message)
        texts.append(
            CREATE_GRAPH_WARNING
            if "create_graph=True will create a reference cycle" in text
            else " ".join(text.split())
        )
    return texts


def _grad_fn(tensor):
    fn = getattr(tensor, "grad_fn", None)
    return fn.name() if fn is not None else None


def _listing(names) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def jacobian(spec: Inputs, wrt=()) -> Result:
    """``jacobian``: d output / d input, shape output.shape + input.shape, per input; an
    intermediate name is differentiated through the graph (``autograd.grad(output, h)``)."""
    run = _Run(spec)
    names = run.wrt(wrt, intermediates=True)
    count = _numel(run.output) * sum(_numel(run.named(n)) for n in names)
    _guard_size(run, "Jacobian", _numel(run.output), sum(_numel(run.named(n)) for n in names), names)
    result = run.result("jacobian")
    with _progress(spec, None, f"jacobian: {count:,} numbers in one batched backward pass", count):
        blocks = _jacobian_blocks(run, names, result)
    result.extra["jacobian"] = {n: array(b) for n, b in zip(names, blocks)}
    result.plain = list(result.extra["jacobian"].items())
    return result


def _jacobian_blocks(run, names, result):
    if all(n in run.inputs for n in names):
        from .autograd import functional

        try:
            blocks = functional.jacobian(run.function(names), tuple(run.inputs[n] for n in names))
        except RuntimeError as exc:
            raise _autograd(exc) from None
        if not isinstance(blocks, (tuple, list)):
            blocks = (blocks,)
    else:
        blocks = _graph_jacobian(run, run.output, names, result)
    return blocks


def _graph_jacobian(run, out, names, result=None, create_graph=False):
    """The Jacobian of ``out`` w.r.t. the named tensors through the program's own graph: one
    batched backward pass seeded with the identity (zeros, with a note, where none flows)."""
    G = run.G
    tensors = [run.named(n) for n in names]
    live = [t for t in tensors if t.requires_grad] if out.requires_grad else []
    found = iter(())
    if live:
        n = _numel(out)
        eye = G.eye(n, dtype=str(out.dtype).removeprefix("torch."))
        seeds = eye.reshape(n, *out.shape) if out.shape else eye.reshape(n)
        try:
            found = iter(
                G.autograd.grad(
                    [out],
                    live,
                    grad_outputs=[seeds],
                    retain_graph=True,
                    create_graph=create_graph,
                    allow_unused=True,
                    is_grads_batched=True,
                )
            )
        except RuntimeError as exc:
            raise _autograd(exc) from None
    blocks = []
    for name, t in zip(names, tensors):
        g = next(found) if live and t.requires_grad else None
        if g is None:
            if result is not None:
                result.notes.append(
                    _no_gradient(run, name, t)
                    if out.requires_grad
                    else f"note: the output does not require grad ({run.why_no_grad() or 'no graph'}): zeros for {name}"
                )
            g = G.zeros(*out.shape, *t.shape, dtype=str(t.dtype).removeprefix("torch."))
        else:
            g = g.reshape(*out.shape, *t.shape)
        blocks.append(g)
    return blocks


def _guard_size(run, what, rows, columns, names):
    """Refuse a Jacobian / Hessian / check over the element limit before computing it: its result
    (``rows`` x ``columns`` numbers) and its batched backward pass (``rows`` copies of the
    largest tensor of the graph) are each one tensor."""
    from .limits import check_elements, largest_tensor

    hint = f"choose fewer inputs with --wrt (now {', '.join(names)}) or smaller values"
    check_elements(rows * columns, f"the {what} ({rows:,} x {columns:,})", hint=hint)
    largest = largest_tensor(run.output)
    check_elements(
        rows * largest,
        f"computing the {what} ({rows:,} backward passes at once through tensors of up to {largest:,} numbers)",
        hint=hint,
    )


def hessian(spec: Inputs, wrt=()) -> Result:
    """``hessian``: every block d²output / da db of a scalar output; with an intermediate name,
    through the graph (the Jacobian of ``autograd.grad(output, a, create_graph=True)``)."""
    run = _Run(spec)
    names = run.wrt(wrt, intermediates=True)
    if _numel(run.output) != 1:
        raise GradcliError("autograd", f"hessian needs a scalar output; the output has shape {tuple(run.output.shape)}")
    count = sum(_numel(run.named(n)) for n in names)
    _guard_size(run, "Hessian", count, count, names)
    result = run.result("hessian")
    with _progress(spec, None, f"hessian: {count:,} numbers in one batched double-backward pass", count):
        blocks = _hessian_blocks(run, names, result)
    table = {a: {b: array(blocks[i][j]) for j, b in enumerate(names)} for i, a in enumerate(names)}
    result.extra["hessian"] = table
    result.plain = [(f"{a},{b}", v) for a, row in table.items() for b, v in row.items()]
    return result


def _hessian_blocks(run, names, result):
    if all(n in run.inputs for n in names):
        from .autograd import functional

        try:
            blocks = functional.hessian(run.function(names), tuple(run.inputs[n] for n in names))
        except RuntimeError as exc:
            raise _autograd(exc) from None
        if not isinstance(blocks, (tuple, list)):
            blocks = ((blocks,),)
    else:
        _requires(run)
        G = run.G
        blocks = []
        for a in names:
            t = run.named(a)
            g = None
            if t.requires_grad:
                try:
                    (g,) = G.autograd.grad([run.output], [t], create_graph=True, allow_unused=True)
                except RuntimeError as exc:
                    raise _autograd(exc) from None
            if g is None:
                result.notes.append(_no_gradient(run, a, t))
                blocks.append([G.zeros(*t.shape, *run.named(b).shape) for b in names])
            else:
                blocks.append(_graph_jacobian(run, g, names))
    return blocks


def diff(spec: Inputs, wrt=(), order: int | None = None, formula: bool = False) -> Result:
    """``diff``: d^n output / d wrt[0] ... d wrt[n-1], summing non-scalar intermediates."""
    run = _Run(spec)
    names = list(wrt)
    if order is not None:
        if len(names) > 1:
            raise GradcliError("option", "--order repeats one input: give a single --wrt with it")
        if not names and len(run.inputs) > 1:
            raise GradcliError(
                "option",
                f"diff --order {order}: the program has several inputs "
                f"({', '.join(run.inputs)}): say which with --wrt NAME",
            )
        names = names or list(run.inputs)[:1]
        names = names * order
    if order is not None and order < 1:
        raise GradcliError("option", f"--order {order}: the order of a derivative is at least 1")
    if not names:
        raise GradcliError("option", "diff needs --wrt NAME[,NAME...] or --order N")
    from .limits import MAX_DIFF_NODES, MAX_ORDER

    if len(names) > MAX_ORDER:
        raise GradcliError(
            "limit",
            f"diff: {len(names)} derivatives in a row is over the limit of {MAX_ORDER}: "
            "each derivative differentiates the whole graph of the one before, so time and "
            "memory grow with every order (often doubling: tanh's 15th derivative takes ~40 s)",
        )
    run.wrt(names, default_all=False, intermediates=True)
    G = run.G
    current = run.output
    for step, name in enumerate(names):
        x = run.named(name)
        if _numel(current) != 1:
            current = current.sum()
        g = None
        if current is not None and current.requires_grad and x.requires_grad:
            try:
                (g,) = G.autograd.grad([current], [x], create_graph=True, allow_unused=True)
            except RuntimeError as exc:
                raise _autograd(exc) from None
        current = (
            g if g is not None else G.zeros(*x.shape, dtype=spec.dtype) if x.shape else G.tensor(0.0, dtype=spec.dtype)
        )
        if step + 1 < len(names):
            _guard_growth(current, step + 1, len(names), MAX_DIFF_NODES)
    result = run.result("diff")
    result.extra["wrt"] = names
    result.extra["derivative"] = array(current)
    result.plain = [(derivative_label(names), array(current))]
    if formula:
        from .formula import for_diff

        _formulas(result, *for_diff(run, names), label="formula")
    return result


def derivative_label(names) -> str:
    """``d2/dx2`` for x, x; ``d3/dx dy2`` for x, y, y (in the order applied)."""
    runs = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])

    def power(n):
        return str(n) if n > 1 else ""

    return f"d{power(len(names))}/" + " ".join(f"d{name}{power(n)}" for name, n in runs)


def _guard_growth(current, done, total, limit):
    """Stop ``diff`` before the next derivative when the graph it must differentiate is already too
    big: each order builds a graph about twice the size of the one before."""
    root = getattr(current, "grad_fn", None)
    if root is None:
        return
    seen, stack = {id(root)}, [root]
    while stack:
        node = stack.pop()
        for child, _ in getattr(node, "next_functions", ()):
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
        if len(seen) > limit:
            raise GradcliError(
                "limit",
                f"diff: after {done} of {total} derivatives the graph already has more "
                f"than {limit:,} operations, and each further order roughly doubles it (time and "
                f"memory grow exponentially with the order): ask for a lower order",
            )


def graph(spec: Inputs) -> Result:
    """``graph``: the grad_fn graph, walked iteratively, as nodes (``render`` draws the tree or dot)."""
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
        nodes.append(
            {
                "id": ids[id(node)],
                "name": node.name(),
                "next": [ids[id(n)] for n, _ in getattr(node, "next_functions", ()) if n is not None],
                "input": names.get(id(variable)) if variable is not None else None,
            }
        )
    result = run.result("graph")
    result.extra["nodes"] = nodes
    if not nodes:
        result.text = f"(no graph: {_no_graph(run)})"
    return result


def _no_graph(run) -> str:
    """Why the output has no grad_fn: a leaf that requires grad, or a tensor that does not."""
    out = run.output
    if out.requires_grad:
        name = run.evaluation.output_name or next((n for n, t in run.inputs.items() if t is out), "the output")
        return (
            f"the output is the leaf {name} (requires_grad=True, grad_fn=None): backward accumulates into {name}.grad"
        )
    why = run.why_no_grad()
    return "the output does not require grad" + (f": {why}" if why else "")


def check(
    spec: Inputs, wrt=(), order: int = 1, eps: float | None = None, atol: float | None = None, rtol: float | None = None
) -> Result:
    """``check``: analytic vs finite-difference derivatives (``check.py``); ``ok`` False means exit 1."""
    from . import check as C

    eps = C.EPS if eps is None else eps
    atol = C.ATOL if atol is None else atol
    rtol = C.RTOL if rtol is None else rtol
    C.validate(order, eps, atol, rtol)
    run = _Run(spec)
    names = [n for n in run.wrt(wrt) if run.inputs[n].requires_grad]
    count = sum(_numel(run.inputs[n]) for n in names)
    _guard_size(run, "check", _numel(run.output) + (count if order >= 2 else 0), count, names)
    total = C.evaluations(run, names, order)
    with _progress(spec, total, f"check: {total:,} evaluations of the program") as tick:
        try:
            found = C.compare(run, names, order=order, eps=eps, atol=atol, rtol=rtol, progress=tick)
        except RuntimeError as exc:
            raise _autograd(exc) from None
    result = run.result("check")
    inputs = {
        name: {
            "max_abs_error": e["max_abs_error"],
            "max_rel_error": e["max_rel_error"],
            "worst": [
                {k: w[k] for k in ("index", "analytic", "numerical", "abs_error", "rel_error")}
                | ({"output_index": w["output_index"]} if "output_index" in w else {})
                for w in e["worst"]
            ],
            "elements": e["elements"],
            "checked": e["checked"],
            "failed": e["failed"],
        }
        for name, e in found["inputs"].items()
    }
    result.extra.update(
        {key: found[key] for key in ("ok", "max_abs_error", "max_rel_error", "atol", "rtol", "eps", "order")}
    )
    result.extra["numerical_dtype"] = "float64"
    result.extra["inputs"] = inputs
    result.ok = bool(found["ok"])
    result.plain = [(k, result.extra[k]) for k in ("ok", "max_abs_error", "max_rel_error", "atol", "rtol", "eps")]
    for name, e in found["inputs"].items():
        result.plain += [(f"{name}.max_abs_error", e["max_abs_error"]), (f"{name}.max_rel_error", e["max_rel_error"])]
    result.header = _check_header(spec, found, names)
    result.rows = (
        ("element", "analytic", "numerical", "abs error", "rel error", "ok"),
        [
            (w["label"], w["analytic"], w["numerical"], w["abs_error"], w["rel_error"], "yes" if w["ok"] else "NO")
            for e in found["inputs"].values()
            for w in e["worst"]
        ],
    )
    if not names:
        result.notes.append("note: check has nothing to compare: no input requires grad")
    for name, e in found["inputs"].items():
        if not e["ok"]:
            result.notes.append(_check_failure(name, e, found))
    cut = _cuts(run.evaluation.program)
    if not result.ok and cut:
        result.notes.append(
            f"note: the program uses {cut}: autograd leaves those parts out on purpose, finite "
            "differences do not, so the two can differ"
        )
    return result


def _cuts(program) -> str:
    """The grad modes and detach a program calls, as text ("detach and no_grad"), or ""."""
    from .language import ast as A

    found = dict.fromkeys(
        node.func
        for statement in program.statements
        for node in A.walk(statement)
        if type(node) is A.Call and node.func in ("detach", "no_grad", "set_grad_enabled")
    )
    return _listing(list(found)) if found else ""


def _check_header(spec, found, names) -> list:
    """The lines above the check table: tolerances, how the numbers were taken, verdict per input."""
    what = "second derivatives" if found["order"] == 2 else "first derivatives"
    lines = [
        f"{what}; pass when |analytic - numerical| <= atol + rtol*|numerical|",
        f"atol {found['atol']!r}, rtol {found['rtol']!r}; numerical: central differences, eps {found['eps']!r}, "
        "in float64",
    ]
    if spec.dtype != "float64":
        lines.append(f"the program runs in {spec.dtype}; its numerical derivatives are taken in float64")
    for name, e in found["inputs"].items():
        how = (
            (f"all {e['elements']:,} elements" if e["elements"] != 1 else "1 element")
            if e["checked"] == "all"
            else f"{e['elements']:,} elements: a random direction over all, {e['checked_elements']} one by one"
        )
        verdict = "ok" if e["ok"] else (f"FAILED ({e['nonfinite']} non-finite)" if e["nonfinite"] else "FAILED")
        weighted = ", output rows weighted by a fixed random vector" if e["weighted"] else ""
        lines.append(f"{name}: {verdict}; {how}{weighted}")
    return lines


def _check_failure(name, entry, found) -> str:
    from .render import number

    worst = next((w for w in entry["worst"] if not w["ok"]), None)
    if worst is None:
        d = entry.get("direction") or {}
        return (
            f"check: {name}: along a random direction over its elements the analytic derivative is "
            f"{number(d.get('analytic'))} but the numerical one {number(d.get('numerical'))}"
        )
    a, n = worst["analytic"], worst["numerical"]
    if not (math.isfinite(a) and math.isfinite(n)):
        side = "analytic" if not math.isfinite(a) else "numerical"
        side = "both" if not (math.isfinite(a) or math.isfinite(n)) else side
        why = f"non-finite ({side})"
    else:
        why = (
            f"differs by {number(worst['abs_error'])} > atol + rtol*|numerical| = "
            f"{number(found['atol'] + found['rtol'] * abs(n))}"
        )
    more = entry["failed"] - 1
    return f"check: {worst['label']}: analytic {number(a)}, numerical {number(n)}: {why}" + (
        f" (and {more} more element{'s' if more > 1 else ''})" if more > 0 else ""
    )


class _NoProgress:
    def __enter__(self):
        return lambda k=1: None

    def __exit__(self, *exc):
        return False


def _progress(spec, total, description, numbers=0):
    """``spec.progress(total, description)`` (a context manager giving ``tick(k)``) when the work is
    long: more than PROGRESS_MIN evaluations, or a result of PROGRESS_NUMBERS numbers or more
    (``total`` None: one pass whose end is all there is to show).  The CLI sets ``spec.progress``
    only for a terminal."""
    factory = getattr(spec, "progress", None)
    if (
        factory is None
        or (total is not None and total <= PROGRESS_MIN)
        or (total is None and numbers < PROGRESS_NUMBERS)
    ):
        return _NoProgress()
    return factory(total, description)


PROGRESS_MIN = 50  # evaluations of the program before a progress bar is worth showing
PROGRESS_NUMBERS = 1_000_000  # numbers in a Jacobian / Hessian before a progress bar is worth showing
