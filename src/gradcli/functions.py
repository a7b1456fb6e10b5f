"""The public functions: PyTorch-style signatures over the op table.

Each turns PyTorch's arguments (``dim`` as an int or tuple, ``keepdim``, Python numbers on
either side, ``alpha=``) into a call of a table op with its inputs and parameters, and
registers itself once as a public name (``gradcli.public``), declaring how it is exposed:
in the language, as a Tensor method, as an operator symbol, as list-taking.  The names are
PyTorch's; ``sum max min abs pow`` are registered under those names without binding them in
this module, so Python's builtins keep their meaning here.  Tensor's Python operators
(``__add__`` ...) are at the end: the common ones call ``apply`` directly (the hot path).
"""

from __future__ import annotations

import math
import operator

import numpy as np

from . import backend
from .constructors import _size, tensor
from .ops import (
    OPS,
    Node,
    _diag_scatter,
    _diagonal,
    _dim,
    _dims,
    _permute,
    _select,
    _slice,
    _state,
    _t,
    _to,
    _unreduce,
    apply,
    expand,
    mT,
    next_seq,
    split_edges,
    take,
    view,
)
from .public import attach, register
from .tensor import Tensor, _own, as_view


def viewing(front):
    """``front``'s result shares its input's storage where numpy could take a view (as in PyTorch):
    it is recorded as a view (``tensor.as_view``), with how to take it again."""

    def view_front(input, *args, **kwargs):
        if input.__class__ is not Tensor:
            return front(input, *args, **kwargs)
        base = _own(input)
        out = front(input, *args, **kwargs)
        if out is not input and backend.xp_of(base).may_share_memory(out._data, base):
            as_view(out, input, lambda t: front(t, *args, **kwargs))
        return out

    view_front.__name__, view_front.__doc__ = front.__name__, front.__doc__
    return view_front


def exposed(doc=None, **exposure):
    """``public.register`` as a decorator, with the doc of the table op of the same name by default."""

    def decorate(fn):
        op = OPS.get(fn.__name__)
        return register(fn.__name__, fn, doc or (op.doc if op is not None else None), **exposure)

    return decorate


# ----------------------------------------------------------------------------------------------
# operators


@exposed(doc="a + b", method=True, symbol="+", precedence=2, fold=operator.add)
def add(input, other, alpha=1):
    if alpha != 1:
        return apply(OPS["add_alpha"], (input, other), {"alpha": alpha, "node": "AddBackward0"})
    return apply(OPS["add"], (input, other))


@exposed(doc="a - b", method=True, symbol="-", precedence=2, fold=operator.sub)
def sub(input, other, alpha=1):
    if not isinstance(input, Tensor):
        return apply(OPS["rsub"], (other,), {"other": input}) if alpha == 1 else sub(_t(input, other), other, alpha)
    if alpha != 1:
        return apply(OPS["add_alpha"], (input, other), {"alpha": -alpha, "node": "SubBackward0"})
    return apply(OPS["sub"], (input, other))


@exposed(doc="a * b", method=True, symbol="*", precedence=3, fold=operator.mul)
def mul(input, other):
    if not isinstance(input, Tensor):
        return apply(OPS["mul"], (other, input))
    return apply(OPS["mul"], (input, other))


@exposed(doc="a / b", method=True, symbol="/", precedence=3, fold=operator.truediv)
def div(input, other):
    if not isinstance(input, Tensor):
        return mul(_t(other).reciprocal(), input)
    return apply(OPS["div"], (input, other))


@exposed(doc="-x", method=True, symbol="-", fold=operator.neg)
def neg(input):
    return apply(OPS["neg"], (_t(input),))


@exposed(doc="+x (x itself)", symbol="+", fold=operator.pos)
def pos(input):
    return _t(input)


def power(input, exponent):
    """``input ^ exponent``: PowBackward0 for a number exponent, 1 for tensors, 2 for a number base."""
    if isinstance(exponent, Tensor):
        if isinstance(input, Tensor):
            return apply(OPS["pow_tensor"], (input, exponent))
        return apply(OPS["rpow"], (exponent,), {"base": input})
    return apply(OPS["pow"], (_t(input),), {"exponent": exponent})


register("pow", power, "pow(a, b) = a ^ b = a ** b", method=True, symbol="^", precedence=5, fold=operator.pow)


def _comparison(name):
    op = OPS[name]

    def front(input, other):
        if not isinstance(input, Tensor):
            input = _t(input, other)
        return apply(op, (input, other))

    front.__name__ = name
    return front


for _name, _symbol, _fold in [
    ("lt", "<", operator.lt),
    ("le", "<=", operator.le),
    ("gt", ">", operator.gt),
    ("ge", ">=", operator.ge),
    ("eq", "==", operator.eq),
    ("ne", "!=", operator.ne),
]:
    register(
        _name, _comparison(_name), f"a {_symbol} b (a mask)", method=True, symbol=_symbol, precedence=1, fold=_fold
    )


# ----------------------------------------------------------------------------------------------
# selection


@exposed(method=lambda self, condition, other: where(condition, self, other))
def where(condition, input, other):
    """``input`` where ``condition`` holds, else ``other`` (PyTorch's ``torch.where``)."""
    cond = condition._data if isinstance(condition, Tensor) else condition
    if isinstance(input, Tensor) or isinstance(other, Tensor):
        return apply(OPS["where"], (input, other), {"cond": cond})
    return tensor(np.where(cond, input, other))


@exposed(language=False, method=True)
def masked_fill(input, mask, value):
    """``input`` with ``value`` where ``mask`` (a bool tensor, broadcast) holds."""
    mask = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if mask.dtype.kind != "b":
        kind = {"i8": "long int", "i4": "int", "f8": "double", "f4": "float"}.get(
            f"{mask.dtype.kind}{mask.dtype.itemsize}", mask.dtype.name
        )
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {kind}")
    scalar = not isinstance(value, Tensor)
    return apply(OPS["masked_fill"], (input, float(value) if scalar else value), {"cond": mask, "scalar": scalar})


@exposed(method=("clamp", "clip"))
def clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's keyword names
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return apply(OPS["clamp"], (input,), {"min": _number(min), "max": _number(max)})


def _number(v):
    if isinstance(v, Tensor):
        return v.item()
    return v


@exposed(doc="select(x, dim, i): x[..., i, ...] with i taken along dim", method=True)
@viewing
def select(input, dim, index):
    """``input`` at ``index`` along ``dim`` (that dimension removed): PyTorch's ``torch.select``."""
    if not input.ndim:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    dim = _dim(dim, input.ndim)
    size = input.shape[dim]
    if not -size <= index < size:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
            f"dimension {dim + input.ndim}"
        )
    return _select(input, dim, int(index) % size)


@exposed(doc="numel(x): the number of elements of x")
def numel(input) -> int:
    return input.numel()


# ----------------------------------------------------------------------------------------------
# arithmetic, reductions, linear algebra, shape


@exposed(doc="x ^ 2", method=True)
def square(input):
    return power(input, 2)


@exposed(doc="matrix product a @ b (dot, mv, mm and batched)", method=True, symbol="@", precedence=3)
def matmul(input, other):
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {input.ndim}D and {other.ndim}D"
        )
    inner = other.shape[-2] if other.ndim > 1 else other.shape[0]
    if input.shape[-1] != inner:
        raise ValueError(
            f"the inner dimensions differ: {input.shape[-1]} (the last of the first) and {inner} "
            f"(the {'first' if other.ndim == 1 else 'second to last'} of the second)"
        )
    return apply(OPS["matmul"], (input, other), {"ndims": (input.ndim, other.ndim)})


@exposed(doc="dot(a, b): inner product of two vectors", method=True)
def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


@exposed(language=False, method=True)
def mv(input, vec):
    return matmul(input, vec)


@exposed(language=False, method=True)
def mm(input, mat2):
    return matmul(input, mat2)


@exposed(doc="outer(a, b): outer product of two vectors", method=True)
def outer(input, vec2):
    return mul(view(input, (input.shape[0], 1)), vec2)


@exposed(method=True)
def maximum(input, other):
    return apply(OPS["maximum"], (input, other))


@exposed(method=True)
def minimum(input, other):
    return apply(OPS["minimum"], (input, other))


@exposed(method=True)
def atan2(input, other):
    return apply(OPS["atan2"], (input, other))


@exposed(method=True)
def norm(input, p=2, dim=None, keepdim=False):
    input = _t(input)
    if p in ("fro", None):
        p = 2
    return apply(OPS["norm"], (input,), {"p": float(p), "dim": _dims(dim, input.ndim), "keepdim": bool(keepdim)})


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


for _name in ("var", "std"):
    register(_name, _variance(_name), method=True)
API_VAR = _variance("var")


@exposed(method=True)
def softmax(input, dim=-1):
    input = _t(input)
    return apply(OPS["softmax"], (input,), {"dim": _dim(dim, input.ndim)})


@exposed(method=True)
def log_softmax(input, dim=-1):
    input = _t(input)
    return apply(OPS["log_softmax"], (input,), {"dim": _dim(dim, input.ndim)})


@exposed(method=True)
@viewing
def transpose(input, dim0, dim1):
    n = input.ndim
    return apply(OPS["transpose"], (input,), {"dim0": _dim(dim0, n), "dim1": _dim(dim1, n)})


@exposed(language=False, method=True)
@viewing
def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return _permute(input, tuple(range(-1, -input.ndim - 1, -1)), "TBackward0")


@viewing
def _T(input):
    return _permute(input, tuple(range(-1, -input.ndim - 1, -1)), "PermuteBackward0")


@exposed(language=False, method=True)
@viewing
def permute(input, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return _permute(input, tuple(_dim(d, input.ndim) for d in dims), "PermuteBackward0")


@exposed(method=True)
def trace(input):
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return apply(OPS["trace"], (input,))


def _square_matrix(input, what):
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise RuntimeError(
            f"linalg.{what}: A must be batches of square matrices, but they are "
            f"{' by '.join(map(str, input.shape[-2:]))} matrices"
        )


@exposed(method=True)
def det(input):
    _square_matrix(input, "det")
    return apply(OPS["det"], (input,))


@exposed(method=("inv", "inverse"))
def inv(input):
    _square_matrix(input, "inv")
    return apply(OPS["inv"], (input,))


@exposed(doc="diag(v) builds a diagonal matrix; diag(m) takes the diagonal", method=True)
def diag(input, diagonal=0):
    if diagonal != 0:
        raise ValueError("diag: only the main diagonal (diagonal=0) is supported")
    if input.ndim == 1:
        return _diag_scatter(input, (input.shape[0], input.shape[0]))
    if input.ndim == 2:
        return _diagonal(input)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


@exposed(doc="reshape(x, s...): the same numbers in a new shape", method=("reshape", "view"))
@viewing
def reshape(input, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    size = input._data.size
    if shape.count(-1) == 1:
        known = math.prod(s for s in shape if s != -1)
        if known and size % known == 0:
            shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size or any(s < 0 for s in shape):
        raise RuntimeError(f"shape '[{', '.join(map(str, shape))}]' is invalid for input of size {size}")
    return view(input, shape)


@exposed(doc="flatten(x): a vector", method=True)
@viewing
def flatten(input, start_dim=0, end_dim=-1):
    n = input.ndim
    if n == 0:
        return view(input, (1,))
    a, b = start_dim % n, end_dim % n
    shape = input.shape[:a] + (math.prod(input.shape[a : b + 1]),) + input.shape[b + 1 :]
    return view(input, shape)


@exposed(doc="squeeze(x, dim=None): drop dimensions of size 1", method=True)
@viewing
def squeeze(input, dim=None):
    if dim is None:
        return view(input, tuple(s for s in input.shape if s != 1), node="SqueezeBackward0")
    dims = _dims(dim, input.ndim)
    n = input.ndim
    shape = tuple(s for i, s in enumerate(input.shape) if not (s == 1 and i - n in dims))
    return view(input, shape, node="SqueezeBackward1" if isinstance(dim, int) else "SqueezeBackward2")


@exposed(doc="unsqueeze(x, dim): insert a dimension of size 1", method=True)
@viewing
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


@exposed(method=True, takes_list=True)
def stack(tensors, dim=0):
    tensors = _tensor_list(tensors, "stack")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise RuntimeError(
            f"stack expects each tensor to be equal size, but got {' and '.join(map(str, sorted(shapes)))}"
        )
    return apply(OPS["stack"], tuple(tensors), {"dim": _dim(dim, tensors[0].ndim + 1)})


@exposed(method=True, takes_list=True)
def cat(tensors, dim=0):
    tensors = _tensor_list(tensors, "cat")
    if any(t.ndim == 0 for t in tensors):
        raise RuntimeError("zero-dimensional tensor cannot be concatenated")
    return apply(OPS["cat"], tuple(tensors), {"dim": _dim(dim, tensors[0].ndim)})


class _PiecesNode(Node):
    """The backward of ``split`` / ``chunk`` / ``unbind``: one node with an output per piece (as
    PyTorch's ``SplitBackward0``, ``UnbindBackward0``); the input's gradient is the pieces'
    gradients joined again, zeros for a piece that got none."""

    __slots__ = ("kind", "dim", "shapes", "dtype", "n_outputs", "label")

    def name(self):
        return self.label

    def apply(self, grads, mask):
        grads = list(grads) if self.n_outputs > 1 else [grads]
        known = next(g for g in grads if g is not None)
        lead = tuple(known.shape[: known.ndim - len(self.shapes[0])])
        pieces = [
            g if g is not None else Tensor(backend.xp_of(known._data).zeros(lead + tuple(s), dtype=known.dtype))
            for g, s in zip(grads, self.shapes)
        ]
        return ((stack if self.kind == "unbind" else cat)(pieces, dim=self.dim),)

    def input_shapes(self):
        n = self.dim
        if self.kind == "unbind":
            return (
                self.shapes[0][: len(self.shapes[0]) + n + 1]
                + (len(self.shapes),)
                + self.shapes[0][len(self.shapes[0]) + n + 1 :],
            )
        total = sum(s[n] for s in self.shapes)
        first = self.shapes[0]
        return (first[: len(first) + n] + (total,) + first[len(first) + n + 1 :],)


def _pieces(input, dim, bounds, kind, label):
    """Views of ``input`` between ``bounds`` along ``dim`` (an index each for ``unbind``), sharing
    one multi-output node."""
    base = _own(input)
    d = _dim(dim, input.ndim)
    tail = (slice(None),) * (-d - 1)
    if kind == "unbind":
        keys = [(Ellipsis, i) + tail for i in bounds]
        takes = [(lambda i: lambda t: _select(t, d, i))(i) for i in bounds]  # noqa: B023 - bound by the outer lambda
    else:
        keys = [(Ellipsis, slice(a, b)) + tail for a, b in bounds]
        takes = [(lambda a, b: lambda t: _slice(t, d, a, b, 1))(a, b) for a, b in bounds]  # noqa: B023 - bound by the outer lambda
    outs = [as_view(Tensor(base[key]), input, fn) for key, fn in zip(keys, takes)]
    if _state.enabled and input.requires_grad:
        node = _PiecesNode.__new__(_PiecesNode)
        node.next, node.nrs = split_edges([input._edge()])
        node.seq = next_seq()
        node.span = node.pre_hooks = node.retained = None
        node.kind, node.dim, node.label, node.dtype = kind, d, label, input.dtype
        node.shapes = tuple(tuple(o.shape) for o in outs)
        node.n_outputs = len(outs)
        for nr, o in enumerate(outs):
            o.grad_fn, o._output_nr, o._requires_grad = node, nr, True
    return tuple(outs)


@exposed(language=False, method=True)
def split(tensor, split_size_or_sections, dim=0):
    """Pieces of ``split_size_or_sections`` elements along ``dim`` (the last one shorter), or of
    the sizes in a list; views of ``tensor``."""
    n = tensor.shape[_dim(dim, tensor.ndim)]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                f"at dimension {dim}), but got split_sizes={sizes}"
            )
        label = "SplitWithSizesBackward0"
    else:
        step = int(split_size_or_sections)
        if step <= 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [min(step, n - a) for a in range(0, n, step)] or [0]
        label = "SplitBackward0"
    starts = np.cumsum([0] + sizes)
    return _pieces(tensor, dim, list(zip(starts[:-1].tolist(), starts[1:].tolist())), "split", label)


@exposed(language=False, method=True)
def chunk(input, chunks, dim=0):
    """At most ``chunks`` pieces of equal size (the last one smaller) along ``dim``."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    n = input.shape[_dim(dim, input.ndim)]
    return split(input, max(1, -(-n // chunks)), dim)


@exposed(language=False, method=True)
def unbind(input, dim=0):
    """The slices of ``input`` along ``dim`` (that dimension removed), as views."""
    return _pieces(input, dim, range(input.shape[_dim(dim, input.ndim)]), "unbind", "UnbindBackward0")


@exposed(language=False)
def var_mean(input, dim=None, unbiased=True, keepdim=False, correction=None):
    """``(var(input, ...), mean(input, ...))``."""
    return (
        API_VAR(input, dim, unbiased=unbiased, keepdim=keepdim, correction=correction),
        apply(OPS["mean"], (_t(input),), {"dim": _dims(dim, _t(input).ndim), "keepdim": bool(keepdim)}),
    )


@exposed(doc="expand_as(x, y): x broadcast to y's shape", method=True)
def expand_as(input, other):
    return expand(input, other.shape)


@exposed(doc="reshape_as(x, y): x in y's shape", method=True)
def reshape_as(input, other):
    return reshape(input, other.shape)


@exposed(doc="unreduce(g, x, dim=None, keepdim=False): g, a reduction of x over dim, repeated back over x's shape")
def unreduce(input, other, dim=None, keepdim=False):
    """``input``, the result of a reduction of ``other`` over ``dim``, repeated back over
    ``other``'s shape: the derivative of ``sum`` (used by the rules of the reductions)."""
    return _unreduce(input, tuple(other.shape), _dims(dim, other.ndim), bool(keepdim))


def _is_advanced(key):
    items = key if isinstance(key, tuple) else (key,)
    return any(isinstance(i, (Tensor, list, np.ndarray, bool)) for i in items)


def _index_array(item):
    if isinstance(item, Tensor):
        item = backend.to_numpy(item._data)
    elif not isinstance(item, (list, np.ndarray, bool)):
        return item
    array = np.asarray(item)
    if array.dtype.kind not in "biu" and array.size:
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return array.astype(np.int64) if array.dtype.kind not in "bi" else array


def _positions(x, key):
    """The flat position in ``x`` of each element of ``x[key]`` (numpy's indexing rules, which are
    PyTorch's)."""
    items = key if isinstance(key, tuple) else (key,)
    try:
        return np.arange(math.prod(x.shape)).reshape(x.shape)[tuple(_index_array(i) for i in items)]
    except IndexError as exc:
        raise IndexError(str(exc).replace(" for axis ", " for dimension ")) from None


@exposed(language=False, method=True)
def index_select(input, dim, index):
    """The slices of ``input`` along ``dim`` at ``index`` (a 1-d integer tensor), copied."""
    d = _dim(dim, input.ndim) + input.ndim if input.ndim else 0
    where = np.arange(math.prod(input.shape)).reshape(input.shape)
    return take(
        input,
        np.take(where, _index_array(index).reshape(-1), axis=d if input.ndim else None),
        node="IndexSelectBackward0",
    )


@exposed(language=False, method=True)
def gather(input, dim, index):
    """``out[i][j] = input[index[i][j]][j]`` along ``dim`` (PyTorch's ``torch.gather``)."""
    d = _dim(dim, input.ndim) + input.ndim
    where = np.arange(math.prod(input.shape)).reshape(input.shape)
    return take(input, np.take_along_axis(where, _index_array(index), axis=d), node="GatherBackward0")


@viewing
def _getitem(x, key):
    """``x[key]``: ints, slices, ``...`` and ``None`` give a view (a chain of select / slice nodes);
    a tensor, list or mask anywhere in the key gives a copy (``IndexBackward0``)."""
    if _is_advanced(key):
        return take(x, _positions(x, key))
    single = not isinstance(key, tuple)
    items = (key,) if single else key
    if sum(1 for i in items if i is not None and i is not Ellipsis) > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        fill = x.ndim - sum(1 for i in items if i is not None and i is not Ellipsis)
        items = items[:at] + (slice(None),) * fill + items[at + 1 :]
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
            out = _select(out, axis - n, int(item) % size)
        else:
            raise IndexError(f"only integers, slices, '...' and None are valid indices (got {type(item).__name__})")
    return out


# ----------------------------------------------------------------------------------------------
# Tensor's Python operators and the methods whose signature differs from a function's

attach("__add__", lambda self, other: apply(OPS["add"], (self, other)))
attach("__radd__", lambda self, other: apply(OPS["add"], (self, other)))
attach("__sub__", lambda self, other: apply(OPS["sub"], (self, other)))
attach("__rsub__", lambda self, other: apply(OPS["rsub"], (self,), {"other": other}))
attach("__mul__", lambda self, other: apply(OPS["mul"], (self, other)))
attach("__rmul__", lambda self, other: apply(OPS["mul"], (self, other)))
attach("__truediv__", lambda self, other: apply(OPS["div"], (self, other)))
attach("__rtruediv__", lambda self, other: mul(self.reciprocal(), other))
attach("__neg__", lambda self: apply(OPS["neg"], (self,)))
attach("__pos__", lambda self: self)
attach("__abs__", lambda self: self.abs())
attach("__pow__", power)
attach("__rpow__", lambda self, other: apply(OPS["rpow"], (self,), {"base": other}))
attach("__matmul__", lambda self, other: matmul(self, _t(other, self)))
attach("__rmatmul__", lambda self, other: matmul(_t(other, self), self))
attach("__lt__", lambda self, other: apply(OPS["lt"], (self, other)))
attach("__le__", lambda self, other: apply(OPS["le"], (self, other)))
attach("__gt__", lambda self, other: apply(OPS["gt"], (self, other)))
attach("__ge__", lambda self, other: apply(OPS["ge"], (self, other)))
attach("__eq__", lambda self, other: apply(OPS["eq"], (self, other)))
attach("__ne__", lambda self, other: apply(OPS["ne"], (self, other)))
attach("__getitem__", _getitem)
attach("clone", lambda self: apply(OPS["clone"], (self,)))
attach("T", property(_T))
attach("mT", property(viewing(mT)))
attach(
    "expand",
    lambda self, *size: expand(
        self, tuple(self.shape[i - len(size) + self.ndim] if s == -1 else s for i, s in enumerate(_size(size)))
    ),
)
attach("to", lambda self, device=None, dtype=None: _to(self, *_to_args(device, dtype)))
attach("type_as", lambda self, other: _to(self, dtype=other.dtype))


def _to_args(device, dtype):
    if isinstance(device, str) and device.removeprefix("torch.") in backend.DTYPES:
        return None, device
    if device is not None and not isinstance(device, str):
        return None, device
    return device, dtype
