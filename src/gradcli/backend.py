"""Array backends: numpy on the CPU, cupy on ``cuda``.

This is the only module that imports cupy.  Every op's forward receives ``xp`` (the array
module of its inputs) and never names numpy directly.
"""

from __future__ import annotations

import numpy as np

_cupy = None
DTYPES = {
    "float64": np.float64,
    "float32": np.float32,
    "float": np.float32,
    "double": np.float64,
    "bool": np.bool_,
    "int64": np.int64,
    "long": np.int64,
    "int32": np.int32,
    "int": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
}
default_dtype = np.dtype(np.float64)


def cupy():
    """The cupy module, imported on first use; a clear error when it is missing."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as cp  # noqa: PLC0415 — optional dependency, lazily imported

            cp.cuda.runtime.getDeviceCount()
        except Exception as exc:  # ImportError, or no driver / no GPU
            from .errors import GradcliError

            raise GradcliError(
                "dependency",
                "device 'cuda' needs cupy and an NVIDIA GPU: install the extra with "
                f"pip install 'gradcli[cuda]' ({type(exc).__name__}: {exc})",
            ) from None
        _cupy = cp
    return _cupy


def get_xp(device: str | None = "cpu"):
    """The array module for ``device`` (``"cpu"`` or ``"cuda"``)."""
    if device is None or device == "cpu":
        return np
    if str(device).startswith("cuda"):
        return cupy()
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def xp_of(array):
    """The array module an array belongs to."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return np


def device_of(array) -> str:
    return "cuda" if xp_of(array) is not np else "cpu"


def to_numpy(array):
    """A numpy array (copied from the GPU where needed)."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def as_dtype(dtype):
    """A numpy dtype from ``"float32"``, ``"float64"``, a numpy dtype or None (the default)."""
    if dtype is None:
        return default_dtype
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
        return np.dtype(DTYPES[name])
    return np.dtype(dtype)
