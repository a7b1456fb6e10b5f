"""Engine semantics without torch: deep graphs, memory, grad modes, anomaly detection, repr,
devices, dtypes, Python scalars, seeding, and that the checkers can fail."""

from __future__ import annotations

import gc
import importlib.util
import sys
import threading
import weakref

import numpy as np
import pytest

import gradcli as G
from gradcli.autograd import AnomalyError
from gradcli.autograd.gradcheck import GradcheckError, compare, gradcheck, gradgradcheck
from gradcli.errors import GradcliError


def _np(t):
    return np.asarray(t.detach().numpy())


# ----------------------------------------------------------------------------------------------
# deep graphs and memory


def test_million_node_chain_backward_without_recursion():
    x = G.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10**6):
        y = y + 0.5
    assert y.item() == 1.0 + 0.5 * 10**6
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(200, len(__import__("inspect").stack()) + 100))
        y.backward()
    finally:
        sys.setrecursionlimit(limit)
    assert x.grad.item() == 1.0
    ref = weakref.ref(y.grad_fn)
    del y
    gc.collect()
    assert ref() is None  # the chain is freed (no recursion in deallocation either)


def test_deep_chain_of_multiplications_has_the_right_gradient():
    x = G.tensor(2.0, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**20_000, rel=1e-9)


def _graph_with_saved_intermediate():
    x = G.tensor([0.5, 1.0, 1.5], requires_grad=True)
    h = x.exp()  # exp saves its output; sin saves its input: both are h
    ref = weakref.ref(h._data)
    y = h.sin().sum()
    del h
    return x, y, ref


def test_saved_tensors_are_freed_after_backward():
    x, y, ref = _graph_with_saved_intermediate()
    gc.collect()
    assert ref() is not None
    y.backward()
    gc.collect()
    assert ref() is None
    np.testing.assert_allclose(_np(x.grad), np.cos(np.exp([0.5, 1.0, 1.5])) * np.exp([0.5, 1.0, 1.5]))


def test_saved_tensors_are_kept_with_retain_graph():
    x, y, ref = _graph_with_saved_intermediate()
    y.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None
    y.backward()
    np.testing.assert_allclose(_np(x.grad), 2 * np.cos(np.exp([0.5, 1.0, 1.5])) * np.exp([0.5, 1.0, 1.5]))
    gc.collect()
    assert ref() is None


def test_autograd_grad_also_frees_and_second_call_fails():
    x = G.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    G.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        G.autograd.grad(y, x)


# ----------------------------------------------------------------------------------------------
# grad modes


def test_no_grad_enable_grad_nested():
    x = G.tensor([1.0], requires_grad=True)
    assert G.is_grad_enabled()
    with G.no_grad():
        assert not G.is_grad_enabled() and not (x * 2).requires_grad
        with G.enable_grad():
            assert G.is_grad_enabled() and (x * 2).requires_grad
            with G.no_grad():
                assert not (x * 2).requires_grad
            assert (x * 2).requires_grad
        assert not G.is_grad_enabled()
    assert G.is_grad_enabled() and (x * 2).requires_grad


def test_grad_modes_as_decorators_with_and_without_parentheses():
    x = G.tensor([1.0], requires_grad=True)

    @G.no_grad()
    def a():
        return x * 2

    @G.no_grad
    def b():
        return x * 2

    @G.enable_grad()
    def c():
        return x * 2

    @G.set_grad_enabled(False)
    def d():
        return x * 2

    assert G.is_grad_enabled()  # decorating changed nothing
    assert not a().requires_grad and not b().requires_grad and not d().requires_grad
    with G.no_grad():
        assert c().requires_grad
    assert G.is_grad_enabled() and a.__name__ == "a"


def test_set_grad_enabled_as_context_and_as_call():
    x = G.tensor([1.0], requires_grad=True)
    with G.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with G.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not G.is_grad_enabled()
    assert G.is_grad_enabled()
    G.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        G.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_grad_mode_restored_after_an_exception():
    with pytest.raises(ValueError):
        with G.no_grad():
            raise ValueError("boom")
    assert G.is_grad_enabled()


def test_grad_mode_is_thread_local():
    x = G.tensor([1.0], requires_grad=True)
    seen = {}
    entered, release = threading.Event(), threading.Event()

    def worker():
        entered.wait(10)
        seen["enabled"] = G.is_grad_enabled()
        seen["requires_grad"] = (x * 2).requires_grad
        with G.no_grad():
            seen["inner"] = G.is_grad_enabled()
        release.set()

    thread = threading.Thread(target=worker)
    thread.start()
    with G.no_grad():
        entered.set()
        assert release.wait(10)
        assert not G.is_grad_enabled()  # the thread's no_grad did not leak here ...
    thread.join(10)
    assert seen == {"enabled": True, "requires_grad": True, "inner": False}  # ... nor ours there
    assert G.is_grad_enabled()


def test_backward_inside_no_grad_still_works():
    x = G.tensor([1.0, 2.0], requires_grad=True)
    y = (x**2).sum()
    with G.no_grad():
        y.backward()
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])


# ----------------------------------------------------------------------------------------------
# anomaly detection


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_detect_anomaly_names_the_node():
    x = G.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt().sum()
    with G.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="SqrtBackward0") as info:
            y.backward()
    assert isinstance(info.value, AnomalyError) and info.value.node.name() == "SqrtBackward0"
    assert "inf" in str(info.value)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_detect_anomaly_nan_from_a_later_node():
    x = G.tensor([-1.0, 4.0], requires_grad=True)
    y = (x.abs().log() * 0.0).sum()  # forward finite; log's backward at 0 * ... stays finite
    with G.autograd.detect_anomaly():
        y.backward()  # no anomaly: nothing raised
    z = G.tensor([0.0], requires_grad=True)
    w = (z.log() * 0.0).sum()  # backward: 0 / 0 = nan in LogBackward0
    with G.autograd.detect_anomaly(), pytest.raises(AnomalyError, match="LogBackward0.*nan"):
        w.backward()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_without_anomaly_detection_inf_flows_silently():
    x = G.tensor([0.0, 1.0], requires_grad=True)
    x.sqrt().sum().backward()
    assert np.isinf(_np(x.grad)[0]) and _np(x.grad)[1] == 0.5
    assert not G.autograd.grad_mode.is_anomaly_enabled()


# ----------------------------------------------------------------------------------------------
# repr


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: G.tensor([1.0, 2.0], requires_grad=True), "tensor([1., 2.], requires_grad=True)"),
        (lambda: (G.tensor([1.0, 2.0, 3.0], requires_grad=True) * 1.0).sum(), "tensor(6., grad_fn=<SumBackward0>)"),
        (lambda: G.tensor(2.0, requires_grad=True) * 3.0, "tensor(6., grad_fn=<MulBackward0>)"),
        (lambda: G.tensor([0.1, 2.5]), "tensor([0.1000, 2.5000])"),
        (lambda: G.tensor(0.1), "tensor(0.1000)"),
        (lambda: G.tensor([[1.0, 2.0], [3.0, 4.0]]), "tensor([[1., 2.],\n        [3., 4.]])"),
        (lambda: G.tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
        (lambda: G.tensor([1.0, -2.0]), "tensor([ 1., -2.])"),
        (lambda: G.tensor([1.0, 2.0], dtype="float32"), "tensor([1., 2.], dtype=float32)"),
        (lambda: G.tensor([True, False]), "tensor([ True, False])"),
    ],
)
def test_repr(make, text):
    assert repr(make()) == text


# ----------------------------------------------------------------------------------------------
# devices and dtypes


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed: the error is not raised")
@pytest.mark.parametrize(
    "make",
    [lambda: G.tensor([1.0], device="cuda"), lambda: G.zeros(2, device="cuda"), lambda: G.tensor([1.0]).to("cuda")],
)
def test_cuda_without_cupy_names_the_extra(make):
    with pytest.raises(GradcliError, match=r"gradcli\[cuda\]"):
        make()


def test_default_dtype_is_float64_and_integers_are_int64():
    assert G.tensor([1.0, 2]).dtype == G.tensor(3.0).dtype == np.float64
    assert G.tensor([1, 2]).dtype is G.tensor(3).dtype is G.int64
    assert G.arange(3).dtype is G.int64 and G.arange(3).tolist() == [0, 1, 2]
    assert G.arange(0, 1, 0.5).dtype is G.float64
    assert G.zeros(2).dtype == G.ones(2, 2).dtype == G.eye(2).dtype == G.rand(2).dtype == np.float64
    assert G.tensor([True]).dtype is G.bool
    with pytest.raises(RuntimeError, match="floating point"):
        G.tensor([True]).requires_grad_()
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can require gradients"):
        G.tensor([1, 2], requires_grad=True)


FLOAT32_EXPRS = [
    lambda a, b: (a * b + 2.0).sum(),
    lambda a, b: (a @ b.T).tanh().sum(),
    lambda a, b: a.softmax(dim=1)[0, 1],
    lambda a, b: (a / b - a**2).exp().mean(),
    lambda a, b: G.stack([a, b]).amax(),
    lambda a, b: (1 - a).norm(),
    lambda a, b: G.cat([a, b], dim=1).logsumexp(dim=0).sum(),
    lambda a, b: G.where(a > b, a, b).var(),
]


@pytest.mark.parametrize("f", FLOAT32_EXPRS)
def test_float32_is_kept_through_ops_and_gradients(f):
    a = G.tensor([[0.5, -1.0], [1.5, 2.0]], dtype="float32", requires_grad=True)
    b = G.tensor([[1.0, 0.75], [-0.5, 1.25]], dtype="float32", requires_grad=True)
    y = f(a, b)
    assert y.dtype == np.float32
    ga, gb = G.autograd.grad(y, [a, b], create_graph=True, allow_unused=True)
    assert ga.dtype == np.float32 and (gb is None or gb.dtype == np.float32)
    a64, b64 = (G.tensor(t.detach().numpy().astype(np.float64), requires_grad=True) for t in (a, b))
    g64 = G.autograd.grad(f(a64, b64), [a64], allow_unused=True)[0]
    np.testing.assert_allclose(_np(ga), _np(g64), rtol=1e-4, atol=1e-5)


def test_float32_hessian_and_backward():
    x = G.tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    h = G.autograd.functional.hessian(lambda t: (t**3).sum(), x)
    assert h.dtype == np.float32
    np.testing.assert_allclose(_np(h), np.diag([6.0, 12.0]))
    (x.exp() * x).sum().backward()
    assert x.grad.dtype == np.float32


def test_to_and_float_convert_and_gradients_come_back_in_the_input_dtype():
    x = G.tensor([1.0, 2.0], requires_grad=True)
    y = x.float()
    assert y.dtype == np.float32 and y.grad_fn.name() == "ToCopyBackward0"
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(_np(x.grad), [2.0, 4.0])
    assert x.double() is x


def test_clone_is_a_graph_copy():
    x = G.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    assert y.grad_fn.name() == "CloneBackward0" and y._data is not x._data
    (y * 3.0).sum().backward()
    np.testing.assert_allclose(_np(x.grad), [3.0, 3.0])


# ----------------------------------------------------------------------------------------------
# Python scalars


@pytest.mark.parametrize(
    "make, name, value",
    [
        (lambda x, y: 1 - x, "RsubBackward1", [0.0, -1.0]),
        (lambda x, y: x**2, "PowBackward0", [1.0, 4.0]),
        (lambda x, y: 2**x, "PowBackward2", [2.0, 4.0]),
        (lambda x, y: x**y, "PowBackward1", [1.0, 2.0**1.5]),
        (lambda x, y: 2 / x, "MulBackward0", [2.0, 1.0]),
        (lambda x, y: x / 2, "DivBackward0", [0.5, 1.0]),
        (lambda x, y: 2 + x, "AddBackward0", [3.0, 4.0]),
        (lambda x, y: x * 2, "MulBackward0", [2.0, 4.0]),
        (lambda x, y: x - 2, "SubBackward0", [-1.0, 0.0]),
        (lambda x, y: -x, "NegBackward0", [-1.0, -2.0]),
    ],
)
def test_python_scalars(make, name, value):
    x = G.tensor([1.0, 2.0], requires_grad=True)
    y = G.tensor([0.5, 1.5], requires_grad=True)
    out = make(x, y)
    assert out.grad_fn.name() == name
    np.testing.assert_allclose(_np(out), value)
    assert out.dtype == np.float64


def test_scalar_results_keep_float32():
    x = G.tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    for out in (1 - x, x**2, 2**x, 2 / x, x * 2.5, x + 1):
        assert out.dtype == np.float32, out


# ----------------------------------------------------------------------------------------------
# seeding


def test_manual_seed_reproducible():
    G.manual_seed(3)
    a, b = G.rand(2, 3), G.randn(4)
    G.manual_seed(3)
    c, d = G.rand(2, 3), G.randn(4)
    assert a.tolist() == c.tolist() and b.tolist() == d.tolist()
    G.manual_seed(4)
    assert G.rand(2, 3).tolist() != a.tolist()
    assert ((_np(a) >= 0) & (_np(a) < 1)).all()


# ----------------------------------------------------------------------------------------------
# the checkers can fail


class _BadSquare(G.autograd.Function):
    """x^2 with a right first derivative whose own derivative is wrong (it ignores x's graph)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2.0 * x.detach()


class _WrongSquare(_BadSquare):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2.1 * x


def test_gradcheck_catches_a_wrong_first_derivative():
    x = G.tensor([0.5, 1.5], requires_grad=True)
    with pytest.raises(GradcheckError):
        gradcheck(_WrongSquare.apply, (x,))
    assert gradcheck(_WrongSquare.apply, (x,), raise_exception=False) is False
    assert gradcheck(lambda t: t * t, (x,))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = G.tensor([0.5, 1.5], requires_grad=True)
    assert gradcheck(_BadSquare.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(_BadSquare.apply, (x,))
    assert gradgradcheck(lambda t: t * t, (x,))


def test_compare_order_two_reports_a_wrong_second_derivative():
    x = G.tensor([0.5, 1.5], requires_grad=True)
    assert compare(_BadSquare.apply, (x,), order=1)["ok"]
    bad = compare(_BadSquare.apply, (x,), order=2)
    assert not bad["ok"] and bad["max_abs_error"] > 0.1
    assert compare(lambda t: t * t, (x,), order=2)["ok"]


# ----------------------------------------------------------------------------------------------
# the seed program


def test_seed_program_runs_as_a_subprocess(tmp_path):
    import subprocess
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "samples" / "seed_line.py"
    done = subprocess.run([sys.executable, str(sample)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("tensor(") == 3
    assert done.stdout.rstrip().endswith("tensor([[1., 1.],\n        [1., 1.]])")  # b.grad
    assert done.stderr == ""


# ----------------------------------------------------------------------------------------------
# zeros for a gradient that never arrived keep the tensor's dtype


def test_float32_leaf_through_a_two_output_function_gets_a_float32_grad():
    class Two(G.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0, x * 3.0

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2.0 + gb * 3.0

    x = G.tensor([1.0, 2.0], dtype="float32", requires_grad=True)
    a, b = Two.apply(x)
    a.sum().backward()  # b gets no gradient: zeros like b stand in for it
    assert x.grad.dtype == np.float32
    assert x.grad.tolist() == [2.0, 2.0]


def test_each_output_of_a_two_output_function_gets_its_own_gradient():
    class Two(G.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0, x * 3.0

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2.0 + gb * 3.0

    for pick, want in ((0, 2.0), (1, 3.0)):
        x = G.tensor([1.0, 2.0], requires_grad=True)
        Two.apply(x)[pick].sum().backward()
        assert x.grad.tolist() == [want, want]
    x = G.tensor([1.0, 2.0], requires_grad=True)
    a, b = Two.apply(x)
    (a.sum() + b.sum()).backward()
    assert x.grad.tolist() == [5.0, 5.0]
