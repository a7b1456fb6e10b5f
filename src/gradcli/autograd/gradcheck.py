"""Finite-difference checks: ``gradcheck``, ``gradgradcheck`` (PyTorch's defaults) and ``compare``
(the numbers behind ``gradcli check``).

The numerical Jacobian uses central differences on a float64 copy of each input; the
analytical one comes from one backward pass per output element (plain, not batched, so it
checks the path ``backward`` uses).
"""
from __future__ import annotations

import sys
import types

import numpy as np

from .. import backend
from .grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    """The analytical and numerical Jacobians differ."""


def _tuple(value):
    from ..tensor import Tensor
    return (value,) if isinstance(value, Tensor) else tuple(value)


def _outputs(fn, inputs):
    with no_grad():
        outs = _tuple(fn(*inputs))
    return [backend.to_numpy(o.data).astype(np.float64).ravel() for o in outs]


def numerical_jacobian(fn, inputs, eps=1e-6):
    """``[output][input]`` arrays of shape ``(input.numel, output.numel)`` by central differences."""
    from ..tensor import Tensor
    inputs = list(inputs)
    base = _outputs(fn, inputs)
    result = [[None] * len(inputs) for _ in base]
    for j, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        flat = backend.to_numpy(x.data).astype(np.float64).ravel()
        columns = [np.zeros((flat.size, b.size)) for b in base]
        xp = backend.xp_of(x.data)
        for k in range(flat.size):
            values = []
            for step in (eps, -eps):
                moved = flat.copy()
                moved[k] += step
                inputs[j] = Tensor(xp.asarray(moved.reshape(x.shape), dtype=x.dtype)).requires_grad_(True)
                values.append(_outputs(fn, inputs))
            for i in range(len(base)):
                columns[i][k] = (values[0][i] - values[1][i]) / (2 * eps)
        inputs[j] = x
        for i in range(len(base)):
            result[i][j] = columns[i]
    return result


def analytical_jacobian(fn, inputs, create_graph=False):
    """``[output][input]`` arrays of shape ``(input.numel, output.numel)``, one backward per output element."""
    from ..tensor import Tensor
    from . import grad
    wanted = [k for k, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad():
        outs = _tuple(fn(*inputs))
        result = [[None] * len(inputs) for _ in outs]
        for i, out in enumerate(outs):
            n = int(out.data.size)
            for k in wanted:
                result[i][k] = np.zeros((int(inputs[k].data.size), n))
            if not out.requires_grad:
                continue
            xp = backend.xp_of(out.data)
            for e in range(n):
                seed = xp.zeros(n, dtype=out.dtype)
                seed[e] = 1
                grads = grad([out], [inputs[k] for k in wanted], [Tensor(seed.reshape(out.shape))],
                             retain_graph=True, allow_unused=True)
                for k, g in zip(wanted, grads):
                    if g is not None:
                        result[i][k][:, e] = backend.to_numpy(g.data).ravel()
    return result


def _differences(fn, inputs, eps):
    numerical = numerical_jacobian(fn, inputs, eps)
    analytical = analytical_jacobian(fn, inputs)
    pairs = []
    for i, row in enumerate(numerical):
        for j, num in enumerate(row):
            if num is not None:
                pairs.append((i, j, num, analytical[i][j]))
    return pairs


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, check_batched_grad=False,
              **_ignored):
    """True when analytical gradients match central finite differences within ``atol + rtol * |numerical|``."""
    inputs = _tuple(inputs)
    for i, j, num, ana in _differences(func, inputs, eps):
        if not np.allclose(ana, num, rtol=rtol, atol=atol):
            if raise_exception:
                raise GradcheckError(f"Jacobian mismatch for output {i} with respect to input {j},\n"
                                     f"numerical:{num}\nanalytical:{ana}\n")
            return False
    if check_batched_grad and not _batched_agrees(func, inputs, atol, rtol):
        if raise_exception:
            raise GradcheckError("batched gradients (is_grads_batched=True) differ from one-by-one gradients")
        return False
    return True


def _batched_agrees(func, inputs, atol, rtol):
    from . import functional
    jac = functional.jacobian(func, tuple(inputs))
    ana = analytical_jacobian(func, inputs)
    outs = jac if isinstance(jac[0], tuple) else (jac,)
    for i, row in enumerate(outs):
        for j, block in enumerate(row):
            if ana[i][j] is None:
                continue
            n_in = int(inputs[j].data.size)
            got = backend.to_numpy(block.data).reshape(-1, n_in).T
            if not np.allclose(got, ana[i][j], rtol=rtol, atol=atol):
                return False
    return True


def _gradient_function(func, inputs, grad_outputs):
    """``(inputs, grad_outputs) -> the gradients of func``: what gradgradcheck differentiates."""
    from ..tensor import Tensor
    from . import grad
    n = len(inputs)

    def gradients(*args):
        with enable_grad():     # also when called under no_grad by the numerical Jacobian
            return _gradients(*args)

    def _gradients(*args):
        xs, gos = args[:n], args[n:]
        outs = _tuple(func(*xs))
        used = [(o, go) for o, go in zip(outs, gos) if o.requires_grad]
        wanted = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        grads = grad([o for o, _ in used], wanted, [go for _, go in used], create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)
    return gradients


def _random_grad_outputs(func, inputs):
    from ..tensor import Tensor
    with enable_grad():
        outs = _tuple(func(*inputs))
    rng = np.random.default_rng(0)
    return tuple(Tensor(backend.xp_of(o.data).asarray(rng.standard_normal(o.shape), dtype=o.dtype)).requires_grad_(True)
                 for o in outs)


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
                  **_ignored):
    """gradcheck of the gradient of ``func`` (second derivatives)."""
    inputs = _tuple(inputs)
    if grad_outputs is None:
        grad_outputs = _random_grad_outputs(func, inputs)
    grad_outputs = _tuple(grad_outputs)
    return gradcheck(_gradient_function(func, inputs, grad_outputs), inputs + grad_outputs, eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception)


def compare(fn, inputs, order=1, eps=1e-6, atol=1e-5, rtol=1e-3) -> dict:
    """Largest absolute and relative differences between analytical and numerical derivatives of
    ``fn`` (``order=2``: of its gradient too), and whether they are within tolerance."""
    inputs = _tuple(inputs)
    checks = [(fn, inputs)]
    if order >= 2:
        gos = _random_grad_outputs(fn, inputs)
        checks.append((_gradient_function(fn, inputs, gos), inputs + gos))
    worst_abs = worst_rel = 0.0
    ok = True
    for f, args in checks:
        for _, _, num, ana in _differences(f, args, eps):
            diff = np.abs(ana - num)
            if diff.size:
                worst_abs = max(worst_abs, float(np.nanmax(diff)) if not np.isnan(diff).all() else float("nan"))
                rel = diff / np.maximum(np.abs(num), 1e-12)
                worst_rel = max(worst_rel, float(np.nanmax(rel)) if not np.isnan(rel).all() else float("nan"))
            ok = ok and bool(np.allclose(ana, num, rtol=rtol, atol=atol))
    return {"ok": ok, "max_abs_error": worst_abs, "max_rel_error": worst_rel}


class _CallableModule(types.ModuleType):
    """``gradcli.autograd.gradcheck`` is both this module and, called, the function (as in PyTorch)."""

    def __call__(self, *args, **kwargs):
        return gradcheck(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
