"""The sweep cases shared by the tests (and scripts/make_golden.py), and the sweep's checks.

Each case is an expression over the inputs ``a, b, c`` and a module ``T`` (``gradcli``, or
``torch`` in ``test_torch_parity.py``).  The checks — first and second derivatives
(``gradcheck``, ``gradgradcheck``), the vectorized Jacobian against one-hot ``autograd.grad``
calls, the Hessian against central differences of the gradient, float32 kept float32 — run on
one case; ``test_ops_sweep`` runs them over ``CASES``, and a test may run them over the cases of
an op of its own (``unary_cases(name)``).
"""

from __future__ import annotations

import random
import re
import zlib
from pathlib import Path

import numpy as np

import gradcli as G
from gradcli import ops, public, rules
from gradcli.autograd import functional
from gradcli.autograd.gradcheck import gradcheck, gradgradcheck
from gradcli.language import parse, run


class Case:
    """One sweep case.  ``shapes``: one per tensor input; ``op``: the table op whose domain
    the inputs are drawn from (and which the case covers); ``torch``: the torch expression where
    torch's API differs from gradcli's (only the known deviations)."""

    def __init__(self, id, expr, shapes, op, covers=(), torch=None, dom=None, well_conditioned=False, deviation=None):
        self.id, self.expr, self.shapes, self.op = id, expr, [tuple(s) for s in shapes], op
        self.covers = tuple(covers) or (op,)
        self.torch_expr = None if torch is False else (torch or expr)  # None: gradcli only
        self.dom = dom
        self.well_conditioned = well_conditioned
        self.deviation = deviation  # a known, documented difference from torch's graph

    def __repr__(self):
        return self.id

    def domains(self):
        dom = self.dom or ops.OPS[self.op].domain
        if isinstance(dom[0], (tuple, list)):
            return [tuple(dom[min(i, len(dom) - 1)]) for i in range(len(self.shapes))]
        return [tuple(dom)] * len(self.shapes)

    def arrays(self):
        """Seeded random float64 inputs (the same for every run)."""
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        for _ in range(100):
            arrays = [rng.uniform(lo, hi, size=s) for (lo, hi), s in zip(self.domains(), self.shapes)]
            if not self.well_conditioned or all(np.linalg.cond(x) < 8 for x in arrays if x.ndim == 2):
                return arrays
        raise AssertionError("no well-conditioned sample")

    def fn(self, T, expr=None):
        code = compile(expr or self.expr, self.id, "eval")
        names = "abc"[: len(self.shapes)]

        def f(*xs):
            return eval(code, {"T": T}, dict(zip(names, xs)))  # noqa: S307 - test-defined expressions

        return f


def unary_cases(name, torch=True):
    """The cases of an elementwise function of one tensor: scalar, vector, matrix, method."""
    call = "T.nn.functional.softplus(a)" if name == "softplus" else f"T.{name}(a)"
    torch_expr = None if torch else False
    cases = [
        Case(f"{name}-{tag}", call, [shape], name, torch=torch_expr)
        for tag, shape in [("scalar", ()), ("vec", (3,)), ("mat", (2, 3))]
    ]
    if name != "softplus":
        cases.append(Case(f"{name}-method", f"a.{name}()", [(2,)], name, torch=torch_expr))
    return cases


def _unary_cases():
    return [case for name in ops.UNARY_OPS for case in unary_cases(name)]


_BROADCAST = [
    ("s-s", (), ()),
    ("s-v", (), (3,)),
    ("v-s", (3,), ()),
    ("v-m", (3,), (2, 3)),
    ("m-v", (2, 3), (3,)),
    ("col-row", (2, 1), (1, 3)),
    ("m-m", (2, 3), (2, 3)),
    ("s-m", (), (2, 3)),
]
_BINARY = {
    "add": "a + b",
    "sub": "a - b",
    "mul": "a * b",
    "div": "a / b",
    "pow_tensor": "a ** b",
    "atan2": "T.atan2(a, b)",
    "maximum": "T.maximum(a, b)",
    "minimum": "T.minimum(a, b)",
}
_COVER = {"pow_tensor": ("pow",)}


def _binary_cases():
    cases = []
    for name, expr in _BINARY.items():
        for tag, sa, sb in _BROADCAST:
            cases.append(Case(f"{name}-{tag}", expr, [sa, sb], name, covers=_COVER.get(name, (name,))))
    cases += [
        Case("add-fn-alpha", "T.add(a, b, alpha=2.0)", [(3,), (3,)], "add_alpha", covers=("add",)),
        Case("sub-fn-alpha", "T.sub(a, b, alpha=0.5)", [(2, 3), (3,)], "add_alpha", covers=("sub",)),
        Case("add-fn-alpha-number", "T.add(a, 2.0, alpha=3.0)", [(3,)], "add_alpha", covers=("add",)),
        Case("sub-fn", "T.sub(a, b)", [(2, 3), (3,)], "sub"),
        Case("mul-fn", "T.mul(a, b)", [(3,), (2, 3)], "mul"),
        Case("div-fn", "T.div(a, b)", [(2, 3), (2, 1)], "div"),
        Case("pow-fn-tensor", "T.pow(a, b)", [(3,), (3,)], "pow_tensor", covers=("pow",)),
        Case("neg", "-a", [(2, 3)], "neg"),
        Case("neg-fn", "T.neg(a)", [(3,)], "neg"),
        Case("pos", "+a * 1.5", [(3,)], "mul", covers=("pos",)),
        # Python numbers on either side
        Case("num-add", "a + 2.5", [(3,)], "add"),
        Case("num-radd", "2.5 + a", [(3,)], "add"),
        Case("num-sub", "a - 2.5", [(3,)], "sub"),
        Case("num-rsub", "2.5 - a", [(2, 3)], "rsub"),
        Case("num-mul", "a * 2.5", [(3,)], "mul"),
        Case("num-rmul", "2.5 * a", [()], "mul"),
        Case("num-div", "a / 2.5", [(3,)], "div"),
        Case("num-rdiv", "2.5 / a", [(3,)], "reciprocal"),
        Case("num-rpow", "2.0 ** a", [(3,)], "rpow"),
        Case("num-pow-fn-base", "T.pow(2.0, a)", [(2, 3)], "rpow", covers=("pow",)),
    ]
    for p in (0, 2, -1, 0.5, 3, 2.5):
        cases.append(Case(f"pow-scalar-{p}", f"a ** {p}", [(2, 3)], "pow"))
    cases.append(Case("pow-fn-scalar", "T.pow(a, 3)", [(3,)], "pow"))
    cases.append(Case("pow-scalar-0d", "a ** 2", [()], "pow"))
    cases.append(Case("square", "T.square(a)", [(2, 3)], "pow", covers=("square",)))
    return cases


def _reduction_cases():
    cases = []
    variants = [
        ("all-scalar", "", [()]),
        ("all-vec", "", [(3,)]),
        ("all", "", [(2, 3)]),
        ("d0", ", dim=0", [(2, 3)]),
        ("d-1", ", dim=-1", [(2, 3)]),
        ("d1-keep", ", dim=1, keepdim=True", [(2, 3)]),
        ("d0-vec", ", dim=0", [(3,)]),
        ("d01", ", dim=(0, 1)", [(2, 3)]),
        ("d02-3d", ", dim=(0, 2)", [(2, 2, 2)]),
    ]
    for name in [n for n in ops.REDUCTION_OPS if n not in ("max", "min")] + ["var", "std"]:
        for tag, args, shapes in variants:
            if name in ("amax", "amin") and tag == "all-scalar":
                continue
            if name in ("var", "std") and shapes == [()]:
                continue
            if name == "logsumexp" and not args:
                args = ", dim=-1" if shapes != [()] else ", dim=0"
            # torch.prod takes one dim only: a tuple of dims is a gradcli extension
            extension = name == "prod" and "(0," in args
            cases.append(Case(f"{name}-{tag}", f"T.{name}(a{args})", shapes, name, torch=False if extension else None))
    cases += [
        Case("sum-method", "a.sum(dim=1)", [(2, 3)], "sum"),
        Case("mean-method-keep", "a.mean(0, True)", [(2, 3)], "mean"),
        Case("var-biased", "T.var(a, dim=1, unbiased=False)", [(2, 3)], "var"),
        Case("std-correction0", "T.std(a, correction=0)", [(2, 3)], "std"),
        Case("max-all", "T.max(a)", [(2, 3)], "max"),
        Case("min-all", "T.min(a)", [(2, 3)], "min"),
        Case("max-all-vec", "a.max()", [(4,)], "max"),
        Case("min-all-vec", "a.min()", [(4,)], "min"),
        # known deviation: max(x, dim=) gives the values only; torch gives (values, indices)
        Case("max-d0", "T.max(a, dim=0)", [(2, 3)], "max", torch="T.max(a, dim=0).values"),
        Case(
            "max-d1-keep",
            "T.max(a, dim=1, keepdim=True)",
            [(2, 3)],
            "max",
            torch="T.max(a, dim=1, keepdim=True).values",
        ),
        Case("min-d-1", "T.min(a, dim=-1)", [(2, 3)], "min", torch="T.min(a, dim=-1).values"),
        Case(
            "min-d0-keep",
            "T.min(a, dim=0, keepdim=True)",
            [(2, 3)],
            "min",
            torch="T.min(a, dim=0, keepdim=True).values",
        ),
    ]
    for p in (1, 2, 3):
        cases.append(Case(f"norm-p{p}", f"T.norm(a, p={p})", [(2, 3)], "norm"))
        cases.append(Case(f"norm-p{p}-vec", f"T.norm(a, p={p})", [(3,)], "norm"))
        cases.append(Case(f"norm-p{p}-d1", f"T.norm(a, p={p}, dim=1)", [(2, 3)], "norm"))
    cases.append(Case("norm-default-keep", "T.norm(a, dim=0, keepdim=True)", [(2, 3)], "norm"))
    cases.append(Case("norm-mixed-sign", "T.norm(a)", [(2, 3)], "norm", dom=(-2.0, 2.0)))
    for name in ("softmax", "log_softmax"):
        for tag, dim, shape in [
            ("vec", 0, (3,)),
            ("d0", 0, (2, 3)),
            ("d1", 1, (2, 3)),
            ("d-1", -1, (2, 3)),
            ("3d-d1", 1, (2, 2, 2)),
        ]:
            cases.append(Case(f"{name}-{tag}", f"T.{name}(a, dim={dim})", [shape], name))
    return cases


_MATMUL = [
    ("1d-1d", (3,), (3,), None),
    ("2d-1d", (2, 3), (3,), None),
    ("1d-2d", (3,), (3, 2), "single SqueezeBackward4 node"),
    ("2d-2d", (2, 3), (3, 2), None),
    ("3d-3d", (2, 2, 3), (2, 3, 2), "UnsafeViewBackward0"),
    ("3d-2d", (2, 2, 3), (3, 2), "UnsafeViewBackward0"),
    ("2d-3d", (2, 3), (2, 3, 2), "UnsafeViewBackward0"),
    ("1d-3d", (3,), (2, 3, 2), "UnsafeViewBackward0"),
    ("3d-1d", (2, 2, 3), (3,), "UnsafeViewBackward0"),
]


def _linalg_cases():
    cases = []
    for tag, sa, sb, dev in _MATMUL:
        cases.append(Case(f"matmul-{tag}", "a @ b", [sa, sb], "matmul", deviation=dev))
    cases.append(
        Case("matmul-1d-2d-fn", "T.matmul(a, b)", [(3,), (3, 2)], "matmul", deviation="single SqueezeBackward4 node")
    )
    cases += [
        Case("mv", "T.mv(a, b)", [(2, 3), (3,)], "matmul"),
        Case("mm", "T.mm(a, b)", [(2, 3), (3, 2)], "matmul"),
        Case("dot", "T.dot(a, b)", [(3,), (3,)], "matmul", covers=("dot",)),
        Case("outer", "T.outer(a, b)", [(2,), (3,)], "mul", covers=("outer",)),
        Case("transpose", "T.transpose(a, 0, 1)", [(2, 3)], "transpose"),
        Case("transpose-3d", "T.transpose(a, 0, 2)", [(2, 3, 2)], "transpose"),
        Case("dotT", "a.T", [(2, 3)], "permute", covers=("transpose",)),
        Case("t", "a.t()", [(2, 3)], "permute", covers=("transpose",)),
        Case("mT", "a.mT", [(2, 2, 3)], "transpose"),
        Case("permute", "a.permute(2, 0, 1)", [(2, 3, 2)], "permute"),
        Case("trace", "T.trace(a)", [(3, 3)], "trace"),
        Case("trace-rect", "T.trace(a)", [(2, 3)], "trace"),
        Case("det-2", "T.det(a)", [(2, 2)], "det", well_conditioned=True),
        Case("det-3", "T.det(a)", [(3, 3)], "det", well_conditioned=True),
        Case("inv-2", "T.linalg.inv(a)", [(2, 2)], "inv", well_conditioned=True),
        Case("inv-3", "a.inverse()", [(3, 3)], "inv", well_conditioned=True),
        Case("diag-vec", "T.diag(a)", [(3,)], "diag_scatter", covers=("diag",)),
        Case("diag-mat", "T.diag(a)", [(3, 3)], "diagonal", covers=("diag",)),
        Case("diag-rect", "T.diag(a)", [(2, 3)], "diagonal", covers=("diag",)),
    ]
    return cases


def _shape_cases():
    return [
        Case("reshape", "T.reshape(a, (3, 2))", [(2, 3)], "view", covers=("reshape",)),
        Case("reshape-args", "a.reshape(3, 2)", [(2, 3)], "view", covers=("reshape",)),
        Case("reshape-minus1", "T.reshape(a, (-1,))", [(2, 3)], "view", covers=("reshape",)),
        Case("view", "a.view(6)", [(2, 3)], "view", covers=("reshape",)),
        Case("flatten", "T.flatten(a)", [(2, 3)], "view", covers=("flatten",)),
        Case("flatten-3d", "T.flatten(a, 1)", [(2, 2, 2)], "view", covers=("flatten",)),
        Case("squeeze", "T.squeeze(a)", [(2, 1, 3)], "view", covers=("squeeze",)),
        Case("squeeze-dim", "T.squeeze(a, 1)", [(2, 1, 3)], "view", covers=("squeeze",)),
        Case("unsqueeze0", "T.unsqueeze(a, 0)", [(2, 3)], "view", covers=("unsqueeze",)),
        Case("unsqueeze-1", "a.unsqueeze(-1)", [(2, 3)], "view", covers=("unsqueeze",)),
        Case("stack", "T.stack([a, b])", [(3,), (3,)], "stack"),
        Case("stack-d1", "T.stack([a, b, c], dim=1)", [(2, 3), (2, 3), (2, 3)], "stack"),
        Case("stack-scalars", "T.stack([a, b])", [(), ()], "stack"),
        Case("cat", "T.cat([a, b])", [(2,), (3,)], "cat"),
        Case("cat-d1", "T.cat([a, b], dim=1)", [(2, 1), (2, 3)], "cat"),
        Case("cat-d-1-3", "T.cat([a, b, c], dim=-1)", [(2, 2), (2, 1), (2, 3)], "cat"),
        Case("index-0", "a[0]", [(3, 2)], "select"),
        Case("index-neg1", "a[-1]", [(3, 2)], "select"),
        Case("index-scalar", "a[1]", [(3,)], "select"),
        Case("slice", "a[1:3]", [(4, 2)], "slice"),
        Case("slice-step", "a[::2]", [(5,)], "slice"),
        Case("index-col", "a[:, 1]", [(2, 3)], "select"),
        Case("index-slice-int", "a[1:, 0]", [(3, 2)], "select", covers=("select", "slice")),
        Case("index-ellipsis", "a[..., 0]", [(2, 3)], "select"),
        Case("index-none", "a[None, 1]", [(2, 3)], "select"),
        Case("where", "T.where(a > b, a, b)", [(2, 3), (2, 3)], "where"),
        Case("where-broadcast", "T.where(a > 0.0, a, b)", [(2, 3), (3,)], "where"),
        Case("where-scalar", "T.where(a > 0.0, a, 0.0)", [(2, 3)], "where"),
        Case("clamp", "T.clamp(a, min=-0.5, max=0.5)", [(2, 3)], "clamp"),
        Case("clamp-min", "T.clamp(a, min=-0.5)", [(2, 3)], "clamp"),
        Case("clamp-max", "a.clamp(max=0.5)", [(2, 3)], "clamp"),
        Case("expand", "a.expand(2, 3)", [(3,)], "expand"),
        Case("expand-as", "a.expand_as(b) * b", [(2, 1), (2, 3)], "expand", covers=("expand", "expand_as")),
        Case("reshape-as", "a.reshape_as(b) * b", [(2, 3), (3, 2)], "view", covers=("reshape_as",)),
        Case("select-fn", "a.select(1, 0)", [(2, 3)], "select", covers=("select",)),
        Case("unreduce", "T.unreduce(a, b, dim=0) * b", [(3,), (2, 3)], "expand", covers=("unreduce",), torch=False),
        Case("unreduce-all", "T.unreduce(a, b) * b", [(), (2, 3)], "expand", covers=("unreduce",), torch=False),
        Case(
            "unreduce-keep",
            "T.unreduce(a, b, dim=1, keepdim=True) * b",
            [(2, 1), (2, 3)],
            "expand",
            covers=("unreduce",),
            torch=False,
        ),
        Case("clone", "a.clone()", [(3,)], "clone"),
        Case("chain", "T.sum(T.tanh(a @ b + c) ** 2)", [(2, 3), (3,), (2,)], "tanh", dom=(-1.0, 1.0)),
    ]


CASES = _unary_cases() + _binary_cases() + _reduction_cases() + _linalg_cases() + _shape_cases()
BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "case ids must be unique"


def inputs_for(case, dtype="float64"):
    return [G.tensor(x, dtype=dtype, requires_grad=True) for x in case.arrays()]


def weights_for(case, shape, salt="v"):
    """A fixed cotangent for a case's output (a weighted sum tells more than a plain sum)."""
    rng = np.random.default_rng(zlib.crc32((case.id + salt).encode()))
    return rng.uniform(0.5, 1.5, size=shape)


def _np(t):
    return np.asarray(t.detach().numpy(), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# the sweep's checks, on one case


def check_gradcheck_and_gradgradcheck(case):
    xs = inputs_for(case)
    f = case.fn(G)
    assert gradcheck(f, xs, eps=1e-6, atol=1e-5, rtol=1e-3)
    assert gradgradcheck(f, xs, eps=1e-6, atol=1e-5, rtol=1e-3)


def check_vectorized_jacobian_equals_one_hot_grads(case):
    xs = inputs_for(case)
    f = case.fn(G)
    jac = functional.jacobian(f, tuple(xs), vectorize=True)
    y = f(*xs)
    n = int(np.prod(y.shape))
    loops = [np.zeros((n,) + tuple(x.shape)) for x in xs]
    for e in range(n):
        seed = np.zeros(n)
        seed[e] = 1.0
        grads = G.autograd.grad(y, xs, G.tensor(seed.reshape(y.shape)), retain_graph=True, allow_unused=True)
        for k, g in enumerate(grads):
            if g is not None:
                assert tuple(g.shape) == tuple(xs[k].shape)
                loops[k][e] = _np(g)
    assert len(jac) == len(xs)
    for k, block in enumerate(jac):
        assert tuple(block.shape) == tuple(y.shape) + tuple(xs[k].shape)
        np.testing.assert_allclose(_np(block).reshape(loops[k].shape), loops[k], rtol=1e-12, atol=1e-12)


def check_hessian_equals_differences_of_the_gradient(case):
    arrays = case.arrays()
    f = case.fn(G)
    with G.no_grad():
        shape = tuple(f(*[G.tensor(a) for a in arrays]).shape)
    v = G.tensor(weights_for(case, shape))

    def scalar(*xs):
        return (f(*xs) * v).sum()

    def gradient(values):
        xs = [G.tensor(a, requires_grad=True) for a in values]
        grads = G.autograd.grad(scalar(*xs), xs, allow_unused=True)
        return [np.zeros(x.shape) if g is None else _np(g) for g, x in zip(grads, xs)]

    hess = functional.hessian(scalar, tuple(G.tensor(a) for a in arrays))
    eps = 1e-5
    for j, aj in enumerate(arrays):
        for k in range(aj.size):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[j].reshape(-1)[k] += eps
            minus[j].reshape(-1)[k] -= eps
            gp, gm = gradient(plus), gradient(minus)
            for i, ai in enumerate(arrays):
                column = (gp[i] - gm[i]) / (2 * eps)
                block = _np(hess[i][j]).reshape(ai.shape + (aj.size,))
                np.testing.assert_allclose(
                    block[..., k], column, rtol=1e-4, atol=1e-6, err_msg=f"d2/d{'abc'[i]} d{'abc'[j]}[{k}]"
                )


def check_float32_stays_float32(case):
    """Outputs, gradients and second derivatives keep float32 (no silent float64 in a rule)."""
    xs = inputs_for(case, dtype="float32")
    y = case.fn(G)(*xs)
    assert y.dtype == np.float32
    v = G.tensor(weights_for(case, tuple(y.shape)), dtype="float32")
    grads = G.autograd.grad((y * v).sum(), xs, create_graph=True, allow_unused=True)
    assert all(g.dtype == np.float32 for g in grads if g is not None)
    used = [(g * g).sum() for g in grads if g is not None and g.requires_grad]
    if used:
        total = used[0]
        for u in used[1:]:
            total = total + u
        second = G.autograd.grad(total, xs, allow_unused=True)
        assert all(g.dtype == np.float32 for g in second if g is not None)
    with G.no_grad():
        reference = case.fn(G)(*[G.tensor(x.detach().numpy().astype(np.float64)) for x in xs])
    np.testing.assert_allclose(_np(y), _np(reference), rtol=2e-4, atol=2e-5)


# ----------------------------------------------------------------------------------------------
# one case evaluated with a module T (gradcli or torch): used by test_torch_parity and
# scripts/make_golden.py


def graph_tree(fn, depth=0):
    """``[name, [children...]]`` of a grad_fn graph (None for an input with no gradient)."""
    if fn is None:
        return None
    name = fn.name().replace("torch::autograd::", "")
    if depth >= 8:
        return [name, "..."]
    return [name, [graph_tree(child, depth + 1) for child, _ in fn.next_functions]]


def plain(T, t):
    if t is None:
        return None
    if getattr(t, "_is_zerotensor", None) is not None and t._is_zerotensor():
        return np.zeros(tuple(t.shape)).tolist()  # torch's symbolic zeros
    return np.asarray(t.detach().numpy(), dtype=np.float64).tolist()


def evaluate(T, case, arrays=None, expr=None):
    """Output, first gradients of ``sum(out * v)``, second derivatives ``d/dx sum_i sum(grad_i * u_i)``
    and the grad_fn graph of ``case`` at ``arrays`` (default: the case's seeded inputs)."""
    arrays = case.arrays() if arrays is None else [np.asarray(a, dtype=np.float64) for a in arrays]
    xs = [T.tensor(a, requires_grad=True) for a in arrays]
    y = case.fn(T, expr)(*xs)
    v = weights_for(case, tuple(y.shape))
    grads = T.autograd.grad((y * T.tensor(v)).sum(), xs, create_graph=True, allow_unused=True)
    weighted = [
        (g * T.tensor(weights_for(case, tuple(g.shape), f"u{i}"))).sum()
        for i, g in enumerate(grads)
        if g is not None and g.requires_grad
    ]
    second = None
    if weighted:
        total = weighted[0]
        for w in weighted[1:]:
            total = total + w
        second = T.autograd.grad(total, xs, allow_unused=True)
    return {
        "inputs": [a.tolist() for a in arrays],
        "output": plain(T, y),
        "shape": list(y.shape),
        "grads": [plain(T, g) for g in grads],
        "second": None if second is None else [plain(T, g) for g in second],
        "grad_fn": y.grad_fn.name() if y.grad_fn is not None else None,
        "graph": graph_tree(y.grad_fn),
    }


# ----------------------------------------------------------------------------------------------
# an op's rule text against its derivative (test_rules.py)


def _unbroadcast(a, shape):
    a = np.broadcast_to(a, np.broadcast_shapes(np.shape(a), shape))
    a = a.sum(axis=tuple(range(a.ndim - len(shape)))) if a.ndim > len(shape) else a
    keep = tuple(i for i, s in enumerate(shape) if s == 1 and a.shape[i] != 1)
    return a.sum(axis=keep, keepdims=True) if keep else a


def _is_tensor_input(a):
    return type(a) not in (int, float, bool)


def check_rule_text(op, arrays, params):
    """Evaluate ``op.rules_text`` for one call (input arrays, parameters) with the language's
    interpreter and compare it, un-broadcast, with the gradients the engine computes; returns
    how many inputs were checked."""
    inputs = [G.tensor(a, requires_grad=np.asarray(a).dtype.kind == "f") if _is_tensor_input(a) else a for a in arrays]
    wanted = [i for i, a in enumerate(inputs) if isinstance(a, G.Tensor) and a.requires_grad]
    out = ops.apply(op, inputs, params)
    if not wanted or not out.requires_grad:
        return 0
    rng = np.random.default_rng(zlib.crc32(op.name.encode()))
    g = G.tensor(rng.uniform(0.5, 1.5, np.shape(out.data)), dtype=out.dtype)
    code = G.autograd.grad(out, [inputs[i] for i in wanted], g, allow_unused=True)
    names = dict(zip(("x", "y", "z"), inputs))
    checked = 0
    for i, expected in zip(wanted, code):
        text = op.rules_text[0 if op.variadic else i]
        assert text is not None, (op.name, i)
        bound = rules.bind(text, {**params, "i": i} if op.variadic else params)
        program = parse(bound)
        values = {
            "g": g,
            "out": out.detach(),
            **{k: (v.detach() if isinstance(v, G.Tensor) else v) for k, v in names.items()},
        }
        values.update({k: v for k, v in params.items() if k in program.inputs and k not in values})
        missing = [n for n in program.inputs if n not in values]
        assert not missing, f"{op.name}: rule {text!r} reads unknown names {missing}"
        got = run(program, {n: values[n] for n in program.inputs}, dtype=str(out.dtype)).output
        got = np.asarray(got.detach().numpy() if isinstance(got, G.Tensor) else got, dtype=np.float64)
        want = np.zeros(inputs[i].shape) if expected is None else np.asarray(expected.numpy(), dtype=np.float64)
        tol = 1e-4 if np.float32 in (out.dtype, inputs[i].dtype) else 1e-9
        np.testing.assert_allclose(
            _unbroadcast(got, inputs[i].shape), want, rtol=tol, atol=tol, err_msg=f"{op.name} input {i}: {bound}"
        )
        checked += 1
    return checked


# ----------------------------------------------------------------------------------------------
# the public functions by kind (test_ops_sweep, test_formula)

COMPARISONS = {"lt", "le", "gt", "ge", "eq", "ne"}
NO_GRADIENT = {"numel", "ones_like"}
DIFFERENTIABLE = sorted(set(ops.FUNCTIONS) - public.CONSTRUCTORS - COMPARISONS - NO_GRADIENT)


# ----------------------------------------------------------------------------------------------
# programs of the language at random points (test_formula, test_explain)

# one program per differentiable function: (program, {input: (shape, (low, high))})
V3, M23, M33 = (3,), (2, 3), (3, 3)
ANY, POS, UNIT = (-2.0, 2.0), (0.3, 2.0), (-0.8, 0.8)
OP_PROGRAMS = [
    ("sum(abs(x))", {"x": (V3, POS)}),
    ("sum(acos(x))", {"x": (V3, UNIT)}),
    ("sum(acosh(x))", {"x": (V3, (1.2, 3.0))}),
    ("sum(x + y)", {"x": (V3, ANY), "y": (M23, ANY)}),
    ("amax(x * y)", {"x": (M23, ANY), "y": ((), POS)}),
    ("amin(x, dim=0).sum()", {"x": (M23, ANY)}),
    ("sum(asin(x))", {"x": (V3, UNIT)}),
    ("sum(asinh(x))", {"x": (V3, ANY)}),
    ("sum(atan(x))", {"x": (V3, ANY)}),
    ("sum(atan2(x, y))", {"x": (V3, POS), "y": ((), POS)}),
    ("sum(atanh(x))", {"x": (V3, UNIT)}),
    ("sum(clamp(x, min=-0.5, max=0.5) * x)", {"x": (V3, ANY)}),
    ("sum(cos(x))", {"x": (M23, ANY)}),
    ("sum(cosh(x))", {"x": (V3, ANY)}),
    ("det(x)", {"x": (M33, (-1.0, 1.0))}),
    ("sum(diag(x) * 2)", {"x": (V3, ANY)}),
    ("sum(diag(x))", {"x": (M33, ANY)}),
    ("sum(x / y)", {"x": (M23, ANY), "y": (V3, POS)}),
    ("dot(x, y)", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("sum(erf(x))", {"x": (V3, ANY)}),
    ("sum(exp(x))", {"x": (V3, ANY)}),
    ("sum(exp2(x))", {"x": (V3, ANY)}),
    ("sum(expand_as(x, y) * y)", {"x": (V3, ANY), "y": (M23, ANY)}),
    ("sum(expm1(x))", {"x": (V3, ANY)}),
    ("sum(flatten(x) * [1, 2, 3, 4, 5, 6])", {"x": (M23, ANY)}),
    ("sum(inv(x) * x)", {"x": (M33, (-1.0, 1.0))}),
    ("sum(log(x))", {"x": (V3, POS)}),
    ("sum(log10(x))", {"x": (V3, POS)}),
    ("sum(log1p(x))", {"x": (V3, (-0.5, 2.0))}),
    ("sum(log2(x))", {"x": (V3, POS)}),
    ("sum(log_softmax(x, 1) * [1, 2, 3])", {"x": (M23, ANY)}),
    ("logsumexp(x, 0).sum()", {"x": (M23, ANY)}),
    ("sum(x @ y)", {"x": (M23, ANY), "y": ((3, 2), ANY)}),
    ("x @ A @ x", {"x": (V3, ANY), "A": (M33, ANY)}),
    ("max(x)", {"x": (V3, ANY)}),
    ("max(x, dim=1).sum()", {"x": (M23, ANY)}),
    ("sum(maximum(x, y))", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("mean(x * x)", {"x": (M23, ANY)}),
    ("mean(x, dim=1, keepdim=True).sum()", {"x": (M23, ANY)}),
    ("min(x)", {"x": (V3, ANY)}),
    ("sum(minimum(x, y))", {"x": (V3, ANY), "y": ((), ANY)}),
    ("sum(x * y)", {"x": (V3, ANY), "y": (M23, ANY)}),
    ("sum(-x * y)", {"x": (V3, ANY), "y": ((), ANY)}),
    ("norm(x)", {"x": (V3, POS)}),
    ("norm(x, p=3)", {"x": (V3, POS)}),
    ("sum(outer(x, y))", {"x": (V3, ANY), "y": ((2,), ANY)}),
    ("sum(+x * x)", {"x": (V3, ANY)}),
    ("sum(x ^ 3) + sum(x ^ 2.5)", {"x": (V3, POS)}),
    ("sum(pow(x, y))", {"x": (V3, POS), "y": (V3, ANY)}),
    ("sum(2 ^ x)", {"x": (V3, ANY)}),
    ("prod(x)", {"x": (V3, (0.5, 1.5))}),
    ("prod(x, dim=0).sum()", {"x": (M23, (0.5, 1.5))}),
    ("sum(reciprocal(x))", {"x": (V3, POS)}),
    ("sum(relu(x) * x)", {"x": (V3, ANY)}),
    ("sum(reshape(x, 3, 2) @ [1, 2])", {"x": (M23, ANY)}),
    ("sum(reshape_as(x, y) * y)", {"x": (M23, ANY), "y": ((3, 2), ANY)}),
    ("sum(rsqrt(x))", {"x": (V3, POS)}),
    ("sum(sigmoid(x))", {"x": (V3, ANY)}),
    ("sum(sign(x) * x)", {"x": (V3, POS)}),
    ("sum(sin(x))", {"x": (V3, ANY)}),
    ("sum(sinh(x))", {"x": (V3, ANY)}),
    ("sum(softmax(x, 1) * [1, 2, 3])", {"x": (M23, ANY)}),
    ("sum(softplus(x))", {"x": (V3, ANY)}),
    ("sum(sqrt(x))", {"x": (V3, POS)}),
    ("sum(square(x))", {"x": (V3, ANY)}),
    ("sum(squeeze(reshape(x, 1, 3)) * x)", {"x": (V3, ANY)}),
    ("sum(stack([x, y * x], 0) * 2)", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("std(x)", {"x": (V3, ANY)}),
    ("sum(x - y)", {"x": (M23, ANY), "y": ((2, 1), ANY)}),
    ("sum(x) * y", {"x": (V3, ANY), "y": ((), ANY)}),
    ("sum(tan(x))", {"x": (V3, (-1.2, 1.2))}),
    ("sum(tanh(x))", {"x": (V3, ANY)}),
    ("trace(x @ x)", {"x": (M33, ANY)}),
    ("sum(transpose(x, 0, 1) @ x)", {"x": (M23, ANY)}),
    ("sum(x.T * [1, 2])", {"x": (M23, ANY)}),
    ("sum(unreduce(x, y, dim=1, keepdim=True) * y)", {"x": ((2, 1), ANY), "y": (M23, ANY)}),
    ("sum(unsqueeze(x, 1) * y)", {"x": (V3, ANY), "y": ((3, 2), ANY)}),
    ("var(x)", {"x": (V3, ANY)}),
    ("var(x, dim=0).sum()", {"x": (M23, ANY)}),
    ("sum(where(x > 0, x * x, y))", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("sum(1 - x) + sum(2 / x) + sum(x / 2)", {"x": (V3, POS)}),
    ("h = tanh(W @ x + b); y = sum(h ^ 2)", {"W": (M23, ANY), "x": (V3, ANY), "b": ((2,), ANY)}),
    # indexing and cat: no rule text in the table; written with masks, 0/1 matrices and slices
    ("sum(x[0] * x)", {"x": (V3, ANY)}),
    ("sum(cat([x, x * y], 0) * [1, 2, 3, 4, 5, 6])", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("sum(x[:, 1] * x[1]) + x[-1, -1]", {"x": (M33, ANY)}),
    ("sum(x[::2, 1:] ^ 2)", {"x": (M33, ANY)}),
    ("sum((1 - x[:-1]) ^ 2 + 100 * (x[1:] - x[:-1] ^ 2) ^ 2)", {"x": ((4,), ANY)}),
    ("sum(cat([x, y], 1) ^ 2)", {"x": (M23, ANY), "y": ((2, 1), ANY)}),
]


def points(spec, seed):
    rng = np.random.default_rng(seed)
    while True:
        values = {n: rng.uniform(lo, hi, size=s) for n, (s, (lo, hi)) in spec.items()}
        # stay off the kinks of max/min/abs/relu/clamp, where one-sided derivatives differ
        flat = np.concatenate([np.ravel(v) for v in values.values()])
        gaps = np.abs(np.subtract.outer(flat, flat))[~np.eye(flat.size, dtype=bool)] if flat.size > 1 else [1]
        if np.min(gaps) > 1e-2 and np.min(np.abs(np.abs(flat) - 0.5)) > 1e-2 and np.min(np.abs(flat)) > 1e-2:
            return values


UNARY = ["sin", "cos", "tanh", "exp", "sigmoid", "softplus", "atan", "erf", "square", "asinh"]
POSITIVE = ["log", "sqrt", "reciprocal"]  # applied to x*x + 0.5 so that they are defined


def random_program(rng: random.Random):
    """A program of 2-4 statements over inputs x (3,), y (3,), s (), with assignments and
    broadcasting; returns (text, spec)."""
    spec = {"x": ((3,), ANY), "y": ((3,), ANY), "s": ((), ANY)}
    names = ["x", "y", "s"]

    def expr(depth):
        if depth == 0 or rng.random() < 0.2:
            return rng.choice(names + ["2", "0.5"])
        kind = rng.random()
        if kind < 0.35:
            return f"{rng.choice(UNARY)}({expr(depth - 1)})"
        if kind < 0.45:
            inner = expr(depth - 1)
            return f"{rng.choice(POSITIVE)}({inner} * {inner} + 0.5)"
        if kind < 0.85:
            op = rng.choice(["+", "-", "*", "*", "/"])
            right = expr(depth - 1)
            if op == "/":
                right = f"(1.5 + tanh({right}))"
            return f"({expr(depth - 1)} {op} {right})"
        if kind < 0.92:
            return f"({expr(depth - 1)}) ^ {rng.choice(['2', '3'])}"
        return f"mean({expr(depth - 1)}) * {rng.choice(names)}"

    lines = []
    for k in range(rng.randint(1, 3)):
        name = f"h{k}"
        lines.append(f"{name} = {expr(3)}")
        names.append(name)
    lines.append(f"sum({expr(3)} * {rng.choice(names)}) + {rng.choice(['s', 'sum(x * y)', 'h0 * 2', '0'])}")
    text = "; ".join(lines)
    used = parse(text).inputs
    return text, {n: spec[n] for n in used}


# ----------------------------------------------------------------------------------------------
# console blocks of the README and the tutorial (test_readme, test_lessons)


def examples(path):
    """(command, expected output) pairs from the ```console blocks of the Markdown file ``path``."""
    found = []
    for block in re.findall(r"```console\n(.*?)```", Path(path).read_text(encoding="utf-8"), re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            found.append((command, output))
    return found
