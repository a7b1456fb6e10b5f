"""Tensor: an array with PyTorch's autograd attributes.

``_data`` is a numpy (or cupy) array — or a numpy scalar for 0-d results, which numpy computes
much faster; ``.data`` is, as in PyTorch, a Tensor sharing it.  Ops never write into an array:
every result is a new array (or a numpy view, for the view ops).  Only in-place ops write
(``gradcli.inplace``): a tensor made by a view op records its ``_base`` and how to take the view
from it (``_vfn``), shares its base's version counter (``_vc``, made on first use), and the
base keeps weak references to its views (``_views``).  A gradient the engine stores in ``.grad``
may share its array with other gradients: it is marked copy-on-write (``_cow``) and copied before
the first write.  These slots stay unset on the hot path (read with ``getattr``).
Operators and op methods (``x.sum()``, ``x.tanh()``) are attached by ``gradcli.ops``, and
``backward`` runs the engine that ``gradcli.autograd`` registers (``register_backward``): both
sit above this module, which imports only the graph types below it.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from . import backend
from .autograd.graph import NO_EDGE, AccumulateGrad, Handle

NONLEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more informations."
)


class Tensor:
    __slots__ = (
        "_data",
        "_grad",
        "grad_fn",
        "_requires_grad",
        "_retains_grad",
        "_acc",
        "_hooks",
        "_output_nr",
        "_vc",
        "_base",
        "_vfn",
        "_views",
        "_cow",
        "_post_hooks",
        "__weakref__",
    )

    def __init__(self, data, requires_grad=False, grad_fn=None):
        self._data = data
        self._grad = None
        self.grad_fn = grad_fn
        self._requires_grad = requires_grad
        self._retains_grad = False
        self._acc = None
        self._hooks = None
        self._output_nr = 0

    # -- autograd attributes ----------------------------------------------------------------
    # ``_requires_grad`` is True for a leaf that requires grad and for every result with a grad_fn
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if self.grad_fn is not None:
            if value:
                return
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want "
                "to use a computed variable in a subgraph that doesn't require "
                "differentiation use var_no_grad = var.detach()."
            )
        if value and self._data.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def data(self) -> "Tensor":
        """This tensor's values as a Tensor that shares them but not the graph nor the version
        counter (writes through it are not seen by autograd): PyTorch's ``x.data``."""
        return Tensor(_own(self))

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data

    @property
    def _version(self) -> int:
        vc = getattr(self, "_vc", None)
        return vc[0] if vc else 0

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self):
        if self.grad_fn is not None and not self._retains_grad:
            warnings.warn(NONLEAF_GRAD, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is self:
            raise RuntimeError("can't assign Variable as its own grad")
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(
                f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}"
            )
        if value is not None and tuple(value.shape) != tuple(self.shape):
            raise RuntimeError(
                f"assigned grad has data of a different size: {tuple(value.shape)} vs {tuple(self.shape)}"
            )
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def retain_grad(self):
        """Keep this non-leaf's gradient in ``.grad`` during backward (no-op on a leaf)."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        if not self._retains_grad:
            self._retains_grad = True
            self.grad_fn.retained = weakref.ref(self)

    def register_hook(self, hook):
        """``hook(grad)`` runs when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            node, nr = self.grad_fn, self._output_nr
            if node.n_outputs > 1:
                return node._add_prehook(lambda g: _output_hook(hook, g, nr))
            return node._add_prehook(hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return Handle(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor)`` after a backward has added to this leaf's ``.grad``."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        hooks = getattr(self, "_post_hooks", None)
        if hooks is None:
            hooks = self._post_hooks = []
        hooks.append(hook)
        return Handle(hooks, hook)

    def _accumulator(self):
        acc = self._acc() if self._acc is not None else None
        if acc is None:  # held weakly: the graph keeps it alive, the tensor does not
            acc = AccumulateGrad(self)
            self._acc = weakref.ref(acc)
        return acc

    def _edge(self):
        """Where this tensor's gradient goes: ``(node, output_nr)`` — its grad_fn, its leaf's
        ``AccumulateGrad``, or ``(None, 0)`` when it needs none.  The one place this is decided."""
        grad_fn = self.grad_fn
        if grad_fn is not None:
            return (grad_fn, self._output_nr)
        if self._requires_grad:
            return (self._accumulator(), 0)
        return NO_EDGE

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's ``Tensor.backward``)."""
        _engine["backward"]([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """The same values (shared storage and version counter), out of the graph."""
        return _alias(self, Tensor(_own(self)))

    def detach_(self) -> "Tensor":  # noqa: D102
        if getattr(self, "_base", None) is not None:
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel "
                "(DDP) for training, and gradient_as_bucket_view is set as True, gradients are views of "
                "DDP buckets, and hence detach_() cannot be called on these gradients. To fix this error, "
                "please refer to the Optimizer.zero_grad() function in torch/optim/optimizer.py as the "
                "solution."
            )
        self.grad_fn = None
        self._requires_grad = False
        return self

    # -- array attributes ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self):
        if not self._data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self._data)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return backend.to_numpy(self._data).reshape(()).item()

    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return np.asarray(backend.to_numpy(self._data))

    def tolist(self):
        return backend.to_numpy(self._data).tolist()

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def long(self):
        return self.to(dtype="int64")

    def int(self):
        return self.to(dtype="int32")

    def bool(self):
        return self.to(dtype="bool")

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __index__(self):
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        array = backend.to_numpy(self._data)
        return np.asarray(array, dtype=dtype)

    def __hash__(self):
        return id(self)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        extras = []
        kind = self._data.dtype.kind
        if kind == "f" and self._data.dtype != backend.default_dtype or kind in "iu" and self._data.dtype != np.int64:
            extras.append(f"dtype={self._data.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name().rsplit('::', 1)[-1]}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        body = format_array(backend.to_numpy(self._data), indent=7)
        return "tensor(" + ", ".join([body, *extras]) + ")"


def _output_hook(hook, g, nr):
    """A tensor hook on one output of a node with several: it sees and may replace that output's."""
    if g[nr] is None:
        return None
    result = hook(g[nr])
    if result is None:
        return None
    g = list(g)
    g[nr] = result
    return g


def _own(t):
    """``t``'s array, made one that can be shared and written: a numpy scalar becomes a 0-d array,
    a copy-on-write gradient gets its own copy."""
    data = t._data
    if getattr(t, "_cow", False):
        t._cow = False
        data = t._data = data.copy()
    elif data.__class__ is not np.ndarray and not hasattr(data, "__cuda_array_interface__"):
        data = t._data = np.array(data)
    return data


def _counter(t):
    vc = getattr(t, "_vc", None)
    if vc is None:
        vc = t._vc = [0]
    return vc


def _alias(t, other):
    """``other`` (on ``t``'s storage) shares ``t``'s version counter: ``detach``.  The counter
    remembers ``t`` (weakly), whose graph must learn of a write through ``other``."""
    vc = other._vc = _counter(t)
    if len(vc) == 1:
        vc.append([])
    vc[1].append(weakref.ref(t))
    return other


def as_view(out, base, fn):
    """Record that ``out`` (a result of a view op on ``base``) shares ``base``'s storage: ``fn(base)``
    takes the view again (as Tensor ops).  Views of views point at the first base."""
    root = getattr(base, "_base", None)
    if root is not None:
        outer = base._vfn
        fn = (lambda f, g: lambda t: f(g(t)))(fn, outer)
        base = root
    out._base, out._vfn, out._vc = base, fn, _counter(base)
    views = getattr(base, "_views", None)
    if views is None:
        views = base._views = []
    elif len(views) > 16:
        views[:] = [r for r in views if r() is not None]
    views.append(weakref.ref(out))
    return out


def views_of(base):
    """The live views of ``base`` (recorded by ``as_view``)."""
    refs = getattr(base, "_views", None) or ()
    return [v for v in (r() for r in refs) if v is not None]


#: what ``backward`` runs: ``gradcli.autograd.backward``, registered from the layer above
_engine: dict = {}


def register_backward(fn):
    _engine["backward"] = fn


def zeros(shape, dtype=None, device="cpu") -> Tensor:
    """Zeros of ``shape`` with ``dtype`` (default float64) on ``device``: what a gradient that
    never arrived is.  ``zeros(t.shape, t.dtype, t.device)``: zeros like ``t``."""
    return _filled(shape, 0, dtype, device)


def ones(shape, dtype=None, device="cpu") -> Tensor:
    """Ones, as ``zeros``: the implicit gradient of a scalar output."""
    return _filled(shape, 1, dtype, device)


def _filled(shape, value, dtype, device):
    xp = backend.get_xp(device)
    data = xp.full(tuple(shape), value, dtype=backend.default_dtype if dtype is None else dtype)
    return Tensor(data[()] if xp is np and not data.ndim else data)  # a numpy scalar: faster


def format_array(array, indent=7) -> str:
    """Numbers as PyTorch prints them: ``1.`` for whole numbers, ``0.1000``, or ``1.0000e+05`` when
    the finite non-zero magnitudes span more than a factor 1000 (or pass 1e8, or go below 1e-4
    for fractions); cells padded to the widest finite number."""
    array = np.asarray(array)
    if array.dtype.kind == "b":
        formatter = lambda v: "True" if v else "False"  # noqa: E731
    elif array.dtype.kind in "iu":
        formatter = str
    else:
        finite = array[np.isfinite(array)] if array.size else array
        magnitudes = np.abs(finite[finite != 0]) if finite.size else finite
        top = magnitudes.max() if magnitudes.size else 0.0
        low = magnitudes.min() if magnitudes.size else 0.0
        if finite.size and np.all(finite == np.round(finite)):
            sci = magnitudes.size and (top / low > 1000.0 or top > 1e8)
            plain = lambda v: _special(v) or f"{v:.0f}."  # noqa: E731
        else:
            sci = magnitudes.size and (top / low > 1000.0 or top > 1e8 or low < 1e-4)
            plain = lambda v: _special(v) or f"{v:.4f}"  # noqa: E731
        formatter = (lambda v: _special(v) or f"{v:.4e}") if sci else plain
        finite_cells = [formatter(v) for v in finite.ravel().tolist()]
    if array.ndim == 0:
        return formatter(array.item())
    cells = [formatter(v) for v in array.ravel().tolist()]
    if array.dtype.kind in "biu":
        width = max(map(len, cells)) if cells else 0
    else:
        width = max(map(len, finite_cells)) if finite_cells else 0
    cells = [c.rjust(width) for c in cells]
    return _nest(cells, array.shape, indent)


def _special(v):
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return None


def _nest(cells, shape, indent):
    if len(shape) == 1:
        return "[" + ", ".join(cells) + "]"
    step = len(cells) // shape[0] if shape[0] else 0
    parts = [_nest(cells[i * step : (i + 1) * step], shape[1:], indent + 1) for i in range(shape[0])]
    sep = "," + "\n" * (len(shape) - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"
