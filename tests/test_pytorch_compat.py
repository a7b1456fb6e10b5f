"""PyTorch compatibility beyond the op sweep: values at kinks, gradcheck's and the functional API's
checks and messages, ``grad``/``backward`` argument errors (issue 10).

Each *scenario* is a function of the module ``T`` (``gradcli`` or ``torch``) that returns what it
observed (values, flags, error types and messages).  The ideas come from PyTorch's autograd and
functional test suites; the code is this project's.  Every scenario is compared with torch live
(skipped without torch) and with ``tests/golden/compat.json`` (written by
``scripts/make_golden.py``), which runs everywhere.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import gradcli as G

GOLDEN = Path(__file__).resolve().parent / "golden" / "compat.json"
SCENARIOS: dict = {}


def scenario(fn):
    SCENARIOS[fn.__name__.removeprefix("s_")] = fn
    return fn


# ----------------------------------------------------------------------------------------------
# observing


def enc(value):
    """JSON-safe observation: tensors as nested lists; nan and ±inf spelled out."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v != v:
            return "nan"
        if v in (math.inf, -math.inf):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, dict):
        return {k: enc(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [enc(v) for v in value]
    if hasattr(value, "detach"):  # a tensor of gradcli or torch
        return enc(np.asarray(value.detach().numpy(), dtype=float).tolist())
    raise TypeError(f"cannot observe {type(value).__name__}")


def error(fn, first_line=False):
    """``[type name, message]`` of what ``fn()`` raises (None if it returns)."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the observation is the exception
        message = str(exc).split("\n")[0] if first_line else str(exc)
        return [type(exc).__name__, message]
    return None


def t(T, data, requires_grad=False):
    return T.tensor(data, dtype=T.float64, requires_grad=requires_grad)


def grads(T, f, *arrays, second=False):
    """``f``'s output and the gradient of its sum (and, with ``second``, the gradient of the sum of
    those gradients: second derivatives through create_graph)."""
    xs = [t(T, a, True) for a in arrays]
    out = f(*xs)
    gs = T.autograd.grad(out.sum(), xs, create_graph=second, allow_unused=True)
    result = {"out": out, "grads": list(gs)}
    if second:
        total = sum(g.sum() for g in gs if g is not None and g.requires_grad)
        if isinstance(total, int):
            result["second"] = None
        else:
            result["second"] = list(T.autograd.grad(total, xs, allow_unused=True))
    return result


# ----------------------------------------------------------------------------------------------
# values at kinks: what PyTorch defines there

NAN, INF = float("nan"), float("inf")


@scenario
def s_prod_with_zeros(T):
    return {
        "one zero": grads(T, lambda x: x.prod(), [2.0, 0.0, 3.0], second=True),
        "two zeros": grads(T, lambda x: x.prod(), [2.0, 0.0, 0.0, 5.0], second=True),
        "no zero": grads(T, lambda x: x.prod(), [2.0, -1.5, 3.0], second=True),
        "dim 0": grads(T, lambda x: x.prod(0), [[2.0, 0.0], [0.0, 3.0], [4.0, 0.0]], second=True),
        "dim 1 keepdim": grads(T, lambda x: x.prod(1, keepdim=True), [[2.0, 0.0, 5.0], [1.0, 3.0, 2.0]], second=True),
        "dim -1 of 3-d": grads(T, lambda x: x.prod(-1), [[[0.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]]]),
        "0-d zero": grads(T, lambda x: x.prod(), 0.0),
        "all zeros": grads(T, lambda x: x.prod(), [0.0, 0.0], second=True),
    }


@scenario
def s_norm_at_zero(T):
    out = {f"p={p}": grads(T, lambda x, p=p: T.norm(x, p), [0.0, 0.0, 0.0]) for p in (2, 1, 3, 1.5, 0.5, INF)}
    out["dim"] = grads(T, lambda x: T.norm(x, 2, 1), [[0.0, 0.0], [3.0, 4.0]])
    out["linalg"] = grads(T, lambda x: T.linalg.vector_norm(x), [0.0, 0.0])
    out["away from 0"] = grads(T, lambda x: T.norm(x, 3), [1.0, -2.0, 0.5], second=True)
    return out


@scenario
def s_pow_at_zero(T):
    return {
        "x.pow(0)": grads(T, lambda x: x.pow(0), [0.0, 1.0, -2.0], second=True),
        "x.pow(0.5) at 0": grads(T, lambda x: x.pow(0.5), [0.0]),
        "x.pow(-1) at 0": grads(T, lambda x: x.pow(-1), [0.0]),
        "x.pow(3) at 0": grads(T, lambda x: x.pow(3), [0.0], second=True),
        "zeros ** b": grads(T, lambda b: T.zeros(3, dtype=T.float64) ** b, [-1.0, 0.0, 1.0]),
        "0 ** b": grads(T, lambda b: 0**b, [-1.0, 0.0, 1.0]),
        "0.0 ** b": grads(T, lambda b: 0.0**b, [-1.0, 0.0, 2.0]),
        "(-2) ** b": grads(T, lambda b: (-2.0) ** b, [2.0, 0.5]),
        "2 ** b": grads(T, lambda b: 2.0**b, [-1.0, 0.0, 1.5], second=True),
        "x ** x": grads(T, lambda x: x**x, [0.0, 1.0, 2.0]),
        "x ** y at 0": grads(T, lambda x, y: x**y, [0.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 0.5]),
        "negative base": grads(T, lambda x, y: x**y, [-1.0, -2.0], [2.0, 3.0]),
    }


@scenario
def s_atan2_at_origin(T):
    origin = grads(T, lambda y, x: T.atan2(y, x), [0.0, 0.0], [0.0, -0.0])
    signs = [[math.copysign(1.0, v) for v in g.tolist()] for g in origin["grads"]]
    return {
        "origin": origin,
        "signs of the zeros": signs,
        "elsewhere": grads(T, lambda y, x: T.atan2(y, x), [1.0, -2.0], [0.5, 0.0], second=True),
    }


@scenario
def s_max_min_nan(T):
    return {
        "max all nan": grads(T, lambda x: x.max(), [NAN, NAN]),
        "min all nan": grads(T, lambda x: x.min(), [NAN, NAN, NAN]),
        "max one nan": grads(T, lambda x: x.max(), [NAN, 1.0, 2.0]),
        "min one nan": grads(T, lambda x: T.min(x), [3.0, NAN]),
        "amax all nan": grads(T, lambda x: x.amax(), [NAN, NAN]),
        "max ties": grads(T, lambda x: x.max(), [1.0, 3.0, 3.0]),
        "maximum ties": grads(T, lambda x, y: T.maximum(x, y), [1.0, 2.0], [1.0, 3.0]),
    }


@scenario
def s_var_std_small(T):
    return {
        "std biased 1": grads(T, lambda x: x.std(unbiased=False), [3.0]),
        "var biased 1": grads(T, lambda x: x.var(unbiased=False), [3.0]),
        "std unbiased 1": grads(T, lambda x: x.std(), [3.0]),
        "var unbiased 1": grads(T, lambda x: x.var(), [3.0]),
        "std constant": grads(T, lambda x: x.std(), [2.0, 2.0, 2.0]),
        "std dim constant row": grads(T, lambda x: x.std(1), [[1.0, 1.0], [1.0, 3.0]]),
        "var correction 0 dim": grads(T, lambda x: x.var(0, unbiased=False), [[1.0, 2.0]]),
        "var": grads(T, lambda x: x.var(), [1.0, 2.0, 4.0], second=True),
    }


@scenario
def s_select(T):
    x = T.arange(12.0, dtype=T.float64).reshape(3, 4)
    v = T.arange(4.0, dtype=T.float64)
    return {
        "dim 0": T.select(x, 0, 1),
        "dim 1": T.select(x, 1, 1),
        "dim -1": T.select(x, -1, 2),
        "negative index": T.select(x, 0, -1),
        "1-d": T.select(v, 0, 2),
        "method": x.select(1, -1),
        "grad": grads(T, lambda a: T.select(a, 0, 1) * T.select(a, 1, 0), [[1.0, 2.0], [3.0, 4.0]], second=True),
        "index error": error(lambda: T.select(v, 0, 5)),
        "dim error": error(lambda: T.select(v, 1, 0)),
        "0-d error": error(lambda: T.select(t(T, 1.0), 0, 0)),
    }


@scenario
def s_edge_values_of_every_elementwise_op(T):
    """Every elementwise function of the table at 0, -0, ±1, ±2, 0.5, ±inf and nan; the binary ones
    at ties, zeros, infinities and nan: values and first derivatives."""
    import gradcli.ops

    points = [0.0, -0.0, 1.0, -1.0, INF, -INF, NAN, 2.0, -2.0, 0.5]
    out = {}
    for name in gradcli.ops.UNARY_OPS:
        f = T.nn.functional.softplus if name == "softplus" else getattr(T, name)
        out[name] = grads(T, f, points)
    a = [0.0, 0.0, 1.0, -1.0, 2.0, INF, 0.0, NAN, 2.0, -2.0]
    b = [0.0, 1.0, 1.0, -1.0, 2.0, 0.0, INF, 1.0, -0.5, 0.5]
    for name, f in {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "pow": lambda x, y: x**y,
        "maximum": T.maximum,
        "minimum": T.minimum,
        "atan2": T.atan2,
    }.items():
        out[name] = grads(T, f, a, b)
    return out


@scenario
def s_edge_values_of_reductions(T):
    reductions = {
        "sum": lambda x: x.sum(),
        "mean": lambda x: x.mean(),
        "prod": lambda x: x.prod(),
        "amax": lambda x: x.amax(),
        "max": lambda x: x.max(),
        "norm": lambda x: x.norm(),
        "norm 1": lambda x: x.norm(1),
        "norm inf": lambda x: x.norm(INF),
        "logsumexp": lambda x: x.logsumexp(0),
        "var": lambda x: x.var(),
        "std": lambda x: x.std(),
        "softmax": lambda x: x.softmax(0)[0],
        "log_softmax": lambda x: x.log_softmax(0)[0],
        "clamp": lambda x: x.clamp(0.0, 1.0).sum(),
    }
    out = {}
    for label, data in {
        "zeros": [0.0, 0.0, 0.0],
        "ties": [1.0, 1.0, 1.0],
        "inf": [INF, 1.0, 2.0],
        "two -inf": [-INF, -INF, 1.0],
        "nan": [NAN, 1.0, 2.0],
        "zeros and one": [0.0, 1.0, 0.0],
    }.items():
        out[label] = {name: grads(T, f, data) for name, f in reductions.items()}
    return out


# ----------------------------------------------------------------------------------------------
# gradcheck and gradgradcheck


def _custom(T, backward, double=None):
    """A Function computing 2 * x whose backward is ``backward(ctx, g, x)``."""

    class Twice(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return backward(ctx, g, x)

    return Twice


@scenario
def s_gradcheck_checks(T):
    gc, ggc = T.autograd.gradcheck, T.autograd.gradgradcheck
    x = t(T, [[1.0, 2.0], [3.0, 4.0]], True)
    counter = [0]

    def drifting(ctx, g, x):
        counter[0] += 1
        return g * (2.0 + counter[0] * 1e-9)

    def hooked(a):
        y = a * 3.0
        y.register_hook(lambda g: counter.append(g))
        return y.sum() + (a * a).sum()

    return {
        "passes": gc(lambda a: (a.sin() * a).sum(dim=0), (x,)),
        "tensor not tuple": gc(lambda a: a.exp(), x),
        "list output": gc(lambda a: [a * 2.0, a.sum()], (x,)),
        "no input requires grad": error(lambda: gc(lambda a: a * 2.0, (x.detach(),))),
        "shape changes": error(lambda: gc(lambda a: a.sum(0) if a[0, 0] > 1 else a, (x,))),
        "dtype changes": error(lambda: gc(lambda a: a.float() if a[0, 0] > 1 else a, (x,))),
        "nondeterministic": error(lambda: gc(_custom(T, drifting).apply, (x,)), first_line=True),
        "nondet_tol": gc(_custom(T, drifting).apply, (x,), nondet_tol=1e-6),
        "wrong backward": error(lambda: gc(_custom(T, lambda ctx, g, x: g * 0.0 + 2.0).apply, (x,)), first_line=True),
        "raise_exception=False": gc(_custom(T, lambda ctx, g, x: g * 3.0).apply, (x,), raise_exception=False),
        "not multiplied by grad_output": error(
            lambda: gc(_custom(T, lambda ctx, g, x: g * 0.0 + 2.0).apply, (x,), atol=10.0)
        ),
        "numerical expected zero": error(lambda: gc(lambda a: (a * 2.0).detach(), (x,))),
        "zero function": gc(lambda a: (a * 0.0).detach(), (x,)),
        "hook inside": gc(hooked, (x,)),
        "input perturbed itself": gc(lambda a: a * x, (x,)),
        "non-tensor output": error(lambda: gc(lambda a: (a * 2.0, 3), (x,))),
        "gradgradcheck": ggc(lambda a: (a**3).sum(), (x,)),
        "gradgradcheck with outputs": ggc(lambda a: a.tanh() * a, (x,), (t(T, [[0.5, -1.0], [2.0, 1.0]], True),)),
        "gradgradcheck wrong": ggc(
            _custom(T, lambda ctx, g, x: g * 2.0 * (x / x.detach())).apply, (x,), raise_exception=False
        ),
        "gradgradcheck wrong message": error(
            lambda: ggc(_custom(T, lambda ctx, g, x: g * 2.0 * (x / x.detach())).apply, (x,)), first_line=True
        ),
    }


# ----------------------------------------------------------------------------------------------
# the functional API: argument checks and strict modes


@scenario
def s_functional_checks(T):
    F = T.autograd.functional
    x, y = t(T, [1.0, 2.0]), t(T, [0.5, -1.0])
    s = t(T, 1.5)

    def lin(a):
        return a * 2.0

    return {
        "vjp v missing": error(lambda: F.vjp(lin, x)),
        "vjp v too many": error(lambda: F.vjp(lin, x, (x, x))),
        "vjp v wrong size": error(lambda: F.vjp(lin, x, t(T, [1.0, 2.0, 3.0]))),
        "vjp tuple v length": error(lambda: F.vjp(lambda a: (a, a * 2.0), x, (x,))),
        "vjp tuple v size": error(lambda: F.vjp(lambda a: (a, a * 2.0), x, (x, t(T, [1.0])))),
        "jvp v too many": error(lambda: F.jvp(lin, x, (x, x))),
        "jvp v missing": error(lambda: F.jvp(lin, x)),
        "jvp v None scalar": F.jvp(lambda a: a * 3.0, s),
        "jvp strict independent": error(lambda: F.jvp(lambda a, b: a * 2.0, (x, y), (x, y), strict=True)),
        "jvp strict no grad": error(lambda: F.jvp(lambda a: T.ones(2, dtype=T.float64), x, x, strict=True)),
        "jvp not strict": F.jvp(lambda a, b: a * 2.0, (x, y), (x, y)),
        "vjp strict independent": error(lambda: F.vjp(lambda a, b: a * 2.0, (x, y), x, strict=True)),
        "vjp non-tensor output": error(lambda: F.vjp(lambda a: 3.0, x, x)),
        "jvp non-tensor output": error(lambda: F.jvp(lambda a: (a, 3), x, x)),
        "jacobian non-tensor output": error(lambda: F.jacobian(lambda a: [a], x)),
        "hessian non-tensor output": error(lambda: F.hessian(lambda a: 3.0, x)),
        "vjp non-tensor input": error(lambda: F.vjp(lin, [x], x)),
        "jacobian tuple with non-tensor": error(lambda: F.jacobian(lin, (x, 2.0))),
        "strict and vectorize": error(lambda: F.jacobian(lin, x, strict=True, vectorize=True)),
        "vectorize": F.jacobian(lambda a: a.exp(), x, vectorize=True),
        "jacobian create_graph strict": error(lambda: F.jacobian(lin, x, create_graph=True, strict=True)),
        "vjp create_graph strict": error(lambda: F.vjp(lin, x, x, create_graph=True, strict=True)),
        "hessian strict linear": error(lambda: F.hessian(lambda a: (a * 2.0).sum(), x, strict=True)),
        "hessian not scalar": error(lambda: F.hessian(lambda a: a * a, x)),
        "hessian tuple": error(lambda: F.hessian(lambda a: (a.sum(),), x)),
        "hvp not scalar": error(lambda: F.hvp(lambda a: a * a, x, x)),
        "hvp tuple": error(lambda: F.hvp(lambda a: (a.sum(),), x, x)),
        "hvp v wrong size": error(lambda: F.hvp(lambda a: (a**3).sum(), x, s)),
        "hvp v missing": error(lambda: F.hvp(lambda a: (a**3).sum(), x)),
        "hvp strict linear": error(lambda: F.hvp(lambda a: (a * 2.0).sum(), x, x, strict=True)),
        "vhp strict linear": error(lambda: F.vhp(lambda a: (a * 2.0).sum(), x, x, strict=True)),
        "vhp not scalar": error(lambda: F.vhp(lambda a: a * a, x, x)),
        "hvp": F.hvp(lambda a, b: (a**3 * b).sum(), (x, y), (y, x)),
        "jacobian forward-mode": F.jacobian(lambda a: a.sin(), x, strategy="forward-mode", vectorize=True),
        "jacobian forward-mode loop": error(lambda: F.jacobian(lambda a: a.sin(), x, strategy="forward-mode")),
        "jacobian bad strategy": error(lambda: F.jacobian(lin, x, strategy="sideways"), first_line=True),
    }


@scenario
def s_grad_argument_errors(T):
    x = t(T, [1.0, 2.0], True)
    return {
        "empty inputs list": error(lambda: T.autograd.grad((2 * x).sum(), [])),
        "empty inputs tuple": error(lambda: T.autograd.grad((2 * x).sum(), ())),
        "backward inputs empty": error(lambda: (2 * x).sum().backward(inputs=[])),
        "non-scalar": error(lambda: T.autograd.grad(2 * x, x)),
    }


# ----------------------------------------------------------------------------------------------
# in-place operations, views, the version counter


def _state(t):
    """What PyTorch shows of a tensor after an in-place op: values, flags, grad_fn, version."""
    return {
        "values": t,
        "requires_grad": t.requires_grad,
        "is_leaf": t.is_leaf,
        "grad_fn": None if t.grad_fn is None else t.grad_fn.name(),
        "version": t._version,
    }


@scenario
def s_inplace_errors(T):
    x = t(T, [1.0, 2.0, 3.0], True)
    y = x * 2.0
    z = y.sin()
    y.mul_(3.0)
    a = t(T, [1.0, 2.0])
    b = t(T, [1.0, 2.0], True)
    ab = a * b
    a.add_(1.0)
    e = (x * 1.0).exp()
    e.add_(1.0)
    q = x * 2.0
    qs = q.cos()
    q.add_(1.0)  # the error names q's grad_fn now (AddBackward0), as PyTorch's
    i = T.arange(3)
    return {
        "leaf": error(lambda: x.add_(1.0)),
        "view of leaf": error(lambda: x[0].add_(1.0)),
        "setitem on leaf": error(lambda: x.__setitem__(0, 5.0)),
        "saved input modified": error(lambda: z.sum().backward()),
        "saved leaf input modified": error(lambda: ab.sum().backward()),
        "saved output modified": error(lambda: e.sum().backward()),
        "named as saved": error(lambda: qs.sum().backward()),
        "expanded": error(lambda: T.ones(3).expand(2, 3).add_(1.0)),
        "broadcast too big": error(lambda: t(T, [1.0, 2.0]).add_(t(T, [[1.0, 2.0], [3.0, 4.0]]))),
        "int gets a float": error(lambda: i.add_(1.5)),
        "own grad": error(lambda: setattr(x, "grad", x)),
        "under no_grad": _no_grad_step(T),
    }


def _no_grad_step(T):
    w = t(T, [1.0, 2.0], True)
    (w * w).sum().backward()
    with T.no_grad():
        w -= 0.5 * w.grad
        w.mul_(2.0)
    w.grad.zero_()
    return {"w": _state(w), "grad": w.grad}


@scenario
def s_inplace_values_and_graph(T):
    out = {}
    x = t(T, [1.0, -2.0, 3.0], True)
    y = x * 1.0
    y.add_(x, alpha=2.0)
    y.mul_(x)
    y.sub_(1.0)
    y.div_(2.0)
    y.pow_(2)
    out["chain"] = _state(y)
    out["chain grad"] = T.autograd.grad(y.sum(), x)
    w = t(T, 2.0, True)
    b = t(T, [1.0, 2.0, 3.0])
    b[0] = w
    v = b[1:]
    v.mul_(w)
    out["copy slices"] = {"b": _state(b), "v": _state(v)}
    out["copy slices grad"] = T.autograd.grad(b.sum(), w)
    c = t(T, [[1.0, 2.0], [3.0, 4.0]], True) * 1.0
    row = c[0]
    c.mul_(2.0)
    out["view after base write"] = _state(row)
    out["view after base write grad"] = T.autograd.grad(row.sum(), c)
    m = t(T, [1.0, -1.0, 2.0, -3.0])
    m[m < 0] = 0.0
    out["mask assign"] = _state(m)
    q = t(T, [0.5, 1.5, 2.5], True) * 1.0
    q[q > 1.0] = w
    out["mask assign graph"] = _state(q)
    out["mask assign grad"] = T.autograd.grad(q.sum(), w)
    s = t(T, [1.0, 2.0, 3.0, 4.0]).clone()
    s[1:3] = t(T, [7.0, 8.0])
    s[-1] += 10.0
    out["slice assign"] = _state(s)
    z = t(T, [1.0, 2.0, 3.0])
    z.zero_()
    z.fill_(4.0)
    z.clamp_(max=3.0)
    z.copy_(t(T, [5.0, 6.0, 7.0]))
    out["zero fill clamp copy"] = _state(z)
    g = t(T, [0.5, 0.25], True)
    h = g * 2.0
    h.exp_()
    h.zero_()
    out["zero_ after exp_"] = {"h": _state(h), "error": error(lambda: T.autograd.grad(h.sum(), g))}
    h = g * 2.0
    h.zero_()
    out["zero_ in graph"] = {"h": _state(h), "grad": T.autograd.grad(h.sum(), g)}
    u = t(T, [3.0, 4.0], True)
    k = u.clone()
    k += u
    k *= u
    k -= 1.0
    k /= 2.0
    out["augmented"] = {"k": _state(k), "grad": T.autograd.grad(k.sum(), u)}
    return out


@scenario
def s_views_share_storage(T):
    base = t(T, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    row, col, tr, flat, det, d = base[1], base[:, 0], base.T, base.view(6), base.detach(), base.data
    row.add_(1.0)
    col.mul_(10.0)
    tr[2, 0] = -1.0
    flat[1] = 100.0
    det[0, 2] = 7.0
    d[1, 1] = 8.0
    sel = T.select(base, 1, 1)
    sel.neg_()
    return {
        "base": _state(base),
        "row": row,
        "col": col,
        "T": tr,
        "flat": flat,
        "detach": _state(det),
        "select": sel,
        "unsqueeze": base.unsqueeze(0)._version,
        "reshape copy": base.T.reshape(6)._version,
        "data is a tensor": [type(d).__name__, d.requires_grad],
    }


@scenario
def s_detach_and_data_versions(T):
    """detach() shares the version counter (a write through it is caught); .data does not."""
    x = t(T, [0.5, 1.0], True)
    y = x.exp()
    d = y.detach()
    d.zero_()
    caught = error(lambda: y.sum().backward())
    z = x.exp()
    z.data.mul_(2.0)
    (gz,) = T.autograd.grad(z.sum(), x)
    w = x * 1.0
    v = w[0]
    w.detach().add_(1.0)
    return {"detach": [caught, y._version, d._version], "data": [z._version, gz], "view sees it": [v, v._version]}


@scenario
def s_inplace_on_views_of_non_leaves(T):
    x = t(T, [[1.0, 2.0], [3.0, 4.0]], True)
    y = x * 2.0
    y[0].mul_(x[1])  # a row scaled by another row of the input
    y[:, 1] += 5.0
    y.T[0, 1] = x[0, 0] ** 2  # through a transposed view
    out = {"y": _state(y), "grad": T.autograd.grad((y * y).sum(), x, retain_graph=True)}
    with T.no_grad():
        y[1, 1] = 0.0  # no graph change under no_grad
    out["after no_grad write"] = [_state(y), T.autograd.grad(y.sum(), x)]
    return out


@scenario
def s_masked_fill(T):
    x = t(T, [[1.0, -2.0], [3.0, -4.0]], True)
    w = t(T, 5.0, True)
    a = x.masked_fill(x < 0, 0.0)
    b = T.masked_fill(x, T.tensor([True, False]), w)
    c = x * 1.0
    c.masked_fill_(c > 2.0, -1.0)
    return {
        "scalar": _state(a),
        "tensor value": _state(b),
        "in place": _state(c),
        "grads": T.autograd.grad(a.sum() + (b * b).sum() + c.sum(), [x, w]),
        "not a mask": error(lambda: x.masked_fill(T.tensor([1, 0]), 0.0)),
    }


@scenario
def s_grad_attribute(T):
    x = t(T, [1.0, 2.0], True)
    (x * x).sum().backward()
    first = x.grad
    (x * 3.0).sum().backward()
    kept = first is x.grad
    del x.grad
    after_del = x.grad
    (x * x).sum().backward()
    x.grad.add_(1.0)
    return {"accumulated": first, "same object": kept, "after del": after_del, "after add_": x.grad}


# ----------------------------------------------------------------------------------------------
# dtypes, indexing with tensors


@scenario
def s_dtypes_and_indexing(T):
    x = t(T, [[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], True)
    idx = T.tensor([2, 0, 2])
    mask = x > 0
    picked = x[mask]
    rows = x[T.tensor([1, 0])]
    cols = x[:, idx]
    sel = T.index_select(x, 1, T.tensor([0, 2]))
    gat = T.gather(x, 1, T.tensor([[0, 0], [2, 1]]))
    total = picked.sum() + (rows * 2.0).sum() + (cols**2).sum() + sel.sum() + gat.sum()
    return {
        "arange": [T.arange(4), str(T.arange(4).dtype).removeprefix("torch.")],
        "float arange": str(T.arange(0, 1, 0.5).dtype).removeprefix("torch."),
        "ints": [
            str(T.tensor([1, 2]).dtype).removeprefix("torch."),
            str(T.tensor(True).dtype).removeprefix("torch."),
            str(T.full((2,), 3).dtype).removeprefix("torch."),
        ],
        "dtype objects": [
            T.arange(3).dtype is T.int64,
            x.dtype is T.float64,
            mask.dtype is T.bool,
            T.tensor([1.0], dtype=T.float32).dtype is T.float32,
        ],
        "promotion": [
            str((T.arange(3) + 1.5).dtype).removeprefix("torch."),
            str((T.arange(3) / 2).dtype).removeprefix("torch."),
            str((T.arange(3) * 2).dtype).removeprefix("torch."),
        ],
        "int requires grad": error(lambda: T.tensor([1, 2], requires_grad=True)),
        "int requires_grad_": error(lambda: T.arange(3).requires_grad_()),
        "long() drops grad": [x.long().requires_grad, x.long()],
        "float index": error(lambda: x[T.tensor([0.0, 1.0])]),
        "out of range": error(lambda: x[T.tensor([5])]),
        "values": {
            "mask": _state(picked),
            "rows": _state(rows),
            "cols": _state(cols),
            "index_select": _state(sel),
            "gather": _state(gat),
        },
        "grad": T.autograd.grad(total, x),
    }


# ----------------------------------------------------------------------------------------------
# custom Function, hooks, backward and grad


@scenario
def s_custom_function_features(T):
    Function = T.autograd.Function
    seen = []

    class Both(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            flag = x.sum() * 0.0
            ctx.mark_non_differentiable(flag)
            return x * 2.0, x * 3.0, flag, 7

        @staticmethod
        def backward(ctx, g1, g2, g3, g4):
            seen.append([g is None for g in (g1, g2, g3, g4)])
            return g1 * 2.0

    class Scale(Function):
        @staticmethod
        def forward(x, k):
            return x * k

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.k = inputs[1]
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            return g * ctx.k, None

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return T.ones(2, dtype=T.float64)

    class Once(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        @T.autograd.function.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2.0 * x * g

    class BothWays(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return g * 2.0

        @staticmethod
        def vjp(ctx, g):
            return g * 2.0

    class OnlyVjp(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def vjp(ctx, g):
            return g * 3.0

    class Dirty(Function):
        @staticmethod
        def forward(ctx, a):
            a.mul_(2.0)
            ctx.mark_dirty(a)
            return a

        @staticmethod
        def backward(ctx, g):
            return g * 2.0

    x = t(T, [1.0, 2.0, 3.0], True)
    a, b, flag, seven = Both.apply(x)
    a.sum().backward()
    out = {
        "outputs": [a.requires_grad, b.requires_grad, flag.requires_grad, flag.grad_fn is None, seven],
        "backward saw None": seen,
        "grad": x.grad,
    }
    y = Scale.apply(x, 3.0)
    out["setup_context"] = [y.grad_fn.name(), T.autograd.grad(y.sum(), x)]
    out["wrong shape"] = error(lambda: WrongShape.apply(x).backward())
    (g,) = T.autograd.grad(Once.apply(x).sum(), x, create_graph=True)
    out["once_differentiable"] = [g, g.requires_grad]
    out["backward and vjp"] = error(lambda: BothWays.apply(x).sum().backward())
    out["vjp alone"] = T.autograd.grad(OnlyVjp.apply(x).sum(), x)
    out["dirty leaf"] = error(lambda: Dirty.apply(t(T, [1.0, 2.0], True)))
    h = x * 1.0
    d = Dirty.apply(h)
    out["dirty"] = [d is h, _state(h), T.autograd.grad(h.sum(), x)]
    return out


@scenario
def s_hooks(T):
    x = t(T, [1.0, 2.0], True)
    y = x * 3.0
    seen = []
    y.grad_fn.register_prehook(lambda go: seen.append(["pre", type(go).__name__, list(go)]))
    y.grad_fn.register_hook(lambda gi, go: seen.append(["post", list(gi), list(go)]))
    handle = x.register_post_accumulate_grad_hook(lambda p: seen.append(["accumulated", p.grad]))
    y.sum().backward()
    handle.remove()
    z = x * 3.0
    z.grad_fn.register_prehook(lambda go: (go[0] * 10.0,))
    z.grad_fn.register_hook(lambda gi, go: (gi[0] + 1.0,) + tuple(gi[1:]))
    x.grad = None
    z.sum().backward()
    return {
        "seen": seen,
        "changed": x.grad,
        "non-leaf": error(lambda: z.register_post_accumulate_grad_hook(lambda p: None)),
    }


@scenario
def s_backward_and_grad_more(T):
    x = t(T, [1.0, 2.0], True)
    h = x * 2.0
    loss = (h * h).sum()
    loss.backward(inputs=[h], retain_graph=True)
    first = [h.retains_grad, h.grad, x.grad]
    loss.backward(inputs=[h])
    z = t(T, 1.0, True)
    (m,) = T.autograd.grad((x * 2.0).sum(), [z], materialize_grads=True)
    (mc,) = T.autograd.grad((x * 2.0).sum(), [z], materialize_grads=True, create_graph=True)
    return {
        "inputs non-leaf": first,
        "again": h.grad,
        "materialized": [m, m.requires_grad],
        "materialized create_graph": [mc, mc.requires_grad],
    }


@scenario
def s_split_chunk_unbind(T):
    x = t(T, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], True)
    a, b = T.split(x, 2, dim=1)
    c = x.chunk(2, 0)
    u = x.unbind(1)
    s = x.split([1, 2], 1)
    total = (a * 2.0).sum() + (c[1] ** 2).sum() + (u[2] * 3.0).sum() + s[0].sum()
    base = T.arange(6.0, dtype=T.float64).reshape(2, 3)
    v = base.unbind(0)
    v[0].add_(10.0)
    w = x * 1.0
    parts = w.split([1, 2], 1)
    return {
        "split": [_state(a), _state(b), a.grad_fn is b.grad_fn],
        "chunk": [_state(p) for p in c],
        "unbind": [_state(p) for p in u],
        "with sizes": [_state(p) for p in s],
        "grad": T.autograd.grad(total, x),
        "second order": T.autograd.grad(
            T.autograd.grad((T.split(x * x, 1, 0)[0] ** 2).sum(), x, create_graph=True)[0].sum(), x
        ),
        "views of the base": [base, v[1]],
        "in-place on a piece": error(lambda: parts[1].mul_(2.0)),
        "sizes must add up": error(lambda: T.split(x, [1, 1], 1)),
        "var_mean": T.var_mean(x, 1),
        "var_mean grad": T.autograd.grad(sum(v.sum() for v in T.var_mean(x, 1, unbiased=False)), x),
    }


@scenario
def s_grad_mode_generators(T):
    @T.no_grad()
    def gen():
        for _ in range(2):
            yield T.is_grad_enabled()

    values = list(gen())
    g = gen()
    first = next(g)
    between = T.is_grad_enabled()

    @T.enable_grad()
    def inner():
        yield T.is_grad_enabled()

    with T.no_grad():
        enabled = list(inner())
    return {"no_grad generator": values, "between yields": [first, between], "enable_grad inside no_grad": enabled}


# ----------------------------------------------------------------------------------------------
# tests


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: live parity skipped (golden tests still run)")


def observe(name, T):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return enc(SCENARIOS[name](T))


def assert_same(expected, got, path=""):
    if isinstance(expected, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(expected), f"{path}: {sorted(got)} != {sorted(expected)}"
        for k in expected:
            assert_same(expected[k], got[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{path}: {got!r} != {expected!r}"
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same(e, g, f"{path}[{i}]")
    elif isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {got!r} != {expected!r}"
    else:
        assert got == expected, f"{path}: {got!r} != {expected!r}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_live(name):
    torch = _torch()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # gradcli's default (as the golden file was made)
    try:
        expected = observe(name, torch)
    finally:
        torch.set_default_dtype(old)
    assert_same(expected, observe(name, G))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name):
    golden = json.loads(GOLDEN.read_text())["scenarios"]
    assert name in golden, "run scripts/make_golden.py"
    assert_same(golden[name], observe(name, G))


def test_golden_is_complete():
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden["scenarios"]) == sorted(SCENARIOS)
    assert golden["torch"].startswith("2.")


# ----------------------------------------------------------------------------------------------
# gradcli only: the ops behind the kinks, warnings


def test_prod_others_is_differentiable_twice():
    from gradcli.autograd.gradcheck import gradcheck, gradgradcheck
    from gradcli.ops import OPS, apply

    f = lambda a: apply(OPS["prod_others"], (a,))  # noqa: E731
    for data in ([[2.0, 0.0, 3.0, 0.5], [1.5, -1.0, 0.0, 0.0]], [0.7, 1.3, -0.4]):
        x = G.tensor(data, requires_grad=True)
        assert gradcheck(f, (x,)) and gradgradcheck(f, (x,))


def test_prod_second_derivative_at_zeros_matches_finite_differences():
    from gradcli.autograd.gradcheck import gradgradcheck

    for data in ([2.0, 0.0, 3.0], [0.0, 0.0, 1.5, 2.0], [[1.0, 0.0], [0.0, 2.0]]):
        x = G.tensor(data, requires_grad=True)
        assert gradgradcheck(lambda a: a.prod(), (x,))
        assert gradgradcheck(lambda a: a.prod(0), (x,))


def test_backward_with_create_graph_warns_once():
    from gradcli import autograd

    autograd._warned.clear()
    x = G.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        (x**2).sum().backward(create_graph=True)
        (x**2).sum().backward(create_graph=True)
    assert len(seen) == 1 and seen[0].category is UserWarning
    assert str(seen[0].message).startswith("Using backward() with create_graph=True will create a reference cycle")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G.autograd.grad((x**2).sum(), x, create_graph=True)  # grad: no warning


def test_gradcheck_restores_inputs_and_runs_with_grad():
    x = G.tensor([0.5, 1.5], requires_grad=True)
    before = x._data
    seen = []

    def f(a):
        seen.append(G.is_grad_enabled())
        return a.exp()

    with G.no_grad():
        pass
    assert G.autograd.gradcheck(f, (x,))
    assert x._data is before and all(seen) and x.grad is None


def test_training_loop_runs_as_written():
    """The loop every tutorial teaches: in-place update under no_grad, then zero the gradient."""
    rng = np.random.default_rng(3)
    X, true = rng.normal(size=(30, 3)), np.array([1.0, -2.0, 0.5])

    def train(T):
        x, y = t(T, X), t(T, X @ true)
        w = T.zeros(3, dtype=T.float64, requires_grad=True)
        for _ in range(60):
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            with T.no_grad():
                w -= 0.1 * w.grad
            w.grad.zero_()
        return w, loss

    w, loss = train(G)
    assert w.is_leaf and w.requires_grad and w.grad is not None and not np.any(w.grad.numpy())
    np.testing.assert_allclose(w.detach().numpy(), true, atol=1e-3)
    try:
        import torch
    except ImportError:
        return
    tw, tloss = train(torch)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-10)
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-8)


def test_reentrant_backward_runs_deep():
    """A backward that runs backward (checkpointing does), 3000 levels deep: no recursion limit."""

    class Deep(G.autograd.Function):
        @staticmethod
        def forward(ctx, x, depth):
            ctx.depth = depth
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            if ctx.depth > 0:
                with G.enable_grad():
                    y = G.tensor(1.0, requires_grad=True)
                    Deep.apply(y, ctx.depth - 1).backward()
            return g * 2.0, None

    x = G.tensor(2.0, requires_grad=True)
    Deep.apply(x, 3000).backward()
    assert x.grad.item() == 2.0


def test_reentrant_backward_errors_reach_the_caller():
    class Fails(G.autograd.Function):
        @staticmethod
        def forward(ctx, x, depth):
            ctx.depth = depth
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            if ctx.depth == 0:
                raise ValueError("deep failure")
            with G.enable_grad():
                Fails.apply(G.tensor(1.0, requires_grad=True), ctx.depth - 1).backward()
            return g, None

    with pytest.raises(ValueError, match="deep failure"):
        Fails.apply(G.tensor(2.0, requires_grad=True), 100).backward()


def test_grad_mode_decorates_coroutines():
    import asyncio

    @G.no_grad()
    async def work():
        await asyncio.sleep(0)
        return G.is_grad_enabled()

    assert asyncio.run(work()) is False and G.is_grad_enabled()


def _cli(*argv):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "PYTHONPATH": str(root / "src"), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "gradcli", *argv], capture_output=True, text=True, env=env, timeout=60)


def test_language_indexes_with_integer_arrays_and_masks():
    """The language keeps float64 numbers; an array of whole numbers or a mask indexes (PyTorch's
    advanced indexing), and gradients flow back to the picked elements."""
    r = _cli("grad", "sum(x[arange(2)] ** 2) + sum(x[x > 2])", "x=[1, 2, 3]")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["x", "[2.0,4.0,1.0]"]
    r = _cli("eval", "x[[0, 2, 2]]", "x=[1, 2, 3]")
    assert r.returncode == 0 and r.stdout.split() == ["value", "[1.0,3.0,3.0]"]
    r = _cli("eval", "x[[0.5]]", "x=[1, 2, 3]")
    assert r.returncode == 2 and "an index array must hold whole numbers" in r.stderr
