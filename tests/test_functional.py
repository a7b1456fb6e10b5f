"""gradcli.autograd.functional: vjp, jvp, jacobian, hessian, hvp, vhp — the structure PyTorch
returns, values against finite differences (and against torch where installed), create_graph,
strict."""

from __future__ import annotations

import numpy as np
import pytest

import gradcli as G
from gradcli.autograd import functional as F

X = np.array([0.3, -0.7, 1.1])
Y = np.array([0.5, 1.5, -0.4])
M = np.array([[0.2, -0.5, 0.9], [1.2, 0.4, -0.3]])


def _t(T, a, requires_grad=False):
    return T.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


# functions of one or two tensors, one or two outputs (valid for gradcli and torch alike)
FUNCS = {
    "one-one": (lambda x: x[:2] * x[1:] + x[:2].sin(), [X]),
    "two-one": (lambda x, y: (x * y.exp()).tanh(), [X, Y]),
    "mat-one": (lambda m: (m @ m.T).exp(), [M]),
    "one-two": (lambda x: (x.exp(), (x**2).sum()), [X]),
    "two-two": (lambda x, y: (x * y, (x.sin() * y).sum(dim=0)), [X, Y]),
}
SCALARS = {
    "one": (lambda x: (x**3).sum() + x.prod() + (x[0] * x[2]).sin(), [X]),
    "two": (lambda x, y: (x.exp() * y).sum() + (x * x * y).sum() * y[1], [X, Y]),
    "mat": (lambda m: m.tanh().sum() * (m**2).sum(), [M]),
}


def _np(t):
    return np.asarray(t.detach().numpy(), dtype=np.float64)


def structure(value):
    """'T(shape)' for a tensor, a tuple of structures for a tuple, as torch returns them."""
    if isinstance(value, tuple):
        return tuple(structure(v) for v in value)
    if value is None:
        return None
    return f"T{tuple(value.shape)}"


def _args(arrays, single, T=G):
    tensors = tuple(_t(T, a) for a in arrays)
    return tensors[0] if single else tensors


def _outputs(f, arrays):
    with G.no_grad():
        out = f(*[_t(G, a) for a in arrays])
    return out if isinstance(out, tuple) else (out,)


def numerical_jacobian(f, arrays, eps=1e-6):
    """[output][input] arrays of shape out.shape + in.shape, by central differences."""
    base = _outputs(f, arrays)
    blocks = [[np.zeros(tuple(o.shape) + a.shape) for a in arrays] for o in base]
    for j, a in enumerate(arrays):
        for k in range(a.size):
            plus = [b.copy() for b in arrays]
            minus = [b.copy() for b in arrays]
            plus[j].reshape(-1)[k] += eps
            minus[j].reshape(-1)[k] -= eps
            up, down = _outputs(f, plus), _outputs(f, minus)
            for i in range(len(base)):
                blocks[i][j].reshape(tuple(base[i].shape) + (-1,))[..., k] = (_np(up[i]) - _np(down[i])) / (2 * eps)
    return blocks


def numerical_hessian(f, arrays, eps=1e-5):
    def gradient(*xs):
        return G.autograd.grad(f(*xs), xs, create_graph=True, allow_unused=True)

    def grads_as_outputs(*xs):
        with G.enable_grad():
            xs = [G.tensor(x.detach().numpy(), requires_grad=True) for x in xs]
            return tuple(G.tensor(_np(g)) for g in gradient(*xs))

    return numerical_jacobian(grads_as_outputs, arrays, eps)


# ----------------------------------------------------------------------------------------------
# structure


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_jacobian_structure_and_values(name):
    f, arrays = FUNCS[name]
    single_in = len(arrays) == 1
    num = numerical_jacobian(f, arrays)
    jac = F.jacobian(f, _args(arrays, single_in))
    outs = _outputs(f, arrays)
    single_out = not isinstance(f(*[_t(G, a) for a in arrays]), tuple)
    expected = [[f"T{tuple(o.shape) + a.shape}" for a in arrays] for o in outs]
    if single_out and single_in:
        assert structure(jac) == expected[0][0]
        blocks = [[jac]]
    elif single_out:
        assert structure(jac) == tuple(expected[0])
        blocks = [list(jac)]
    elif single_in:
        assert structure(jac) == tuple(row[0] for row in expected)
        blocks = [[b] for b in jac]
    else:
        assert structure(jac) == tuple(tuple(row) for row in expected)
        blocks = [list(row) for row in jac]
    for i, row in enumerate(blocks):
        for j, block in enumerate(row):
            assert not block.requires_grad
            np.testing.assert_allclose(_np(block), num[i][j], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_vjp_and_jvp_structure_and_values(name):
    f, arrays = FUNCS[name]
    single_in = len(arrays) == 1
    outs = _outputs(f, arrays)
    single_out = not isinstance(f(*[_t(G, a) for a in arrays]), tuple)
    num = numerical_jacobian(f, arrays)
    rng = np.random.default_rng(1)
    vs_out = [rng.standard_normal(tuple(o.shape)) for o in outs]
    vs_in = [rng.standard_normal(a.shape) for a in arrays]

    value, vjp = F.vjp(f, _args(arrays, single_in), _args(vs_out, single_out))
    assert structure(value) == (structure(outs[0]) if single_out else structure(outs))
    assert structure(vjp) == (f"T{arrays[0].shape}" if single_in else tuple(f"T{a.shape}" for a in arrays))
    vjp = (vjp,) if single_in else vjp
    for j in range(len(arrays)):
        want = sum(np.tensordot(vs_out[i], num[i][j], axes=vs_out[i].ndim) for i in range(len(outs)))
        np.testing.assert_allclose(_np(vjp[j]), want, rtol=1e-6, atol=1e-8)

    value, jvp = F.jvp(f, _args(arrays, single_in), _args(vs_in, single_in))
    assert structure(jvp) == (structure(outs[0]) if single_out else structure(outs))
    jvp = (jvp,) if single_out else jvp
    for i in range(len(outs)):
        want = sum(np.tensordot(num[i][j], vs_in[j], axes=vs_in[j].ndim) for j in range(len(arrays)))
        np.testing.assert_allclose(_np(jvp[i]), want, rtol=1e-6, atol=1e-8)
    for v in value if isinstance(value, tuple) else (value,):
        assert not v.requires_grad


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_hessian_hvp_vhp_structure_and_values(name):
    f, arrays = SCALARS[name]
    single = len(arrays) == 1
    num = numerical_hessian(f, arrays)
    hess = F.hessian(f, _args(arrays, single))
    if single:
        assert structure(hess) == f"T{arrays[0].shape + arrays[0].shape}"
        hess = ((hess,),)
    else:
        assert structure(hess) == tuple(tuple(f"T{a.shape + b.shape}" for b in arrays) for a in arrays)
    for i in range(len(arrays)):
        for j in range(len(arrays)):
            np.testing.assert_allclose(_np(hess[i][j]), num[i][j], rtol=1e-5, atol=1e-7)
    rng = np.random.default_rng(2)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    for fn in (F.hvp, F.vhp):
        value, prod = fn(f, _args(arrays, single), _args(vs, single))
        assert structure(value) == "T()" and not value.requires_grad
        assert structure(prod) == (f"T{arrays[0].shape}" if single else tuple(f"T{a.shape}" for a in arrays))
        prod = (prod,) if single else prod
        for i in range(len(arrays)):
            want = sum(np.tensordot(num[i][j], vs[j], axes=vs[j].ndim) for j in range(len(arrays)))
            np.testing.assert_allclose(_np(prod[i]), want, rtol=1e-5, atol=1e-7)


def test_scalar_input_needs_no_v():
    x = G.tensor(0.5)
    value, d = F.jvp(lambda t: t.sin(), x)
    assert structure(d) == "T()" and d.item() == pytest.approx(np.cos(0.5))
    value, d = F.vjp(lambda t: t**3, x)
    assert d.item() == pytest.approx(0.75)
    _, h = F.vhp(lambda t: t**3, x)
    assert h.item() == pytest.approx(3.0)
    with pytest.raises(RuntimeError, match="v can only be None"):
        F.vjp(lambda t: t * 2, G.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="v can only be None"):
        F.jvp(lambda t: t * 2, G.tensor([1.0, 2.0]))


def test_inputs_must_be_tensors():
    with pytest.raises(TypeError, match="must be either a Tensor or a tuple of Tensors"):
        F.jacobian(lambda t: t, [1.0, 2.0])


# ----------------------------------------------------------------------------------------------
# create_graph and strict


def test_create_graph_results_have_grad_fn_and_differentiate_further():
    x = G.tensor(X, requires_grad=True)
    jac = F.jacobian(lambda t: t**3, x, create_graph=True)
    assert jac.requires_grad and jac.grad_fn is not None
    (g,) = G.autograd.grad(jac.sum(), x)  # d/dx sum(diag(3 x^2)) = 6 x
    np.testing.assert_allclose(_np(g), 6 * X)
    hess = F.hessian(lambda t: (t**4).sum(), x, create_graph=True)
    assert hess.grad_fn is not None
    (g,) = G.autograd.grad(hess.sum(), x)  # d/dx sum(diag(12 x^2)) = 24 x
    np.testing.assert_allclose(_np(g), 24 * X)
    for fn, v in ((F.vjp, G.tensor(Y)), (F.jvp, G.tensor(Y)), (F.hvp, G.tensor(Y)), (F.vhp, G.tensor(Y))):
        f = (lambda t: (t**3).sum()) if fn in (F.hvp, F.vhp) else (lambda t: t**3)
        value, result = fn(f, x, v, create_graph=True)
        assert result.grad_fn is not None, fn.__name__
    value, result = F.vjp(lambda t: t**3, x, G.tensor(Y))
    assert result.grad_fn is None and not result.requires_grad


def test_strict_raises_for_an_independent_input():
    x, y = G.tensor(X), G.tensor(Y)
    f = lambda a, b: a * 2.0  # noqa: E731
    jac = F.jacobian(f, (x, y))
    assert not np.any(_np(jac[1])) and structure(jac) == ("T(3, 3)", "T(3, 3)")
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.jacobian(f, (x, y), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.vjp(f, (x, y), G.tensor(Y), strict=True)
    with pytest.raises(
        RuntimeError, match="jacobian of the user-provided function with respect to input 1 is independent of the input"
    ):
        F.hessian(lambda a, b: (a**2).sum(), (x, y), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.vhp(lambda a, b: (a**2).sum(), (x, y), (G.tensor(X), G.tensor(Y)), strict=True)
    _, (gx, gy) = F.vjp(f, (x, y), G.tensor(Y))
    assert not np.any(_np(gy)) and np.allclose(_np(gx), 2 * Y)


def test_inputs_are_not_modified():
    x = G.tensor(X, requires_grad=True)
    F.jacobian(lambda t: t.exp(), x)
    F.hessian(lambda t: t.exp().sum(), x)
    assert x.grad is None and x.is_leaf


# ----------------------------------------------------------------------------------------------
# live torch


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed: live comparison skipped")


def _same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_live_jacobian_vjp_jvp(torch, name):
    f, arrays = FUNCS[name]
    single = len(arrays) == 1
    outs = _outputs(f, arrays)
    single_out = len(outs) == 1 and not isinstance(f(*[_t(G, a) for a in arrays]), tuple)
    rng = np.random.default_rng(3)
    vs_out = [rng.standard_normal(tuple(o.shape)) for o in outs]
    vs_in = [rng.standard_normal(a.shape) for a in arrays]
    tf = torch.autograd.functional
    _same(F.jacobian(f, _args(arrays, single)), tf.jacobian(f, _args(arrays, single, torch)))
    _same(F.jacobian(f, _args(arrays, single)), tf.jacobian(f, _args(arrays, single, torch), vectorize=True))
    _same(
        F.vjp(f, _args(arrays, single), _args(vs_out, single_out)),
        tf.vjp(f, _args(arrays, single, torch), _args(vs_out, single_out, torch)),
    )
    _same(
        F.jvp(f, _args(arrays, single), _args(vs_in, single)),
        tf.jvp(f, _args(arrays, single, torch), _args(vs_in, single, torch)),
    )


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_live_hessian_hvp_vhp(torch, name):
    f, arrays = SCALARS[name]
    single = len(arrays) == 1
    vs = [np.random.default_rng(4).standard_normal(a.shape) for a in arrays]
    tf = torch.autograd.functional
    _same(F.hessian(f, _args(arrays, single)), tf.hessian(f, _args(arrays, single, torch)))
    for mine, theirs in ((F.hvp, tf.hvp), (F.vhp, tf.vhp)):
        _same(
            mine(f, _args(arrays, single), _args(vs, single)),
            theirs(f, _args(arrays, single, torch), _args(vs, single, torch)),
        )


def test_live_strict_messages(torch):
    f = lambda a, b: a * 2.0  # noqa: E731
    tf = torch.autograd.functional
    for mine, theirs, extra in ((F.jacobian, tf.jacobian, ()), (F.vjp, tf.vjp, ("v",))):
        args = (G.tensor(X), G.tensor(Y))
        targs = (torch.tensor(X), torch.tensor(Y))
        with pytest.raises(RuntimeError) as ours:
            mine(f, args, *[G.tensor(Y) for _ in extra], strict=True)
        with pytest.raises(RuntimeError) as ref:
            theirs(f, targs, *[torch.tensor(Y) for _ in extra], strict=True)
        assert str(ours.value) == str(ref.value)
