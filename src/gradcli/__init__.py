"""gradcli: a command-line expression differentiator with PyTorch's autograd semantics.

The engine is a library with PyTorch's names: ``import gradcli as torch`` runs PyTorch code
that uses tensors, autograd, ``no_grad``, custom ``Function`` and ``autograd.functional``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import autograd, backend, ops
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .ops import (FUNCTIONS, arange, as_tensor, from_numpy, eye, full, is_tensor, linspace, manual_seed, numel, ones, ones_like,
                  rand, rand_like, randn, randn_like, tensor, zeros, zeros_like)
from .tensor import Tensor

float32 = "float32"
float64 = "float64"
double = "float64"
float = "float32"  # noqa: A001 - PyTorch's name for float32

# every function of the op table, and the extra PyTorch names, as gradcli.NAME
for _name, _function in FUNCTIONS.items():
    globals().setdefault(_name, _function)
for _name in ("t", "permute", "mv", "mm", "expand_as", "mT", "select"):
    globals().setdefault(_name, getattr(ops, _name))
del _name, _function


class linalg:  # noqa: N801 - the namespace torch.linalg
    det = staticmethod(ops.det)
    inv = staticmethod(ops.inv)
    vector_norm = staticmethod(ops.norm)
    norm = staticmethod(ops.norm)


class nn:  # noqa: N801 - the namespace torch.nn.functional
    class functional:  # noqa: N801
        softmax = staticmethod(ops.softmax)
        log_softmax = staticmethod(ops.log_softmax)
        relu = staticmethod(ops.relu)
        sigmoid = staticmethod(ops.sigmoid)
        softplus = staticmethod(ops.softplus)
        tanh = staticmethod(ops.tanh)
