"""Derivatives as formulas (``grad --formula``, ``diff --formula``): SPEC §3 "Beyond PyTorch".

No second algebra system: backward runs on the recorded graph as usual, and at each node it
runs (the engine's ``trace`` hook, in the engine's order) the op's derivative rule — its
``rules_text``, one expression of the language per input, the same text ``explain`` and
``gradcli functions`` show — is applied symbolically: ``g`` becomes the text of the gradient
arriving at the node, ``out`` and ``x``, ``y``, ``z`` the text of the forward subexpressions
(found through the interpreter's ``record`` of which program text gave which tensor), the op's
parameters become literals.  Where the engine un-broadcasts, the formula sums (``sum(g,
dim=0)``, ``sum(g, dim=1, keepdim=True)``).  Contributions to a tensor used twice are added.

The result is simplified as it is built (``simplify``): operators on numbers folded; ``a*1``,
``1*a``, ``a+0``, ``a-0``, ``a/1``, ``a^1``, ``--a``, ``+a`` removed; ``0*a`` becomes a zero
of ``a``'s shape (dropped from sums, written ``zeros(3)`` if it is all that is left).  Texts
used more than once, or long, are named with assignments (``t1 = ...``, ``g1 = ...``) so the
formula stays linear in the size of the program; the program's own assignments are kept.  A
formula is a program of the language: ``gradcli eval`` runs it with the same inputs.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np

from .language import ast as A
from .ops import UNARY_OPS

#: operators and functions that act elementwise (result shape: the inputs' broadcast)
ELEMENTWISE = frozenset(
    [
        "add",
        "sub",
        "mul",
        "div",
        "neg",
        "pos",
        "pow",
        "lt",
        "le",
        "gt",
        "ge",
        "eq",
        "ne",
        "square",
        "atan2",
        "maximum",
        "minimum",
        "clamp",
        "detach",
        "where",
    ]
) | frozenset(UNARY_OPS)  # the table's elementwise functions
_COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
_INPUTS = {"x": 0, "y": 1, "z": 2}
_SMALL = 3  # a forward text of at most this many nodes is written in place, never named
_INLINE_SIZE = 6  # a forward text used once and at most this many nodes is written in place
_NAME_SIZE = 40  # a gradient text longer than this is named
_LITERAL_LIMIT = 10_000  # constants with more elements than this have no formula


#: the table's matmul rule is the matrix case; a vector operand is a row or a column of it, and
#: these are that rule with the row / column written out (keyed by min(ndim, 2) of x and y)
_VECTOR_MATMUL = {
    (1, 1): ("g * y", "g * x"),
    (1, 2): ("squeeze(y @ unsqueeze(g, -1), -1)", "unsqueeze(x, -1) * unsqueeze(g, -2)"),
    (2, 1): ("unsqueeze(g, -1) * y", "squeeze(unsqueeze(g, -2) @ x, -2)"),
}


def _select_text(params, shapes, i, gshape):
    """x[index] along dim: the gradient is g put back at that index, zeros elsewhere."""
    dim, n = params["dim"], shapes[0][params["dim"]]
    index = params["index"] % n
    mask = f"arange({n}) == {index}"
    if dim != -1:
        mask = f"reshape({mask}, {n}{', 1' * (-dim - 1)})"
    return f"unsqueeze(g, {dim}) * ({mask})"


def _slice_text(params, shapes, i, gshape):
    """x[start:stop:step] along dim: g times the 0/1 matrix that puts each kept row back."""
    dim, n = params["dim"], shapes[0][params["dim"]]
    start, stop, step = params["start"], params["stop"], params["step"]
    m = len(range(n)[slice(start, stop, step)])
    rows = f"arange({m})" + (f" * {step}" if step != 1 else "") + (f" + {start}" if start else "")
    matrix = f"1 * (reshape({rows}, {m}, 1) == arange({n}))"
    if dim == -1:
        return f"g @ ({matrix})"
    return f"transpose(transpose(g, {dim}, -1) @ ({matrix}), {dim}, -1)"


def _cat_text(params, shapes, i, gshape):
    """cat([...], dim): input i's gradient is its part of g along dim."""
    dim = params["dim"]
    start = sum(s[dim] for s in shapes[:i])
    lead = ":, " * (len(gshape) + dim)
    return f"g[{lead}{start}:{start + shapes[i][dim]}]"


#: ops whose rule scatters into zeros (no rule text in the table): their gradient written with
#: arange masks, matrices and slices, from the node's parameters and shapes
_SCATTERS = {"select": _select_text, "slice": _slice_text, "cat": _cat_text}


class Unsupported(Exception):
    """Some step has no formula (an op without a rule text, a plugin Function, ...)."""


class _Fill:
    """``value`` (a number, or a text of a smaller shape) broadcast to ``shape``: zeros, ones, a
    seed of ones, ``y`` spread over ``x``'s shape.  Kept apart from text so that ``1 * g``,
    ``0 * g`` and ``ones(3) * y + 1`` simplify whatever the shapes; written out only when needed."""

    __slots__ = ("shape", "value")

    def __init__(self, value, shape):
        self.value, self.shape = value, tuple(shape)

    @property
    def number(self) -> bool:
        return isinstance(self.value, (int, float))


def _Zero(shape):
    return _Fill(0, shape)


def is_zero(e) -> bool:
    return isinstance(e, _Fill) and e.number and e.value == 0


def _is_const(e, value=None) -> bool:
    if type(e) is not A.Const or isinstance(e.value, bool):
        return False
    return value is None or e.value == value


def _number(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _fold(func, a, b=None):
    from .language.interpreter import _fold as fold

    args = [a.value] if b is None else [a.value, b.value]
    try:
        value = fold(func, args)
    except (TypeError, ValueError, OverflowError):
        return None
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return A.Const(value)


# ----------------------------------------------------------------------------------------------
# the simplifier: smart constructors that know the shapes of what they combine


class Builder:
    """Builds simplified expressions; ``shape(e)`` is known for names, numbers, fills and
    elementwise combinations of them (None: unknown, and then no shape-changing rule applies)."""

    def __init__(self):
        self.shapes: dict = {}
        self._alive: list = []  # ids in ``shapes`` must not be reused
        self.masks: set = set()  # ids of texts that are boolean masks (1 * mask is not mask)

    def boolean(self, e) -> bool:
        if type(e) is A.Call and e.func in _COMPARISONS:
            return True
        if type(e) is A.Const and isinstance(e.value, bool):
            return True
        return id(e) in self.masks

    def note(self, e, shape):
        if shape is not None and not isinstance(e, _Fill):
            self.shapes[id(e)] = tuple(shape)
            self._alive.append(e)
        return e

    def shape(self, e):
        if isinstance(e, _Fill):
            return e.shape
        if type(e) is A.Const:
            return ()
        return self.shapes.get(id(e))

    def _broadcast(self, *es):
        shapes = [self.shape(e) for e in es]
        if any(s is None for s in shapes):
            return None
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            return None

    def fill(self, value, shape):
        """``value`` (a number or a text) broadcast to ``shape``; the text itself when it has that shape."""
        if isinstance(value, _Fill):
            value = value.value
        if type(value) is A.Const and not isinstance(value.value, bool):
            value = value.value
        if not isinstance(value, (int, float)) and self.shape(value) == tuple(shape):
            return value
        return _Fill(value, shape)

    def value(self, e):
        """A fill's value as text (a number or the smaller text)."""
        return A.Const(_number(e.value)) if e.number else e.value

    def _spreads(self, small, shape):
        """Whether ``small``'s shape broadcasts to ``shape`` (and is not already ``shape``)."""
        s = self.shape(small)
        if s is None or shape is None or s == shape:
            return False
        try:
            return tuple(np.broadcast_shapes(s, shape)) == tuple(shape)
        except ValueError:
            return False

    def materialize(self, e):
        """A fill as text: ``2`` for a scalar, else ``zeros(3)``, ``ones(2, 3)``, ``2 * ones(3)``,
        ``y * ones(2, 3)``."""
        if not isinstance(e, _Fill):
            return e
        if not e.number:
            if self.shape(e.value) == e.shape:
                return e.value
            sizes = tuple(A.Const(int(s)) for s in e.shape)
            ones = self.note(A.Call("ones", sizes), e.shape)
            return self.note(A.Call("mul", (e.value, ones)), e.shape)
        if not e.shape:
            return A.Const(_number(e.value))
        sizes = tuple(A.Const(int(s)) for s in e.shape)
        if e.value in (0, 1):
            return self.note(A.Call("zeros" if e.value == 0 else "ones", sizes), e.shape)
        ones = self.note(A.Call("ones", sizes), e.shape)
        return self.note(A.Call("mul", (A.Const(_number(e.value)), ones)), e.shape)

    def _lower(self, args, shape):
        """Elementwise operands with fills written as numbers where broadcasting keeps the shape."""
        out = list(args)
        for k, a in enumerate(args):
            if isinstance(a, _Fill):
                others = [self.shape(b) for j, b in enumerate(out) if j != k]
                own = () if a.number else self.shape(a.value)
                ok = shape is not None and own is not None and all(o is not None for o in others)
                if ok:
                    try:
                        ok = tuple(np.broadcast_shapes(own, *others)) == shape
                    except ValueError:
                        ok = False
                out[k] = self.value(a) if ok else self.materialize(a)
        return out

    def _spread(self, op, a, b, shape):
        """``op`` of a fill and a text that broadcasts to the fill's shape: a fill of the result."""
        if isinstance(a, _Fill) and isinstance(b, _Fill) and a.shape == b.shape == shape:
            return self.fill(op(self.value(a), self.value(b)), shape)
        if isinstance(a, _Fill) and not isinstance(b, _Fill) and a.shape == shape and self._spreads(b, shape):
            return self.fill(op(self.value(a), b), shape)
        if isinstance(b, _Fill) and not isinstance(a, _Fill) and b.shape == shape and self._spreads(a, shape):
            return self.fill(op(a, self.value(b)), shape)
        return None

    def call(self, func, args, kwargs=()):
        """``func(*args, **kwargs)`` simplified."""
        kwargs = tuple((k, v) for k, v in kwargs if not (k == "keepdim" and type(v) is A.Const and v.value is False))
        if not kwargs:
            if func in ("add", "sub", "mul", "div", "pow") and len(args) == 2:
                return getattr(self, "_" + func)(*args)
            if func == "neg" and len(args) == 1:
                return self._neg(args[0])
            if func == "pos" and len(args) == 1:
                return args[0]
        if func in ("unreduce", "expand_as", "reshape_as") and len(args) >= 2:
            uniform = _uniform(args[0])
            target = self.shape(args[1])
            if uniform is not None and target is not None:
                return _Fill(uniform, target)
            named = dict(kwargs)
            keep = named.get("keepdim")
            if (
                target is not None
                and func != "reshape_as"
                and not isinstance(args[0], _Fill)
                and (
                    func == "expand_as"
                    or "dim" not in named
                    or self.shape(args[0]) == ()
                    or type(keep) is A.Const
                    and keep.value is True
                )
                and self._spreads(args[0], target)
            ):
                return _Fill(args[0], target)
        if func == "ones_like" and len(args) == 1 and not kwargs and self.shape(args[0]) is not None:
            return _Fill(1, self.shape(args[0]))
        if func in ELEMENTWISE:
            shape = self._broadcast(*args)
            if all(isinstance(a, _Fill) or _is_const(a) for a in args) and shape is not None and func == "detach":
                return args[0]
            args = self._lower(args, shape)
        else:
            args = [self.materialize(a) for a in args]
            shape = self._shape_of_call(func, args, kwargs)
        kwargs = tuple((k, self.materialize(v)) for k, v in kwargs)
        return self.note(A.Call(func, tuple(args), kwargs), shape)

    def _shape_of_call(self, func, args, kwargs):
        if func in ("unreduce", "reshape_as", "expand_as") and len(args) >= 2:
            return self.shape(args[1])
        if func == "sum" and args:
            return self._reduced(self.shape(args[0]), dict(kwargs))
        if func == "numel":
            return ()
        return None

    def _reduced(self, shape, kwargs):
        if shape is None:
            return None
        dim = kwargs.get("dim")
        keep = kwargs.get("keepdim")
        keep = type(keep) is A.Const and keep.value is True
        if dim is None:
            return (1,) * len(shape) if keep else ()
        if type(dim) is A.Const:
            dims = [dim.value]
        elif type(dim) is A.Array and all(type(d) is A.Const for d in dim.elements):
            dims = [d.value for d in dim.elements]
        else:
            return None
        dims = {d % len(shape) for d in dims} if shape else set()
        return tuple(1 if i in dims else s for i, s in enumerate(shape) if keep or i not in dims)

    # -- the operators ----------------------------------------------------------------------------
    def _unbool(self, a, b):
        """``1 * mask`` (kept so that a mask alone reads as numbers) loses its ``1 *`` as an operand
        of arithmetic with a non-mask: that arithmetic turns it into numbers anyway."""

        def strip(e, other):
            if (
                type(e) is A.Call
                and e.func == "mul"
                and not e.kwargs
                and _is_const(e.args[0], 1)
                and self.boolean(e.args[1])
                and not isinstance(other, _Fill)
                and not self.boolean(other)
                and self.shape(e.args[1]) == self.shape(e)
            ):
                return e.args[1]
            return e

        a = strip(a, b)
        return a, strip(b, a)

    def _both_fill(self, op, a, b, shape):
        if isinstance(a, _Fill) and isinstance(b, _Fill) and a.number and b.number and shape is not None:
            try:
                return _Fill(op(a.value, b.value), shape)
            except (ZeroDivisionError, OverflowError):
                return None
        return None

    def _add(self, a, b):
        a, b = self._unbool(a, b)
        shape = self._broadcast(a, b)
        both = self._both_fill(lambda p, q: p + q, a, b, shape)
        if both is not None:
            return both
        spread = self._spread(self._add, a, b, shape) if not (is_zero(a) or is_zero(b)) else None
        if spread is not None:
            return spread
        if (is_zero(a) or _is_const(a, 0)) and shape is not None and shape == self.shape(b) and not self.boolean(b):
            return b
        if (is_zero(b) or _is_const(b, 0)) and shape is not None and shape == self.shape(a) and not self.boolean(a):
            return a
        a, b = self._lower([a, b], shape)
        if _is_const(a) and _is_const(b):
            folded = _fold("add", a, b)
            if folded is not None:
                return folded
        if _neg_of(b) is not None:
            return self._sub(a, _neg_of(b))
        if _neg_of(a) is not None:
            return self._sub(b, _neg_of(a))
        return self.note(A.Call("add", (a, b)), shape)

    def _sub(self, a, b):
        a, b = self._unbool(a, b)
        shape = self._broadcast(a, b)
        both = self._both_fill(lambda p, q: p - q, a, b, shape)
        if both is not None:
            return both
        spread = self._spread(self._sub, a, b, shape) if not (is_zero(a) or is_zero(b)) else None
        if spread is not None:
            return spread
        if (is_zero(b) or _is_const(b, 0)) and shape is not None and shape == self.shape(a) and not self.boolean(a):
            return a
        if (is_zero(a) or _is_const(a, 0)) and shape is not None and shape == self.shape(b) and not self.boolean(b):
            return self._neg(b)
        a, b = self._lower([a, b], shape)
        if _is_const(a) and _is_const(b):
            folded = _fold("sub", a, b)
            if folded is not None:
                return folded
        if _neg_of(b) is not None:
            return self._add(a, _neg_of(b))
        return self.note(A.Call("sub", (a, b)), shape)

    def _mul(self, a, b):
        a, b = self._unbool(a, b)
        shape = self._broadcast(a, b)
        both = self._both_fill(lambda p, q: p * q, a, b, shape)
        if both is not None:
            return both
        if (is_zero(a) or is_zero(b) or _is_const(a, 0) or _is_const(b, 0)) and shape is not None:
            return _Zero(shape)
        spread = self._spread(self._mul, a, b, shape)
        if spread is not None:
            return spread
        for one, other in ((a, b), (b, a)):
            if self.boolean(other):
                continue
            if (
                (_is_const(one, 1) or isinstance(one, _Fill) and one.number and one.value == 1)
                and shape is not None
                and shape == self.shape(other)
            ):
                return other
            if (
                (_is_const(one, -1) or isinstance(one, _Fill) and one.number and one.value == -1)
                and shape is not None
                and shape == self.shape(other)
            ):
                return self._neg(other)
        a, b = self._lower([a, b], shape)
        if _is_const(a) and _is_const(b):
            folded = _fold("mul", a, b)
            if folded is not None:
                return folded
        if _neg_of(a) is not None:
            return self._neg(self._mul(_neg_of(a), b))
        if _neg_of(b) is not None:
            return self._neg(self._mul(a, _neg_of(b)))
        if _is_const(b) and not _is_const(a):  # numbers first: 2 * x
            a, b = b, a
        if _is_const(a) and _is_mul_const(b):  # 2 * (3 * x) -> 6 * x
            folded = _fold("mul", a, b.args[0])
            if folded is not None:
                return self._mul(folded, b.args[1])
        if (
            _is_const(a)
            and type(b) is A.Call
            and b.func == "mul"
            and not b.kwargs
            and not _is_const(b.args[0])
            and self.shape(b.args[0]) is not None
        ):
            # 2 * (x * y) -> 2 * x * y (reads left to right, as written)
            inner = self._mul(a, b.args[0])
            return self.note(A.Call("mul", (self.materialize(inner), b.args[1])), shape)
        return self.note(A.Call("mul", (a, b)), shape)

    def _div(self, a, b):
        a, b = self._unbool(a, b)
        shape = self._broadcast(a, b)
        if (is_zero(a) or _is_const(a, 0)) and shape is not None:
            return _Zero(shape)
        both = self._both_fill(lambda p, q: p / q, a, b, shape)
        if both is not None:
            return both
        spread = self._spread(self._div, a, b, shape)
        if spread is not None:
            return spread
        if (
            (_is_const(b, 1) or isinstance(b, _Fill) and b.number and b.value == 1)
            and shape is not None
            and shape == self.shape(a)
            and not self.boolean(a)
        ):
            return a
        a, b = self._lower([a, b], shape)
        if _is_const(a) and _is_const(b) and b.value != 0:
            folded = _fold("div", a, b)
            if folded is not None:
                return folded
        if _neg_of(a) is not None:
            return self._neg(self._div(_neg_of(a), b))
        return self.note(A.Call("div", (a, b)), shape)

    def _pow(self, a, b):
        shape = self._broadcast(a, b)
        both = self._both_fill(lambda p, q: float(p) ** q, a, b, shape)
        if both is not None and not isinstance(both.value, complex) and math.isfinite(both.value):
            return both
        if (
            (_is_const(b, 1) or isinstance(b, _Fill) and b.number and b.value == 1)
            and shape is not None
            and shape == self.shape(a)
        ):
            return a
        if (_is_const(b, 0) or is_zero(b)) and shape is not None:
            return _Fill(1, shape)
        a, b = self._lower([a, b], shape)
        if _is_const(a) and _is_const(b):
            folded = _fold("pow", a, b)
            if folded is not None:
                return folded
        return self.note(A.Call("pow", (a, b)), shape)

    def _neg(self, a):
        if isinstance(a, _Fill):
            return _Fill(-a.value, a.shape) if a.number else self.fill(self._neg(a.value), a.shape)
        if _is_const(a):
            return A.Const(-a.value) if a.value != 0 else A.Const(0)
        inner = _neg_of(a)
        if inner is not None:
            return inner
        return self.note(A.Call("neg", (a,)), self.shape(a))


def _uniform(e):
    """The number ``e`` is everywhere when it is a number or a fill of a number, else None."""
    if isinstance(e, _Fill):
        return e.value if e.number else None
    if _is_const(e):
        return e.value
    return None


def _neg_of(e):
    """``a`` when ``e`` is ``-a``, else None."""
    if type(e) is A.Call and e.func == "neg" and len(e.args) == 1 and not e.kwargs:
        return e.args[0]
    return None


def _is_mul_const(e) -> bool:
    return type(e) is A.Call and e.func == "mul" and not e.kwargs and _is_const(e.args[0])


# ----------------------------------------------------------------------------------------------
# the graph walk


def _Ref(key):
    """A placeholder for a forward text or a named gradient (a Name whose id starts with NUL, which
    no program can spell), resolved when the formula is printed."""
    return A.Name(key)


def _is_ref(e) -> bool:
    return type(e) is A.Name and e.id.startswith("\0")


class FormulaBuilder:
    """Symbolic backward over one evaluated program (see the module docstring)."""

    def __init__(self, evaluation, record, requires):
        self.b = Builder()
        self.evaluation = evaluation
        self.program = evaluation.program
        self.record = record
        self.requires = set(requires)  # input names that require grad
        self.named = {}  # id(tensor) -> program name (inputs and assigned)
        for name, tensor in evaluation.tensors.items():
            self.named.setdefault(id(tensor), name)
        for name, tensor in (evaluation.inputs or {}).items():
            self.named[id(tensor)] = name
        self.tensor_ast = {}  # id(tensor) -> (tensor, AST)
        self.array_ast = {}  # id(array) -> (tensor, AST)
        self.node_ast = {}  # node -> AST of the tensor it made
        for node, value in record:
            if not hasattr(value, "grad_fn"):
                continue
            self.tensor_ast.setdefault(id(value), (value, node))
            self.array_ast.setdefault(id(value._data), (value, node))
            if value.grad_fn is not None:
                self.node_ast.setdefault(value.grad_fn, node)
        for name, tensor in evaluation.tensors.items():
            if getattr(tensor, "grad_fn", None) is not None:
                self.node_ast[tensor.grad_fn] = A.Name(name)
        self.forward: dict = {}  # ref id -> AST (program text)
        self.forward_key: dict = {}  # id(AST) -> ref id
        self.gradients: dict = {}  # ref id -> expression
        self.incoming: dict = {}  # node -> [terms]
        self.failed: dict = {}  # node -> why its gradient has no formula
        self._rules: dict = {}
        self._alive: list = []
        names = [s.name for s in self.program.statements if isinstance(s, A.Assign)]
        self.reassigned = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(self.program.inputs)))

    # -- forward texts ----------------------------------------------------------------------------
    def _ref(self, ast, shape):
        """A reference to the program text ``ast`` (a Name stays a Name)."""
        if type(ast) is A.Name or type(ast) is A.Const:
            return self.b.note(A.Name(ast.id) if type(ast) is A.Name else ast, shape)
        if _size(ast) <= _SMALL and not _is_mask(ast):
            return self.b.note(self._copy(ast), shape)  # ``x * y``: always written in place
        key = self.forward_key.get(id(ast))
        if key is None:
            key = f"\0t{len(self.forward)}"
            self.forward[key] = ast
            self.forward_key[id(ast)] = key
            self._alive.append(ast)
        ref = self.b.note(_Ref(key), shape)
        if _is_mask(ast):
            self.b.masks.add(id(ref))
            self.b._alive.append(ref)
        return ref

    def _copy(self, ast):
        """A small program text rebuilt through the simplifier (names get their shapes)."""
        if type(ast) is A.Name:
            tensor = self.evaluation.tensors.get(ast.id)
            return self.b.note(A.Name(ast.id), tuple(tensor.shape) if hasattr(tensor, "shape") else None)
        if type(ast) is A.Call:
            return self.b.call(
                ast.func, [self._copy(a) for a in ast.args], tuple((k, self._copy(v)) for k, v in ast.kwargs)
            )
        return _strip_spans(ast)

    def tensor_text(self, value):
        """The text of a forward value: a program name, the text that made it, or a literal."""
        if not hasattr(value, "grad_fn"):
            if isinstance(value, (bool, int, float)):
                literal = self._literal(np.asarray(value))
                named = _constant_name(literal)
                return literal if named is literal else self.b.note(named, ())
            raise Unsupported(f"a {type(value).__name__} operand")
        shape = tuple(value.shape)
        name = self.named.get(id(value))
        if name is not None:
            return self.b.note(A.Name(name), shape)
        found = self.tensor_ast.get(id(value))
        if found is not None:
            ast = found[1]
            if not value.requires_grad and self._reads_grad_inputs(ast) and not _is_mask(ast):
                ast = A.Call("detach", (ast,), span=ast.span)  # computed without a graph: a constant
            return self._ref(ast, shape)
        if value.grad_fn is not None:
            return self.node_text(value.grad_fn, shape)
        return self._literal(value._data)

    def _reads_grad_inputs(self, ast):
        return any(type(n) is A.Name and n.id in self.requires for n in A.walk(ast))

    def node_text(self, node, shape=None):
        """The text of what ``node`` computed."""
        ast = self.node_ast.get(node)
        if ast is not None:
            return self._ref(ast, shape if shape is not None else self._out_shape(node))
        op = getattr(node, "op", None)
        if op is None:
            raise Unsupported(f"{node.name()} has no text")
        from . import ops

        args = [self.input_text(node, k) for k in range(len(node.nexts()))]
        if op.name == "view":
            return self.b.call("reshape", [args[0]] + [A.Const(int(s)) for s in node.params["shape"]])
        if op.name in ops.FUNCTIONS and not node.params:
            return self.b.call(op.name, args)
        raise Unsupported(f"{node.name()} (an inner step of a function) has no text")

    def _out_shape(self, node):
        out = getattr(node, "out", None)
        return tuple(out.shape) if out is not None and hasattr(out, "shape") else None

    def input_text(self, node, k):
        inputs = node.inputs if hasattr(node, "inputs") else None
        if inputs is not None:
            return self.tensor_text(inputs[k])
        child = node.nexts()[k]
        shape = node.input_shapes()[k]
        if child is None:
            raise Unsupported(f"input {k} of {node.name()} is a constant that was not kept")
        variable = getattr(child, "variable", None)
        if variable is not None:
            return self.tensor_text(variable)
        return self.node_text(child, tuple(shape))

    def _literal(self, data):
        array = np.asarray(data)
        if array.size > _LITERAL_LIMIT:
            raise Unsupported(f"a constant of {array.size} elements")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array) | np.isinf(array)):
            raise Unsupported("a NaN constant")

        def build(a):
            if a.ndim == 0:
                v = a.item()
                return A.Const(v if isinstance(v, bool) else float(v) if not float(v).is_integer() else int(v))
            return A.Array(tuple(build(a[i]) for i in range(a.shape[0])))

        ast = build(array)
        if array.ndim == 0:
            return ast
        return self.b.note(ast, array.shape)

    # -- the rules ----------------------------------------------------------------------------------
    def rule(self, node, i, gshape=None):
        """The bound, parsed rule of input ``i`` of ``node`` (``gshape``: the incoming gradient's)."""
        op = getattr(node, "op", None)
        texts = getattr(op, "rules_text", None)
        if texts is None:
            raise Unsupported(f"{node.name()} (not an op of the table) has no rule text")
        text = texts[0] if op.name == "stack" else (texts[i] if i < len(texts) else None)
        if text is None and op.name in _SCATTERS and gshape is not None:
            text = _SCATTERS[op.name](node.params, node.input_shapes(), i, tuple(gshape))
        if op.name == "matmul" and min(node.params["ndims"]) < 2:
            text = _VECTOR_MATMUL[tuple(min(n, 2) for n in node.params["ndims"])][i]
        elif op.name == "permute" and tuple(node.params["dims"]) == (-1, -2):
            text = "transpose(g, -2, -1)"
        if text is None:
            raise Unsupported(f"{node.name()} has no rule in the language")
        from . import rules
        from .language import parse

        try:
            bound = rules.bind(text, node.params)
        except ValueError as exc:
            raise Unsupported(f"{node.name()}: {exc}") from None
        key = (bound, op.name == "stack")
        tree = self._rules.get(key)
        if tree is None:
            (tree,) = parse(bound).statements
            self._rules[key] = tree
        return tree

    def apply(self, node, i, g, g_value, raw_shape, shape):
        """The term input ``i`` of ``node`` receives: its rule with the texts put in, summed down
        to the input's shape (the rule is the gradient before un-broadcasting)."""
        if is_zero(g):
            return _Zero(shape)
        tree = self.rule(node, i, tuple(g_value.shape))
        raw_shape = self._rule_shape(node, tree, g_value) or raw_shape
        values = {"g": g}

        def resolve(name):
            if name in values:
                return values[name]
            if name == "out":
                values[name] = self.node_text(node)
            elif name in _INPUTS:
                values[name] = self.input_text(node, _INPUTS[name])
            elif name == "i":
                values[name] = A.Const(i)
            elif name in node.params:
                found = self.array_ast.get(id(node.params[name]))
                if found is None:
                    raise Unsupported(f"parameter '{name}' of {node.name()} has no text")
                values[name] = self._ref(found[1], tuple(np.shape(node.params[name])))
            else:
                return None
            return values[name]

        term = self.substitute(tree, resolve)
        return self.unbroadcast(term, tuple(raw_shape), tuple(shape))

    def _rule_shape(self, node, tree, g_value):
        """The shape of the rule's value at this node (the rule run on the node's numbers)."""
        import gradcli as G

        from .language import run

        names = {n.id for n in A.walk(tree) if type(n) is A.Name} - set(A.CONSTANT_NAMES)
        values = {}
        shapes = node.input_shapes()
        inputs = node.inputs if hasattr(node, "inputs") else None
        for name in names:
            if name == "g":
                values[name] = G.tensor(np.asarray(g_value._data))
            elif name == "out":
                out = getattr(node, "out", None)
                values[name] = G.tensor(np.asarray(out) if out is not None else np.full(g_value.shape, 0.5))
            elif name in _INPUTS:
                k = _INPUTS[name]
                value = inputs[k] if inputs is not None else None
                values[name] = G.tensor(
                    np.asarray(value._data)
                    if hasattr(value, "_data")
                    else np.full(tuple(shapes[k]), 0.5)
                    if value is None
                    else value
                )
            elif name in node.params:
                values[name] = G.tensor(np.asarray(node.params[name]))
            else:
                return None
        try:
            with np.errstate(all="ignore"):
                out = run(A.Program((tree,), "", tuple(values), ()), values).output
        except Exception:  # noqa: BLE001 - the engine's own shape is used instead
            return None
        return tuple(getattr(out, "shape", ()))

    def substitute(self, tree, resolve):
        """Rebuild ``tree`` through the simplifier with names resolved (rules are short: recursion)."""
        kind = type(tree)
        if kind is A.Name:
            found = resolve(tree.id)
            return found if found is not None else tree
        if kind is A.Const:
            named = _constant_name(tree)
            return tree if named is tree else self.b.note(named, ())
        if kind is A.Call:
            args = [self.substitute(a, resolve) for a in tree.args]
            kwargs = tuple((k, self.substitute(v, resolve)) for k, v in tree.kwargs)
            return self.b.call(tree.func, args, kwargs)
        if kind is A.Array:
            return self.b.note(
                A.Array(tuple(self.b.materialize(self.substitute(e, resolve)) for e in tree.elements)), None
            )
        changes = {}
        for f in dataclasses.fields(tree):
            value = getattr(tree, f.name)
            if isinstance(value, A.Node):
                changes[f.name] = self.b.materialize(self.substitute(value, resolve))
            elif isinstance(value, tuple) and value and all(isinstance(v, A.Node) or v is None for v in value):
                changes[f.name] = tuple(
                    v if v is None else self.b.materialize(self.substitute(v, resolve)) for v in value
                )
        return dataclasses.replace(tree, **changes) if changes else tree

    def unbroadcast(self, term, raw, shape):
        if raw == shape:
            return term
        if isinstance(term, _Fill):
            factor = int(np.prod(raw)) // max(1, int(np.prod(shape)))
            if term.number:
                return _Fill(term.value * factor, shape)
            own = self.b.shape(term.value)
            lead = len(raw) - len(shape)
            padded = (1,) * (len(raw) - len(own)) + tuple(own)
            summed = [k for k in range(len(raw)) if k < lead or (shape[k - lead] == 1 and raw[k] != 1)]
            if all(padded[k] == 1 for k in summed) and len(own) <= len(raw):
                return self.b.fill(self.b._mul(A.Const(factor), self.b.value(term)), shape)
            term = self.b.materialize(term)
        lead = len(raw) - len(shape)
        if lead < 0:
            raise Unsupported("a gradient with fewer dimensions than its input")
        if lead:
            dims = A.Const(0) if lead == 1 else A.Array(tuple(A.Const(d) for d in range(lead)))
            term = self.b.note(A.Call("sum", (term,), (("dim", dims),)), raw[lead:])
        keep = [k for k in range(len(shape)) if shape[k] == 1 and raw[lead + k] != 1]
        if keep:
            dims = A.Const(keep[0]) if len(keep) == 1 else A.Array(tuple(A.Const(k) for k in keep))
            term = self.b.note(A.Call("sum", (term,), (("dim", dims), ("keepdim", A.Const(True)))), shape)
        return term

    # -- the engine's trace hook --------------------------------------------------------------------
    def seed(self, node, expression):
        self.incoming.setdefault(node, []).append(expression)

    def total(self, node, shape):
        """The gradient arriving at ``node`` (the sum of what its users sent)."""
        if node in self.failed:
            raise Unsupported(self.failed[node])
        terms = [t for t in self.incoming.get(node, []) if not is_zero(t)]
        if not terms:
            return _Zero(shape)
        # equal terms counted once: x * x + x * x + x * x -> 3 * x * x
        groups: list = []
        for t in terms:
            for group in groups:
                if not isinstance(t, _Fill) and not isinstance(group[0], _Fill) and group[0] == t:
                    group.append(t)
                    break
            else:
                groups.append([t])
        total = None
        for group in groups:
            term = group[0] if len(group) == 1 else self.b._mul(A.Const(len(group)), group[0])
            total = term if total is None else self.b._add(total, term)
        return total

    def node(self, node, g, sent):
        if node in self.failed:
            for i, _raw, _gi in sent:
                self.failed[node.nexts()[i]] = self.failed[node]
            return
        try:
            total = self.total(node, tuple(g.shape) if hasattr(g, "shape") else ())
            total = self.name_gradient(node, total, [i for i, _, _ in sent], tuple(g.shape))
            for i, raw, gi in sent:
                child = node.nexts()[i]
                term = self.apply(node, i, total, g, raw.shape, gi.shape)
                self.incoming.setdefault(child, []).append(term)
        except Unsupported as exc:
            for i, _raw, _gi in sent:
                self.failed[node.nexts()[i]] = str(exc)

    def leaf(self, node, g):
        pass

    def name_gradient(self, node, total, inputs, gshape=None):
        if isinstance(total, _Fill):
            if total.number:
                return total
            return self.b.fill(self.name_gradient(node, total.value, inputs, gshape), total.shape)
        if type(total) in (A.Name, A.Const) or type(total) is A.Array and _numbers(total):
            return total
        count = 0
        for i in inputs:
            try:
                count += sum(1 for n in A.walk(self.rule(node, i, gshape)) if type(n) is A.Name and n.id == "g")
            except Unsupported:
                pass
        if count > 1 or _size(total) > _NAME_SIZE:
            key = f"\0g{len(self.gradients)}"
            self.gradients[key] = total
            return self.b.note(_Ref(key), self.b.shape(total))
        return total

    # -- printing -----------------------------------------------------------------------------------
    def text(self, expression) -> str:
        """The formula for ``expression`` as a program: the assignments it needs, then itself."""
        if self.reassigned:
            raise Unsupported(
                f"the program assigns '{self.reassigned[0]}' more than once, and a formula names each value once"
            )
        expression = self.b.materialize(expression)
        taken = set(self.program.inputs) | set(self.program.assigned) | set(_builtin_names())
        # how often each reference is read (transitively, from the expression)
        uses: dict = {}
        stack = [expression]
        seen = set()
        while stack:
            e = stack.pop()
            for n in A.walk(e):
                if _is_ref(n):
                    uses[n.id] = uses.get(n.id, 0) + 1
                    if n.id not in seen:
                        seen.add(n.id)
                        stack.append(self.gradients[n.id] if n.id in self.gradients else self.forward[n.id])
        names: dict = {}
        counter = {"t": 0, "g": 0}

        def fresh(prefix):
            while True:
                counter[prefix] += 1
                name = f"{prefix}{counter[prefix]}"
                if name not in taken:
                    taken.add(name)
                    return name

        inline = {}
        for key, count in uses.items():
            body = self.gradients.get(key, self.forward.get(key))
            if count == 1 and (key in self.gradients or _size(body) <= _INLINE_SIZE):
                inline[key] = body
        # forward definitions in program order, then gradients in the order they were made
        forward_keys = sorted(
            (k for k in uses if k in self.forward and k not in inline),
            key=lambda k: (self.forward[k].span[1], -self.forward[k].span[0], int(k[2:])),
        )
        grad_keys = sorted((k for k in uses if k in self.gradients and k not in inline), key=lambda k: int(k[2:]))
        statements = []
        program_names = set()
        for key in forward_keys:
            names[key] = fresh("t")
        for key in grad_keys:
            names[key] = fresh("g")

        def render(e, own=None):
            return self._resolve(e, names, inline, own)

        body = [(names[k], render(self.forward[k], k)) for k in forward_keys]
        body += [(names[k], render(self.gradients[k])) for k in grad_keys]
        final = render(expression)
        for _, e in body + [(None, final)]:
            program_names.update(n.id for n in A.walk(e) if type(n) is A.Name)
        for statement in self._assignments(program_names):
            statements.append(A.to_source(statement))
        statements += [f"{name} = {A.to_source(e)}" for name, e in body]
        statements.append(A.to_source(final))
        return "; ".join(statements)

    def _resolve(self, e, names, inline, own=None):
        """``e`` with references replaced by names or inlined text, and program subexpressions that
        have names of their own replaced by those names (except ``own``, the text being defined)."""
        by_ast = {id(self.forward[k]): k for k in names if k in self.forward}

        def visit(node, root=False):
            kind = type(node)
            if kind is A.Name:
                if _is_ref(node):
                    if node.id in names:
                        return A.Name(names[node.id])
                    return visit(inline[node.id], root=True)
                return node
            if kind is A.Const:
                return node
            key = by_ast.get(id(node))
            if key is not None and not (root and key == own):
                return A.Name(names[key])
            changes = {}
            for f in dataclasses.fields(node):
                if f.name == "span":
                    continue
                value = getattr(node, f.name)
                if isinstance(value, A.Node):
                    new = visit(value)
                    if new is not value:
                        changes[f.name] = new
                elif isinstance(value, tuple) and value:
                    items, changed = [], False
                    for item in value:
                        if isinstance(item, A.Node):
                            new = visit(item)
                        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], A.Node):
                            inner = visit(item[1])
                            new = item if inner is item[1] else (item[0], inner)
                        else:
                            new = item
                        changed = changed or new is not item
                        items.append(new)
                    if changed:
                        changes[f.name] = tuple(items)
            return dataclasses.replace(node, **changes) if changes else node

        return visit(e, root=True)

    def _assignments(self, used):
        """The program's assignments that the formula reads (and those they read), in order."""
        statements = [s for s in self.program.statements if isinstance(s, A.Assign)]
        needed = set(used)
        keep = []
        for statement in reversed(statements):
            if statement.name in needed:
                keep.append(statement)
                needed.update(n.id for n in A.walk(statement.value) if type(n) is A.Name)
        return list(reversed(keep))


def _constant_name(e):
    """``pi`` and ``e`` for the numbers they are (a parameter or operand written in as a number)."""
    if type(e) is A.Const and isinstance(e.value, float) and e.value in _CONSTANT_NAMES:
        return A.Name(_CONSTANT_NAMES[e.value])
    return e


_CONSTANT_NAMES = {math.pi: "pi", math.e: "e"}


def _numbers(array) -> bool:
    return all(type(n) in (A.Array, A.Const) for n in A.walk(array))


def _strip_spans(ast):
    """A copy of a small program text without its spans (so equal texts compare equal, and the
    simplifier's notes never sit on the program's own tree)."""
    if type(ast) is A.Name:
        return A.Name(ast.id)
    if type(ast) is A.Const:
        return A.Const(ast.value)
    if type(ast) is A.Call:
        return A.Call(
            ast.func, tuple(_strip_spans(a) for a in ast.args), tuple((k, _strip_spans(v)) for k, v in ast.kwargs)
        )
    return ast


def _is_mask(ast) -> bool:
    return type(ast) is A.Call and ast.func in _COMPARISONS


def _size(e) -> int:
    count = 0
    for _ in A.walk(e):
        count += 1
        if count > 1000:
            break
    return count


def _builtin_names():
    from . import ops

    return set(ops.FUNCTIONS) | set(ops.CONSTANTS) | set(A.CONSTANT_NAMES)


# ----------------------------------------------------------------------------------------------
# entry points


def gradient_formulas(
    program, inputs, names, functions=None, dtype=None, device=None, seed=None, seed_text=None
) -> tuple[dict, list]:
    """{name: formula text or None} for d output / d name, and notes for those without one.

    ``inputs``: the input tensors (leaves; those requiring grad are the differentiable ones);
    ``seed``: the gradient of the output (a Tensor) or None for 1; ``seed_text``: how to write it.
    """
    from .autograd import engine
    from .language import run

    record: list = []
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    quiet = np.errstate(all="ignore")
    quiet.__enter__()
    try:
        evaluation = run(program, inputs, functions, dtype=dtype, device=device, record=record)
        out = evaluation.output
        requires = [n for n, t in inputs.items() if getattr(t, "requires_grad", False)]
        builder = FormulaBuilder(evaluation, record, requires)
        formulas, notes = {}, []
        targets = {}
        for name in names:
            tensor = evaluation.tensors.get(name, inputs.get(name))
            if tensor is None or not getattr(tensor, "requires_grad", False):
                continue
            targets[name] = tensor._edge() if hasattr(tensor, "_edge") else (tensor.grad_fn, 0)
        # where the output's gradient goes: its grad_fn, or (an input itself: ``x``) its leaf
        root = out._edge() if hasattr(out, "_edge") else (getattr(out, "grad_fn", None), 0)
        if not getattr(out, "requires_grad", False) or root[0] is None or not targets:
            for name in names:
                formulas[name] = None
            return formulas, notes
        import gradcli as G

        shape = tuple(out.shape)
        if seed is None:
            seed_tensor = G.tensor(np.ones(shape), dtype=str(out.dtype).removeprefix("torch."))
            start = _Fill(1, shape)
        else:
            seed_tensor = seed
            start = seed_text if seed_text is not None else builder._literal(seed._data)
            if not shape and type(start) is A.Const:
                start = _Fill(start.value, ())
            builder.b.note(start, shape)
        builder.seed(root[0], start)
        edges = list(targets.values())
        engine.execute(
            [root], [seed_tensor], retain_graph=True, create_graph=False, capture=(edges, False), trace=builder
        )
        for name in names:
            if name not in targets:
                formulas[name] = None
                continue
            node = targets[name][0]
            tensor = evaluation.tensors.get(name, inputs.get(name))
            try:
                total = builder.total(node, tuple(tensor.shape))
                formulas[name] = builder.text(total)
            except Unsupported as exc:
                formulas[name] = None
                notes.append(f"note: no formula for the gradient w.r.t. '{name}': {exc}")
        return formulas, notes
    finally:
        quiet.__exit__(None, None, None)
        sys.setrecursionlimit(limit)


def derivative_formula(program, inputs, names, functions=None, dtype=None, device=None):
    """(text, notes): the formula of d^n output / d names[0] ... d names[-1], built one order at a
    time from the formula of the order before (non-scalar results summed first, as ``diff``)."""
    from .language import parse

    current, text = program, None
    for k, name in enumerate(names):
        if k:
            current = parse(_summed(text, inputs, functions, dtype, device))
        given = {n: inputs[n] for n in current.inputs if n in inputs}
        formulas, notes = gradient_formulas(current, given, [name], functions, dtype, device)
        text = formulas.get(name)
        if text is None:
            if notes:
                return None, notes
            shape = tuple(inputs[name].shape)
            text = "0" if not shape else f"zeros({', '.join(map(str, shape))})"
    return text, []


def _summed(text, inputs, functions, dtype, device):
    """``text`` with its output summed when it is not a scalar (what ``diff`` differentiates next)."""
    from .language import parse, run

    program = parse(text)
    value = run(
        program, {k: v for k, v in inputs.items() if k in program.inputs}, functions, dtype=dtype, device=device
    ).output
    if not getattr(value, "shape", ()):
        return text
    head, _, last = text.rpartition("; ")
    return (head + "; " if head else "") + f"sum({last})"


def for_grad(run, names, seed=None) -> tuple[dict, list]:
    """``grad --formula``: (formulas, notes) for a command's run (``commands._Run``)."""
    return gradient_formulas(
        run.program, dict(run.inputs), list(names), run.functions or None, run.spec.dtype, run.spec.device, seed=seed
    )


def for_diff(run, names) -> tuple[dict, list]:
    """``diff --formula``: ({"x,x,y": text}, notes)."""
    text, notes = derivative_formula(
        run.program, dict(run.inputs), list(names), run.functions or None, run.spec.dtype, run.spec.device
    )
    return {",".join(names): text}, notes
