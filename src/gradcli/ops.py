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

The public functions (``FUNCTIONS``: the language's names, ``gradcli.NAME``, ``Tensor.NAME``)
are thin fronts that turn PyTorch-style arguments into inputs and parameters.
"""
from __future__ import annotations

import builtins
import functools
import math
import operator

import numpy as np

from . import backend
from .autograd import engine, grad_mode
from .autograd.graph import FREED, NO_EDGE, Node, next_seq, split_edges
from .tensor import Tensor

OPS: dict = {}          # name -> Op
FUNCTIONS: dict = {}    # language / API name -> callable
DOCS: dict = {}         # language name -> one-line doc
CONSTANTS = {"pi": math.pi, "e": math.e}
_state = grad_mode.state
_EMPTY: dict = {}


class Op:
    """One primitive of the table (see the module docstring)."""

    __slots__ = ("name", "fwd", "rules", "single", "sources", "plans", "callers", "rules_text", "doc", "domain",
                 "node", "saves", "keeps_out", "nondiff")

    def backward(self, node, g, inputs, needed):
        if self.single:
            return self.rules(*[_source(s, node, g, inputs) for s in self.sources])
        return [call(rule, node, g, inputs) if need and rule is not None else None
                for rule, call, need in zip(self.rules, self.callers, needed)]


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
    return lambda rule, node, g, inputs: rule(*[g if c == 0 else inputs[c - 1] if c.__class__ is int
                                                else _source(c, node, g, inputs) for c in plan])


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
        op.plans = tuple(tuple(codes.get(n, n) for n in s) for s in op.sources)
        op.callers = tuple(_caller(plan) for plan in op.plans)
    op.saves = bool(names & {"x", "y", "z", "xs", "out"})
    op.keeps_out = "out" in names          # else the result is not kept alive by the graph
    OPS[name] = op
    return op


def _parameters(fn) -> tuple:
    """The names a derivative asks for (read from its code: ``inspect`` is slow to import)."""
    code = fn.__code__
    return code.co_varnames[:code.co_argcount]


class OpNode(Node):
    """The backward of one call of a table op: its rule, with the inputs and output it saved."""

    # the saved inputs: one or two in slots ``a``, ``b`` (no tuple per node: fewer objects for the
    # garbage collector while a graph is built), more as a tuple in ``a``; ``n`` counts them
    # (0: nothing saved, or released).  An op that saves nothing keeps its input ``shapes``.
    __slots__ = ("op", "params", "a", "b", "n", "out", "shapes")

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
            nexts, self.nrs = split_edges([a._edge() if a.__class__ is Tensor else NO_EDGE for a in self.inputs])
            self.next = nexts
        return nexts

    def apply(self, g, mask):
        inputs = self.inputs
        if inputs is None:
            if self.op.saves:
                raise RuntimeError(FREED)
            inputs = (None,) * len(self.shapes)
        return self.op.backward(self, g, inputs, mask)

    def input_shapes(self):
        inputs = self.inputs
        if inputs is None:
            return self.shapes
        return tuple([a.data.shape if a.__class__ is Tensor else () for a in inputs])

    def release(self):
        if self.n:
            self.nexts()                 # next_functions outlive the saved tensors
            self.a = self.b = self.out = None
            self.n = 0


def apply(op, inputs, params=_EMPTY):
    """Run ``op`` forward on ``inputs`` (Tensors or Python numbers); record a node when needed.

    The hot path of the engine: one pass over the inputs, no per-call allocations beyond the
    result, its node and the node's edge tuple.
    """
    arrays = [a.data if a.__class__ is Tensor else a for a in inputs]
    out = op.fwd(np if backend._cupy is None else _xp(arrays), *arrays, **params)
    if _state.enabled and not op.nondiff:
        for a in inputs:
            if a.__class__ is Tensor and a._requires_grad:
                break
        else:
            return Tensor(out)
        if op.saves:                    # where gradients go is worked out from the inputs later
            node = OpNode(op, params, inputs, out if op.keeps_out else None, None)
        else:
            node = OpNode(op, params, None, None,
                          [a._edge() if a.__class__ is Tensor else NO_EDGE for a in inputs])
            node.shapes = tuple([getattr(a, "shape", ()) for a in arrays])
        return Tensor(out, True, node)
    return Tensor(out)


def _xp(arrays):
    for a in arrays:
        if hasattr(a, "shape"):
            return backend.xp_of(a)
    return np


def _t(value, like=None):
    """A Tensor for a Python number or array (used by fronts that need a Tensor first argument)."""
    if isinstance(value, Tensor):
        return value
    return tensor(value, dtype=like.dtype if like is not None else None,
                  device=like.device if like is not None else None)


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
        top = builtins.max(ndim, 1)
        if not -top <= d < top:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-top}, {top - 1}], "
                             f"but got {d})")
        out.append(d - ndim if d >= 0 and ndim else (d if ndim else -1))
    return tuple(sorted(set(out)))


def _dim(dim, ndim):
    return _dims(dim, ndim)[0] if ndim else -1


def _axes(x, dims):
    """Numpy axes for negative ``dims`` (None: every axis)."""
    return None if dims is None else (tuple(dims) if x.ndim else None)


def _tail(shape, n):
    return tuple(shape[len(shape) - n:]) if n else ()


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
        nb + extra + i for i, s in enumerate(shape) if s == 1 and x.shape[nb + extra + i] != 1)
    out = xp.sum(x, axis=axes, keepdims=True) if axes else x
    return xp.reshape(out, x.shape[:nb] + tuple(shape))


def _view_fwd(xp, x, shape, src_ndim, node=None):
    nb = x.ndim - src_ndim
    return xp.reshape(x, x.shape[:nb] + tuple(shape))


defop("expand", _expand_fwd,
      (lambda g, xshape, shape, src_ndim: sum_to(g, _tail(xshape, src_ndim), len(shape)),),
      "g", "broadcast x to a shape")
defop("sum_to", _sum_to_fwd,
      (lambda g, xshape, shape, src_ndim: expand(g, _tail(xshape, src_ndim), len(shape)),),
      "expand_as(g, x)", "sum x down to a shape it was broadcast from", node="SumBackward1")
defop("view", _view_fwd,
      (lambda g, xshape, shape, src_ndim: view(g, _tail(xshape, src_ndim), len(shape)),),
      "reshape_as(g, x)", "x with a new shape", node=lambda p: p.get("node") or "ViewBackward0")


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
# elementwise forwards: numpy's ufuncs release the GIL, so a large elementwise op is split into
# row blocks computed by a pool of threads (one block in the calling thread).  Results are
# identical to one call; small arrays and numpy scalars take the plain path.

_nd = np.ndarray
_BIG = 1 << 17
_pool: list = []


def _threads() -> int:
    import os
    try:
        return builtins.max(1, int(os.environ.get("GRADCLI_NUM_THREADS", "0")) or os.cpu_count() or 1)
    except ValueError:
        return os.cpu_count() or 1


def _parallel(ufunc, args):
    """``ufunc(*args)`` on numpy arrays, in row blocks on several threads when worth it."""
    if not _pool:
        _pool.append(_threads())
        if _pool[0] > 1:
            from concurrent.futures import ThreadPoolExecutor
            _pool.append(ThreadPoolExecutor(_pool[0] - 1, thread_name_prefix="gradcli"))
    k = _pool[0]
    shape = np.broadcast_shapes(*[a.shape if a.__class__ is _nd else () for a in args])
    if k < 2 or not shape or shape[0] < 2 * k:
        return ufunc(*args)
    out = np.empty(shape, np.result_type(*args))
    views = [np.broadcast_to(a, shape) if a.__class__ is _nd else a for a in args]
    edges = [shape[0] * i // k for i in range(k + 1)]
    errors = np.geterr()

    def block(lo, hi):
        with np.errstate(**errors):
            ufunc(*[v[lo:hi] if v.__class__ is _nd else v for v in views], out=out[lo:hi])

    futures = [_pool[1].submit(block, edges[i], edges[i + 1]) for i in range(1, k)]
    block(edges[0], edges[1])
    for f in futures:
        f.result()
    return out


def _binary(ufunc, operator_fn):
    """Forward of an arithmetic operator: the Python operator (fast on scalars), or threads."""
    def fwd(xp, x, y):
        if (x.__class__ is _nd and x.size >= _BIG) or (y.__class__ is _nd and y.size >= _BIG):
            return _parallel(ufunc, (x, y))
        return operator_fn(x, y)
    return fwd


def _unary(name):
    """Forward of ``xp.<name>``, on threads for large numpy arrays."""
    ufunc = getattr(np, name)

    def fwd(xp, x):
        if xp is np:
            if x.__class__ is _nd and x.size >= _BIG:
                return _parallel(ufunc, (x,))
            return ufunc(x)
        return getattr(xp, name)(x)
    return fwd


# ----------------------------------------------------------------------------------------------
# elementwise: arithmetic

_SUB = _binary(np.subtract, operator.sub)
_MUL = _binary(np.multiply, operator.mul)
ADD = _binary(np.add, operator.add)
engine.register(add=functools.partial(ADD, np), unbroadcast=_unbroadcast)
defop("add", _binary(np.add, operator.add), (lambda g: g, lambda g: g), ("g", "g"), "a + b")
defop("sub", _binary(np.subtract, operator.sub), (lambda g: g, lambda g: -g), ("g", "-g"), "a - b")
defop("rsub", lambda xp, x, other: _SUB(xp, other, x), (lambda g: -g,), "-g", "a number minus x",
      node="RsubBackward1")
defop("add_alpha", lambda xp, x, y, alpha, node: x + alpha * y, (lambda g: g, lambda g, alpha: g * alpha),
      ("g", "g * alpha"), "a + alpha * b (add and sub with alpha=)", node=lambda p: p["node"])
defop("mul", _binary(np.multiply, operator.mul), (lambda g, y: g * y, lambda g, x: g * x), ("g * y", "g * x"), "a * b")
defop("div", _binary(np.divide, operator.truediv), (lambda g, y: g / y, lambda g, x, y: -g * x / (y * y)),
      ("g / y", "-g * x / (y * y)"), "a / b", domain=((-2.0, 2.0), (0.5, 2.0)))
defop("neg", _unary("negative"), (lambda g: -g,), "-g", "-x")
def _pow_fwd(xp, x, exponent):
    if exponent == 2:
        return _MUL(xp, x, x)           # numpy's float power is several times slower
    if exponent == 1:
        return x + 0.0
    return x ** exponent


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
        return g * where(x >= 0.0, 0.0, out * -math.inf)
    return g * (out * (math.log(base) if base > 0 else math.nan))


defop("pow", _pow_fwd, (_pow_bwd,),
      "g * exponent * x ^ (exponent - 1)", "x ^ p for a number p", domain=(0.5, 2.0))
defop("pow_tensor", lambda xp, x, y: x ** y,
      (lambda g, x, y: where(y == 0.0, 0.0, g * (y * x ** (y - 1))),
       lambda g, x, y, out: g * where((x == 0.0) * (y >= 0.0), 0.0, out * log(x))),
      ("where(y == 0, 0, g * (y * x ^ (y - 1)))", "g * where((x == 0) * (y >= 0), 0, out * log(x))"), "a ^ b",
      domain=((0.5, 2.0), (-2.0, 2.0)), node="PowBackward1")
defop("rpow", lambda xp, x, base: base ** x, (_rpow_bwd,),
      "g * (out * log(base))", "a number to the power x", node="PowBackward2")
defop("maximum", lambda xp, x, y: xp.maximum(x, y),
      (lambda g, x, y: g * (x > y) + g * (x == y) * 0.5, lambda g, x, y: g * (y > x) + g * (x == y) * 0.5),
      ("g * (x > y) + g * (x == y) * 0.5", "g * (y > x) + g * (x == y) * 0.5"), "elementwise maximum(a, b)")
defop("minimum", lambda xp, x, y: xp.minimum(x, y),
      (lambda g, x, y: g * (x < y) + g * (x == y) * 0.5, lambda g, x, y: g * (y < x) + g * (x == y) * 0.5),
      ("g * (x < y) + g * (x == y) * 0.5", "g * (y < x) + g * (x == y) * 0.5"), "elementwise minimum(a, b)")
defop("atan2", lambda xp, x, y: xp.arctan2(x, y),
      (lambda g, x, y: g * y * _recip0(x * x + y * y), lambda g, x, y: g * -x * _recip0(x * x + y * y)),
      ("g * y * where(x * x + y * y == 0, 0, 1 / (x * x + y * y))",
       "g * -x * where(x * x + y * y == 0, 0, 1 / (x * x + y * y))"), "atan2(y, x): the angle of the point (x, y)",
      domain=(0.3, 2.0))



def _recip0(d):
    """1 / d, with 0 where d = 0 (PyTorch's masked reciprocal in atan2's derivative)."""
    return where(d == 0.0, 0.0, reciprocal(d))

# ----------------------------------------------------------------------------------------------
# elementwise: functions of one tensor

_UNARY = [
    # name, forward, derivative, rule text, doc, domain, grad_fn name
    ("abs", _unary("abs"), lambda g, x: g * sign(x), "g * sign(x)", "absolute value", (0.2, 2.0), None),
    ("sign", _unary("sign"), lambda g: g * 0.0, "g * 0", "sign of x (-1, 0 or 1)", (0.2, 2.0), None),
    ("sqrt", _unary("sqrt"), lambda g, out: g / (2.0 * out), "g / (2 * out)", "square root",
     (0.2, 3.0), None),
    ("rsqrt", lambda xp, x: 1.0 / xp.sqrt(x), lambda g, out: -0.5 * g * out * out * out, "-0.5 * g * out * out * out",
     "1 / sqrt(x)", (0.2, 3.0), None),
    ("reciprocal", lambda xp, x: 1.0 / x, lambda g, out: -g * out * out, "-g * out * out", "1 / x",
     (0.3, 2.0), None),
    ("exp", _unary("exp"), lambda g, out: g * out, "g * out", "e to the x", (-2.0, 2.0), None),
    ("exp2", _unary("exp2"), lambda g, out: g * out * math.log(2.0), "g * out * log(2)",
     "2 to the x", (-2.0, 2.0), None),
    ("expm1", _unary("expm1"), lambda g, out: g * (out + 1.0), "g * (out + 1)", "exp(x) - 1",
     (-2.0, 2.0), None),
    ("log", _unary("log"), lambda g, x: g / x, "g / x", "natural logarithm", (0.2, 3.0), None),
    ("log2", _unary("log2"), lambda g, x: g / (x * math.log(2.0)), "g / (x * log(2))",
     "base-2 logarithm", (0.2, 3.0), None),
    ("log10", _unary("log10"), lambda g, x: g / (x * math.log(10.0)), "g / (x * log(10))",
     "base-10 logarithm", (0.2, 3.0), None),
    ("log1p", _unary("log1p"), lambda g, x: g / (x + 1.0), "g / (x + 1)", "log(1 + x)",
     (-0.5, 2.0), "Log1PBackward0"),
    ("sin", _unary("sin"), lambda g, x: g * cos(x), "g * cos(x)", "sine", (-3.0, 3.0), None),
    ("cos", _unary("cos"), lambda g, x: -g * sin(x), "-g * sin(x)", "cosine", (-3.0, 3.0), None),
    ("tan", _unary("tan"), lambda g, out: g * (out * out + 1.0), "g * (out * out + 1)", "tangent",
     (-1.2, 1.2), None),
    ("asin", _unary("arcsin"), lambda g, x: g / sqrt(1.0 - x * x), "g / sqrt(1 - x * x)",
     "inverse sine", (-0.8, 0.8), None),
    ("acos", _unary("arccos"), lambda g, x: -g / sqrt(1.0 - x * x), "-g / sqrt(1 - x * x)",
     "inverse cosine", (-0.8, 0.8), None),
    ("atan", _unary("arctan"), lambda g, x: g / (x * x + 1.0), "g / (x * x + 1)", "inverse tangent",
     (-2.0, 2.0), None),
    ("sinh", _unary("sinh"), lambda g, x: g * cosh(x), "g * cosh(x)", "hyperbolic sine",
     (-2.0, 2.0), None),
    ("cosh", _unary("cosh"), lambda g, x: g * sinh(x), "g * sinh(x)", "hyperbolic cosine",
     (-2.0, 2.0), None),
    ("tanh", _unary("tanh"), lambda g, out: g * (1.0 - out * out), "g * (1 - out * out)",
     "hyperbolic tangent", (-2.0, 2.0), None),
    ("asinh", _unary("arcsinh"), lambda g, x: g / sqrt(x * x + 1.0), "g / sqrt(x * x + 1)",
     "inverse hyperbolic sine", (-2.0, 2.0), None),
    ("acosh", _unary("arccosh"), lambda g, x: g / sqrt(x * x - 1.0), "g / sqrt(x * x - 1)",
     "inverse hyperbolic cosine", (1.2, 3.0), None),
    ("atanh", _unary("arctanh"), lambda g, x: g / (1.0 - x * x), "g / (1 - x * x)",
     "inverse hyperbolic tangent", (-0.8, 0.8), None),
    ("sigmoid", lambda xp, x: _sigmoid(xp, x), lambda g, out: g * out * (1.0 - out), "g * out * (1 - out)",
     "logistic sigmoid 1 / (1 + exp(-x))", (-3.0, 3.0), None),
    ("relu", lambda xp, x: xp.maximum(x, 0.0) if x.dtype.kind == "f" else x, lambda g, out: g * (out > 0.0),
     "g * (out > 0)", "max(x, 0)", (-2.0, 2.0), None),
    ("softplus", lambda xp, x: xp.where(x > 20.0, x, xp.log1p(xp.exp(xp.minimum(x, 20.0)))),
     lambda g, x: g * _softplus_slope(x), "g * sigmoid(x)", "log(1 + exp(x)) (linear above 20)",
     (-3.0, 3.0), None),
    ("erf", lambda xp, x: _erf(xp, x), lambda g, x: g * (2.0 / math.sqrt(math.pi)) * exp(-(x * x)),
     "g * 2 / sqrt(pi) * exp(-(x * x))", "the error function", (-2.0, 2.0), None),
]


def _sigmoid(xp, x):
    # exp of a non-positive number only: no overflow for large |x|
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _erf(xp, x):
    if xp is not np:
        import cupyx.scipy.special as special  # noqa: PLC0415 - only on the GPU path
        return special.erf(x)
    return _erf_numpy(np.asarray(x, dtype=np.float64)).astype(x.dtype)[()]


def _erf_numpy(x):
    """erf to double precision without scipy: series below 2.5, continued fraction above."""
    out = np.empty_like(x)
    a = np.abs(x)
    small = a < 2.5
    s = x[small]
    term = s.copy()
    total = s.copy()
    s2 = s * s
    for k in range(1, 60):
        term = -term * s2 / k
        total = total + term / (2 * k + 1)
    out[small] = 2.0 / math.sqrt(math.pi) * total
    big = a[~small]
    # erfc(z) by Lentz's continued fraction
    f = np.zeros_like(big)
    for k in range(60, 0, -1):
        f = (k / 2.0) / (big + f)
    erfc = np.exp(-big * big) / math.sqrt(math.pi) / (big + f)
    out[~small] = np.sign(x[~small]) * (1.0 - erfc)
    return out


for _name, _fwd, _bwd, _rule, _doc, _domain, _node in _UNARY:
    defop(_name, _fwd, (_bwd,), _rule, _doc, _domain, _node)

defop("softplus_slope", lambda xp, x: _sigmoid(xp, x), (lambda g, x, out: g * out * (1.0 - out),),
      "g * out * (1 - out)", "sigmoid, as the slope of softplus", node="SigmoidBackward0")


def _softplus_slope(x):
    return apply(OPS["softplus_slope"], (x,))


# ----------------------------------------------------------------------------------------------
# comparisons and selection (masks carry no gradient)

for _name, _f in [("lt", operator.lt), ("le", operator.le), ("gt", operator.gt), ("ge", operator.ge),
                  ("eq", operator.eq), ("ne", operator.ne)]:
    defop(_name, (lambda f: lambda xp, x, y: xp.asarray(f(x, y)))(_f), (), (),
          f"comparison a {_name} b: a mask of booleans", nondiff=True)

defop("where", lambda xp, x, y, cond: xp.where(cond, x, y),
      (lambda g, cond: where(cond, g, 0.0), lambda g, cond: where(cond, 0.0, g)),
      ("where(cond, g, 0)", "where(cond, 0, g)"), "where(cond, a, b): a where cond holds, else b")
defop("clamp", lambda xp, x, min, max: xp.clip(x, min, max),
      (lambda g, x, min, max: g * _between(x, min, max),), "g * (clamp(x, min=min, max=max) == x)",
      "clamp(x, min=, max=): x limited to [min, max]", node="ClampBackward1")
defop("between", lambda xp, x, min, max: (x >= (-np.inf if min is None else min)) & (x <= (np.inf if max is None else max)),
      (), (), "mask min <= x <= max", nondiff=True)


def _between(x, lo, hi):
    return apply(OPS["between"], (x,), {"min": lo, "max": hi})


def where(condition, input, other):
    """``input`` where ``condition`` holds, else ``other`` (PyTorch's ``torch.where``)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    if isinstance(input, Tensor) or isinstance(other, Tensor):
        return apply(OPS["where"], (input, other), {"cond": cond})
    return tensor(np.where(cond, input, other))


def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return apply(OPS["clamp"], (input,), {"min": _number(min), "max": _number(max)})


def _number(v):
    if isinstance(v, Tensor):
        return v.item()
    return v


# ----------------------------------------------------------------------------------------------
# reductions

def _reduce_name(base):
    return lambda p: f"{base}Backward{0 if p['dim'] is None else 1}"


defop("sum", lambda xp, x, dim, keepdim: xp.sum(x, axis=_axes(x, dim), keepdims=keepdim),
      (lambda g, xshape, dim, keepdim: _unreduce(g, xshape, dim, keepdim),),
      "unreduce(g, x, dim=dim, keepdim=keepdim)", "sum(x, dim=None, keepdim=False)", node=_reduce_name("Sum"))
defop("mean", lambda xp, x, dim, keepdim: xp.mean(x, axis=_axes(x, dim), keepdims=keepdim),
      (lambda g, xshape, dim, keepdim: _unreduce(g, xshape, dim, keepdim) / _count(xshape, dim),),
      "unreduce(g, x, dim=dim, keepdim=keepdim) * numel(out) / numel(x)", "mean(x, dim=None, keepdim=False)", node=_reduce_name("Mean"))
defop("prod", lambda xp, x, dim, keepdim: xp.prod(x, axis=_axes(x, dim), keepdims=keepdim),
      (lambda g, x, out, xshape, dim, keepdim: _prod_bwd(g, x, out, xshape, dim, keepdim),),
      "unreduce(g, x, dim=dim, keepdim=keepdim) * (unreduce(out, x, dim=dim, keepdim=keepdim) / x)",
      "prod(x, dim=None, keepdim=False)", domain=(0.5, 1.5),
      node=_reduce_name("Prod"))


def _prod_bwd(g, x, out, xshape, dim, keepdim):
    """PyTorch's prod_backward: ``grad * (out / x)``; where the input has a zero, the product of the
    other elements instead (exclusive products from both ends: no division by zero)."""
    g = _unreduce(g, xshape, dim, keepdim)
    if not bool((x.data == 0).any()):       # PyTorch picks the formula by the values too
        return g * (_unreduce(out, xshape, dim, keepdim) / x)
    n = len(xshape)
    reduced = tuple(range(n)) if dim is None else tuple(d + n for d in dim)
    order = tuple(i for i in range(n) if i not in reduced) + reduced
    kept = [xshape[i] for i in order[:n - len(reduced)]]
    moved = permute(x, *order) if order != tuple(range(n)) else x
    others = apply(OPS["prod_others"], (reshape(moved, kept + [-1]),))
    others = reshape(others, [xshape[i] for i in order])
    if order != tuple(range(n)):
        others = permute(others, *np.argsort(order).tolist())
    return g * others


def _prod_others_fwd(xp, x):
    ones = xp.ones(x.shape[:-1] + (1,), dtype=x.dtype)
    left = xp.cumprod(xp.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)
    right = xp.cumprod(xp.concatenate([ones, xp.flip(x, -1)[..., :-1]], axis=-1), axis=-1)
    return left * xp.flip(right, -1)


def _prod_others_bwd(g, x):
    eye = np.eye(x.shape[-1], dtype=bool)
    rows = where(eye, 1.0, unsqueeze(x, -2))        # row i: x with x_i replaced by 1
    pairs = where(eye, 0.0, apply(OPS["prod_others"], (rows,)))   # [i, k]: product without x_i, x_k
    return sum(unsqueeze(g, -1) * pairs, dim=-2)


defop("prod_others", _prod_others_fwd, (_prod_others_bwd,), None,
      "the product of the other elements along the last dimension (prod's derivative at zeros)",
      node="CumprodBackward0")


def _spread(g, x, out, xshape, dim, keepdim):
    return _share(g, x, out, xshape, dim, keepdim, False)


def _spread_nan(g, x, out, xshape, dim, keepdim):
    return _share(g, x, out, xshape, dim, keepdim, True)


def _share(g, x, out, xshape, dim, keepdim, nan):
    """Gradient of max/min: shared evenly among the elements that attain it (``nan``: a nan
    result shares it among the nans, as PyTorch's max() and min())."""
    out = _unreduce(out, xshape, dim, keepdim)
    hit = where(out != out, x != x, x == out) if nan else x == out
    count = _unreduce(sum(hit, dim=None if dim is None else tuple(d + len(xshape) for d in dim), keepdim=True),
                      xshape, dim, True)
    count = _to(count, dtype=x.dtype)   # a count of booleans is an integer: keep float32 float32
    return _unreduce(g, xshape, dim, keepdim) * hit / count


_HIT = "(x == unreduce(out, x, dim=dim, keepdim=keepdim))"
_NAN_HIT = ("where(unreduce(out, x, dim=dim, keepdim=keepdim) != unreduce(out, x, dim=dim, keepdim=keepdim), "
            "x != x, x == unreduce(out, x, dim=dim, keepdim=keepdim))")
_SPREAD_TEXT, _SPREAD_NAN_TEXT = (f"unreduce(g, x, dim=dim, keepdim=keepdim) * {hit} / sum({hit}, dim=dim, keepdim=True)"
                                  for hit in (_HIT, _NAN_HIT))
for _name, _f, _doc, _node in [
        ("amax", "amax", "largest value, amax(x, dim=None, keepdim=False)", lambda p: "AmaxBackward0"),
        ("amin", "amin", "smallest value, amin(x, dim=None, keepdim=False)", lambda p: "AminBackward0"),
        ("max", "amax", "max(x) reduces; max(x, dim=) gives the values", lambda p: f"MaxBackward{1 if p['dim'] is None else 0}"),
        ("min", "amin", "min(x) reduces; min(x, dim=) gives the values", lambda p: f"MinBackward{1 if p['dim'] is None else 0}")]:
    defop(_name, (lambda f: lambda xp, x, dim, keepdim: getattr(xp, f)(x, axis=_axes(x, dim), keepdims=keepdim))(_f),
          (_spread if _f == _name else _spread_nan,), _SPREAD_TEXT if _f == _name else _SPREAD_NAN_TEXT, _doc,
          node=_node)


def _norm_fwd(xp, x, p, dim, keepdim):
    a = xp.abs(x)
    if p == 2:
        return xp.sqrt(xp.sum(a * a, axis=_axes(x, dim), keepdims=keepdim))
    if p == 1:
        return xp.sum(a, axis=_axes(x, dim), keepdims=keepdim)
    if p == math.inf:
        return xp.amax(a, axis=_axes(x, dim), keepdims=keepdim)
    return xp.sum(a ** p, axis=_axes(x, dim), keepdims=keepdim) ** (1.0 / p)


def _norm_bwd(g, x, out, xshape, p, dim, keepdim):
    """PyTorch's norm_backward: 0 where the norm is 0."""
    if p == 1:
        return _unreduce(g, xshape, dim, keepdim) * sign(x)
    if p == math.inf:
        return _spread(g, abs(x), out, xshape, dim, keepdim) * sign(x)
    g, out = _unreduce(g, xshape, dim, keepdim), _unreduce(out, xshape, dim, keepdim)
    if p == 2:
        return g * where(out == 0.0, 0.0, x / out)
    if p < 1:
        return sign(x) * where(x == 0.0, 0.0, abs(x) ** (p - 1)) * g * out ** (1 - p)
    scale = where(out == 0.0, 0.0, g / out ** (p - 1))
    return (sign(x) * abs(x) ** (p - 1) if p < 2 else x * abs(x) ** (p - 2)) * scale


defop("norm", _norm_fwd, (_norm_bwd,),
      "unreduce(where(out == 0, 0, g / out ^ (p - 1)), x, dim=dim, keepdim=keepdim) * x * abs(x) ^ (p - 2)",
      "norm(x, p=2, dim=None, keepdim=False): the vector p-norm", domain=(0.3, 2.0),
      node="LinalgVectorNormBackward0")


def _logsumexp_fwd(xp, x, dim, keepdim):
    m = xp.amax(x, axis=_axes(x, dim), keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=_axes(x, dim), keepdims=True)) + m
    return out if keepdim else xp.squeeze(out, axis=_axes(x, dim))


defop("logsumexp", _logsumexp_fwd,
      (lambda g, x, out, xshape, dim, keepdim: _unreduce(g, xshape, dim, keepdim) * exp(x - _unreduce(out, xshape, dim, keepdim)),),
      "unreduce(g, x, dim=dim, keepdim=keepdim) * exp(x - unreduce(out, x, dim=dim, keepdim=keepdim))", "logsumexp(x, dim, keepdim=False): log(sum(exp(x))) computed stably")


def _var_fwd(xp, x, dim, keepdim, correction):
    return xp.var(x, axis=_axes(x, dim), keepdims=keepdim, ddof=correction)


def _centered(x, dim):
    return x - mean(x, dim=dim, keepdim=True)


def _var_bwd(g, x, xshape, dim, keepdim, correction):
    """PyTorch's var_backward: ``2 / (n - correction) * grad * (x - mean)``; with no degree of
    freedom left over the whole input, nan where x is the mean and inf elsewhere."""
    g = _unreduce(g, xshape, dim, keepdim)
    dof = _count(xshape, dim) - correction
    if dof <= 0 and dim is None:
        return g * where(x == mean(x), math.nan, math.inf)
    return (2.0 / dof if dof else math.inf) * g * _centered(x, dim)


defop("var", _var_fwd,
      (_var_bwd,),
      "unreduce(g, x, dim=dim, keepdim=keepdim) * (x - mean(x, dim=dim, keepdim=True)) * 2 / (numel(x) / numel(out) - correction)", "var(x, dim=None, keepdim=False): unbiased variance")
defop("std", lambda xp, x, dim, keepdim, correction: xp.sqrt(_var_fwd(xp, x, dim, keepdim, correction)),
      (lambda g, x, out, xshape, dim, keepdim, correction:
       _var_bwd(where(out == 0.0, 0.0, g / (out * 2.0)), x, xshape, dim, keepdim, correction),),
      "unreduce(where(out == 0, 0, g / out), x, dim=dim, keepdim=keepdim) * (x - mean(x, dim=dim, keepdim=True)) / (numel(x) / numel(out) - correction)", "std(x, dim=None, keepdim=False): unbiased standard deviation")


def _softmax_fwd(xp, x, dim):
    e = xp.exp(x - xp.amax(x, axis=dim, keepdims=True))
    return e / xp.sum(e, axis=dim, keepdims=True)


def _log_softmax_fwd(xp, x, dim):
    shifted = x - xp.amax(x, axis=dim, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=dim, keepdims=True))


defop("softmax", _softmax_fwd,
      (lambda g, out, dim: out * (g - sum(g * out, dim=dim, keepdim=True)),),
      "out * (g - sum(g * out, dim=dim, keepdim=True))", "softmax(x, dim=-1): exp(x) / sum(exp(x))")
defop("log_softmax", _log_softmax_fwd,
      (lambda g, out, dim: g - exp(out) * sum(g, dim=dim, keepdim=True),),
      "g - exp(out) * sum(g, dim=dim, keepdim=True)", "log_softmax(x, dim=-1): log(softmax(x)) computed stably")

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
    if a == 2 and b > 2:                # torch: (b.mT @ a.mT).mT made contiguous
        return "CloneBackward0"
    if a == 2 and b == 2:
        return "MmBackward0"
    return "UnsafeViewBackward0"


def _matmul_dx(g, x, y):
    if y.ndim == 1:
        return unsqueeze(g, -1) * y
    if x.ndim == 1:                     # g: (p) or a batch (B, p), as rows
        return matmul(g, mT(y)) if y.ndim == 2 else squeeze(matmul(unsqueeze(g, -2), mT(y)), -2)
    return matmul(g, mT(y))


def _matmul_dy(g, x, y):
    if x.ndim == 1:
        return unsqueeze(x, -1) * unsqueeze(g, -2) if y.ndim > 1 else unsqueeze(g, -1) * x
    if y.ndim == 1:                     # g: (n) or a batch (B, n), as rows
        return matmul(g, x) if x.ndim == 2 else squeeze(matmul(unsqueeze(g, -2), x), -2)
    return matmul(mT(x), g)


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


defop("matmul", lambda xp, x, y, ndims: _matmul_fwd(xp, x, y), (_matmul_dx, _matmul_dy),
      ("g @ transpose(y, -2, -1)", "transpose(x, -2, -1) @ g"), "matrix product a @ b (dot, mv, mm and batched)", node=_matmul_name)
defop("transpose", lambda xp, x, dim0, dim1: xp.swapaxes(x, dim0, dim1),
      (lambda g, dim0, dim1: transpose(g, dim0, dim1),), "transpose(g, dim0, dim1)",
      "transpose(x, d0, d1): swap two dimensions")
defop("permute", lambda xp, x, dims, node: xp.transpose(x, tuple(range(x.ndim - len(dims))) + tuple(x.ndim + d for d in dims)),
      (lambda g, dims, node: _permute(g, tuple(sorted(range(-len(dims), 0), key=lambda i: dims[i])), "PermuteBackward0"),),
      None, "reorder dimensions", node=lambda p: p["node"])
defop("trace", lambda xp, x: xp.trace(x, axis1=-2, axis2=-1),
      (lambda g, xshape: _unreduce(g, xshape, (-2, -1), False) * _eye_like(g, xshape),),
      "g * diag(diag(ones_like(x)))", "trace(x): sum of the diagonal")
defop("det", lambda xp, x: xp.linalg.det(x),
      (lambda g, x, out, xshape: view(g * out, tuple(xshape[:-2]) + (1, 1), len(xshape) - 2) * mT(inv(x)),),
      "unsqueeze(unsqueeze(g * out, -1), -1) * transpose(inv(x), -2, -1)", "det(x): determinant", domain=(-1.0, 1.0), node="LinalgDetBackward0")
defop("inv", lambda xp, x: xp.linalg.inv(x),
      (lambda g, out: -matmul(matmul(mT(out), g), mT(out)),),
      "-(transpose(out, -2, -1) @ g @ transpose(out, -2, -1))", "inv(x): matrix inverse", domain=(-1.0, 1.0), node="LinalgInvExBackward0")
defop("diagonal", lambda xp, x: xp.diagonal(x, axis1=-2, axis2=-1),
      (lambda g, xshape: _diag_scatter(g, _tail(xshape, 2)),), "diag(g)",
      "diagonal of a matrix", node="DiagonalBackward0_copy")
defop("diag_scatter", lambda xp, x, shape: _diag_scatter_fwd(xp, x, shape),
      (lambda g: _diagonal(g),), "diag(g)", "a vector placed on a matrix diagonal",
      node="DiagEmbedBackward0")


def _diag_scatter_fwd(xp, x, shape):
    out = xp.zeros(x.shape[:-1] + tuple(shape), dtype=x.dtype)
    k = builtins.min(shape)
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


defop("select", lambda xp, x, dim, index: x[_index(dim, index)],
      (lambda g, xshape, dim, index: _select_back(g, _tail(xshape, -dim), dim, index),),
      None, "x[index] along one dimension")
defop("select_back", lambda xp, x, shape, dim, index: _scatter(xp, x, shape, _index(dim, index), 1 - len(shape)),
      (lambda g, dim, index: select(g, dim, index),), "select(g, dim, index)", "gradient of a selection",
      node="SelectBackwardBackward0")
defop("slice", lambda xp, x, dim, start, stop, step: x[_index(dim, slice(start, stop, step))],
      (lambda g, xshape, dim, start, stop, step: _slice_back(g, _tail(xshape, -dim), dim, start, stop, step),),
      None, "x[start:stop:step] along one dimension")
defop("slice_back", lambda xp, x, shape, dim, start, stop, step:
      _scatter(xp, x, shape, _index(dim, slice(start, stop, step)), -len(shape)),
      (lambda g, dim, start, stop, step: _slice(g, dim, start, stop, step),), None,
      "gradient of a slice", node="SliceBackwardBackward0")


def _scatter(xp, x, shape, key, own):
    """zeros of ``shape`` (trailing) with ``x`` placed at ``key``; ``own`` = -(x's own ndim)."""
    nb = x.ndim + own
    out = xp.zeros(x.shape[:nb] + tuple(shape), dtype=x.dtype)
    out[key] = x
    return out


def select(x, dim, index):
    """``x`` at ``index`` along ``dim`` (that dimension removed): PyTorch's ``torch.select``."""
    if not x.ndim:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    dim = _dim(dim, x.ndim)
    size = x.shape[dim]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(x.shape)} at "
                         f"dimension {dim + x.ndim}")
    return apply(OPS["select"], (x,), {"dim": dim, "index": int(index) % size})


def _select_back(g, shape, dim, index):
    return apply(OPS["select_back"], (g,), {"shape": tuple(shape), "dim": dim, "index": index})


def _slice(x, dim, start, stop, step):
    return apply(OPS["slice"], (x,), {"dim": dim, "start": start, "stop": stop, "step": step})


def _slice_back(g, shape, dim, start, stop, step):
    return apply(OPS["slice_back"], (g,), {"shape": tuple(shape), "dim": dim, "start": start, "stop": stop,
                                           "step": step})


defop("stack", lambda xp, *xs, dim: xp.stack(xs, axis=dim),
      lambda g, xs, dim: tuple(select(g, dim, i) for i in range(len(xs))),
      "select(g, dim, i)", "stack([a, b, ...], dim=0): join along a new dimension")


def _cat_bwd(g, shapes, dim):
    starts = np.cumsum([0] + [s[dim] for s in shapes])
    return tuple(_slice(g, dim, int(a), int(b), 1) for a, b in zip(starts[:-1], starts[1:]))


defop("cat", lambda xp, *xs, dim: xp.concatenate(xs, axis=dim), _cat_bwd,
      None, "cat([a, b, ...], dim=0): join along a dimension")
defop("clone", lambda xp, x: x.copy(), (lambda g: g,), "g", "a copy of x")
defop("to", lambda xp, x, device, dtype, xdevice, xdtype: _convert(x, device, dtype),
      (lambda g, xdevice, xdtype: _to(g, device=xdevice, dtype=xdtype),), "g",
      "x on another device or with another dtype", node="ToCopyBackward0")


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
    return apply(OPS["to"], (x,), {"device": device, "dtype": dtype, "xdevice": x.device, "xdtype": x.dtype})


# ----------------------------------------------------------------------------------------------
# fronts: PyTorch-style signatures over the table

def _op1(name):
    op = OPS[name]

    def front(input):
        return apply(op, (input if isinstance(input, Tensor) else _t(input),))
    front.__name__ = name
    front.__doc__ = op.doc
    return front


for _name, *_ in _UNARY:
    globals()[_name] = _op1(_name)


def add(input, other, alpha=1):
    if alpha != 1:
        return apply(OPS["add_alpha"], (input, other), {"alpha": alpha, "node": "AddBackward0"})
    return apply(OPS["add"], (input, other))


def sub(input, other, alpha=1):
    if not isinstance(input, Tensor):
        return apply(OPS["rsub"], (other,), {"other": input}) if alpha == 1 else sub(_t(input, other), other, alpha)
    if alpha != 1:
        return apply(OPS["add_alpha"], (input, other), {"alpha": -alpha, "node": "SubBackward0"})
    return apply(OPS["sub"], (input, other))


def mul(input, other):
    if not isinstance(input, Tensor):
        return apply(OPS["mul"], (other, input))
    return apply(OPS["mul"], (input, other))


def div(input, other):
    if not isinstance(input, Tensor):
        return mul(reciprocal(other), input)
    return apply(OPS["div"], (input, other))


def neg(input):
    return apply(OPS["neg"], (_t(input),))


def pos(input):
    return _t(input)


def pow(input, exponent):
    if isinstance(exponent, Tensor):
        if isinstance(input, Tensor):
            return apply(OPS["pow_tensor"], (input, exponent))
        return apply(OPS["rpow"], (exponent,), {"base": input})
    return apply(OPS["pow"], (_t(input),), {"exponent": exponent})


def square(input):
    return pow(input, 2)


def matmul(input, other):
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{input.ndim}D and {other.ndim}D")
    inner = other.shape[-2] if other.ndim > 1 else other.shape[0]
    if input.shape[-1] != inner:
        raise ValueError(f"the inner dimensions differ: {input.shape[-1]} (the last of the first) and {inner} "
                         f"(the {'first' if other.ndim == 1 else 'second to last'} of the second)")
    return apply(OPS["matmul"], (input, other), {"ndims": (input.ndim, other.ndim)})


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


def mv(input, vec):
    return matmul(input, vec)


def mm(input, mat2):
    return matmul(input, mat2)


def outer(input, vec2):
    return mul(view(input, (input.shape[0], 1)), vec2)


def maximum(input, other):
    return apply(OPS["maximum"], (input, other))


def minimum(input, other):
    return apply(OPS["minimum"], (input, other))


def atan2(input, other):
    return apply(OPS["atan2"], (input, other))


def _reduction(name):
    op = OPS[name]

    def front(input, dim=None, keepdim=False):
        input = _t(input)
        return apply(op, (input,), {"dim": _dims(dim, input.ndim), "keepdim": bool(keepdim)})
    front.__name__ = name
    front.__doc__ = op.doc
    return front


sum = _reduction("sum")
mean = _reduction("mean")
prod = _reduction("prod")
amax = _reduction("amax")
amin = _reduction("amin")
max = _reduction("max")
min = _reduction("min")


def norm(input, p=2, dim=None, keepdim=False):
    input = _t(input)
    if p in ("fro", None):
        p = 2
    return apply(OPS["norm"], (input,), {"p": float(p), "dim": _dims(dim, input.ndim), "keepdim": bool(keepdim)})


def logsumexp(input, dim=None, keepdim=False):
    input = _t(input)
    return apply(OPS["logsumexp"], (input,), {"dim": _dims(dim, input.ndim), "keepdim": bool(keepdim)})


def _variance(name):
    op = OPS[name]

    def front(input, dim=None, unbiased=True, keepdim=False, correction=None):
        input = _t(input)
        if correction is None:
            correction = 1 if unbiased else 0
        return apply(op, (input,), {"dim": _dims(dim, input.ndim), "keepdim": bool(keepdim), "correction": correction})
    front.__name__ = name
    front.__doc__ = op.doc
    return front


var = _variance("var")
std = _variance("std")


def softmax(input, dim=-1):
    input = _t(input)
    return apply(OPS["softmax"], (input,), {"dim": _dim(dim, input.ndim)})


def log_softmax(input, dim=-1):
    input = _t(input)
    return apply(OPS["log_softmax"], (input,), {"dim": _dim(dim, input.ndim)})


def transpose(input, dim0, dim1):
    n = input.ndim
    return apply(OPS["transpose"], (input,), {"dim0": _dim(dim0, n), "dim1": _dim(dim1, n)})


def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return _permute(input, tuple(range(-1, -input.ndim - 1, -1)), "TBackward0")


def _T(input):
    return _permute(input, tuple(range(-1, -input.ndim - 1, -1)), "PermuteBackward0")


def permute(input, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return _permute(input, tuple(_dim(d, input.ndim) for d in dims), "PermuteBackward0")


def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return apply(OPS["trace"], (input,))


def _square_matrix(input, what):
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise RuntimeError(f"linalg.{what}: A must be batches of square matrices, but they are "
                           f"{' by '.join(map(str, input.shape[-2:]))} matrices")


def det(input):
    _square_matrix(input, "det")
    return apply(OPS["det"], (input,))


def inv(input):
    _square_matrix(input, "inv")
    return apply(OPS["inv"], (input,))


def diag(input, diagonal=0):
    if diagonal != 0:
        raise ValueError("diag: only the main diagonal (diagonal=0) is supported")
    if input.ndim == 1:
        return _diag_scatter(input, (input.shape[0], input.shape[0]))
    if input.ndim == 2:
        return _diagonal(input)
    raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " f"{input.ndim}D")


def reshape(input, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    size = input.data.size
    if shape.count(-1) == 1:
        known = math.prod(s for s in shape if s != -1)
        if known and size % known == 0:
            shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size or any(s < 0 for s in shape):
        raise RuntimeError(f"shape '[{', '.join(map(str, shape))}]' is invalid for input of size {size}")
    return view(input, shape)


def flatten(input, start_dim=0, end_dim=-1):
    n = input.ndim
    if n == 0:
        return view(input, (1,))
    a, b = start_dim % n, end_dim % n
    shape = input.shape[:a] + (math.prod(input.shape[a:b + 1]),) + input.shape[b + 1:]
    return view(input, shape)


def squeeze(input, dim=None):
    if dim is None:
        return view(input, tuple(s for s in input.shape if s != 1), node="SqueezeBackward0")
    dims = _dims(dim, input.ndim)
    n = input.ndim
    shape = tuple(s for i, s in enumerate(input.shape) if not (s == 1 and i - n in dims))
    return view(input, shape, node="SqueezeBackward1" if isinstance(dim, int) else "SqueezeBackward2")


def unsqueeze(input, dim):
    n = input.ndim + 1
    d = _dim(dim, n) + n
    return view(input, input.shape[:d] + (1,) + input.shape[d:], node="UnsqueezeBackward0")


def _tensor_list(tensors, what):
    """The tensors of a ``stack``/``cat`` list; numbers become tensors like the first tensor."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{what} expects a non-empty TensorList")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return [_t(t, like) for t in tensors]


def stack(tensors, dim=0):
    tensors = _tensor_list(tensors, "stack")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise RuntimeError(f"stack expects each tensor to be equal size, but got {' and '.join(map(str, sorted(shapes)))}")
    return apply(OPS["stack"], tuple(tensors), {"dim": _dim(dim, tensors[0].ndim + 1)})


def cat(tensors, dim=0):
    tensors = _tensor_list(tensors, "cat")
    if any(t.ndim == 0 for t in tensors):
        raise RuntimeError("zero-dimensional tensor cannot be concatenated")
    return apply(OPS["cat"], tuple(tensors), {"dim": _dim(dim, tensors[0].ndim)})


def expand_as(input, other):
    return expand(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def unreduce(input, other, dim=None, keepdim=False):
    """``input``, the result of a reduction of ``other`` over ``dim``, repeated back over
    ``other``'s shape: the derivative of ``sum`` (used by the rules of the reductions)."""
    return _unreduce(input, tuple(other.shape), _dims(dim, other.ndim), bool(keepdim))


def _getitem(x, key):
    """``x[key]`` for ints, slices, ``...`` and ``None``: a chain of select / slice nodes."""
    if isinstance(key, Tensor):
        raise IndexError("indexing with a tensor is not supported; use ints and slices")
    single = not isinstance(key, tuple)
    items = (key,) if single else key
    if builtins.sum(1 for i in items if i is not None and i is not Ellipsis) > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        fill = x.ndim - builtins.sum(1 for i in items if i is not None and i is not Ellipsis)
        items = items[:at] + (slice(None),) * fill + items[at + 1:]
    out, axis = x, 0
    for item in items:
        if item is None:
            out = unsqueeze(out, axis)
            axis += 1
            continue
        n = out.ndim
        if isinstance(item, slice):
            size = out.shape[axis]
            start, stop, step = item.indices(size)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            if single or (start, stop, step) != (0, size, 1):
                out = _slice(out, axis - n, start, stop, step)
            axis += 1
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            size = out.shape[axis]
            if not -size <= item < size:
                raise IndexError(f"index {item} is out of bounds for dimension {axis} with size {size}")
            out = select(out, axis - n, int(item) % size)
        else:
            raise IndexError(f"only integers, slices, '...' and None are valid indices (got {type(item).__name__})")
    return out



# ----------------------------------------------------------------------------------------------
# constructors

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed ``rand`` / ``randn`` (numbers are drawn on the CPU, so every device gets the same)."""
    global _rng
    _rng = np.random.default_rng(int(seed))


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A leaf tensor from a number, nested list, array or Tensor; always floating point
    (float64 by default) except booleans."""
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.get_xp(device) if device is not None else backend.xp_of(data)
    if xp is np:
        data = backend.to_numpy(data) if not isinstance(data, (list, tuple, int, float, bool)) else data
        array = np.array(_unwrap(data))
    else:
        array = xp.asarray(backend.to_numpy(data) if hasattr(data, "__array__") and not isinstance(data, xp.ndarray)
                           else data)
    if dtype is not None:
        array = array.astype(backend.as_dtype(dtype), copy=False)
    elif array.dtype.kind not in "fb" or isinstance(data, (list, tuple, int, float)) and array.dtype.kind != "b":
        array = array.astype(backend.default_dtype, copy=False)
    if array.dtype.kind not in "fb":
        raise TypeError(f"cannot make a tensor of dtype {array.dtype}")
    if array.ndim == 0 and xp is np:
        array = array[()]            # numpy scalars compute several times faster than 0-d arrays
    out = Tensor(array)
    if requires_grad:
        out.requires_grad_(True)
    return out


def _unwrap(data):
    if isinstance(data, Tensor):
        return backend.to_numpy(data.data)
    if isinstance(data, (list, tuple)):
        return [_unwrap(d) for d in data]
    return data


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _make(array, dtype, device, requires_grad):
    xp = backend.get_xp(device)
    array = np.asarray(array, dtype=backend.as_dtype(dtype))
    out = Tensor(array[()] if xp is np and array.ndim == 0 else array if xp is np else xp.asarray(array))
    if requires_grad:
        out.requires_grad_(True)
    return out


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(_size(size)), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(_size(size)), dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    return _make(np.full(_size((size,)), fill_value), dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(np.eye(int(n), None if m is None else int(m)), dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    return _make(np.arange(start, end, step), dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _make(np.linspace(start, end, int(steps)), dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    return _make(_rng.random(_size(size)), dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    return _make(_rng.standard_normal(_size(size)), dtype, device, requires_grad)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    return zeros(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    return ones(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False):
    return rand(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False):
    return randn(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def asarray_like(value, like):
    xp = backend.xp_of(like.data)
    return xp.asarray(value, dtype=like.dtype)


def from_numpy(array):
    """A tensor sharing ``array``'s memory (no copy); gradcli never writes into it."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    if array.dtype.kind not in "fb":
        array = array.astype(backend.default_dtype)
    return Tensor(array[()] if array.ndim == 0 else array)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor``, but shares the memory of a numpy array of the right dtype and device."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, np.ndarray) and device in (None, "cpu") and data.dtype.kind == "f" and (
            dtype is None or backend.as_dtype(dtype) == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input) -> int:
    return input.numel()


# ----------------------------------------------------------------------------------------------
# the public table: the language's names (FUNCTIONS, DOCS) and Tensor's operators and methods

def _cmp(name):
    op = OPS[name]

    def front(input, other):
        if not isinstance(input, Tensor):
            input = _t(input, other)
        return apply(op, (input, other))
    front.__name__ = name
    return front


lt, le, gt, ge, eq, ne = (_cmp(n) for n in ("lt", "le", "gt", "ge", "eq", "ne"))

_LANGUAGE = """add sub mul div neg pos pow matmul lt le gt ge eq ne
abs sign sqrt rsqrt square reciprocal exp exp2 expm1 log log2 log10 log1p sin cos tan asin acos atan
sinh cosh tanh asinh acosh atanh sigmoid relu softplus erf atan2 maximum minimum clamp where
sum mean prod amax amin max min norm logsumexp var std
dot outer transpose trace det inv diag
reshape flatten stack cat squeeze unsqueeze softmax log_softmax
select expand_as reshape_as unreduce numel ones_like
zeros ones eye arange linspace rand randn""".split()

_CONSTRUCTOR_DOCS = {
    "zeros": "zeros(s...): a tensor of zeros", "ones": "ones(s...): a tensor of ones",
    "eye": "eye(n): the n x n identity", "arange": "arange(n) or arange(a, b, step): evenly spaced values",
    "linspace": "linspace(a, b, n): n evenly spaced values from a to b",
    "rand": "rand(s...): uniform random numbers in [0, 1) (seeded by --seed)",
    "randn": "randn(s...): standard normal random numbers (seeded by --seed)",
}
_FRONT_DOCS = {
    "add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b", "neg": "-x", "pos": "+x (x itself)",
    "pow": "pow(a, b) = a ^ b = a ** b", "matmul": "matrix product a @ b (dot, mv, mm and batched)",
    "lt": "a < b (a mask)", "le": "a <= b (a mask)", "gt": "a > b (a mask)", "ge": "a >= b (a mask)",
    "eq": "a == b (a mask)", "ne": "a != b (a mask)", "square": "x ^ 2",
    "dot": "dot(a, b): inner product of two vectors", "outer": "outer(a, b): outer product of two vectors",
    "diag": "diag(v) builds a diagonal matrix; diag(m) takes the diagonal",
    "reshape": "reshape(x, s...): the same numbers in a new shape", "flatten": "flatten(x): a vector",
    "squeeze": "squeeze(x, dim=None): drop dimensions of size 1",
    "unsqueeze": "unsqueeze(x, dim): insert a dimension of size 1",
    "select": "select(x, dim, i): x[..., i, ...] with i taken along dim",
    "expand_as": "expand_as(x, y): x broadcast to y's shape",
    "reshape_as": "reshape_as(x, y): x in y's shape",
    "unreduce": "unreduce(g, x, dim=None, keepdim=False): g, a reduction of x over dim, repeated back over x's shape",
    "numel": "numel(x): the number of elements of x",
    "ones_like": "ones_like(x): ones with x's shape and dtype",
}

for _name in _LANGUAGE:
    FUNCTIONS[_name] = globals()[_name]
    DOCS[_name] = _CONSTRUCTOR_DOCS.get(_name) or _FRONT_DOCS.get(_name) or OPS[_name].doc

# rules call these by name; keep them reachable for Tensor methods too
_METHODS = [n for n in _LANGUAGE if n not in _CONSTRUCTOR_DOCS and n not in (
    "pos", "where", "unreduce", "numel", "ones_like")] + ["t", "permute", "mv", "mm"]


def _method(f):
    def method(self, *args, **kwargs):
        return f(self, *args, **kwargs)
    method.__name__ = f.__name__
    method.__doc__ = f.__doc__
    return method


for _name in _METHODS:
    setattr(Tensor, _name, _method(globals()[_name]))

Tensor.__add__ = lambda self, other: apply(OPS["add"], (self, other))
Tensor.__radd__ = lambda self, other: apply(OPS["add"], (self, other))
Tensor.__sub__ = lambda self, other: apply(OPS["sub"], (self, other))
Tensor.__rsub__ = lambda self, other: apply(OPS["rsub"], (self,), {"other": other})
Tensor.__mul__ = lambda self, other: apply(OPS["mul"], (self, other))
Tensor.__rmul__ = lambda self, other: apply(OPS["mul"], (self, other))
Tensor.__truediv__ = lambda self, other: apply(OPS["div"], (self, other))
Tensor.__rtruediv__ = lambda self, other: mul(reciprocal(self), other)
Tensor.__neg__ = lambda self: apply(OPS["neg"], (self,))
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = lambda self: abs(self)
Tensor.__pow__ = lambda self, other: pow(self, other)
Tensor.__rpow__ = lambda self, other: apply(OPS["rpow"], (self,), {"base": other})
Tensor.__matmul__ = lambda self, other: matmul(self, _t(other, self))
Tensor.__rmatmul__ = lambda self, other: matmul(_t(other, self), self)
Tensor.__lt__ = lambda self, other: apply(OPS["lt"], (self, other))
Tensor.__le__ = lambda self, other: apply(OPS["le"], (self, other))
Tensor.__gt__ = lambda self, other: apply(OPS["gt"], (self, other))
Tensor.__ge__ = lambda self, other: apply(OPS["ge"], (self, other))
Tensor.__eq__ = lambda self, other: apply(OPS["eq"], (self, other))
Tensor.__ne__ = lambda self, other: apply(OPS["ne"], (self, other))
Tensor.__getitem__ = _getitem
Tensor.clone = lambda self: apply(OPS["clone"], (self,))
Tensor.T = property(_T)
Tensor.mT = property(mT)
Tensor.expand = lambda self, *size: expand(self, tuple(
    self.shape[i - len(size) + self.ndim] if s == -1 else s for i, s in enumerate(_size(size))))
Tensor.view = _method(reshape)
Tensor.pow = _method(pow)
Tensor.select = _method(select)
Tensor.where = lambda self, condition, other: where(condition, self, other)
Tensor.clamp = _method(clamp)
Tensor.clip = _method(clamp)
Tensor.inverse = _method(inv)
Tensor.to = lambda self, device=None, dtype=None: _to(self, *_to_args(device, dtype))
Tensor.type_as = lambda self, other: _to(self, dtype=other.dtype)


def _to_args(device, dtype):
    if isinstance(device, str) and device.removeprefix("torch.") in backend.DTYPES:
        return None, device
    if device is not None and not isinstance(device, str):
        return None, device
    return device, dtype
