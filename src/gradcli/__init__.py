"""gradcli: a command-line expression differentiator with PyTorch's autograd semantics.

The engine is a library with PyTorch's names: ``import gradcli as torch`` runs PyTorch code
that uses tensors, autograd, ``no_grad``, custom ``Function`` and ``autograd.functional``.
Every public function is ``gradcli.NAME``: the names registered in ``gradcli.public`` by the
op table, the PyTorch-style functions and the constructors (also those registered later).
"""

from __future__ import annotations

import sys as _sys

if _sys.argv[:1] == ["-m"] or _sys.argv[0].endswith(("/gradcli", "\\gradcli", "gradcli.exe")):
    from .errors import quiet_interrupts  # gradcli is the program: Ctrl-C while importing is quiet

    quiet_interrupts()
del _sys

import numpy as _np  # noqa: E402 - after the quiet Ctrl-C above

__version__ = "0.1.0"

from . import autograd, backend, constructors, functions, inplace, ops  # noqa: F401 - importing registers the names
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .public import API, FUNCTIONS  # noqa: F401
from .tensor import Tensor  # noqa: F401

# dtypes: numpy's dtype objects, which numpy keeps one of each: ``t.dtype is gradcli.float32``
float64 = double = _np.dtype("float64")
float32 = float = _np.dtype("float32")  # noqa: A001 - PyTorch's name for float32
int64 = long = _np.dtype("int64")
int32 = int = _np.dtype("int32")  # noqa: A001 - PyTorch's name for int32
int16, int8, uint8 = _np.dtype("int16"), _np.dtype("int8"), _np.dtype("uint8")
bool = _np.dtype("bool")  # noqa: A001 - PyTorch's name

# every public name as gradcli.NAME; gradcli.tensor is the constructor, as torch.tensor (the
# module stays reachable as sys.modules['gradcli.tensor'])
globals().update(API)
mT = ops.mT


def __getattr__(name):
    """A public name registered after import (a plugin's, a test's)."""
    try:
        return API[name]
    except KeyError:
        raise AttributeError(f"module 'gradcli' has no attribute {name!r}") from None


class linalg:  # noqa: N801 - the namespace torch.linalg
    det = staticmethod(API["det"])
    inv = staticmethod(API["inv"])
    vector_norm = staticmethod(API["norm"])
    norm = staticmethod(API["norm"])


class nn:  # noqa: N801 - the namespace torch.nn.functional
    class functional:  # noqa: N801
        softmax = staticmethod(API["softmax"])
        log_softmax = staticmethod(API["log_softmax"])
        relu = staticmethod(API["relu"])
        sigmoid = staticmethod(API["sigmoid"])
        softplus = staticmethod(API["softplus"])
        tanh = staticmethod(API["tanh"])
