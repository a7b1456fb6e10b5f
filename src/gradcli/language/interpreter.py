"""AST + input tensors -> named tensors (SPEC §2).

Inputs are the leaves the caller gives; each assignment names an intermediate; the last
statement is the output.  A name resolves only to an input, an assigned name or a constant; a
call only to the op table (``gradcli.ops.FUNCTIONS``) and the plugin functions given to ``run``.
Nothing the user typed reaches ``eval``, ``exec`` or ``getattr``: every lookup is a dict lookup.

Number literals stay Python numbers as they would in PyTorch code, so ``1 - x`` reaches the
engine as ``sub(1, x)`` (RsubBackward1) and ``x ^ 2`` as ``pow(x, 2)`` (PowBackward0); operators
whose operands are all numbers are folded here, as Python would.  Evaluation walks the tree with
an explicit stack: a program as deep as the user cares to write never meets the recursion limit.

Grad modes are PyTorch's context managers written as functions of the expression they govern:
``no_grad(e)``, ``enable_grad(e)`` and ``set_grad_enabled(mode, e)`` enter the mode before ``e``
is evaluated and leave it after, so they nest as ``with`` blocks do.  ``detach(x)`` and
``x.requires_grad_(False)`` are the Tensor methods of those names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .. import limits, public
from ..autograd.grad_mode import is_anomaly_enabled
from ..errors import GradcliError
from . import ast as A
from .parser import paused_gc

#: functions whose first argument is a list of tensors (stack([x, y]) stacks x and y), and those
#: that build tensors from sizes (they get the program's dtype and device): from the registry
LIST_FUNCTIONS, CONSTRUCTORS = public.LIST_FUNCTIONS, public.CONSTRUCTORS
#: grad modes: functions whose last argument is the expression evaluated in that mode
GRAD_MODES = frozenset({"no_grad", "enable_grad", "set_grad_enabled"})
#: the language's own functions (not ops: they record no node), with their one-line docs
#: name -> (signature, doc, derivative) for ``gradcli functions``
LANGUAGE_FUNCTIONS = {
    "detach": (
        "detach(x)",
        "x.detach(): the same values cut from the graph (requires_grad=False, no grad_fn)",
        "no gradient: the graph stops here",
    ),
    "no_grad": (
        "no_grad(expr)",
        "evaluates expr with gradient recording off (with torch.no_grad())",
        "no gradient: nothing inside is recorded",
    ),
    "enable_grad": (
        "enable_grad(expr)",
        "evaluates expr with gradient recording on, also inside no_grad (with torch.enable_grad())",
        "expr's own",
    ),
    "set_grad_enabled": (
        "set_grad_enabled(mode, expr)",
        "evaluates expr with recording on (True) or off (False) (with torch.set_grad_enabled(mode))",
        "expr's own when mode is True, else none",
    ),
    "requires_grad_": (
        "requires_grad_(x, requires_grad=True)",
        "x.requires_grad_(False): x stops requiring grad, in place (on an input: as --freeze x)",
        "x itself (a leaf)",
    ),
}
LANGUAGE_DOCS = {name: doc for name, (_, doc, _) in LANGUAGE_FUNCTIONS.items()}
_NUMBERS = (int, float)
_FOLD = public.FOLD  # operator op name -> the Python operator that folds it on numbers


@dataclass
class Evaluation:
    """What a program computed: every named tensor, and the output."""

    tensors: dict  # name -> Tensor: inputs first, then assigned names
    output: object  # the last statement's Tensor
    output_name: str | None  # the last statement's assigned name, or None
    program: A.Program | None = field(default=None, repr=False)
    inputs: dict = field(default_factory=dict, repr=False)  # name -> the input tensor
    machine: object = field(default=None, repr=False)  # what evaluated it (for nograd.py)


def run(
    program: A.Program,
    values: dict,
    functions: dict | None = None,
    *,
    dtype=None,
    device=None,
    record: list | None = None,
) -> Evaluation:
    """Evaluate ``program`` with ``values`` for its inputs; ``functions`` extends the op table.

    ``dtype`` / ``device`` apply to literals and constructors; by default those of the inputs
    (else float64 on the CPU).  Raises ``GradcliError``: "value" for a missing input, "name" for
    an unknown function, "shape" / "type" for what the engine refused, with the call's span.
    ``record``: a list that receives ``(AST node, value)`` for every call, operator, index and
    ``.T`` evaluated (``--formula`` finds the text each tensor came from).
    """
    import gradcli as G
    from gradcli import ops

    missing = [name for name in program.inputs if name not in values]
    if missing:
        raise _missing(program, missing)
    table = dict(ops.FUNCTIONS)
    table.update(_LANGUAGE)
    if functions:
        table.update(functions)
    env = {}
    for name in program.inputs:
        value = values[name]
        env[name] = value if isinstance(value, G.Tensor) else G.tensor(value, dtype=dtype, device=device)
    if dtype is None or device is None:
        first = next((v for v in env.values() if getattr(getattr(v, "dtype", None), "kind", "") == "f"), None)
        dtype = dtype or (first.dtype if first is not None else "float64")
        device = device or (str(getattr(first, "device", "cpu")) if first is not None else "cpu")
    machine = _Machine(G, table, set(functions or ()), ops.CONSTANTS, env, program.source, dtype, device)
    machine.record = record
    inputs = dict(env)
    if machine.anomaly:
        for name in program.inputs:
            _check_input(program, name, env[name])
    tensors = dict(env)
    output = None
    try:
        with paused_gc():
            for statement in program.statements:
                expression = statement.value if isinstance(statement, A.Assign) else statement
                output = machine.tensor(machine.evaluate(expression), expression)
                if isinstance(statement, A.Assign):
                    env[statement.name] = tensors[statement.name] = output
    except RecursionError:
        raise GradcliError("value", "the program is nested too deeply to evaluate").locate(
            program.source, (0, 0)
        ) from None
    finally:
        machine.leave_modes()
    return Evaluation(tensors, output, program.output_name, program, inputs, machine)


def _detach(x):
    return x.detach()


def _requires_grad_(x, requires_grad=True):
    if not isinstance(requires_grad, bool):
        raise TypeError(f"requires_grad_ takes True or False, not {type(requires_grad).__name__}")
    try:
        return x.requires_grad_(requires_grad)
    except RuntimeError as exc:  # PyTorch's words: a non-leaf, or an integer tensor
        raise GradcliError("autograd", str(exc)) from None


_LANGUAGE = {"detach": _detach, "requires_grad_": _requires_grad_}


def _missing(program, names) -> GradcliError:
    first = next(
        (
            node.span
            for s in program.statements
            for node in A.walk(s)
            if isinstance(node, A.Name) and node.id == names[0]
        ),
        (0, 0),
    )
    quoted = " and ".join(", ".join(f"'{n}'" for n in names).rsplit(", ", 1))
    given = " ".join(f"{n}=VALUE" for n in names)
    if len(names) == 1:
        message = f"missing value for input {quoted}: give it as {given}"
    else:
        message = f"missing values for inputs {quoted}: give them as {given}"
    return GradcliError("value", message).locate(program.source, first)


def label(func: str) -> str:
    """How an error names an op: ``matmul ('@')`` for operators, ``tanh`` for functions."""
    symbol = A.BINARY.get(func, (None,))[0] or A.UNARY.get(func)
    return f"{func} ('{symbol}')" if symbol else func


class _Machine:
    """The evaluator: one explicit stack, one step per node."""

    def __init__(self, G, table, plugins, constants, env, source, dtype, device):
        self.G, self.table, self.plugins, self.constants = G, table, plugins, constants
        self.env, self.source, self.dtype, self.device = env, source, dtype, device
        self._accepts: dict = {}
        self.modes: list = []  # the grad-mode context managers entered and not yet left
        self.record = None  # see ``run``
        self._literals: dict = {}  # id(Array node) -> nested list, or None: each array walked once
        self.anomaly = is_anomaly_enabled()  # --detect-anomaly: check every output as it is made
        self.Tensor, self.max_elements = G.Tensor, limits.max_elements()

    # -- the walk -----------------------------------------------------------------------------
    def leave_modes(self):
        """Leave the grad modes still entered: an error inside no_grad(...) must not leave grad off."""
        while self.modes:
            self.modes.pop().__exit__(None, None, None)

    def evaluate(self, root):
        results: list = []
        work: list = [(root, False)]
        while work:
            node, ready = work.pop()
            kind = type(node)
            if node is None:
                results.append(None)
            elif kind is A.Const:
                results.append(node.value)
            elif kind is A.Name:
                results.append(self.lookup(node))
            elif ready:
                if kind is A.Call and not node.kwargs:
                    count = len(node.args)
                    args = results[len(results) - count :]
                    del results[len(results) - count :]
                    results.append(self.call(node, node.func, args, {}))
                    continue
                count = _arity(node)
                values = results[len(results) - count :]
                del results[len(results) - count :]
                results.append(self.combine(node, values))
            elif kind is A.Array and self.literal(node) is not None:
                results.append(
                    self.guard(
                        node,
                        "an array literal",
                        [],
                        lambda: self.G.tensor(  # noqa: B023 - guard calls it at once
                            self.literal(node),  # noqa: B023
                            dtype=self._literal_dtype(node),  # noqa: B023
                            device=self.device,
                        ),
                    )
                )
            elif kind is A.Call and not node.kwargs and node.func not in LIST_FUNCTIONS:
                if node.func not in self.table:
                    if node.func in GRAD_MODES:
                        self.enter(node, work)
                        continue
                    raise self.unknown(node)
                work.append((node, True))
                args = node.args
                for i in range(len(args) - 1, -1, -1):
                    work.append((args[i], False))
            else:
                if kind is A.Call and node.func not in self.table:
                    if node.func in GRAD_MODES:
                        self.enter(node, work)
                        continue
                    raise self.unknown(node)
                work.append((node, True))
                work.extend([(child, False) for child in reversed(_parts(node))])
        return results[-1]

    def lookup(self, node):
        value = self.env.get(node.id)
        if value is None:
            value = self.constants.get(node.id)
        if value is None:
            raise GradcliError("name", f"unknown name '{node.id}'").locate(self.source, node.span)
        return value

    def combine(self, node, values):
        kind = type(node)
        if kind is A.Call:
            count = len(node.args)
            kwargs = {}
            for (name, knode), value in zip(node.kwargs, values[count:]):
                literal = _literal(knode) if type(knode) is A.Array else None
                kwargs[name] = _tuples(literal) if literal is not None else value
            return self.call(node, node.func, list(values[:count]), kwargs)
        if kind is A.Slice:
            return slice(
                *(
                    None if v is None else self.integer(v, part)
                    for v, part in zip(values, (node.start, node.stop, node.step))
                )
            )
        if kind is A.Index:
            items = [v if isinstance(v, slice) else self.index_item(v, n) for v, n in zip(values[1:], node.items)]
            key = items[0] if len(items) == 1 else tuple(items)
            return self.guard(node, "indexing", [values[0]], lambda: self.tensor(values[0], node)[key])
        if kind is A.Attr:
            return self.guard(node, ".T", [values[0]], lambda: self.tensor(values[0], node).T)
        if kind is A.Array:
            return self.call(node, "stack", [[self.tensor(v, node) for v in values]], {"dim": 0})
        if kind is _List:
            return [self.tensor(v, node) for v in values]
        if kind is _Leave:
            self.modes.pop().__exit__(None, None, None)
            return values[0]
        raise TypeError(f"cannot evaluate {node!r}")  # pragma: no cover - parser makes none

    def enter(self, node, work):
        """Enter the grad mode of ``no_grad(e)`` / ``enable_grad(e)`` / ``set_grad_enabled(m, e)``
        and queue ``e``, then a ``_Leave`` that leaves the mode once ``e`` has its value."""
        func, args = node.func, node.args
        if func == "set_grad_enabled":
            mode = _number_of(args[0]) if len(args) == 2 and not node.kwargs else None
            if not isinstance(mode, bool):
                raise GradcliError(
                    "type",
                    "set_grad_enabled(mode, expr) takes True or False, then the expression to evaluate in that mode",
                ).locate(self.source, node.span)
            context = self.G.set_grad_enabled(mode)
        else:
            if len(args) != 1 or node.kwargs:
                how = "without" if func == "no_grad" else "with"
                raise GradcliError(
                    "type", f"{func}(expr) takes one argument: the expression to evaluate {how} gradient recording"
                ).locate(self.source, node.span)
            context = self.G.no_grad() if func == "no_grad" else self.G.enable_grad()
        context.__enter__()
        self.modes.append(context)
        work.append((_Leave(node, args[-1]), True))
        work.append((args[-1], False))

    # -- calls --------------------------------------------------------------------------------
    def call(self, node, func, args, kwargs):
        """``table[func](*args, **kwargs)``, folded when all operands are numbers; the hot path."""
        if kwargs and "axis" in kwargs:
            if "dim" in kwargs:
                raise GradcliError("type", f"{label(func)} got both dim= and axis= (axis is dim)").locate(
                    self.source, node.span
                )
            kwargs["dim"] = kwargs.pop("axis")
        if func in _FOLD:
            if not kwargs and args and type(args[0]) in _NUMBERS and (len(args) == 1 or type(args[-1]) in _NUMBERS):
                folded = _fold(func, args)
                if folded is not None:
                    return folded
        elif func in CONSTRUCTORS:
            kwargs = self._with_dtype(func, kwargs)
            try:
                limits.check_constructor(func, args, kwargs)  # before numpy allocates anything
            except GradcliError as err:
                raise err.locate(self.source, node.span) from None
        elif args and _is_number(args[0]):
            # a function's first argument is the tensor it acts on (as x in x.sum()): tanh(2)
            args[0] = self.tensor(args[0], node)
        if (
            len(args) == 2
            and type(args[1]) is self.Tensor
            and type(args[0]) is self.Tensor
            and args[0]._data.size * args[1]._data.size > self.max_elements
        ):
            self.check_size(node, func, args)  # broadcasting or an outer product: maybe too big
        try:
            out = self.table[func](*args, **kwargs)
        except GradcliError as err:
            raise err.locate(self.source, node.span) from None
        except Exception as exc:  # noqa: BLE001 - sorted in refused
            operands = args[0] if func in LIST_FUNCTIONS and args and isinstance(args[0], list) else args
            raise self.refused(node, label(func), operands, exc, func in self.plugins) from None
        if self.anomaly:
            self.check_finite(node, label(func), args, out)
        grad_fn = getattr(out, "grad_fn", None)
        if grad_fn is not None and getattr(grad_fn, "span", None) is None:
            try:
                grad_fn.span = node.span
            except AttributeError:
                pass
        if self.record is not None:
            self.record.append((node, out))
        return out

    def guard(self, node, what, operands, thunk):
        """Run ``thunk``; turn what the engine refuses into a GradcliError at ``node``'s span."""
        try:
            out = thunk()
        except GradcliError as err:
            raise err.locate(self.source, node.span) from None
        except Exception as exc:  # noqa: BLE001 - sorted in refused
            raise self.refused(node, what, operands, exc, False) from None
        if self.anomaly:
            self.check_finite(node, what, operands, out)
        grad_fn = getattr(out, "grad_fn", None)
        if grad_fn is not None and getattr(grad_fn, "span", None) is None:
            try:
                grad_fn.span = node.span
            except AttributeError:
                pass
        if self.record is not None:
            self.record.append((node, out))
        return out

    def literal(self, node):
        """``_literal(node)``, found for every array inside ``node`` in one walk (an array nested
        N deep is walked once, not N times)."""
        key = id(node)
        if key not in self._literals:
            self._literals.update(_literals(node))
        return self._literals[key]

    def check_size(self, node, func, args):
        """Refuse a result over the element limit before computing it (a product of two operands'
        sizes can only be exceeded by nothing we make, so only then is the exact size worked out)."""
        import numpy as np

        a, b = (tuple(t.shape) for t in args)
        if func in ("matmul", "outer", "dot", "mm", "mv"):
            if func == "outer":
                shape = (limits.numel(a), limits.numel(b))
            elif len(a) >= 2 and len(b) >= 2:
                try:
                    shape = np.broadcast_shapes(a[:-2], b[:-2]) + (a[-2], b[-1])
                except ValueError:
                    return
            else:
                return
        else:
            try:
                shape = np.broadcast_shapes(a, b)
            except ValueError:
                return  # the op reports the mismatch itself
        try:
            limits.check_shape(shape, f"the result of {label(func)}")
        except GradcliError as err:
            raise err.locate(self.source, node.span) from None

    def check_finite(self, node, what, operands, out):
        from ..anomaly import forward_error

        flat = [o for item in operands for o in (item if isinstance(item, list) else (item,))]
        error = forward_error(what, out, flat)
        if error is not None:
            raise error.locate(self.source, node.span)

    def refused(self, node, what, operands, exc, plugin) -> GradcliError:
        shapes = [
            f"({', '.join(map(str, o.shape))}{',' if len(o.shape) == 1 else ''})"
            for o in operands
            if hasattr(o, "shape")
        ]
        detail = str(exc) or type(exc).__name__
        name = type(exc).__name__
        if plugin:
            kind, message = "plugin", f"plugin function {what} failed: {name}: {detail}"
        elif name == "LinAlgError":
            kind, message = "value", f"{what}: {detail}"
        elif "inhomogeneous" in detail:
            kind, message = "shape", f"ragged {what.removeprefix('an ')}: its rows have different lengths"
        elif isinstance(exc, MemoryError) or "Maximum allowed dimension" in detail:
            kind, message = "limit", f"{what}: too large to allocate ({detail})"
        elif isinstance(exc, IndexError) or isinstance(exc, ValueError) and shapes and _about_shapes(detail):
            shown = f": shapes {' and '.join(shapes)}" if shapes else ""
            kind, message = "shape", f"shape mismatch in {what}{shown}: {detail}"
        elif isinstance(exc, ValueError):
            kind, message = "value", f"bad arguments to {what}: {detail}"
        elif isinstance(exc, TypeError):
            kind, message = "type", f"bad arguments to {what}: {detail}"
            if type(node) is A.Call and node.func in self.table:
                found = _argument_problem(node.func, self.table[node.func], node)
                if found is not None:
                    message, signature = found
                    return GradcliError(kind, message, hint=signature).locate(self.source, node.span)
        elif isinstance(exc, (ArithmeticError, MemoryError, RuntimeError)):
            kind, message = "value", f"{what} failed: {detail}"
        else:
            kind, message = "value", f"{what} failed ({name}): {detail}"
        return GradcliError(kind, message).locate(self.source, node.span)

    def unknown(self, node) -> GradcliError:
        import difflib  # noqa: PLC0415 - only for the error message; slow to import

        close = difflib.get_close_matches(node.func, [*self.table, *GRAD_MODES], n=1, cutoff=0.75)
        hint = f": did you mean '{close[0]}'?" if close else ""
        if not close and node.func not in self.env:
            if self.plugins:
                hint = (
                    f": the plugins define {', '.join(sorted(self.plugins))}, not '{node.func}'; "
                    "pass the file that defines it with --plugin FILE.py"
                )
            else:
                hint = f": is '{node.func}' from a plugin? pass --plugin FILE.py"
        if node.func in self.env:
            hint = f": '{node.func}' is a tensor, not a function" + (f" (did you mean '{close[0]}'?)" if close else "")
        return GradcliError("name", f"unknown function '{node.func}'{hint}").locate(
            self.source, _name_span(self.source, node)
        )

    def _with_dtype(self, func, kwargs):
        accepts = self._accepts.get(func)
        if accepts is None:
            import inspect  # noqa: PLC0415 - once per constructor; slow to import

            try:
                parameters = inspect.signature(self.table[func]).parameters
                accepts = self._accepts[func] = {p for p in ("dtype", "device") if p in parameters}
            except (TypeError, ValueError):
                accepts = self._accepts[func] = set()
        extra = {"dtype": self.dtype, "device": self.device}
        return {**{k: extra[k] for k in accepts if k not in kwargs}, **kwargs}

    # -- conversions --------------------------------------------------------------------------
    def tensor(self, value, node):
        """A Tensor for ``value``; numbers and flags become constant tensors."""
        if isinstance(value, self.G.Tensor):
            return value
        if isinstance(value, (int, float)):
            return self.G.tensor(value, dtype=self.dtype if not isinstance(value, bool) else None, device=self.device)
        raise GradcliError("type", "expected a tensor or a number").locate(self.source, node.span)

    def _literal_dtype(self, node):
        return None if any(isinstance(n, A.Const) and isinstance(n.value, bool) for n in A.walk(node)) else self.dtype

    def index_item(self, value, node):
        """An index: an integer, or an array of them (a tensor of whole numbers) or a mask (PyTorch's
        advanced indexing: ``x[idx]``, ``x[x > 0]``)."""
        if isinstance(value, self.G.Tensor) and value.ndim:
            if value.dtype.kind in "biu":
                return value
            numbers = value.detach().numpy()
            if not (numbers == numbers.round()).all():
                raise GradcliError("type", "an index array must hold whole numbers").locate(self.source, node.span)
            return value.detach().long()
        return self.integer(value, node)

    def integer(self, value, node) -> int:
        if isinstance(value, bool) or not _is_number(value):
            what = "a tensor" if isinstance(value, self.G.Tensor) else type(value).__name__
            raise GradcliError("type", f"an index must be an integer, not {what}").locate(self.source, node.span)
        if isinstance(value, float):
            if not value.is_integer():
                raise GradcliError("type", f"an index must be an integer, not {value!r}").locate(self.source, node.span)
            value = int(value)
        return value


# ------------------------------------------------------------------------------------------
# helpers on nodes and numbers


def _argument_problem(func, fn, node):
    """``(message, signature)`` when the call's arguments cannot fit ``fn``'s signature: the
    language's words ("sin takes 1 argument, got 2", "did you mean keepdim?"), never Python's
    ``<locals>`` text.  None when they fit (the TypeError came from elsewhere)."""
    import difflib  # noqa: PLC0415 - only for the error message
    import inspect  # noqa: PLC0415 - only for the error message

    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    kinds = inspect.Parameter
    positional = [p for p in parameters.values() if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == kinds.VAR_POSITIONAL for p in parameters.values()):
        return None
    named = [p.name for p in parameters.values() if p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL)]
    shown = [
        p.name if p.default is p.empty else f"{p.name}={p.default!r}"
        for p in parameters.values()
        if p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL) and p.name not in ("dtype", "device")
    ]
    signature = f"{func}({', '.join(shown)})"
    keywords = ["dim" if k == "axis" else k for k, _ in node.kwargs]
    if not any(p.kind == kinds.VAR_KEYWORD for p in parameters.values()):
        for keyword in keywords:
            if keyword not in parameters:
                close = difflib.get_close_matches(keyword, named, n=1, cutoff=0.6)
                return (
                    f"{func} has no argument '{keyword}'"
                    + (
                        f": did you mean {close[0]}?"
                        if close
                        else f" (its arguments: {', '.join(n for n in named if n not in ('dtype', 'device'))})"
                    ),
                    signature,
                )
    count = len(node.args)
    required = [p for p in positional if p.default is p.empty]
    if len(required) == len(positional):
        takes = f"{len(positional)} argument{'s' if len(positional) != 1 else ''}"
    else:
        takes = f"{len(required)} to {len(positional)} arguments"
    if count > len(positional):
        return f"{func} takes {takes}, got {count}", signature
    missing = [p.name for p in required[count:] if p.name not in keywords]
    if missing:
        return f"{func} takes {takes}, got {count}: {', '.join(missing)} missing", signature
    return None


class _List:
    """``[a, b]`` written as the first argument of ``stack`` / ``cat``: a list, not a tensor."""

    __slots__ = ("elements", "span")

    def __init__(self, array):
        self.elements, self.span = array.elements, array.span


class _Leave:
    """Queued after the expression of a grad mode: leaves the mode and passes the value on."""

    __slots__ = ("call", "elements", "span")

    def __init__(self, call, body):
        self.elements, self.span, self.call = (body,), call.span, call


def _parts(node) -> list:
    """The sub-expressions ``combine`` receives values for, in order (None kept for slices)."""
    kind = type(node)
    if kind is A.Call:
        args = list(node.args)
        if node.func in LIST_FUNCTIONS and args and type(args[0]) is A.Array:
            args[0] = _List(args[0])
        return args + [value for _, value in node.kwargs]
    if kind is A.Index:
        return [node.value, *node.items]
    if kind is A.Slice:
        return [node.start, node.stop, node.step]
    if kind is A.Attr:
        return [node.value]
    if kind is A.Array or kind is _List:
        return list(node.elements)
    raise TypeError(f"not an expression node: {node!r}")


def _arity(node) -> int:
    kind = type(node)
    if kind is A.Call:
        return len(node.args) + len(node.kwargs)
    if kind is A.Index:
        return 1 + len(node.items)
    if kind is A.Slice:
        return 3
    if kind is A.Attr:
        return 1
    return len(node.elements)  # Array, _List


def _name_span(source, node):
    """The span of a call's function name: ``f`` in ``f(x)``, ``sum`` in ``x.sum()``."""
    if node.args:
        match = re.compile(r"\s*\.\s*(" + re.escape(node.func) + ")").match(source, node.args[0].span[1])
        if match:
            return match.span(1)
    if source.startswith(node.func, node.span[0]):
        return (node.span[0], node.span[0] + len(node.func))
    return node.span


def _is_number(value) -> bool:
    return isinstance(value, (int, float))


def _fold(func, args):
    """``func`` on Python numbers as Python computes it, except that float overflow, division by
    zero and powers of negative numbers give inf / nan as a tensor would.  None: not foldable."""
    if any(isinstance(a, bool) for a in args):
        return None
    if func == "pow" and all(isinstance(a, int) for a in args):
        base, exponent = args
        if exponent < 0 or (abs(base) > 1 and exponent * math.log2(abs(base)) > 62):
            args = [float(base), float(exponent)]
    try:
        result = _FOLD[func](*args)
    except ZeroDivisionError:
        numerator = float(args[0])
        return math.nan if numerator == 0 or math.isnan(numerator) else math.copysign(math.inf, numerator)
    except OverflowError:
        return math.inf
    if isinstance(result, complex):
        return math.nan
    return result


def _literal(node):
    """The nested list of numbers an all-number array literal denotes, else None."""
    if type(node) is not A.Array:
        number = _number_of(node)
        return number
    out_stack = [[]]
    work = [(node, False)]
    while work:
        item, done = work.pop()
        if done:
            finished = out_stack.pop()
            out_stack[-1].append(finished)
            continue
        if type(item) is A.Array:
            out_stack.append([])
            work.append((item, True))
            work.extend((child, False) for child in reversed(item.elements))
            continue
        number = _number_of(item)
        if number is None:
            return None
        out_stack[-1].append(number)
    return out_stack[0][0]


_SHAPE_WORDS = re.compile(r"shape|broadcast|dimension|dim\b|axis|align|size|mismatch|reshape|index", re.I)


def _about_shapes(detail: str) -> bool:
    return bool(_SHAPE_WORDS.search(detail))


def _check_input(program, name, value):
    from ..anomaly import input_error

    error = input_error(name, value)
    if error is not None:
        span = next(
            (n.span for s in program.statements for n in A.walk(s) if isinstance(n, A.Name) and n.id == name), (0, 0)
        )
        raise error.locate(program.source, span)


def _literals(root) -> dict:
    """``{id(array): nested list or None}`` for ``root`` and every array inside it, bottom-up in
    one iterative walk: an array is a literal when all its elements are numbers or literals."""
    found: dict = {}
    work = [(root, False)]
    while work:
        item, done = work.pop()
        if not done:
            work.append((item, True))
            work.extend((child, False) for child in item.elements if type(child) is A.Array)
            continue
        values = []
        for child in item.elements:
            value = found[id(child)] if type(child) is A.Array else _number_of(child)
            if value is None:
                values = None
                break
            values.append(value)
        found[id(item)] = values
    return found


def _number_of(node):
    sign = 1
    while type(node) is A.Call and node.func in ("neg", "pos") and len(node.args) == 1 and not node.kwargs:
        sign = -sign if node.func == "neg" else sign
        node = node.args[0]
    if type(node) is A.Const:
        if isinstance(node.value, bool):
            return node.value if sign == 1 else None
        return sign * node.value
    return None


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
