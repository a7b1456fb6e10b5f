"""Constructors: tensors from data (``tensor``, ``as_tensor``, ``from_numpy``) and from sizes
(``zeros ones eye arange linspace rand randn`` and the ``_like`` forms), as PyTorch names them.

Each registers itself as a public name (``gradcli.public``); the ones the language may call
from a program declare ``constructor=True``, so that the interpreter hands them the program's
dtype and device.  Random numbers are drawn on the CPU from one generator (``manual_seed``), so
every device gets the same numbers.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .public import public
from .tensor import Tensor


class _Random:
    """The generator behind ``rand`` / ``randn``.  Made on first use, not at import: importing
    ``numpy.random`` costs 5-10 ms of every start-up, and most programs draw no random numbers.
    An unseeded generator takes fresh entropy either way, so making it late changes nothing."""

    _generator = None
    made_with = None  # the state it was made (or seeded) with: where a rerun starts again

    @property
    def generator(self):
        if self._generator is None:
            self.generator = np.random.default_rng()
        return self._generator

    @generator.setter
    def generator(self, value):
        self._generator = value
        self.made_with = value.bit_generator.state


_random = _Random()


@public(language=False)
def manual_seed(seed):
    """Seed ``rand`` / ``randn`` (numbers are drawn on the CPU, so every device gets the same)."""
    _random.generator = np.random.default_rng(int(seed))


@public(language=False)
def tensor(data, dtype=None, device=None, requires_grad=False):
    """A leaf tensor from a number, nested list, array or Tensor: PyTorch's dtypes (int64 for
    integers, bool for booleans), except that floating point numbers are float64 by default."""
    if isinstance(data, Tensor):
        data = data._data
    xp = backend.get_xp(device) if device is not None else backend.xp_of(data)
    if xp is np:
        data = backend.to_numpy(data) if not isinstance(data, (list, tuple, int, float, bool)) else data
        array = np.array(_unwrap(data))
    else:
        array = xp.asarray(
            backend.to_numpy(data) if hasattr(data, "__array__") and not isinstance(data, xp.ndarray) else data
        )
    if dtype is not None:
        array = array.astype(backend.as_dtype(dtype), copy=False)
    elif array.dtype.kind == "f" and isinstance(data, (list, tuple, int, float)):
        array = array.astype(backend.default_dtype, copy=False)
    elif array.dtype.kind in "iu" and isinstance(data, (list, tuple, int)):
        array = array.astype(np.int64, copy=False)
    if array.dtype.kind not in "fbiu":
        raise TypeError(f"cannot make a tensor of dtype {array.dtype}")
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    if array.ndim == 0 and xp is np:
        array = array[()]  # numpy scalars compute several times faster than 0-d arrays
    out = Tensor(array)
    if requires_grad:
        out.requires_grad_(True)
    return out


def _unwrap(data):
    if isinstance(data, Tensor):
        return backend.to_numpy(data._data)
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
        if array.dtype.kind != "f":
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        out.requires_grad_(True)
    return out


@public(doc="zeros(s...): a tensor of zeros", constructor=True)
def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(_size(size)), dtype, device, requires_grad)


@public(doc="ones(s...): a tensor of ones", constructor=True)
def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(_size(size)), dtype, device, requires_grad)


@public(language=False)
def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, (int, np.integer)):
        dtype = np.int64
    return _make(np.full(_size((size,)), fill_value), dtype, device, requires_grad)


@public(doc="eye(n): the n x n identity", constructor=True)
def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(np.eye(int(n), None if m is None else int(m)), dtype, device, requires_grad)


@public(doc="arange(n) or arange(a, b, step): evenly spaced values", constructor=True)
def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if dtype is None and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, end, step)):
        dtype = np.int64  # PyTorch's rule: integers in, int64 out
    return _make(np.arange(start, end, step), dtype, device, requires_grad)


@public(doc="linspace(a, b, n): n evenly spaced values from a to b", constructor=True)
def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _make(np.linspace(start, end, int(steps)), dtype, device, requires_grad)


@public(doc="rand(s...): uniform random numbers in [0, 1) (seeded by --seed)", constructor=True)
def rand(*size, dtype=None, device=None, requires_grad=False):
    return _make(_random.generator.random(_size(size)), dtype, device, requires_grad)


@public(doc="randn(s...): standard normal random numbers (seeded by --seed)", constructor=True)
def randn(*size, dtype=None, device=None, requires_grad=False):
    return _make(_random.generator.standard_normal(_size(size)), dtype, device, requires_grad)


@public(language=False)
def zeros_like(input, dtype=None, device=None, requires_grad=False):
    return zeros(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


@public(doc="ones_like(x): ones with x's shape and dtype")
def ones_like(input, dtype=None, device=None, requires_grad=False):
    return ones(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


@public(language=False)
def rand_like(input, dtype=None, device=None, requires_grad=False):
    return rand(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


@public(language=False)
def randn_like(input, dtype=None, device=None, requires_grad=False):
    return randn(*input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


@public(language=False)
def from_numpy(array):
    """A tensor sharing ``array``'s memory (no copy); gradcli never writes into it."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    if array.dtype.kind not in "fbiu":
        raise TypeError(
            f"can't convert np.ndarray of type numpy.{array.dtype.name}. The only supported types "
            "are: float64, float32, int64, int32, int16, int8, uint8, and bool."
        )
    return Tensor(array[()] if array.ndim == 0 else array)


@public(language=False)
def as_tensor(data, dtype=None, device=None):
    """Like ``tensor``, but shares the memory of a numpy array of the right dtype and device."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if (
        isinstance(data, np.ndarray)
        and device in (None, "cpu")
        and data.dtype.kind in "fbiu"
        and (dtype is None or backend.as_dtype(dtype) == data.dtype)
    ):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


@public(language=False)
def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)
