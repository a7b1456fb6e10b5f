"""THE op table: every primitive once — forward on arrays, derivative on Tensors.

``defop(name, fwd, bwd, rules_text, doc, ...)`` registers one primitive:

- ``fwd(xp, *arrays, **params)`` computes the result with the array module ``xp``;
- ``bwd`` gives one derivative per input (a tuple; ``None`` for an input with no gradient), or
  one callable returning such a tuple (for ``stack``/``cat``).  Each is a function of names:
  ``g`` (the incoming gradient), ``x, y, z`` (the inputs), ``xs`` (all inputs), ``out`` (the
  result), ``xshape, yshape, shapes`` (input shapes), and the op's parameters by name.  It is
  written with Tensor operations, so it is itself differentiable (Hessians, n-th derivatives).
  Derivatives never undo broadcasting (the engine does) and never assume a gradient's leading
  dimensions: ``g`` may carry batch dimensions in front (``is_grads_batched``), so dimensions
  are counted from the right (parameters ``dim`` are normalized to negative numbers).
- ``rules_text`` (``Op.rules_text``, a tuple of ``str | None``, one per input; a single string
  for a one-input op) is each derivative again as an expression of gradcli's own language: the
  vector-Jacobian product for that input *before* the engine un-broadcasts it.  The names it
  may use are ``g`` (the incoming gradient), ``out`` (the result), the inputs ``x, y, z`` by
  position and the op's parameters by their keyword names (``dim``, ``keepdim``, ``exponent``,
  ``alpha`` ...; ``dim`` holds negative numbers, a tuple or None).  ``gradcli.rules.bind``
  replaces the parameters by literals (a keyword argument whose parameter is None is dropped,
  so ``sum(g, dim=dim)`` with ``dim=None`` reads ``sum(g)``).  A variadic op (``stack``) has one
  text for every input, with ``i`` the input's position.  None: no text (the derivative cannot
  be written in the language: index scatters, ``permute``'s inverse, ``cat``'s offsets); the
  sweep (tests/test_rules.py) evaluates every text against the code's derivative.
- ``doc`` is a one-line doc, ``domain`` the interval its tests sample inputs from, ``node`` the
  grad_fn name (a string or a function of the parameters; default ``CamelCase(name) +
  "Backward0"``).

``unary(name, fwd, bwd, rules_text, doc, domain)`` is the whole row of an elementwise function
of one tensor, ``reduction(...)`` that of a reduction ``name(x, dim=None, keepdim=False)``: each
also registers the public name (in the language, as ``gradcli.NAME`` and as ``Tensor.NAME``;
see ``gradcli.public``), and the test sweep builds its cases from ``UNARY_OPS`` and
``REDUCTION_OPS``.  Other primitives are called through the PyTorch-style
functions of ``gradcli.functions``, which register their own public names.  Derivatives use
Tensor operators and methods (attached by those registrations before any derivative runs) and
the internal helpers below; this module imports nothing above the Tensor but the constructors.
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from . import backend, kernels, threads
from .autograd import engine, grad_mode
from .autograd.graph import FREED, NO_EDGE, Node, next_seq, split_edges
from .constructors import tensor
from .public import BINARY, CONSTRUCTORS, DOCS, FOLD, FUNCTIONS, LIST_FUNCTIONS, UNARY, register  # noqa: F401
from .tensor import Tensor

OPS: dict = {}  # name -> Op
CONSTANTS = {"pi": math.pi, "e": math.e}
_state = grad_mode.state
_EMPTY: dict = {}
#: set by the first in-place write (``gradcli.inplace``): from then on nodes record the versions of
#: the tensors they save, and check them before they run (before it, every version was 0)
modified = [False]


class Op:
    """One primitive of the table (see the module docstring)."""

    __slots__ = (
        "name",
        "fwd",
        "rules",
        "single",
        "sources",
        "callers",
        "rules_text",
        "doc",
        "domain",
        "node",
        "saves",
        "keeps_out",
        "nondiff",
    )

    @property
    def variadic(self) -> bool:
        """Any number of inputs (``stack``, ``cat``): one derivative, one rule text for them all."""
        return self.single

    def backward(self, node, g, inputs, needed):
        if self.single:
            return self.rules(*[_source(s, node, g, inputs) for s in self.sources])
        rules = self.rules
        if len(rules) == 2 and len(needed) == 2:  # the usual cases written out (the hot path)
            (r0, r1), (c0, c1) = rules, self.callers
            return [
                c0(r0, node, g, inputs) if needed[0] and r0 is not None else None,
                c1(r1, node, g, inputs) if needed[1] and r1 is not None else None,
            ]
        if len(rules) == 1 and len(needed) == 1:
            r0 = rules[0]
            return [self.callers[0](r0, node, g, inputs) if needed[0] and r0 is not None else None]
        return [
            call(rule, node, g, inputs) if need and rule is not None else None
            for rule, call, need in zip(rules, self.callers, needed)
        ]


def _caller(plan):
    """How to call a derivative with what it asks for: plans 0 = g, 1..3 = the inputs, a name =
    anything else (``_source``); the common shapes get a direct call."""
    if plan == (0,):
        return lambda rule, node, g, inputs: rule(g)
    if len(plan) == 2 and plan[0] == 0 and plan[1].__class__ is int:
        k = plan[1] - 1
        return lambda rule, node, g, inputs: rule(g, inputs[k])
    if len(plan) == 3 and plan[0] == 0 and plan[1].__class__ is int and plan[2].__class__ is int:
        j, k = plan[1] - 1, plan[2] - 1
        return lambda rule, node, g, inputs: rule(g, inputs[j], inputs[k])
    if plan == (0, "out"):
        return lambda rule, node, g, inputs: rule(g, _source("out", node, g, inputs))
    return lambda rule, node, g, inputs: rule(
        *[g if c == 0 else inputs[c - 1] if c.__class__ is int else _source(c, node, g, inputs) for c in plan]
    )


_INPUT = {"x": 0, "y": 1, "z": 2}
_SHAPE = {"xshape": 0, "yshape": 1, "zshape": 2}


def _source(name, node, g, inputs):
    if name == "g":
        return g
    if name in _INPUT:
        return inputs[_INPUT[name]]
    if name == "out":
        return Tensor(node.out, True, node) if _state.enabled else Tensor(node.out)
    if name in _SHAPE:
        return node.input_shapes()[_SHAPE[name]]
    if name == "shapes":
        return node.input_shapes()
    if name == "xs":
        return inputs
    return node.params[name]


def defop(name, fwd, bwd, rules_text, doc, domain=(-2.0, 2.0), node=None, nondiff=False):
    op = Op()
    op.name, op.fwd, op.doc, op.domain, op.nondiff = name, fwd, doc, domain, nondiff
    op.rules_text = (rules_text,) if rules_text is None or isinstance(rules_text, str) else tuple(rules_text)
    op.node = node or "".join(part.capitalize() for part in name.split("_")) + "Backward0"
    op.single = callable(bwd)
    if op.single:
        op.rules, op.sources = bwd, _parameters(bwd)
        names = set(op.sources)
    else:
        op.rules = tuple(bwd or ())
        op.sources = tuple(_parameters(r) if r is not None else () for r in op.rules)
        names = {n for s in op.sources for n in s}
        codes = {"g": 0, "x": 1, "y": 2, "z": 3}
        op.callers = tuple(_caller(tuple(codes.get(n, n) for n in s)) for s in op.sources)
    op.saves = bool(names & {"x", "y", "z", "xs", "out"})
    op.keeps_out = "out" in names  # else the result is not kept alive by the graph
    OPS[name] = op
    return op


def _parameters(fn) -> tuple:
    """The names a derivative asks for (read from its code: ``inspect`` is slow to import)."""
    code = fn.__code__
    return code.co_varnames[: code.co_argcount]


class OpNode(Node):
    """The backward of one call of a table op: its rule, with the inputs and output it saved."""

    # the saved inputs: one or two in slots ``a``, ``b`` (no tuple per node: fewer objects for the
    # garbage collector while a graph is built), more as a tuple in ``a``; ``n`` counts them
    # (0: nothing saved, or released).  An op that saves nothing keeps its input ``shapes``.
    __slots__ = ("op", "params", "a", "b", "n", "out", "shapes", "versions", "out_vc", "out_version", "out_of")

    def __init__(self, op, params, inputs, out, edges):
        self.op, self.params, self.out = op, params, out
        if inputs is None:
            self.n, self.a, self.b = 0, None, None
        else:
            n = self.n = len(inputs)
            if n == 2:
                self.a, self.b = inputs
            elif n == 1:
                self.a, self.b = inputs[0], None
            else:
                self.a, self.b = inputs, None
        if edges is None:
            self.next = self.nrs = None
        else:
            self.next, self.nrs = split_edges(edges)
        self.seq = next_seq()
        self.span = self.pre_hooks = self.retained = self.shapes = None

    @property
    def inputs(self):
        """The saved inputs (a tuple), or None when nothing is saved (any more)."""
        n = self.n
        if n == 2:
            return (self.a, self.b)
        if n == 1:
            return (self.a,)
        return self.a if n else None

    def name(self) -> str:
        node = self.op.node
        return node if node.__class__ is str else node(self.params)

    def nexts(self) -> tuple:
        """Where each input's gradient goes; worked out from the saved inputs on first use (one
        tuple fewer per node while the graph is built: fewer objects for the garbage collector)."""
        nexts = self.next
        if nexts is None:
            nexts, self.nrs = _edges_of(self.inputs)
            self.next = nexts
        return nexts

    def apply(self, g, mask):
        n = self.n
        if n == 2:
            inputs = (self.a, self.b)
        elif n:
            inputs = self.inputs
        elif self.op.saves:
            raise RuntimeError(FREED)
        else:
            inputs = (None,) * len(self.shapes)
        if n and modified[0]:
            _check_versions(self, inputs)
        return self.op.backward(self, g, inputs, mask)

    def input_shapes(self):
        n = self.n
        if n == 2:
            a, b = self.a, self.b
            return (a._data.shape if a.__class__ is Tensor else (), b._data.shape if b.__class__ is Tensor else ())
        if n:
            return tuple([a._data.shape if a.__class__ is Tensor else () for a in self.inputs])
        return self.shapes

    def release(self):
        if self.n:
            if self.next is None:
                self.nexts()  # next_functions outlive the saved tensors
            self.a = self.b = self.out = None
            self.n = 0


def _edges_of(inputs) -> tuple:
    """``(next, nrs)`` (``split_edges``) of the inputs' edges (``Tensor._edge``).  Two inputs, the
    usual case, are written out: a tensor with a grad_fn is that edge, anything else asks
    ``_edge`` (one call, a list and a split fewer per node on the hot path)."""
    if len(inputs) == 2:
        a, b = inputs
        if a.__class__ is Tensor:
            na = a.grad_fn
            i = a._output_nr if na is not None else 0
            if na is None and a._requires_grad:
                na, i = a._edge()
        else:
            na, i = None, 0
        if b.__class__ is Tensor:
            nb = b.grad_fn
            j = b._output_nr if nb is not None else 0
            if nb is None and b._requires_grad:
                nb, j = b._edge()
        else:
            nb, j = None, 0
        return (na, nb), ((i, j) if i or j else None)
    return split_edges([a._edge() if a.__class__ is Tensor else NO_EDGE for a in inputs])


def _check_versions(node, inputs):
    """PyTorch's error for a saved tensor written in place since it was saved."""
    versions = getattr(node, "versions", None)
    for k, t in enumerate(inputs):
        vc = getattr(t, "_vc", None) if t.__class__ is Tensor else None
        if vc is not None and vc[0] != (versions[k] if versions else 0):
            expected = versions[k] if versions else 0
            raise RuntimeError(_modified(t, t.grad_fn, vc[0], expected, t._output_nr))
    out_vc = getattr(node, "out_vc", None)
    if out_vc is not None and node.op.keeps_out and out_vc[0] != node.out_version:
        raise RuntimeError(_modified(node.out_of, node, out_vc[0], node.out_version, node.out_of._output_nr))


def _modified(t, grad_fn, version, expected, output_nr):
    kind = {"f8": "Double", "f4": "Float", "i8": "Long", "b1": "Bool"}.get(f"{t.dtype.kind}{t.dtype.itemsize}", "")
    where = ""
    if grad_fn is not None:
        name = grad_fn.name()
        where = f", which is output {output_nr} of {name[: name.rfind('Backward')] if 'Backward' in name else name},"
    return (
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[torch.{kind}Tensor {list(t.shape)}]{where} is at version {version}; expected version {expected} "
        "instead. Hint: enable anomaly detection to find the operation that failed to compute its gradient, "
        "with torch.autograd.set_detect_anomaly(True, check_nan=False)."
    )


def apply(op, inputs, params=_EMPTY):
    """Run ``op`` forward on ``inputs`` (Tensors or Python numbers); record a node when needed.

    The hot path of the engine: one pass over the inputs, no per-call allocations beyond the
    result, its node and the node's edge tuple.
    """
    n = len(inputs)
    if n == 2:  # the usual cases written out: no list made
        a, b = inputs
        arrays = (a._data if a.__class__ is Tensor else a, b._data if b.__class__ is Tensor else b)
    elif n == 1:
        a = inputs[0]
        arrays = (a._data if a.__class__ is Tensor else a,)
    else:
        arrays = [a._data if a.__class__ is Tensor else a for a in inputs]
    xp = np if backend._cupy is None else _xp(arrays)
    out = op.fwd(xp, *arrays, **params) if params else op.fwd(xp, *arrays)
    if _state.enabled and not op.nondiff:
        for a in inputs:
            if a.__class__ is Tensor and a._requires_grad:
                break
        else:
            return Tensor(out)
        if op.saves:  # where gradients go is worked out from the inputs later
            node = OpNode(op, params, inputs, out if op.keeps_out else None, None)
            if modified[0]:
                node.versions = tuple([_version(a) for a in inputs])
        else:
            node = OpNode(op, params, None, None, None)
            node.next, node.nrs = _edges_of(inputs)
            node.shapes = tuple([getattr(a, "shape", ()) for a in arrays])
        return Tensor(out, True, node)
    return Tensor(out)


def _version(t):
    vc = getattr(t, "_vc", None) if t.__class__ is Tensor else None
    return vc[0] if vc else 0


def _xp(arrays):
    for a in arrays:
        if hasattr(a, "shape"):
            return backend.xp_of(a)
    return np


def _t(value, like=None):
    """A Tensor for a Python number or array (used by fronts that need a Tensor first argument)."""
    if isinstance(value, Tensor):
        return value
    return tensor(
        value, dtype=like.dtype if like is not None else None, device=like.device if like is not None else None
    )


# ----------------------------------------------------------------------------------------------
# dimension helpers (forward side)


def _dims(dim, ndim):
    """``dim`` (int, tuple or None) as a sorted tuple of negative dims, or None for all."""
    if dim is None or ndim == 0:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        d = int(d)
        top = max(ndim, 1)
        if not -top <= d < top:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-top}, {top - 1}], but got {d})")
        out.append(d - ndim if d >= 0 and ndim else (d if ndim else -1))
    return tuple(sorted(set(out)))


def _dim(dim, ndim):
    return _dims(dim, ndim)[0] if ndim else -1


def _axes(x, dims):
    """Numpy axes for negative ``dims`` (None: every axis)."""
    return None if dims is None else (tuple(dims) if x.ndim else None)


def _tail(shape, n):
    return tuple(shape[len(shape) - n :]) if n else ()


# ----------------------------------------------------------------------------------------------
# shape plumbing: batch-agnostic (they act on the trailing ``src_ndim`` dimensions)


def _expand_fwd(xp, x, shape, src_ndim):
    nb = x.ndim - src_ndim
    lead = x.shape[:nb]
    return xp.broadcast_to(xp.reshape(x, lead + (1,) * (len(shape) - src_ndim) + x.shape[nb:]), lead + tuple(shape))


def _sum_to_fwd(xp, x, shape, src_ndim):
    nb = x.ndim - src_ndim
    extra = src_ndim - len(shape)
    axes = tuple(range(nb, nb + extra)) + tuple(
        nb + extra + i for i, s in enumerate(shape) if s == 1 and x.shape[nb + extra + i] != 1
    )
    out = xp.sum(x, axis=axes, keepdims=True) if axes else x
    return xp.reshape(out, x.shape[:nb] + tuple(shape))


def _view_fwd(xp, x, shape, src_ndim, node=None):
    nb = x.ndim - src_ndim
    return xp.reshape(x, x.shape[:nb] + tuple(shape))


defop(
    "expand",
    _expand_fwd,
    (lambda g, xshape, shape, src_ndim: sum_to(g, _tail(xshape, src_ndim), len(shape)),),
    "g",
    "broadcast x to a shape",
)
defop(
    "sum_to",
    _sum_to_fwd,
    (lambda g, xshape, shape, src_ndim: expand(g, _tail(xshape, src_ndim), len(shape)),),
    "expand_as(g, x)",
    "sum x down to a shape it was broadcast from",
    node="SumBackward1",
)
defop(
    "view",
    _view_fwd,
    (lambda g, xshape, shape, src_ndim: view(g, _tail(xshape, src_ndim), len(shape)),),
    "reshape_as(g, x)",
    "x with a new shape",
    node=lambda p: p.get("node") or "ViewBackward0",
)


def expand(x, shape, src_ndim=None):
    shape = tuple(shape)
    if src_ndim is None:
        src_ndim = x.ndim
    if _tail(x.shape, src_ndim) == shape and len(shape) == src_ndim:
        return x
    return apply(OPS["expand"], (x,), {"shape": shape, "src_ndim": src_ndim})


def sum_to(x, shape, src_ndim=None):
    """``x`` summed down to ``shape`` over its trailing ``src_ndim`` dimensions."""
    shape = tuple(shape)
    if src_ndim is None:
        src_ndim = x.ndim
    if src_ndim < len(shape):
        return expand(x, shape, src_ndim)
    return apply(OPS["sum_to"], (x,), {"shape": shape, "src_ndim": src_ndim})


def _unbroadcast(g, shape, nbatch):
    """The engine's un-broadcast: ``g`` (with ``nbatch`` leading batch dimensions) summed to ``shape``."""
    return sum_to(g, shape, g.ndim - nbatch)


def view(x, shape, src_ndim=None, node=None):
    shape = tuple(shape)
    if src_ndim is None:
        src_ndim = x.ndim
    params = {"shape": shape, "src_ndim": src_ndim}
    if node:
        params["node"] = node
    return apply(OPS["view"], (x,), params)


def _unreduce(g, xshape, dim, keepdim):
    """The gradient of a reduction over ``dim`` spread back over ``xshape``."""
    n = len(xshape)
    if not keepdim:
        kept = tuple(1 if (dim is None or i - n in dim) else s for i, s in enumerate(xshape))
        g = view(g, kept, n - (n if dim is None else len(dim)))
    return expand(g, xshape, n)


def _count(xshape, dim):
    return math.prod(xshape) if dim is None else math.prod(xshape[d] for d in dim)


# ----------------------------------------------------------------------------------------------
# elementwise: arithmetic

_SUB = threads.binary(np.subtract, operator.sub)
_MUL = threads.binary(np.multiply, operator.mul)
_ADD = threads.binary(np.add, operator.add)
engine.register(
    add=functools.partial(_ADD, np),
    unbroadcast=_unbroadcast,
    copy=lambda g: apply(OPS["copy_grad"], (g,)),
    clone=lambda g: apply(OPS["clone"], (g,)),
)
defop("add", _ADD, (lambda g: g, lambda g: g), ("g", "g"), "a + b")
defop("sub", _SUB, (lambda g: g, lambda g: -g), ("g", "-g"), "a - b")
defop("rsub", lambda xp, x, other: _SUB(xp, other, x), (lambda g: -g,), "-g", "a number minus x", node="RsubBackward1")
defop(
    "add_alpha",
    lambda xp, x, y, alpha, node: x + alpha * y,
    (lambda g: g, lambda g, alpha: g * alpha),
    ("g", "g * alpha"),
    "a + alpha * b (add and sub with alpha=)",
    node=lambda p: p["node"],
)
defop("mul", _MUL, (lambda g, y: g * y, lambda g, x: g * x), ("g * y", "g * x"), "a * b")
defop(
    "div",
    threads.binary(np.divide, operator.truediv),
    (lambda g, y: g / y, lambda g, x, y: -g * x / (y * y)),
    ("g / y", "-g * x / (y * y)"),
    "a / b",
    domain=((-2.0, 2.0), (0.5, 2.0)),
)
defop("neg", threads.unary("negative"), (lambda g: -g,), "-g", "-x")


def _pow_fwd(xp, x, exponent):
    if exponent == 2:
        return _MUL(xp, x, x)  # numpy's float power is several times slower
    if exponent == 1:
        return x + 0.0
    return x**exponent


def _pow_bwd(g, x, exponent):
    if exponent == 0:
        return g * 0.0
    if exponent == 1:
        return g
    if exponent == 2:
        return g * (2.0 * x)
    return g * (exponent * x ** (exponent - 1))


def _rpow_bwd(g, x, out, base):
    if base == 0:
        return g * _where(x >= 0.0, 0.0, out * -math.inf)
    return g * (out * (math.log(base) if base > 0 else math.nan))


defop("pow", _pow_fwd, (_pow_bwd,), "g * exponent * x ^ (exponent - 1)", "x ^ p for a number p", domain=(0.5, 2.0))
defop(
    "pow_tensor",
    lambda xp, x, y: x**y,
    (
        lambda g, x, y: _where(y == 0.0, 0.0, g * (y * x ** (y - 1))),
        lambda g, x, y, out: g * _where((x == 0.0) * (y >= 0.0), 0.0, out * x.log()),
    ),
    ("where(y == 0, 0, g * (y * x ^ (y - 1)))", "g * where((x == 0) * (y >= 0), 0, out * log(x))"),
    "a ^ b",
    domain=((0.5, 2.0), (-2.0, 2.0)),
    node="PowBackward1",
)
defop(
    "rpow",
    lambda xp, x, base: base**x,
    (_rpow_bwd,),
    "g * (out * log(base))",
    "a number to the power x",
    node="PowBackward2",
)
defop(
    "maximum",
    lambda xp, x, y: xp.maximum(x, y),
    (
        lambda g, x, y: _where(x < y, 0.0, _where(x == y, g * 0.5, g)),
        lambda g, x, y: _where(x > y, 0.0, _where(x == y, g * 0.5, g)),
    ),  # nan: both get it, as PyTorch's
    ("where(x < y, 0, where(x == y, g * 0.5, g))", "where(x > y, 0, where(x == y, g * 0.5, g))"),
    "elementwise maximum(a, b)",
)
defop(
    "minimum",
    lambda xp, x, y: xp.minimum(x, y),
    (
        lambda g, x, y: _where(x > y, 0.0, _where(x == y, g * 0.5, g)),
        lambda g, x, y: _where(x < y, 0.0, _where(x == y, g * 0.5, g)),
    ),
    ("where(x > y, 0, where(x == y, g * 0.5, g))", "where(x < y, 0, where(x == y, g * 0.5, g))"),
    "elementwise minimum(a, b)",
)
defop(
    "atan2",
    lambda xp, x, y: xp.arctan2(x, y),
    (lambda g, x, y: g * y * _recip0(x * x + y * y), lambda g, x, y: g * -x * _recip0(x * x + y * y)),
    (
        "g * y * where(x * x + y * y == 0, 0, 1 / (x * x + y * y))",
        "g * -x * where(x * x + y * y == 0, 0, 1 / (x * x + y * y))",
    ),
    "atan2(y, x): the angle of the point (x, y)",
    domain=(0.3, 2.0),
)


def _recip0(d):
    """1 / d, with 0 where d = 0 (PyTorch's masked reciprocal in atan2's derivative)."""
    return _where(d == 0.0, 0.0, d.reciprocal())


# ----------------------------------------------------------------------------------------------
# elementwise: functions of one tensor

#: the elementwise functions of one tensor, in table order (the sweep builds its cases from it)
UNARY_OPS: list = []


def unary(name, fwd, bwd, rules_text, doc, domain=(-2.0, 2.0), node=None):
    """The row of an elementwise function of one tensor: the primitive, and its public name."""
    op = defop(name, fwd, (bwd,), rules_text, doc, domain, node)

    def front(input):
        return apply(op, (input if input.__class__ is Tensor else _t(input),))

    front.__name__, front.__doc__ = name, doc
    register(name, front, doc, method=True)
    UNARY_OPS.append(name)
    return op


unary("abs", threads.unary("abs"), lambda g, x: g * x.sign(), "g * sign(x)", "absolute value", (0.2, 2.0))
unary(
    "sign",
    lambda xp, x: xp.nan_to_num(xp.sign(x), nan=0.0),
    lambda g: g * 0.0,
    "g * 0",
    "sign of x (-1, 0 or 1; 0 for nan, as PyTorch)",
    (0.2, 2.0),
)
unary("sqrt", threads.unary("sqrt"), lambda g, out: g / (2.0 * out), "g / (2 * out)", "square root", (0.2, 3.0))
unary(
    "rsqrt",
    lambda xp, x: 1.0 / xp.sqrt(x),
    lambda g, out: -0.5 * g * out * out * out,
    "-0.5 * g * out * out * out",
    "1 / sqrt(x)",
    (0.2, 3.0),
)
unary("reciprocal", lambda xp, x: 1.0 / x, lambda g, out: -g * out * out, "-g * out * out", "1 / x", (0.3, 2.0))
unary("exp", threads.unary("exp"), lambda g, out: g * out, "g * out", "e to the x", (-2.0, 2.0))
unary(
    "exp2", threads.unary("exp2"), lambda g, out: g * out * math.log(2.0), "g * out * log(2)", "2 to the x", (-2.0, 2.0)
)
unary("expm1", threads.unary("expm1"), lambda g, out: g * (out + 1.0), "g * (out + 1)", "exp(x) - 1", (-2.0, 2.0))
unary("log", threads.unary("log"), lambda g, x: g / x, "g / x", "natural logarithm", (0.2, 3.0))
unary(
    "log2",
    threads.unary("log2"),
    lambda g, x: g / (x * math.log(2.0)),
    "g / (x * log(2))",
    "base-2 logarithm",
    (0.2, 3.0),
)
unary(
    "log10",
    threads.unary("log10"),
    lambda g, x: g / (x * math.log(10.0)),
    "g / (x * log(10))",
    "base-10 logarithm",
    (0.2, 3.0),
)
unary(
    "log1p",
    threads.unary("log1p"),
    lambda g, x: g / (x + 1.0),
    "g / (x + 1)",
    "log(1 + x)",
    (-0.5, 2.0),
    node="Log1PBackward0",
)
unary("sin", threads.unary("sin"), lambda g, x: g * x.cos(), "g * cos(x)", "sine", (-3.0, 3.0))
unary("cos", threads.unary("cos"), lambda g, x: -g * x.sin(), "-g * sin(x)", "cosine", (-3.0, 3.0))
unary("tan", threads.unary("tan"), lambda g, out: g * (out * out + 1.0), "g * (out * out + 1)", "tangent", (-1.2, 1.2))
unary(
    "asin",
    threads.unary("arcsin"),
    lambda g, x: g / (1.0 - x * x).sqrt(),
    "g / sqrt(1 - x * x)",
    "inverse sine",
    (-0.8, 0.8),
)
unary(
    "acos",
    threads.unary("arccos"),
    lambda g, x: -g / (1.0 - x * x).sqrt(),
    "-g / sqrt(1 - x * x)",
    "inverse cosine",
    (-0.8, 0.8),
)
unary(
    "atan", threads.unary("arctan"), lambda g, x: g / (x * x + 1.0), "g / (x * x + 1)", "inverse tangent", (-2.0, 2.0)
)
unary("sinh", threads.unary("sinh"), lambda g, x: g * x.cosh(), "g * cosh(x)", "hyperbolic sine", (-2.0, 2.0))
unary("cosh", threads.unary("cosh"), lambda g, x: g * x.sinh(), "g * sinh(x)", "hyperbolic cosine", (-2.0, 2.0))
unary(
    "tanh",
    threads.unary("tanh"),
    lambda g, out: g * (1.0 - out * out),
    "g * (1 - out * out)",
    "hyperbolic tangent",
    (-2.0, 2.0),
)
unary(
    "asinh",
    threads.unary("arcsinh"),
    lambda g, x: g / (x * x + 1.0).sqrt(),
    "g / sqrt(x * x + 1)",
    "inverse hyperbolic sine",
    (-2.0, 2.0),
)
unary(
    "acosh",
    threads.unary("arccosh"),
    lambda g, x: g / (x * x - 1.0).sqrt(),
    "g / sqrt(x * x - 1)",
    "inverse hyperbolic cosine",
    (1.2, 3.0),
)
unary(
    "atanh",
    threads.unary("arctanh"),
    lambda g, x: g / (1.0 - x * x),
    "g / (1 - x * x)",
    "inverse hyperbolic tangent",
    (-0.8, 0.8),
)
unary(
    "sigmoid",
    kernels.sigmoid,
    lambda g, out: g * out * (1.0 - out),
    "g * out * (1 - out)",
    "logistic sigmoid 1 / (1 + exp(-x))",
    (-3.0, 3.0),
)
unary(
    "relu",
    lambda xp, x: xp.maximum(x, 0.0) if x.dtype.kind == "f" else x,
    lambda g, out: _where(out <= 0.0, 0.0, g),
    "where(out <= 0, 0, g)",
    "max(x, 0)",
    (-2.0, 2.0),
)
unary(
    "softplus",
    lambda xp, x: xp.where(x > 20.0, x, xp.log1p(xp.exp(xp.minimum(x, 20.0)))),
    lambda g, x: g * _softplus_slope(x),
    "g * sigmoid(x)",
    "log(1 + exp(x)) (linear above 20)",
    (-3.0, 3.0),
)
unary(
    "erf",
    kernels.erf,
    lambda g, x: g * (2.0 / math.sqrt(math.pi)) * (-(x * x)).exp(),
    "g * 2 / sqrt(pi) * exp(-(x * x))",
    "the error function",
    (-2.0, 2.0),
)

defop(
    "softplus_slope",
    kernels.sigmoid,
    (lambda g, x, out: g * out * (1.0 - out),),
    "g * out * (1 - out)",
    "sigmoid, as the slope of softplus",
    node="SigmoidBackward0",
)


def _softplus_slope(x):
    return apply(OPS["softplus_slope"], (x,))


# ----------------------------------------------------------------------------------------------
# comparisons and selection (masks carry no gradient)

for _name, _f in [
    ("lt", operator.lt),
    ("le", operator.le),
    ("gt", operator.gt),
    ("ge", operator.ge),
    ("eq", operator.eq),
    ("ne", operator.ne),
]:
    defop(
        _name,
        (lambda f: lambda xp, x, y: xp.asarray(f(x, y)))(_f),
        (),
        (),
        f"comparison a {_name} b: a mask of booleans",
        nondiff=True,
    )

defop(
    "where",
    lambda xp, x, y, cond: xp.where(cond, x, y),
    (lambda g, cond: _where(cond, g, 0.0), lambda g, cond: _where(cond, 0.0, g)),
    ("where(cond, g, 0)", "where(cond, 0, g)"),
    "where(cond, a, b): a where cond holds, else b",
)
defop(
    "masked_fill",
    lambda xp, x, value, cond, scalar: xp.where(cond, xp.asarray(value, dtype=x.dtype), x),
    (lambda g, cond: _where(cond, 0.0, g), lambda g, cond: _where(cond, g, 0.0)),
    ("where(cond, 0, g)", "where(cond, g, 0)"),
    "x with value where the mask cond holds (masked_fill)",
    node=lambda p: "MaskedFillBackward0" if p["scalar"] else "MaskedFillBackward1",
)
defop(
    "clamp",
    lambda xp, x, min, max: xp.clip(x, min, max),
    (lambda g, x, min, max: g * _between(x, min, max),),
    "g * (clamp(x, min=min, max=max) == x)",
    "clamp(x, min=, max=): x limited to [min, max]",
    node="ClampBackward1",
)
defop(
    "between",
    lambda xp, x, min, max: (x >= (-np.inf if min is None else min)) & (x <= (np.inf if max is None else max)),
    (),
    (),
    "mask min <= x <= max",
    nondiff=True,
)


def _between(x, lo, hi):
    return apply(OPS["between"], (x,), {"min": lo, "max": hi})


def _where(cond, a, b):
    """``a`` where ``cond`` (a mask, or a Tensor of one) holds, else ``b``."""
    return apply(OPS["where"], (a, b), {"cond": cond._data if cond.__class__ is Tensor else cond})


# ----------------------------------------------------------------------------------------------
# reductions

#: the reductions over ``dim`` (None, an int or a tuple) with ``keepdim``, in table order
REDUCTION_OPS: list = []


def reduction(name, fwd, bwd, rules_text, doc, domain=(-2.0, 2.0), node=None):
    """The row of a reduction ``name(x, dim=None, keepdim=False)``: the primitive, and its public
    name (``fwd(xp, x, dim, keepdim)`` gets ``dim`` as a tuple of negative dimensions or None)."""
    op = defop(name, fwd, (bwd,), rules_text, doc, domain, node)

    def front(input, dim=None, keepdim=False):
        input = input if input.__class__ is Tensor else _t(input)
        return apply(op, (input,), {"dim": _dims(dim, input.ndim), "keepdim": bool(keepdim)})

    front.__name__, front.__doc__ = name, doc
    register(name, front, doc, method=True)
    REDUCTION_OPS.append(name)
    return op


def _reduce_name(base):
    return lambda p: f"{base}Backward{0 if p['dim'] is None else 1}"


reduction(
    "sum",
    lambda xp, x, dim, keepdim: xp.sum(x, axis=_axes(x, dim), keepdims=keepdim),
    lambda g, xshape, dim, keepdim: _unreduce(g, xshape, dim, keepdim),
    "unreduce(g, x, dim=dim, keepdim=keepdim)",
    "sum(x, dim=None, keepdim=False)",
    node=_reduce_name("Sum"),
)
reduction(
    "mean",
    lambda xp, x, dim, keepdim: xp.mean(x, axis=_axes(x, dim), keepdims=keepdim),
    lambda g, xshape, dim, keepdim: _unreduce(g, xshape, dim, keepdim) / _count(xshape, dim),
    "unreduce(g, x, dim=dim, keepdim=keepdim) * numel(out) / numel(x)",
    "mean(x, dim=None, keepdim=False)",
    node=_reduce_name("Mean"),
)
reduction(
    "prod",
    lambda xp, x, dim, keepdim: xp.prod(x, axis=_axes(x, dim), keepdims=keepdim),
    lambda g, x, out, xshape, dim, keepdim: _prod_bwd(g, x, out, xshape, dim, keepdim),
    "unreduce(g, x, dim=dim, keepdim=keepdim) * (unreduce(out, x, dim=dim, keepdim=keepdim) / x)",
    "prod(x, dim=None, keepdim=False)",
    domain=(0.5, 1.5),
    node=_reduce_name("Prod"),
)


def _prod_bwd(g, x, out, xshape, dim, keepdim):
    """PyTorch's prod_backward: ``grad * (out / x)``; where the input has a zero, the product of the
    other elements instead (exclusive products from both ends: no division by zero)."""
    g = _unreduce(g, xshape, dim, keepdim)
    if not bool((x._data == 0).any()):  # PyTorch picks the formula by the values too
        return g * (_unreduce(out, xshape, dim, keepdim) / x)
    n = len(xshape)
    reduced = tuple(range(n)) if dim is None else tuple(d + n for d in dim)
    order = tuple(i for i in range(n) if i not in reduced) + reduced
    kept = [xshape[i] for i in order[: n - len(reduced)]]
    moved = x.permute(*order) if order != tuple(range(n)) else x
    others = apply(OPS["prod_others"], (moved.reshape(kept + [-1]),))
    others = others.reshape([xshape[i] for i in order])
    if order != tuple(range(n)):
        others = others.permute(*np.argsort(order).tolist())
    return g * others


def _prod_others_fwd(xp, x):
    ones = xp.ones(x.shape[:-1] + (1,), dtype=x.dtype)
    left = xp.cumprod(xp.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
    right = xp.cumprod(xp.concatenate([ones, xp.flip(x, -1)[..., :-1]], axis=-1), axis=-1)
    return left * xp.flip(right, -1)


def _prod_others_bwd(g, x):
    eye = np.eye(x.shape[-1], dtype=bool)
    rows = _where(eye, 1.0, x.unsqueeze(-2))  # row i: x with x_i replaced by 1
    pairs = _where(eye, 0.0, apply(OPS["prod_others"], (rows,)))  # [i, k]: product without x_i, x_k
    return (g.unsqueeze(-1) * pairs).sum(dim=-2)


defop(
    "prod_others",
    _prod_others_fwd,
    (_prod_others_bwd,),
    None,
    "the product of the other elements along the last dimension (prod's derivative at zeros)",
    node="CumprodBackward0",
)


def _spread(g, x, out, xshape, dim, keepdim):
    return _share(g, x, out, xshape, dim, keepdim, False)


def _spread_nan(g, x, out, xshape, dim, keepdim):
    return _share(g, x, out, xshape, dim, keepdim, True)


def _share(g, x, out, xshape, dim, keepdim, nan):
    """Gradient of max/min: shared evenly among the elements that attain it (``nan``: a nan
    result shares it among the nans, as PyTorch's max() and min())."""
    out = _unreduce(out, xshape, dim, keepdim)
    hit = _where(out != out, x != x, x == out) if nan else x == out
    count = _unreduce(
        hit.sum(dim=None if dim is None else tuple(d + len(xshape) for d in dim), keepdim=True), xshape, dim, True
    )
    count = _to(count, dtype=x.dtype)  # a count of booleans is an integer: keep float32 float32
    return _unreduce(g, xshape, dim, keepdim) * hit / count


_HIT = "(x == unreduce(out, x, dim=dim, keepdim=keepdim))"
_NAN_HIT = (
    "where(unreduce(out, x, dim=dim, keepdim=keepdim) != unreduce(out, x, dim=dim, keepdim=keepdim), "
    "x != x, x == unreduce(out, x, dim=dim, keepdim=keepdim))"
)
_SPREAD_TEXT, _SPREAD_NAN_TEXT = (
    f"unreduce(g, x, dim=dim, keepdim=keepdim) * {hit} / sum({hit}, dim=dim, keepdim=True)" for hit in (_HIT, _NAN_HIT)
)
for _name, _f, _doc, _node in [
    ("amax", "amax", "largest value, amax(x, dim=None, keepdim=False)", lambda p: "AmaxBackward0"),
    ("amin", "amin", "smallest value, amin(x, dim=None, keepdim=False)", lambda p: "AminBackward0"),
    (
        "max",
        "amax",
        "max(x) reduces; max(x, dim=) gives the values",
        lambda p: f"MaxBackward{1 if p['dim'] is None else 0}",
    ),
    (
        "min",
        "amin",
        "min(x) reduces; min(x, dim=) gives the values",
        lambda p: f"MinBackward{1 if p['dim'] is None else 0}",
    ),
]:
    reduction(
        _name,
        (lambda f: lambda xp, x, dim, keepdim: getattr(xp, f)(x, axis=_axes(x, dim), keepdims=keepdim))(_f),
        _spread if _f == _name else _spread_nan,
        _SPREAD_TEXT if _f == _name else _SPREAD_NAN_TEXT,
        _doc,
        node=_node,
    )


def _norm_fwd(xp, x, p, dim, keepdim):
    a = xp.abs(x)
    if p == 2:
        return xp.sqrt(xp.sum(a * a, axis=_axes(x, dim), keepdims=keepdim))
    if p == 1:
        return xp.sum(a, axis=_axes(x, dim), keepdims=keepdim)
    if p == math.inf:
        return xp.amax(a, axis=_axes(x, dim), keepdims=keepdim)
    return xp.sum(a**p, axis=_axes(x, dim), keepdims=keepdim) ** (1.0 / p)


def _norm_bwd(g, x, out, xshape, p, dim, keepdim):
    """PyTorch's norm_backward: 0 where the norm is 0."""
    if p == 1:
        return _unreduce(g, xshape, dim, keepdim) * x.sign()
    if p == math.inf:
        return _share(g, x.abs(), out, xshape, dim, keepdim, True) * x.sign()
    g, out = _unreduce(g, xshape, dim, keepdim), _unreduce(out, xshape, dim, keepdim)
    if p == 2:
        return g * _where(out == 0.0, 0.0, x / out)
    if p < 1:
        return x.sign() * _where(x == 0.0, 0.0, x.abs() ** (p - 1)) * g * out ** (1 - p)
    scale = _where(out == 0.0, 0.0, g / out ** (p - 1))
    return (x.sign() * x.abs() ** (p - 1) if p < 2 else x * x.abs() ** (p - 2)) * scale


defop(
    "norm",
    _norm_fwd,
    (_norm_bwd,),
    "unreduce(where(out == 0, 0, g / out ^ (p - 1)), x, dim=dim, keepdim=keepdim) * x * abs(x) ^ (p - 2)",
    "norm(x, p=2, dim=None, keepdim=False): the vector p-norm",
    domain=(0.3, 2.0),
    node="LinalgVectorNormBackward0",
)


def _logsumexp_fwd(xp, x, dim, keepdim):
    m = xp.amax(x, axis=_axes(x, dim), keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=_axes(x, dim), keepdims=True)) + m
    return out if keepdim else xp.squeeze(out, axis=_axes(x, dim))


reduction(
    "logsumexp",
    _logsumexp_fwd,
    lambda g, x, out, xshape, dim, keepdim: (
        _unreduce(g, xshape, dim, keepdim) * (x - _unreduce(out, xshape, dim, keepdim)).exp()
    ),
    "unreduce(g, x, dim=dim, keepdim=keepdim) * exp(x - unreduce(out, x, dim=dim, keepdim=keepdim))",
    "logsumexp(x, dim, keepdim=False): log(sum(exp(x))) computed stably",
)


def _var_fwd(xp, x, dim, keepdim, correction):
    return xp.var(x, axis=_axes(x, dim), keepdims=keepdim, ddof=correction)


def _centered(x, dim):
    return x - x.mean(dim=dim, keepdim=True)


def _var_bwd(g, x, xshape, dim, keepdim, correction):
    """PyTorch's var_backward: ``2 / (n - correction) * grad * (x - mean)``; with no degree of
    freedom left over the whole input, nan where x is the mean and inf elsewhere."""
    g = _unreduce(g, xshape, dim, keepdim)
    dof = _count(xshape, dim) - correction
    if dof <= 0 and dim is None:
        return g * _where(x == x.mean(), math.nan, math.inf)
    return (2.0 / dof if dof else math.inf) * g * _centered(x, dim)


defop(
    "var",
    _var_fwd,
    (_var_bwd,),
    "unreduce(g, x, dim=dim, keepdim=keepdim) * (x - mean(x, dim=dim, keepdim=True)) * 2"
    " / (numel(x) / numel(out) - correction)",
    "var(x, dim=None, keepdim=False): unbiased variance",
)
defop(
    "std",
    lambda xp, x, dim, keepdim, correction: xp.sqrt(_var_fwd(xp, x, dim, keepdim, correction)),
    (
        lambda g, x, out, xshape, dim, keepdim, correction: _var_bwd(
            _where(out == 0.0, 0.0, g / (out * 2.0)), x, xshape, dim, keepdim, correction
        ),
    ),
    "unreduce(where(out == 0, 0, g / out), x, dim=dim, keepdim=keepdim) * (x - mean(x, dim=dim, keepdim=True))"
    " / (numel(x) / numel(out) - correction)",
    "std(x, dim=None, keepdim=False): unbiased standard deviation",
)


def _softmax_fwd(xp, x, dim):
    e = xp.exp(x - xp.amax(x, axis=dim, keepdims=True))
    return e / xp.sum(e, axis=dim, keepdims=True)


def _log_softmax_fwd(xp, x, dim):
    shifted = x - xp.amax(x, axis=dim, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=dim, keepdims=True))


defop(
    "softmax",
    _softmax_fwd,
    (lambda g, out, dim: out * (g - (g * out).sum(dim=dim, keepdim=True)),),
    "out * (g - sum(g * out, dim=dim, keepdim=True))",
    "softmax(x, dim=-1): exp(x) / sum(exp(x))",
)
defop(
    "log_softmax",
    _log_softmax_fwd,
    (lambda g, out, dim: g - out.exp() * g.sum(dim=dim, keepdim=True),),
    "g - exp(out) * sum(g, dim=dim, keepdim=True)",
    "log_softmax(x, dim=-1): log(softmax(x)) computed stably",
)

# ----------------------------------------------------------------------------------------------
# linear algebra


def _matmul_name(p):
    a, b = p["ndims"]
    if a == 1 and b == 1:
        return "DotBackward0"
    if a == 2 and b == 1:
        return "MvBackward0"
    if a == 1 and b == 2:
        return "SqueezeBackward4"
    if a == 2 and b > 2:  # torch: (b.mT @ a.mT).mT made contiguous
        return "CloneBackward0"
    if a == 2 and b == 2:
        return "MmBackward0"
    return "UnsafeViewBackward0"


def _matmul_dx(g, x, y):
    if y.ndim == 1:
        return g.unsqueeze(-1) * y
    if x.ndim == 1:  # g: (p) or a batch (B, p), as rows
        return g.matmul(mT(y)) if y.ndim == 2 else g.unsqueeze(-2).matmul(mT(y)).squeeze(-2)
    return g.matmul(mT(y))


def _matmul_dy(g, x, y):
    if x.ndim == 1:
        return x.unsqueeze(-1) * g.unsqueeze(-2) if y.ndim > 1 else g.unsqueeze(-1) * x
    if y.ndim == 1:  # g: (n) or a batch (B, n), as rows
        return g.matmul(x) if x.ndim == 2 else g.unsqueeze(-2).matmul(x).squeeze(-2)
    return mT(x).matmul(g)


def _matmul_fwd(xp, x, y):
    """``x @ y``; a stack of matrices times one matrix as one 2-D product (one BLAS call, where
    numpy would loop over the stack)."""
    if x.ndim > 2 and y.ndim == 2:
        return xp.reshape(xp.reshape(x, (-1, x.shape[-1])) @ y, x.shape[:-1] + (y.shape[-1],))
    if y.ndim > 2 and x.ndim == 2:
        k, m = y.shape[-2:]
        flat = xp.reshape(xp.moveaxis(y, -2, 0), (k, -1))
        return xp.moveaxis(xp.reshape(x @ flat, (x.shape[0],) + y.shape[:-2] + (m,)), 0, -2)
    return xp.matmul(x, y)


defop(
    "matmul",
    lambda xp, x, y, ndims: _matmul_fwd(xp, x, y),
    (_matmul_dx, _matmul_dy),
    ("g @ transpose(y, -2, -1)", "transpose(x, -2, -1) @ g"),
    "matrix product a @ b (dot, mv, mm and batched)",
    node=_matmul_name,
)
defop(
    "transpose",
    lambda xp, x, dim0, dim1: xp.swapaxes(x, dim0, dim1),
    (lambda g, dim0, dim1: g.transpose(dim0, dim1),),
    "transpose(g, dim0, dim1)",
    "transpose(x, d0, d1): swap two dimensions",
)
defop(
    "permute",
    lambda xp, x, dims, node: xp.transpose(x, tuple(range(x.ndim - len(dims))) + tuple(x.ndim + d for d in dims)),
    (
        lambda g, dims, node: _permute(
            g, tuple(sorted(range(-len(dims), 0), key=lambda i: dims[i])), "PermuteBackward0"
        ),
    ),
    None,
    "reorder dimensions",
    node=lambda p: p["node"],
)
defop(
    "trace",
    lambda xp, x: xp.trace(x, axis1=-2, axis2=-1),
    (lambda g, xshape: _unreduce(g, xshape, (-2, -1), False) * _eye_like(g, xshape),),
    "g * diag(diag(ones_like(x)))",
    "trace(x): sum of the diagonal",
)
defop(
    "det",
    lambda xp, x: xp.linalg.det(x),
    (lambda g, x, out, xshape: view(g * out, tuple(xshape[:-2]) + (1, 1), len(xshape) - 2) * mT(x.inv()),),
    "unsqueeze(unsqueeze(g * out, -1), -1) * transpose(inv(x), -2, -1)",
    "det(x): determinant",
    domain=(-1.0, 1.0),
    node="LinalgDetBackward0",
)
defop(
    "inv",
    lambda xp, x: xp.linalg.inv(x),
    (lambda g, out: -mT(out).matmul(g).matmul(mT(out)),),
    "-(transpose(out, -2, -1) @ g @ transpose(out, -2, -1))",
    "inv(x): matrix inverse",
    domain=(-1.0, 1.0),
    node="LinalgInvExBackward0",
)
defop(
    "diagonal",
    lambda xp, x: xp.diagonal(x, axis1=-2, axis2=-1).copy(),  # a copy, as torch.diag's
    (lambda g, xshape: _diag_scatter(g, _tail(xshape, 2)),),
    "diag(g)",
    "diagonal of a matrix",
    node="DiagonalBackward0_copy",
)
defop(
    "diag_scatter",
    lambda xp, x, shape: _diag_scatter_fwd(xp, x, shape),
    (lambda g: _diagonal(g),),
    "diag(g)",
    "a vector placed on a matrix diagonal",
    node="DiagEmbedBackward0",
)


def _diag_scatter_fwd(xp, x, shape):
    out = xp.zeros(x.shape[:-1] + tuple(shape), dtype=x.dtype)
    k = min(shape)
    i = xp.arange(k)
    out[..., i, i] = x
    return out


def _diag_scatter(x, shape):
    return apply(OPS["diag_scatter"], (x,), {"shape": tuple(shape)})


def _diagonal(x):
    return apply(OPS["diagonal"], (x,))


def _eye_like(g, xshape):
    return tensor(np.eye(xshape[-2], xshape[-1]), dtype=g.dtype, device=g.device)


def _permute(x, dims, node):
    return apply(OPS["permute"], (x,), {"dims": tuple(dims), "node": node})


def mT(x):
    """The last two dimensions swapped."""
    return apply(OPS["transpose"], (x,), {"dim0": -2, "dim1": -1})


# ----------------------------------------------------------------------------------------------
# shape: select, slice, stack, cat


def _index(dim, item):
    return (Ellipsis, item) + (slice(None),) * (-dim - 1)


defop(
    "select",
    lambda xp, x, dim, index: x[_index(dim, index)],
    (lambda g, xshape, dim, index: _select_back(g, _tail(xshape, -dim), dim, index),),
    None,
    "x[index] along one dimension",
)
defop(
    "select_back",
    lambda xp, x, shape, dim, index: _scatter(xp, x, shape, _index(dim, index), 1 - len(shape)),
    (lambda g, dim, index: _select(g, dim, index),),
    "select(g, dim, index)",
    "gradient of a selection",
    node="SelectBackwardBackward0",
)
defop(
    "slice",
    lambda xp, x, dim, start, stop, step: x[_index(dim, slice(start, stop, step))],
    (lambda g, xshape, dim, start, stop, step: _slice_back(g, _tail(xshape, -dim), dim, start, stop, step),),
    None,
    "x[start:stop:step] along one dimension",
)
defop(
    "slice_back",
    lambda xp, x, shape, dim, start, stop, step: _scatter(
        xp, x, shape, _index(dim, slice(start, stop, step)), -len(shape)
    ),
    (lambda g, dim, start, stop, step: _slice(g, dim, start, stop, step),),
    None,
    "gradient of a slice",
    node="SliceBackwardBackward0",
)


def _scatter(xp, x, shape, key, own):
    """zeros of ``shape`` (trailing) with ``x`` placed at ``key``; ``own`` = -(x's own ndim)."""
    nb = x.ndim + own
    out = xp.zeros(x.shape[:nb] + tuple(shape), dtype=x.dtype)
    out[key] = x
    return out


def _select(x, dim, index):
    """``x[..., index, ...]``; ``dim`` negative, ``index`` in range."""
    return apply(OPS["select"], (x,), {"dim": dim, "index": index})


def _select_back(g, shape, dim, index):
    return apply(OPS["select_back"], (g,), {"shape": tuple(shape), "dim": dim, "index": index})


def _slice(x, dim, start, stop, step):
    return apply(OPS["slice"], (x,), {"dim": dim, "start": start, "stop": stop, "step": step})


def _slice_back(g, shape, dim, start, stop, step):
    return apply(
        OPS["slice_back"], (g,), {"shape": tuple(shape), "dim": dim, "start": start, "stop": stop, "step": step}
    )


# gather and scatter by flat position: advanced indexing (``x[mask]``, ``x[idx]``), ``index_put``
# (``x[mask] = v``) and the base of an in-place write through a view (PyTorch's ``CopySlices``).
# ``pos`` holds, for each element of the result (take) or of the written region (put), its flat
# position in the trailing ``src_ndim`` dimensions of ``x``.


def _take_fwd(xp, x, pos, src_ndim, node):
    nb = x.ndim - src_ndim
    return xp.reshape(x, x.shape[:nb] + (-1,))[(Ellipsis, pos)]


def _take_back_fwd(xp, g, pos, shape):
    nb = g.ndim - pos.ndim
    out = xp.zeros(g.shape[:nb] + (math.prod(shape),), dtype=g.dtype)
    (np.add.at if xp is np else xp.add.at)(out, (Ellipsis, pos), g)  # positions may repeat
    return xp.reshape(out, g.shape[:nb] + tuple(shape))


def _put_fwd(xp, x, src, pos, node):
    out = xp.array(x, copy=True)  # node: (grad_fn name, x's own ndim)
    nb = out.ndim - node[1]
    flat = xp.reshape(out, out.shape[:nb] + (-1,))
    flat[(Ellipsis, pos)] = src
    return out


defop(
    "take",
    _take_fwd,
    (lambda g, xshape, pos, src_ndim: _take_back(g, pos, _tail(xshape, src_ndim)),),
    None,
    "x's elements at flat positions (advanced indexing)",
    node=lambda p: p["node"],
)
defop(
    "take_back",
    _take_back_fwd,
    (lambda g, pos, shape: take(g, pos, len(shape)),),
    None,
    "gradient of take: summed into zeros at the positions",
    node="IndexBackwardBackward0",
)
defop(
    "put",
    _put_fwd,
    (lambda g, pos, node: _put(g, 0.0, pos, node[1], "IndexPutBackward0"), lambda g, pos, node: take(g, pos, node[1])),
    None,
    "x with src written at flat positions (index_put, CopySlices)",
    node=lambda p: p["node"][0],
)


defop(
    "fill",
    lambda xp, x, value, node: xp.array(xp.broadcast_to(xp.asarray(value, dtype=x.dtype), x.shape)),
    (lambda g: g * 0.0, lambda g: g),
    ("g * 0", "g"),
    "x's shape filled with value (zero_, fill_, copy_)",
    node=lambda p: p["node"],
)


def fill(x, value, node):
    return apply(OPS["fill"], (x, value), {"node": node})


def take(x, pos, src_ndim=None, node="IndexBackward0"):
    return apply(OPS["take"], (x,), {"pos": pos, "src_ndim": x.ndim if src_ndim is None else src_ndim, "node": node})


def _take_back(g, pos, shape):
    return apply(OPS["take_back"], (g,), {"pos": pos, "shape": tuple(shape)})


def _put(x, src, pos, src_ndim, name):
    return apply(OPS["put"], (x, src), {"pos": pos, "node": (name, src_ndim)})


defop(
    "stack",
    lambda xp, *xs, dim: xp.stack(xs, axis=dim),
    lambda g, xs, dim: tuple(_select(g, dim, i) for i in range(len(xs))),
    "select(g, dim, i)",
    "stack([a, b, ...], dim=0): join along a new dimension",
)


def _cat_bwd(g, shapes, dim):
    starts = np.cumsum([0] + [s[dim] for s in shapes])
    return tuple(_slice(g, dim, int(a), int(b), 1) for a, b in zip(starts[:-1], starts[1:]))


defop(
    "cat",
    lambda xp, *xs, dim: xp.concatenate(xs, axis=dim),
    _cat_bwd,
    None,
    "cat([a, b, ...], dim=0): join along a dimension",
)
defop("clone", lambda xp, x: x.copy(), (lambda g: g,), "g", "a copy of x")
defop(
    "copy_grad",
    lambda xp, x: x.copy(),
    (lambda g: g,),
    "g",
    "the copy a leaf's first .grad is under create_graph (PyTorch's AccumulateGrad)",
    node="CopyBackwards",
)
defop(
    "to",
    lambda xp, x, device, dtype, xdevice, xdtype: _convert(x, device, dtype),
    (lambda g, xdevice, xdtype: _to(g, device=xdevice, dtype=xdtype),),
    "g",
    "x on another device or with another dtype",
    node="ToCopyBackward0",
)


def _convert(x, device, dtype):
    xp = backend.get_xp(device)
    if xp is np:
        x = backend.to_numpy(x)
    return xp.asarray(x, dtype=dtype)


def _to(x, device=None, dtype=None):
    device = device or x.device
    dtype = backend.as_dtype(dtype) if dtype is not None else x.dtype
    if device == x.device and dtype == x.dtype:
        return x
    params = {"device": device, "dtype": dtype, "xdevice": x.device, "xdtype": x.dtype}
    if dtype.kind not in "fc":  # integers and booleans carry no gradient
        with grad_mode.no_grad():
            return apply(OPS["to"], (x,), params)
    return apply(OPS["to"], (x,), params)
