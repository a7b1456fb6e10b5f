"""Finite-difference checks: ``gradcheck``, ``gradgradcheck`` (PyTorch's defaults, checks and
messages) and ``compare`` (the numbers behind ``gradcli check``).

As PyTorch's slow mode: the function runs once with gradients recorded (hooks and custom
Functions in it work), its differentiable outputs give the analytical Jacobian row by row
(``autograd.grad`` with one-hot gradients, run twice: a backward that gives different answers
the second time is reported), and the numerical Jacobian perturbs each input itself, one
element at a time, by ``±eps`` (central differences, in the output's dtype).
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import functional, grad

NONDET = (
    "Backward is not reentrant, i.e., running backward with same input and grad_output multiple times "
    "gives different values, although analytical gradient matches numerical gradient.The tolerance for "
    "nondeterminism was {tol}."
)
NO_INPUT = "gradcheck expects at least one input tensor to require gradient, but none of them have requires_grad=True."


class GradcheckError(RuntimeError):
    """The analytical and numerical derivatives differ (or the backward misbehaves)."""


def _tuple(value):
    if isinstance(value, tuple):
        return value
    if isinstance(value, list):
        return tuple(value)
    return (value,)


def _array(t):
    return t._data


def _show(array):
    """A Jacobian as PyTorch prints it in its messages (a tensor)."""
    return repr(Tensor(np.asarray(array)))


# ----------------------------------------------------------------------------------------------
# the two Jacobians


def _wanted(inputs):
    return [k for k, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]


def numerical_jacobian(fn, inputs, eps=1e-6, outputs=None):
    """``[output][input]`` arrays of shape ``(input.numel, output.numel)`` (None for an input that
    does not require grad), by central differences: each input is perturbed in place."""
    inputs = tuple(inputs)
    if outputs is None:
        outputs = _tuple(fn(*inputs))
    result = [[None] * len(inputs) for _ in outputs]
    for j in _wanted(inputs):
        x = inputs[j]
        orig = _array(x)
        flat = backend.to_numpy(orig).ravel()
        xp = backend.xp_of(orig)
        columns = [np.zeros((flat.size, int(np.prod(o.shape)))) for o in outputs]
        try:
            for k in range(flat.size):
                index = np.unravel_index(k, x.shape)
                values = []
                for step in (-eps, eps):
                    moved = flat.copy()
                    moved[k] = flat[k] + step
                    x._data = xp.asarray(moved.reshape(x.shape))
                    values.append([_value(o) for o in _tuple(fn(*inputs))])
                before, after = values
                for i, (a, b) in enumerate(zip(before, after)):
                    _same_kind(a, b, eps, tuple(int(v) for v in index))
                    columns[i][k] = np.asarray((b - a) / (2 * eps), dtype=np.float64).ravel()
        finally:
            x._data = orig
        for i in range(len(outputs)):
            result[i][j] = columns[i]
    return result


def _value(out):
    return np.array(backend.to_numpy(out._data))


def _same_kind(a, b, eps, index):
    if a.shape != b.shape:
        raise AssertionError(
            f"Expected `func` to return outputs with the same shape when inputs are perturbed "
            f"on index {index} by {eps}, but got: shapes {_size(a.shape)} and {_size(b.shape)}."
        )
    if a.dtype != b.dtype:
        raise AssertionError(
            f"Expected `func` to return outputs with the same dtype when inputs are perturbed "
            f"on index {index} by {eps}, but got: dtypes {_dtype(a.dtype)} and {_dtype(b.dtype)}."
        )


def _size(shape):
    return f"torch.Size({list(shape)})"


def _dtype(dtype):
    return f"torch.{np.dtype(dtype).name}"


def _rows(output, inputs, wanted):
    """The Jacobian of one output by rows: one backward per output element."""
    n = int(np.prod(output.shape))
    blocks = {k: np.zeros((int(np.prod(inputs[k].shape)), n)) for k in wanted}
    sizes_ok = types_ok = True
    xp = backend.xp_of(output._data)
    for e in range(n):
        seed = xp.zeros(n, dtype=output.dtype)
        seed[e] = 1
        grads = grad(
            [output],
            [inputs[k] for k in wanted],
            [Tensor(seed.reshape(output.shape))],
            retain_graph=True,
            allow_unused=True,
        )
        for k, g in zip(wanted, grads):
            if g is None:
                continue
            if tuple(g.shape) != tuple(inputs[k].shape):
                sizes_ok = False
                continue
            types_ok = types_ok and g.dtype == inputs[k].dtype
            blocks[k][:, e] = backend.to_numpy(g._data).ravel()
    return blocks, sizes_ok, types_ok


def analytical_jacobian(output, inputs, nondet_tol=0.0, check_grad_dtypes=False):
    """``{input index: array (input.numel, output.numel)}`` for one output, checked as PyTorch does:
    gradients of the input's size (and dtype), the same twice over within ``nondet_tol``."""
    wanted = _wanted(inputs)
    first, sizes_ok, types_ok = _rows(output, inputs, wanted)
    second, _, _ = _rows(output, inputs, wanted)
    reentrant = all(a.size == 0 or np.abs(a - second[k]).max() <= nondet_tol for k, a in first.items())
    if not types_ok and check_grad_dtypes:
        raise GradcheckError("Gradient has dtype mismatch")
    if not sizes_ok:
        raise GradcheckError("Analytical gradient has incorrect size")
    if not reentrant:
        raise GradcheckError(NONDET.format(tol=nondet_tol))
    return first


# ----------------------------------------------------------------------------------------------
# gradcheck and gradgradcheck


def _check_inputs(inputs):
    found = False
    for idx, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad:
            if x.dtype != np.float64:
                warnings.warn(
                    f"Input #{idx} requires gradient and is not a double precision floating point or "
                    "complex. This check will likely fail if all the inputs are not of double precision "
                    "floating point or complex. ",
                    UserWarning,
                    stacklevel=4,
                )
            found = True
    if not found:
        raise ValueError(NO_INPUT)


def gradcheck(
    func,
    inputs,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    raise_exception=True,
    nondet_tol=0.0,
    check_undefined_grad=True,
    check_grad_dtypes=False,
    check_batched_grad=False,
    check_batched_forward_grad=False,
    check_forward_ad=False,
    check_backward_ad=True,
    fast_mode=False,
    masked=None,
):
    """True when the analytical derivatives of ``func`` at ``inputs`` match central finite differences
    within ``atol + rtol * |numerical|``; else GradcheckError (or False, with ``raise_exception=False``).

    ``fast_mode`` is accepted and runs the full (slow-mode) check; ``check_forward_ad`` checks
    Jacobian-vector products (``functional.jvp``, built on reverse mode) against the numbers."""
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad to be True")
    if check_batched_grad and not check_backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to be True")
    try:
        return _gradcheck(
            func,
            _tuple(inputs),
            eps,
            atol,
            rtol,
            nondet_tol,
            check_grad_dtypes,
            check_batched_grad,
            check_forward_ad,
            check_backward_ad,
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False


def _gradcheck(
    func,
    inputs,
    eps,
    atol,
    rtol,
    nondet_tol,
    check_grad_dtypes,
    check_batched_grad,
    check_forward_ad,
    check_backward_ad,
):
    _check_inputs(inputs)
    func_out = _tuple(func(*inputs))
    outputs = tuple(o for o in func_out if o.requires_grad)
    if not outputs:
        for row in numerical_jacobian(func, inputs, eps, func_out):
            for block in row:
                if block is not None and np.count_nonzero(block):
                    raise GradcheckError("Numerical gradient for function expected to be zero")
        return True
    numerical = [row for o, row in zip(func_out, numerical_jacobian(func, inputs, eps, func_out)) if o.requires_grad]
    if check_forward_ad:
        _check_forward(func, inputs, numerical, rtol, atol)
    if not check_backward_ad:
        return True
    for i, out in enumerate(outputs):
        analytical = analytical_jacobian(out, inputs, nondet_tol, check_grad_dtypes)
        for n, (k, ana) in enumerate(analytical.items()):
            num = numerical[i][k]
            if not np.allclose(ana, num, rtol=rtol, atol=atol):
                raise GradcheckError(
                    f"Jacobian mismatch for output {i:d} with respect to input {n:d},\n"
                    f"numerical:{_show(num)}\nanalytical:{_show(ana)}\n"
                )
    if check_batched_grad:
        for i, out in enumerate(outputs):
            _check_batched(out, i, inputs, atol, rtol)
    _check_mul_by_grad_output(outputs, inputs)
    return True


def _check_forward(func, inputs, numerical, rtol, atol):
    """Jacobian-vector products along each input element against the numerical columns."""
    wanted = _wanted(inputs)
    for n, k in enumerate(wanted):
        size = int(np.prod(inputs[k].shape))
        for e in range(size):
            tangents = []
            for j in wanted:
                v = np.zeros(int(np.prod(inputs[j].shape)))
                if j == k:
                    v[e] = 1.0
                tangents.append(Tensor(v.reshape(inputs[j].shape).astype(inputs[j].dtype)))

            def restricted(*xs):
                args = list(inputs)
                for j, x in zip(wanted, xs):
                    args[j] = x
                return tuple(o for o in _tuple(func(*args)) if o.requires_grad)

            _, jv = functional.jvp(restricted, tuple(inputs[j] for j in wanted), tuple(tangents))
            for i, col in enumerate(jv):
                got = backend.to_numpy(col._data).ravel()
                num = numerical[i][k][e]
                if not np.allclose(got, num, rtol=rtol, atol=atol):
                    raise GradcheckError(
                        f"Jacobian computed with forward mode mismatch for output {i:d} with "
                        f"respect to input {n:d},\nnumerical:{_show(num)}\nanalytical:{_show(got)}\n"
                    )


def _check_batched(output, index, inputs, atol, rtol):
    """One backward with a batch of one-hot gradients (``is_grads_batched``) against one at a time."""
    wanted = _wanted(inputs)
    n = int(np.prod(output.shape))
    if n == 0:
        return
    xp = backend.xp_of(output._data)
    eye = Tensor(xp.reshape(xp.eye(n, dtype=output.dtype), (n,) + tuple(output.shape)))
    batched = grad(
        [output], [inputs[k] for k in wanted], [eye], retain_graph=True, allow_unused=True, is_grads_batched=True
    )
    expected, _, _ = _rows(output, inputs, wanted)
    for k, g in zip(wanted, batched):
        got = np.zeros_like(expected[k]) if g is None else backend.to_numpy(g._data).reshape(n, -1).T
        if not np.allclose(got, expected[k], rtol=rtol, atol=atol):
            raise GradcheckError(
                f"While computing batched gradients, got: {_show(got.T)}\n\nExpected: "
                f"{_show(expected[k].T)} (for output {index} and input {k})"
            )


def _check_mul_by_grad_output(outputs, inputs):
    wanted = _wanted(inputs)
    zeros = [Tensor(backend.xp_of(o._data).zeros(o.shape, dtype=o.dtype)) for o in outputs]
    for k, g in zip(wanted, grad(list(outputs), [inputs[k] for k in wanted], zeros, allow_unused=True)):
        if g is None:
            continue
        if np.count_nonzero(backend.to_numpy(g._data)):
            raise GradcheckError("backward not multiplied by grad_output")
        if g.dtype != inputs[k].dtype:
            raise GradcheckError("grad is incorrect type")
        if tuple(g.shape) != tuple(inputs[k].shape):
            raise GradcheckError("grad is incorrect size")


def _gradient_function(func, inputs, grad_outputs):
    """``(inputs, grad_outputs) -> the gradients of func``: what gradgradcheck differentiates."""
    n_out = len(grad_outputs)
    wanted = set(_wanted(inputs))

    def gradients(*args):
        xs, gos = args[:-n_out], args[-n_out:]
        outs = tuple(o for o in _tuple(func(*xs)) if o.requires_grad)
        grads = grad(outs, [x for i, x in enumerate(xs) if i in wanted], gos, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradients


def _random_grad_outputs(func, inputs):
    """Uniform in [-1, 1), one per differentiable output (seeded: the same every run)."""
    rng = np.random.default_rng(0)
    outs = [o for o in _tuple(func(*inputs)) if o.requires_grad]
    return tuple(
        Tensor(
            backend.xp_of(o._data).asarray(
                rng.uniform(-1.0, 1.0, o.shape), dtype=o.dtype if o.dtype.kind == "f" else np.float64
            )
        ).requires_grad_(True)
        for o in outs
    )


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    gen_non_contig_grad_outputs=False,
    raise_exception=True,
    nondet_tol=0.0,
    check_undefined_grad=True,
    check_grad_dtypes=False,
    check_batched_grad=False,
    check_fwd_over_rev=False,
    check_rev_over_rev=True,
    fast_mode=False,
    masked=False,
):
    """gradcheck of the gradient of ``func``: second derivatives, with respect to the inputs and to the
    gradients fed to the outputs (random in [-1, 1) when ``grad_outputs`` is None)."""
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError("Expected at least one of check_fwd_over_rev or check_rev_over_rev to be True")
    inputs = _tuple(inputs)
    grad_outputs = _random_grad_outputs(func, inputs) if grad_outputs is None else _tuple(grad_outputs)
    return gradcheck(
        _gradient_function(func, inputs, grad_outputs),
        inputs + grad_outputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        check_grad_dtypes=check_grad_dtypes,
        check_batched_grad=check_batched_grad,
        check_forward_ad=check_fwd_over_rev,
        check_backward_ad=check_rev_over_rev,
    )


# ----------------------------------------------------------------------------------------------
# the numbers behind ``gradcli check``


def _differences(fn, inputs, eps):
    func_out = _tuple(fn(*inputs))
    numerical = numerical_jacobian(fn, inputs, eps, func_out)
    pairs = []
    for i, out in enumerate(func_out):
        analytical = analytical_jacobian(out, inputs, nondet_tol=np.inf) if out.requires_grad else {}
        for j, num in enumerate(numerical[i]):
            if num is not None:
                pairs.append((i, j, num, analytical.get(j, np.zeros_like(num))))
    return pairs


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
