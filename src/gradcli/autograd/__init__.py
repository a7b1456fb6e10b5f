"""``gradcli.autograd``: ``backward``, ``grad``, ``Function``, grad modes, ``functional``, ``gradcheck``."""

from __future__ import annotations

import importlib
import warnings

from .. import backend
from .. import tensor as _tensor
from ..tensor import Tensor, ones, zeros
from . import grad_mode
from .engine import AnomalyError, execute
from .function import Function, FunctionCtx
from .grad_mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .graph import AccumulateGrad, Node

__all__ = [
    "backward",
    "grad",
    "Function",
    "FunctionCtx",
    "Node",
    "AccumulateGrad",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "detect_anomaly",
    "functional",
    "gradcheck",
    "gradgradcheck",
    "AnomalyError",
    "is_grad_enabled",
    "set_detect_anomaly",
]

NO_GRAD_FN = "element {i} of tensors does not require grad and does not have a grad_fn"
CREATE_GRAPH = (
    "Using backward() with create_graph=True will create a reference cycle between the parameter and "
    "its gradient which can cause a memory leak. We recommend using autograd.grad when creating the "
    "graph to avoid this. If you have to use this function, make sure to reset the .grad fields of "
    "your parameters to None after use to break the cycle and avoid the leak."
)
_warned = []  # PyTorch warns once per process
UNUSED = (
    "One of the differentiated Tensors appears to not have been used in the graph. Set "
    "allow_unused=True if this is the desired behavior."
)


def _tensors(value, what):
    if value is None:
        return []
    if isinstance(value, Tensor):
        return [value]
    items = list(value)
    for item in items:
        if item is not None and not isinstance(item, Tensor):
            raise TypeError(f"{what} must be Tensors, got {type(item).__name__}")
    return items


def _seeds(outputs, grad_outputs, batched):
    """One gradient per output: the given one, or ones for a scalar output (PyTorch's rules)."""
    if len(grad_outputs) not in (0, len(outputs)):
        raise RuntimeError(f"grad requires one gradient per output: got {len(grad_outputs)} for {len(outputs)} outputs")
    seeds = []
    for i, out in enumerate(outputs):
        given = grad_outputs[i] if grad_outputs else None
        if not out.requires_grad:
            raise RuntimeError(NO_GRAD_FN.format(i=i))
        if given is None:
            if batched:
                raise RuntimeError("is_grads_batched=True needs grad_outputs")
            if out._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            given = ones(out.shape, out.dtype, out.device)
        elif not isinstance(given, Tensor):
            given = Tensor(backend.xp_of(out._data).asarray(given, dtype=out.dtype))
        else:
            expected = tuple(out.shape)
            got = tuple(given.shape)[1:] if batched else tuple(given.shape)
            if got != expected:
                if batched:
                    raise RuntimeError(
                        f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(given.shape)}"
                        f" and output[{i}] has a shape of {expected}. If you are using "
                        f"is_grads_batched=True, the first dimension is the batch dimension."
                    )
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {got} and "
                    f"output[{i}] has a shape of {expected}."
                )
        seeds.append(given)
    return seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves they depend on."""
    outputs = _tensors(tensors, "tensors")
    seeds = _seeds(outputs, _tensors(grad_tensors, "grad_tensors"), False)
    if retain_graph is None:
        retain_graph = create_graph
    if create_graph and not _warned:
        _warned.append(True)
        warnings.warn(CREATE_GRAPH, UserWarning, stacklevel=3)
    capture = None
    if inputs is not None:
        inputs = _tensors(inputs, "inputs")
        if not inputs:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
        for t in inputs:
            if t.grad_fn is not None:  # a non-leaf input keeps its gradient in .grad, as PyTorch's
                t.retain_grad()
        capture = ([t._edge() for t in inputs], True)
    execute([t._edge() for t in outputs], seeds, retain_graph=retain_graph, create_graph=create_graph, capture=capture)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    only_inputs=True,
    allow_unused=None,
    is_grads_batched=False,
    materialize_grads=False,
):
    """The gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated)."""
    outs = _tensors(outputs, "outputs")
    ins = _tensors(inputs, "inputs")
    if not ins:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    if allow_unused is None:
        allow_unused = materialize_grads
    if materialize_grads and not allow_unused:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True")
    for t in ins:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    seeds = _seeds(outs, _tensors(grad_outputs, "grad_outputs"), is_grads_batched)
    if retain_graph is None:
        retain_graph = create_graph
    edges = [t._edge() for t in ins]
    found = execute(
        [t._edge() for t in outs],
        seeds,
        retain_graph=retain_graph,
        create_graph=create_graph,
        capture=(edges, False),
        nbatch=1 if is_grads_batched else 0,
    )
    result = []
    for t, g in zip(ins, found):
        if g is None:
            if not allow_unused:
                raise RuntimeError(UNUSED)
            if materialize_grads:
                batch = tuple(seeds[0].shape[:1]) if is_grads_batched else ()
                g = zeros(batch + tuple(t.shape), t.dtype, t.device)
                if create_graph:  # differentiable again, as PyTorch's
                    g.requires_grad_(True)
        result.append(g)
    return tuple(result)


_tensor.register_backward(backward)


def set_detect_anomaly(mode: bool):
    grad_mode.state.anomaly = bool(mode)


def __getattr__(name):
    """``functional`` and ``gradcheck`` are imported on first use (start-up time)."""
    if name == "functional":
        return importlib.import_module(__name__ + ".functional")
    if name in ("gradcheck", "gradgradcheck"):
        module = importlib.import_module(__name__ + ".gradcheck")  # callable: gradcheck(fn, inputs)
        return module if name == "gradcheck" else module.gradgradcheck
    raise AttributeError(f"module 'gradcli.autograd' has no attribute {name!r}")
