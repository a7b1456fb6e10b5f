"""``gradcli explain``: backward, step by step, in the order the engine runs it (SPEC §3).

JSON (``--json``): ``"steps"``, one per node run, in order: ``step`` (its number), ``node``
(grad_fn name), ``op`` (the forward text), ``span`` ([start, end] offsets into the program),
``grad_in``, ``rule`` (text; ``rules``: per input), ``inputs`` (what each input is),
``grads_out`` (what each input was sent, after un-broadcasting; ``unbroadcast`` says from which
shape), ``to`` (the step that received it); a leaf's step has ``accumulates`` and ``grad``.
``"grads"``: every leaf's ``.grad`` (and those of ``--retain-grad`` names).

The engine is told to report each step (its ``trace`` hook): for each node, the gradient that
arrived, and for each input the gradient the rule gave and what was sent after un-broadcasting;
for each leaf, the gradient accumulated into its ``.grad``.  Each step is shown with the forward
operation's text (the node's ``span`` in the program, underlined), the op's derivative rule as
text (the op table's ``rules_text``, with its parameters written in), and where each gradient
went.  Nothing here computes a gradient: the numbers are the engine's own.
"""

from __future__ import annotations

from .commands import Result, _grad_output, _requires, _Run, array
from .errors import GradcliError, position
from .formula import _SCATTERS


class _Trace:
    """Collects the engine's steps (see ``autograd.engine.execute``)."""

    def __init__(self):
        self.steps = []

    def node(self, node, g, sent):
        self.steps.append(("node", node, g, sent))

    def leaf(self, node, g):
        self.steps.append(("leaf", node, g, None))


def rule_texts(node, gshape=()) -> list:
    """The node's derivative rule per input, parameters written in (None where there is none).
    Indexing and ``cat`` have no text in the op table; ``--formula``'s writing of them is shown."""
    op = getattr(node, "op", None)
    texts = getattr(op, "rules_text", None)
    if texts is None:
        return []
    from . import rules

    out = []
    count = len(node.nexts())
    for i in range(count):
        text = texts[0] if op.name == "stack" else (texts[i] if i < len(texts) else None)
        if text is None and op.name in _SCATTERS:
            text = _SCATTERS[op.name](node.params, node.input_shapes(), i, tuple(gshape))
        if text is None:
            out.append(None)
            continue
        try:
            bound = rules.bind(text, node.params)
        except ValueError:
            bound = text
        out.append(bound.replace(" i)", f" {i})") if op.name == "stack" else bound)
    return out


_INPUT_NAMES = ("x", "y", "z")


def explain(spec, grad_output=None) -> Result:
    """``explain``: the steps of ``output.backward(gradient)`` and every leaf's ``.grad``."""
    import gradcli as G

    from .autograd import engine

    run = _Run(spec)
    tensors = run.evaluation.tensors
    for name in spec.retain:
        if name not in tensors:
            raise GradcliError(
                "option",
                f"--retain-grad {name}: not a named tensor of the program (named: {', '.join(tensors) or 'none'})",
            )
        if tensors[name].requires_grad:
            tensors[name].retain_grad()
    seed = _grad_output(run, grad_output)
    _requires(run)
    out = run.output
    if seed is None:
        import numpy as np

        seed = G.tensor(np.ones(tuple(out.shape)), dtype=spec.dtype)
    trace = _Trace()
    try:
        engine.execute([out._edge()], [seed], trace=trace)  # a leaf output (``x``): its AccumulateGrad
    except RuntimeError as exc:
        raise GradcliError("autograd", str(exc)) from None
    source = run.program.source
    names = {}
    for name, tensor in tensors.items():
        names.setdefault(id(tensor), name)
    for name, tensor in run.inputs.items():
        names[id(tensor)] = name
    labels = {}  # node -> what it is called in the steps
    for name, tensor in tensors.items():
        if tensor.grad_fn is not None:
            labels.setdefault(tensor.grad_fn, name)

    def where(node):
        """How a step names the node a gradient goes to: an input's name or the op's text."""
        if node is None:
            return None
        variable = getattr(node, "variable", None)
        if variable is not None:
            return names.get(id(variable), "leaf")
        span = trim(source, getattr(node, "span", None))
        text = source[span[0] : span[1]] if span else None
        return labels.get(node) or text or node.name()

    ids = {node: k for k, (_, node, _, _) in enumerate(trace.steps, 1)}
    steps = []
    for k, (kind, node, g, sent) in enumerate(trace.steps, 1):
        if kind == "leaf":
            variable = node.variable
            name = names.get(id(variable), "leaf")
            steps.append(
                {
                    "step": k,
                    "node": node.name(),
                    "op": name,
                    "span": _first_use(run.program, name),
                    "grad_in": array(g),
                    "rule": f"{name}.grad += g",
                    "rules": [],
                    "inputs": [],
                    "grads_out": [],
                    "to": [],
                    "unbroadcast": [],
                    "accumulates": name,
                    "grad": array(variable.grad),
                }
            )
            continue
        span = trim(source, getattr(node, "span", None))
        texts = rule_texts(node, getattr(g, "shape", ()))
        nexts = node.nexts()
        count = len(nexts)
        grads_out, unbroadcast = [None] * count, [None] * count
        for i, raw, gi in sent:
            grads_out[i] = array(gi)
            if tuple(raw.shape) != tuple(gi.shape):
                unbroadcast[i] = {"from": list(raw.shape), "to": list(gi.shape)}
        parts = [
            f"{_INPUT_NAMES[i] if i < 3 and count <= 3 else f'input {i}'}: {t}"
            for i, t in enumerate(texts)
            if t is not None
        ]
        op = getattr(getattr(node, "op", None), "name", None)
        steps.append(
            {
                "step": k,
                "node": node.name(),
                "op": source[span[0] : span[1]] if span else (op or node.name()),
                "span": list(span) if span else None,
                "grad_in": array(g),
                "rule": "; ".join(parts) if parts else ("no rule text" if texts == [] else ""),
                "rules": texts,
                "inputs": [where(child) for child in nexts],
                "grads_out": grads_out,
                "to": [ids.get(child) if grads_out[i] is not None else None for i, child in enumerate(nexts)],
                "unbroadcast": unbroadcast,
            }
        )
    result = run.result("explain")
    leaves = {name: array(t.grad) for name, t in run.inputs.items() if t.requires_grad}
    for name in spec.retain:
        if name in tensors and name not in leaves:
            leaves[name] = array(tensors[name].grad)
    result.extra["steps"] = steps
    result.extra["grads"] = leaves
    result.plain = list(leaves.items())
    result.view = lambda fmt, color, _r=result: view(_r, fmt, color)
    return result


def trim(source, span):
    """``span`` without the parentheses around the whole operation: the parser's span of
    ``(x + y)`` includes them; the operation's text is ``x + y``."""
    if not span:
        return None
    start, end = span
    while True:
        while start < end and source[start].isspace():
            start += 1
        while end > start and source[end - 1].isspace():
            end -= 1
        if end - start < 2 or source[start] != "(" or source[end - 1] != ")":
            return [start, end]
        depth = 0
        for k in range(start, end):
            depth += {"(": 1, ")": -1}.get(source[k], 0)
            if depth == 0 and k < end - 1:
                return [start, end]  # ``(a) * (b)``: the first parenthesis closes early
        start, end = start + 1, end - 1


def _first_use(program, name):
    from .language import ast as A

    for statement in program.statements:
        for node in A.walk(statement.value if isinstance(statement, A.Assign) else statement):
            if isinstance(node, A.Name) and node.id == name and node.span != (0, 0):
                return trim(program.source, node.span)
    return None


# ----------------------------------------------------------------------------------------------
# rendering (called by ``render.render`` for plain and table output)


def view(result, fmt, color):
    """Plain lines, or a rich group of one panel per step."""
    if fmt == "plain":
        return plain(result)
    return panels(result, color)


def _value(value):
    from .render import plain_value

    return "-" if value is None else plain_value(value)


def _underline(source, span):
    """The program line of ``span`` with carets under it (one line programs show it whole)."""
    from .errors import excerpt

    if not span:
        return ""
    line, column = position(source, span[0])
    width = span[1] - span[0] if source.count("\n", span[0], span[1]) == 0 else 1
    return excerpt(source, line, column, max(1, width))


def plain(result) -> str:
    source = result.program
    lines = []
    for k, step in enumerate(result.extra["steps"], 1):
        if "accumulates" in step:
            lines.append(
                f"step {k}\t{step['node']}\t{step['accumulates']}\t{step['accumulates']}.grad += "
                f"{_value(step['grad_in'])}\t-> {_value(step['grad'])}"
            )
            continue
        where = f"[{step['span'][0]}:{step['span'][1]}]" if step["span"] else "(inside a function)"
        lines.append(f"step {k}\t{step['node']}\t{step['op']}\t{where}")
        if step["span"]:
            lines.extend("\t" + line for line in _underline(source, step["span"]).splitlines())
        lines.append(f"\tgrad_in\t{_value(step['grad_in'])}")
        lines.append(f"\trule\t{step['rule']}")
        for i, (target, g) in enumerate(zip(step["inputs"], step["grads_out"])):
            if target is None:
                continue
            note = ""
            if step["unbroadcast"][i]:
                u = step["unbroadcast"][i]
                note = f"\t(summed from shape {tuple(u['from'])} to {tuple(u['to'])})"
            lines.append(f"\t-> {target}\t{_value(g)}{note}")
    for name, g in result.extra["grads"].items():
        lines.append(f"{name}.grad\t{_value(g)}")
    return "\n".join(lines) + "\n"


def panels(result, color):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from .render import summarise

    source = result.program
    parts = [
        Text(f"explain: {source.strip().splitlines()[0] if source.strip() else ''}", style="bold" if color else "")
    ]
    for k, step in enumerate(result.extra["steps"], 1):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim" if color else "")
        grid.add_column()
        if "accumulates" in step:
            grid.add_row("grad in", summarise(step["grad_in"]))
            grid.add_row("rule", f"{step['accumulates']}.grad += g")
            grid.add_row(f"{step['accumulates']}.grad", summarise(step["grad"]))
            title = f"{k} · AccumulateGrad · {step['accumulates']}"
        else:
            if step["span"]:
                text = Text(source.replace("\n", " "))
                text.stylize("underline bold" if color else "underline", step["span"][0], step["span"][1])
                if not color:
                    text = Text(_underline(source, step["span"]))
                grid.add_row("forward", text)
            else:
                grid.add_row("forward", f"{step['op']} (inside a function)")
            grid.add_row("grad in", summarise(step["grad_in"]))
            grid.add_row("rule", step["rule"] or "-")
            for i, (target, g) in enumerate(zip(step["inputs"], step["grads_out"])):
                if target is None:
                    continue
                shown = summarise(g)
                if step["unbroadcast"][i]:
                    u = step["unbroadcast"][i]
                    shown += f"  (summed from {tuple(u['from'])} to {tuple(u['to'])})"
                grid.add_row(f"→ {target}", shown)
            title = f"{k} · {step['node']} · {step['op']}"
        parts.append(Panel(grid, title=title, title_align="left", expand=False))
    table = Table("input", ".grad")
    for name, g in result.extra["grads"].items():
        table.add_row(name, summarise(g))
    parts.append(table)
    return Group(*parts)
