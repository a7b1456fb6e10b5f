"""``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``hvp``, ``vhp`` — PyTorch's signatures, built on ``grad``.

Jacobians are always vectorized: one backward pass whose gradient carries a leading batch
dimension (the identity matrix, ``is_grads_batched=True``) gives every row at once.
``vectorize`` is accepted for compatibility and changes nothing but speed in PyTorch.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from . import grad as _grad
from .grad_mode import enable_grad


def _as_tuple(value, arg, fn):
    from ..tensor import Tensor
    if isinstance(value, Tensor):
        return False, (value,)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"The {arg} given to {fn} must be either a Tensor or a tuple of Tensors but the "
                        f"value given has type {type(value).__name__}.")
    for i, v in enumerate(value):
        if not isinstance(v, Tensor):
            raise TypeError(f"The {arg} given to {fn} must be either a Tensor or a tuple of Tensors but the "
                            f"element {i} of the tuple has type {type(v).__name__}.")
    return True, tuple(value)


def _prepare(inputs, create_graph):
    """Fresh leaves that require grad (kept attached to their graph when ``create_graph``)."""
    from ..tensor import Tensor
    out = []
    for x in inputs:
        if create_graph and x.requires_grad:
            out.append(x.view(*x.shape) if x.shape else x * 1.0)
        else:
            out.append(Tensor(x.data).requires_grad_(True))
    return tuple(out)


def _finish(values, create_graph):
    from ..tensor import Tensor
    return tuple(v if create_graph or v is None else Tensor(v.data) for v in values)


def _zeros(shape, like):
    from ..tensor import Tensor
    xp = backend.xp_of(like.data)
    return Tensor(xp.zeros(tuple(shape), dtype=like.dtype))


def _fill(grads, inputs, strict, what):
    out = []
    for i, (g, x) in enumerate(zip(grads, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent of input {i}. "
                                   f"This is not allowed in strict mode{what}.")
            g = _zeros(x.shape, x)
        out.append(g)
    return tuple(out)


def _input_vector(v, inputs, fn):
    """``v`` for jvp/vhp/hvp as a tuple; ones when left out (only for a single one-element input)."""
    if v is not None:
        return _as_tuple(v, "v", fn)[1]
    if any(x.data.size != 1 for x in inputs):
        raise RuntimeError("The vector v can only be None if the input to the user-provided function is a "
                           "single Tensor with a single element.")
    return tuple(_zeros(x.shape, x) + 1.0 for x in inputs)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``."""
    with enable_grad():
        is_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph)
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        if v is not None:
            _, v = _as_tuple(v, "v", "vjp")
        elif any(o.data.size != 1 for o in outputs):
            raise RuntimeError("The vector v can only be None if the user-provided function returns a single "
                               "Tensor with a single element.")
        used = [o for o in outputs if o.requires_grad]
        vs = None if v is None else [vv for o, vv in zip(outputs, v) if o.requires_grad]
        grads = (_grad(used, inputs, vs, create_graph=create_graph, retain_graph=True, allow_unused=True)
                 if used else (None,) * len(inputs))
        grads = _fill(grads, inputs, strict, "")
    outputs = _finish(outputs, create_graph)
    grads = _finish(grads, create_graph)
    return (outputs if out_tuple else outputs[0]), (grads if is_tuple else grads[0])


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)`` by the double-backward trick (two reverse passes)."""
    from ..tensor import Tensor
    with enable_grad():
        is_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph)
        v = _input_vector(v, inputs, "jvp")
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        dummies = tuple(Tensor(backend.xp_of(o.data).zeros(o.shape, dtype=o.dtype)).requires_grad_(True)
                        for o in outputs)
        used = [(o, d) for o, d in zip(outputs, dummies) if o.requires_grad]
        if used:
            grads = _grad([o for o, _ in used], inputs, [d for _, d in used], create_graph=True, allow_unused=True)
        else:
            grads = (None,) * len(inputs)
        pairs = [(g, vv) for g, vv in zip(grads, v) if g is not None and g.requires_grad]
        if pairs:
            result = _grad([g for g, _ in pairs], [d for _, d in used], [vv for _, vv in pairs],
                           create_graph=create_graph, allow_unused=True)
            found = iter(result)
            result = [next(found) if o.requires_grad else None for o in outputs]
        else:
            result = [None] * len(outputs)
        result = tuple(r if r is not None else _zeros(o.shape, o) for r, o in zip(result, outputs))
    outputs = _finish(outputs, create_graph)
    result = _finish(result, create_graph)
    return (outputs if out_tuple else outputs[0]), (result if out_tuple else result[0])


def _identity(n, out):
    from ..tensor import Tensor
    xp = backend.xp_of(out.data)
    return Tensor(xp.reshape(xp.eye(n, dtype=out.dtype), (n,) + tuple(out.shape)))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """d func(inputs) / d inputs: for each output and input, an array of shape
    ``output.shape + input.shape`` (nested tuples as PyTorch returns them)."""
    if strategy != "reverse-mode":
        raise ValueError("only strategy='reverse-mode' is implemented")
    with enable_grad():
        is_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _prepare(inputs, create_graph)
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jacobian")
        rows = []
        for i, out in enumerate(outputs):
            n = int(np.prod(out.shape))
            if out.requires_grad and n:
                grads = _grad([out], inputs, [_identity(n, out)], retain_graph=True, create_graph=create_graph,
                              allow_unused=True, is_grads_batched=True)
            else:
                grads = (None,) * len(inputs)
            row = []
            for j, (g, x) in enumerate(zip(grads, inputs)):
                shape = tuple(out.shape) + tuple(x.shape)
                if g is None:
                    if strict:
                        raise RuntimeError(f"Output {i} of the user-provided function is independent of input "
                                           f"{j}. This is not allowed in strict mode.")
                    g = _zeros(shape, x)
                else:
                    g = g.reshape(shape)
                row.append(g if create_graph else g.detach())
            rows.append(tuple(row))
    if out_tuple:
        return tuple(r if is_tuple else r[0] for r in rows)
    return rows[0] if is_tuple else rows[0][0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """Second derivatives of a scalar ``func``: one block ``a.shape + b.shape`` per pair of inputs."""
    is_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        out = func(*xs)
        _, outs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        if len(outs) != 1 or outs[0].data.size != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor with one element.")
        out = outs[0].reshape(())
        if not out.requires_grad:
            return tuple(_zeros(x.shape, x) for x in xs)
        grads = _grad([out], xs, create_graph=True, allow_unused=True)
        return _fill(grads, xs, strict, " (hessian)")

    result = jacobian(gradient, inputs, create_graph=create_graph, strict=strict)
    if is_tuple:
        return result
    return result[0][0]


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)`` for a scalar ``func``."""
    with enable_grad():
        is_tuple, inputs = _as_tuple(inputs, "inputs", "vhp")
        inputs = _prepare(inputs, create_graph)
        v = _input_vector(v, inputs, "vhp")
        out = func(*inputs)
        if out.data.size != 1:
            raise RuntimeError("The function given to hvp / vhp should return a single Tensor with one element.")
        if out.requires_grad:
            grads = _grad([out], inputs, create_graph=True, allow_unused=True)
        else:
            grads = (None,) * len(inputs)
        pairs = [(g, vv) for g, vv in zip(grads, v) if g is not None and g.requires_grad]
        if pairs:
            result = _grad([g for g, _ in pairs], inputs, [vv for _, vv in pairs], create_graph=create_graph,
                           allow_unused=True)
        else:
            result = (None,) * len(inputs)
        result = _fill(result, inputs, strict, "")
    result = _finish(result, create_graph)
    out = out if create_graph else out.detach()
    return out, (result if is_tuple else result[0])


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)``; the Hessian of a twice-differentiable function is symmetric, so this is
    ``vhp`` (one double-backward pass, as PyTorch recommends)."""
    return vhp(func, inputs, v, create_graph, strict)
