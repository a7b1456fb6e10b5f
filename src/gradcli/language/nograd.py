"""Why a tensor does not require grad, and why a gradient does not reach a name: true notes.

Commands call these only when they have something to explain (an output that does not require
grad, a gradient that is None), never on the hot path.  The program is evaluated once more by a
tracer that records, for each expression, whether its value requires grad and, for each name
it reads, the assignment that name came from.  The tree is then walked from the output down to
what stops the gradient:

- an input that is frozen (``--freeze x`` or ``x.requires_grad_(False)``: requires_grad=False);
- ``detach(x)``; ``no_grad(e)`` or ``set_grad_enabled(False, e)``;
- a comparison (``x > 0``), or another operation with no derivative.

Only the outermost stop on each path is named: ``detach(x > 0)`` is "detached", which is true.
"""

from __future__ import annotations

from . import ast as A
from .interpreter import _Leave, _Machine, _number_of
from .parser import paused_gc

#: comparisons: a mask, never a gradient
COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
#: how much program text a note quotes
QUOTE = 40


class _Tracer(_Machine):
    """The evaluator, recording ``requires`` (node id -> requires_grad of its value) and
    ``origin`` (Name node id -> the expression of the assignment it read, None for an input)."""

    def __init__(self, machine, inputs):
        super().__init__(
            machine.G,
            machine.table,
            machine.plugins,
            machine.constants,
            dict(inputs),
            machine.source,
            machine.dtype,
            machine.device,
        )
        self.requires: dict = {}
        self.origin: dict = {}
        self.current: dict = {}

    def lookup(self, node):
        value = super().lookup(node)
        self.origin[id(node)] = self.current.get(node.id)
        self.requires[id(node)] = bool(getattr(value, "requires_grad", False))
        return value

    def call(self, node, func, args, kwargs):
        out = super().call(node, func, args, kwargs)
        self.requires[id(node)] = bool(getattr(out, "requires_grad", False))
        return out

    def combine(self, node, values):
        out = super().combine(node, values)
        target = node.call if type(node) is _Leave else node
        self.requires[id(target)] = bool(getattr(out, "requires_grad", False))
        return out


def _trace(evaluation):
    """The tracer after running the whole program again, or None if that failed."""
    tracer = _Tracer(evaluation.machine, evaluation.inputs)
    try:
        with paused_gc():
            for statement in evaluation.program.statements:
                expression = statement.value if isinstance(statement, A.Assign) else statement
                value = tracer.tensor(tracer.evaluate(expression), expression)
                if isinstance(statement, A.Assign):
                    tracer.env[statement.name] = value
                    tracer.current[statement.name] = expression
    except Exception:  # noqa: BLE001 - the first run succeeded; notes are best effort
        return None
    finally:
        tracer.leave_modes()
    return tracer


def _kids(tracer, node, wanted):
    if type(node) is A.Name:
        if node.id in wanted:
            return []
        origin = tracer.origin.get(id(node))
        return [origin] if origin is not None else []
    return [child for child in A.children(node) if child is not None]


def _reach(tracer, root, wanted, inputs):
    """id(node) -> (a wanted name is below, a wanted name whose value requires grad is below)."""
    memo: dict = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in memo:
            continue
        kids = _kids(tracer, node, wanted)
        if not done:
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids if id(kid) not in memo)
            continue
        if type(node) is A.Name and (node.id in wanted or tracer.origin.get(key) is None):
            here = node.id in wanted and (node.id in inputs or tracer.origin.get(key) is not None)
            memo[key] = (here, here and tracer.requires.get(key, False))
        else:
            parts = [memo.get(id(kid), (False, False)) for kid in kids]
            memo[key] = (any(p[0] for p in parts), any(p[1] for p in parts))
    return memo


def _quote(source, node) -> str:
    text = " ".join(source[node.span[0] : node.span[1]].split())
    return text if len(text) <= QUOTE else text[: QUOTE - 3] + "..."


def _stops(tracer, evaluation, root, wanted) -> tuple[list, bool]:
    """The reasons on the paths from ``root`` to the ``wanted`` names, and whether any path exists."""
    memo = _reach(tracer, root, wanted, evaluation.inputs)
    source = evaluation.program.source
    reasons, seen = [], set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen or not memo.get(id(node), (False, False))[0]:
            continue
        seen.add(id(node))
        kind = type(node)
        if kind is A.Name:
            if node.id in wanted and not tracer.requires.get(id(node), False):
                reasons.append(_frozen(node.id, evaluation))
            elif node.id not in wanted:
                stack.append(tracer.origin[id(node)])
            continue
        live = memo[id(node)][1]
        if kind is A.Call and live:
            reason = _stop(tracer, node, _quote(source, node))
            if reason:
                reasons.append(reason)
                continue
        stack.extend(reversed(_kids(tracer, node, wanted)))
    return list(dict.fromkeys(reasons)), memo.get(id(root), (False, False))[0]


def _stop(tracer, node, text) -> str | None:
    func = node.func
    if func in COMPARISONS:
        return f"{text} is a comparison: its result does not require grad"
    if func == "detach":
        return f"{text} is detached from the graph (requires_grad=False)"
    if func == "no_grad":
        return f"{text} is computed under no_grad (requires_grad=False)"
    if func == "set_grad_enabled" and _number_of(node.args[0]) is False:
        return f"{text} is computed with grad disabled (requires_grad=False)"
    if func in ("enable_grad", "set_grad_enabled") or tracer.requires.get(id(node), True):
        return None
    if any(tracer.requires.get(id(child), False) for child in A.children(node)):
        return f"{text} has no derivative ({func}): its result does not require grad"
    return None


def _frozen(name, evaluation) -> str:
    tensor = evaluation.inputs.get(name)
    if tensor is None:
        return f"{name} does not require grad"
    if str(tensor.dtype).removeprefix("torch.") not in ("float64", "float32", "float16"):
        return f"{name} is an integer tensor: only floating point tensors can require grad"
    return f"{name} is frozen (requires_grad=False)"


def _expression(evaluation, name):
    """The expression that last assigned ``name`` (the output when None)."""
    for statement in reversed(evaluation.program.statements):
        if name is None:
            return statement.value if isinstance(statement, A.Assign) else statement
        if isinstance(statement, A.Assign) and statement.name == name:
            return statement.value
    return None


def why_no_grad(evaluation, name=None) -> list[str]:
    """Why the output (or the tensor ``name``) does not require grad, as short true sentences."""
    if name in evaluation.inputs and name not in evaluation.program.assigned:
        return [_frozen(name, evaluation)]
    root = _expression(evaluation, name)
    tracer = _trace(evaluation) if root is not None else None
    if tracer is None:
        return []
    reasons, reached = _stops(tracer, evaluation, root, set(evaluation.inputs))
    if not reached:
        what = "the output" if name is None else name
        return [f"{what} is computed from constants only" if evaluation.inputs else "the program has no inputs"]
    return reasons


def why_unused(evaluation, name) -> list[str]:
    """Why no gradient flows from the output back to ``name`` (an input or an intermediate)."""
    root = _expression(evaluation, None)
    tracer = _trace(evaluation) if root is not None else None
    if tracer is None:
        return []
    reasons, reached = _stops(tracer, evaluation, root, {name})
    if not reached:
        return [f"the output does not use {name}"]
    return reasons
