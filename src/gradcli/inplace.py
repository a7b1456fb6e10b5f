"""In-place operations with PyTorch's semantics: ``add_ sub_ mul_ div_ pow_ zero_ fill_ copy_
clamp_ ...``, ``+= -= *= /=``, ``x[key] = value``.

An in-place op computes its result out of place (from a copy of the tensor's values, so that the
graph it records keeps the values before the write) and writes it into the tensor's storage:
every view of that storage sees it.  Then:

- the storage's version counter goes up; a node that saved a tensor of it checks the version
  when it runs backward (PyTorch's "modified by an inplace operation" error);
- with gradients recorded, the tensor takes the result's place in the graph; written through a
  view, its base gets a ``CopySlices`` node (the base with the view's region replaced: the
  region's gradient goes to the new values, the rest to the old base), and every view of the
  base is re-derived from it (``AsStridedBackward0``), as in PyTorch.

Under ``no_grad`` (an optimizer step, ``w -= lr * w.grad``) only the values change.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, ops
from . import functions as F
from .autograd import grad_mode
from .tensor import Tensor, _counter, _own, views_of

LEAF = "a leaf Variable that requires grad is being used in an in-place operation."
VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place operation."
OVERLAP = (
    "unsupported operation: more than one element of the written-to tensor refers to a single memory "
    "location. Please clone() the tensor before performing the operation."
)
_NAMES = {
    "f8": "Double",
    "f4": "Float",
    "f2": "Half",
    "i8": "Long",
    "i4": "Int",
    "i2": "Short",
    "i1": "Char",
    "u1": "Byte",
    "b1": "Bool",
}


def _type_name(dtype):
    dtype = np.dtype(dtype)
    return _NAMES.get(f"{dtype.kind}{dtype.itemsize}", dtype.name)


def inplace(self, compute, *args):
    """``self`` becomes ``compute(self, *args)`` (an out-of-place op), written into its storage."""
    base = getattr(self, "_base", None)
    enabled = grad_mode.state.enabled
    if enabled and self._requires_grad and self.grad_fn is None:
        raise RuntimeError(LEAF)
    if enabled and base is not None and base._requires_grad and base.grad_fn is None:
        raise RuntimeError(VIEW_OF_LEAF)
    if base is not None and self.grad_fn.__class__ is F._PiecesNode:
        raise RuntimeError(
            f"Output {self._output_nr} of {self.grad_fn.name().removesuffix('Backward0')} is a view "
            "and is being modified inplace. This view is the output of a function that returns "
            "multiple views. Such functions do not allow the output views to be modified inplace. "
            "You should replace the inplace operation by an out-of-place one."
        )
    track = enabled and (self._requires_grad or any(a.__class__ is Tensor and a._requires_grad for a in args))
    if track:
        before = Tensor(np.array(self._data, copy=True), self._requires_grad, self.grad_fn)
        before._output_nr = self._output_nr
        result = compute(before, *args)
    else:
        with grad_mode.no_grad():
            result = compute(Tensor(self._data), *args)
    _store(self, result._data)
    if track and result._requires_grad:
        if base is None:
            self.grad_fn, self._output_nr, self._requires_grad = result.grad_fn, result._output_nr, True
            _rederive_views(self)
        else:
            _copy_slices(base, self, result)
    return self


def _store(self, array):
    """Write ``array`` into ``self``'s storage (PyTorch's casting and shape rules); bump the version."""
    target = _own(self)
    xp = backend.xp_of(target)
    array = xp.asarray(array)
    if array.shape != target.shape:
        if np.broadcast_shapes(array.shape, target.shape) != target.shape:
            raise RuntimeError(
                f"output with shape {list(target.shape)} doesn't match the broadcast shape "
                f"{list(np.broadcast_shapes(array.shape, target.shape))}"
            )
    if not np.can_cast(array.dtype, target.dtype, "same_kind"):
        raise RuntimeError(
            f"result type {_type_name(array.dtype)} can't be cast to the desired output type {_type_name(target.dtype)}"
        )
    if not target.flags.writeable:
        raise RuntimeError(OVERLAP if 0 in target.strides else "the tensor is a read-only view: clone() it first")
    xp.copyto(target, array, casting="unsafe")
    _counter(self)[0] += 1
    ops.modified[0] = True
    vc = _counter(self)
    aliases = [t for t in (r() for r in vc[1])] if len(vc) > 1 else []  # what detach() was taken from
    for t in [
        self,
        *([self._base] if getattr(self, "_base", None) is not None else []),
        *views_of(_root(self)),
        *aliases,
    ]:
        if t is not None:
            _mark_output(t)


def _root(t):
    base = getattr(t, "_base", None)
    return t if base is None else base


def _mark_output(t):
    """A node that kept ``t``'s values as its output (``exp``'s derivative uses them) must not use
    them once they are overwritten: it remembers the version it expects."""
    node = t.grad_fn
    if node is not None and getattr(node, "out", None) is not None and getattr(node, "out_vc", None) is None:
        node.out_vc, node.out_version, node.out_of = _counter(t), _counter(t)[0] - 1, t


def _positions(base, view):
    """The flat position in ``base`` of every element of ``view``."""
    with grad_mode.no_grad():
        index = Tensor(np.arange(math.prod(base.shape)).reshape(base.shape))
        return np.asarray(backend.to_numpy(view._vfn(index)._data))


def _copy_slices(base, view, result):
    """``base`` gets PyTorch's ``CopySlices`` node: the old base with the view's region replaced by
    ``result``."""
    pos = _positions(base, view)
    node = ops.OpNode(
        ops.OPS["put"],
        {"pos": pos, "node": ("torch::autograd::CopySlices", base.ndim)},
        None,
        None,
        [base._edge(), result._edge()],
    )
    node.shapes = (tuple(base.shape), tuple(result.shape))
    base.grad_fn, base._output_nr, base._requires_grad = node, 0, True
    _rederive_views(base)


def _rederive_views(base):
    """Every view of ``base`` takes its gradient from the new base (PyTorch's ``AsStridedBackward0``)."""
    if not base._requires_grad:
        return
    for view in views_of(base):
        node = ops.OpNode(
            ops.OPS["take"],
            {"pos": _positions(base, view), "src_ndim": base.ndim, "node": "AsStridedBackward0"},
            None,
            None,
            [base._edge()],
        )
        node.shapes = (tuple(base.shape),)
        view.grad_fn, view._output_nr, view._requires_grad = node, 0, True


# ----------------------------------------------------------------------------------------------
# the methods


def _filled(name):
    """``value`` (a number or a tensor) broadcast over ``t``'s shape, as the node ``name``."""
    return lambda t, value: ops.fill(t, value if value.__class__ is Tensor else float(value), name)


_full_like = _filled("torch::autograd::CopyBackwards")


def _setitem(self, key, value):
    """``self[key] = value``: through a view for ints and slices (``CopySlices``), by position for
    tensors, lists and masks (``IndexPutBackward0``)."""
    if F._is_advanced(key):
        pos = F._positions(self, key)
        return inplace(self, lambda t, v: ops._put(t, v, pos, t.ndim, "IndexPutBackward0"), value)
    view = F._getitem(self, key)
    if getattr(view, "_base", None) is None:  # the whole 0-d tensor: no view was taken
        return inplace(self, _full_like, value)
    inplace(view, _full_like, value)


_METHODS = {
    "add_": lambda t, other, alpha=1: F.add(t, other, alpha=alpha),
    "sub_": lambda t, other, alpha=1: F.sub(t, other, alpha=alpha),
    "mul_": lambda t, other: F.mul(t, other),
    "div_": lambda t, other: F.div(t, other),
    "pow_": lambda t, exponent: F.power(t, exponent),
    "clamp_": lambda t, min=None, max=None: F.clamp(t, min, max),
    "clip_": lambda t, min=None, max=None: F.clamp(t, min, max),
    "fill_": lambda t, value: _filled("FillBackward3" if value.__class__ is Tensor else "FillBackward2")(t, value),
    "copy_": _full_like,
    "zero_": lambda t: _filled("ZeroBackward0")(t, 0.0),
    "neg_": lambda t: F.neg(t),
    "masked_fill_": lambda t, mask, value: F.masked_fill(t, mask, value),
}
for _name in ops.UNARY_OPS:
    _METHODS.setdefault(_name + "_", (lambda name: lambda t: getattr(t, name)())(_name))


def _in(name):
    method = _METHODS[name]

    def call(self, *args, **kwargs):
        return inplace(self, lambda t, *a: method(t, *a, **kwargs), *args)

    call.__name__ = name
    call.__doc__ = f"In place: ``self`` becomes ``{name[:-1]}(self, ...)``."
    return call


for _name in _METHODS:
    setattr(Tensor, _name, _in(_name))

Tensor.__setitem__ = _setitem
Tensor.__iadd__ = lambda self, other: self.add_(other)
Tensor.__isub__ = lambda self, other: self.sub_(other)
Tensor.__imul__ = lambda self, other: self.mul_(other)
Tensor.__itruediv__ = lambda self, other: self.div_(other)
Tensor.__ipow__ = lambda self, other: self.pow_(other)
