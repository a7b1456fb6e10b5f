"""``--formula``: every derivative printed as a program of the language, which ``eval`` runs to the
same numbers as the engine's gradient and as finite differences — for every differentiable
function, first and second derivatives, and 50 random composite programs at random points."""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

import gradcli as G
from gradcli.formula import derivative_formula, gradient_formulas
from gradcli.language import parse, run

# one program per differentiable function: (program, {input: (shape, (low, high))})
V3, M23, M33 = (3,), (2, 3), (3, 3)
ANY, POS, UNIT = (-2.0, 2.0), (0.3, 2.0), (-0.8, 0.8)
OP_PROGRAMS = [
    ("sum(abs(x))", {"x": (V3, POS)}), ("sum(acos(x))", {"x": (V3, UNIT)}),
    ("sum(acosh(x))", {"x": (V3, (1.2, 3.0))}), ("sum(x + y)", {"x": (V3, ANY), "y": (M23, ANY)}),
    ("amax(x * y)", {"x": (M23, ANY), "y": ((), POS)}), ("amin(x, dim=0).sum()", {"x": (M23, ANY)}),
    ("sum(asin(x))", {"x": (V3, UNIT)}), ("sum(asinh(x))", {"x": (V3, ANY)}), ("sum(atan(x))", {"x": (V3, ANY)}),
    ("sum(atan2(x, y))", {"x": (V3, POS), "y": ((), POS)}), ("sum(atanh(x))", {"x": (V3, UNIT)}),
    ("sum(clamp(x, min=-0.5, max=0.5) * x)", {"x": (V3, ANY)}), ("sum(cos(x))", {"x": (M23, ANY)}),
    ("sum(cosh(x))", {"x": (V3, ANY)}), ("det(x)", {"x": (M33, (-1.0, 1.0))}),
    ("sum(diag(x) * 2)", {"x": (V3, ANY)}), ("sum(diag(x))", {"x": (M33, ANY)}),
    ("sum(x / y)", {"x": (M23, ANY), "y": (V3, POS)}), ("dot(x, y)", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("sum(erf(x))", {"x": (V3, ANY)}), ("sum(exp(x))", {"x": (V3, ANY)}), ("sum(exp2(x))", {"x": (V3, ANY)}),
    ("sum(expand_as(x, y) * y)", {"x": (V3, ANY), "y": (M23, ANY)}), ("sum(expm1(x))", {"x": (V3, ANY)}),
    ("sum(flatten(x) * [1, 2, 3, 4, 5, 6])", {"x": (M23, ANY)}), ("sum(inv(x) * x)", {"x": (M33, (-1.0, 1.0))}),
    ("sum(log(x))", {"x": (V3, POS)}), ("sum(log10(x))", {"x": (V3, POS)}), ("sum(log1p(x))", {"x": (V3, (-0.5, 2.0))}),
    ("sum(log2(x))", {"x": (V3, POS)}), ("sum(log_softmax(x, 1) * [1, 2, 3])", {"x": (M23, ANY)}),
    ("logsumexp(x, 0).sum()", {"x": (M23, ANY)}), ("sum(x @ y)", {"x": (M23, ANY), "y": ((3, 2), ANY)}),
    ("x @ A @ x", {"x": (V3, ANY), "A": (M33, ANY)}), ("max(x)", {"x": (V3, ANY)}),
    ("max(x, dim=1).sum()", {"x": (M23, ANY)}), ("sum(maximum(x, y))", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("mean(x * x)", {"x": (M23, ANY)}), ("mean(x, dim=1, keepdim=True).sum()", {"x": (M23, ANY)}),
    ("min(x)", {"x": (V3, ANY)}), ("sum(minimum(x, y))", {"x": (V3, ANY), "y": ((), ANY)}),
    ("sum(x * y)", {"x": (V3, ANY), "y": (M23, ANY)}), ("sum(-x * y)", {"x": (V3, ANY), "y": ((), ANY)}),
    ("norm(x)", {"x": (V3, POS)}), ("norm(x, p=3)", {"x": (V3, POS)}), ("sum(outer(x, y))", {"x": (V3, ANY), "y": ((2,), ANY)}),
    ("sum(+x * x)", {"x": (V3, ANY)}), ("sum(x ^ 3) + sum(x ^ 2.5)", {"x": (V3, POS)}),
    ("sum(pow(x, y))", {"x": (V3, POS), "y": (V3, ANY)}), ("sum(2 ^ x)", {"x": (V3, ANY)}),
    ("prod(x)", {"x": (V3, (0.5, 1.5))}), ("prod(x, dim=0).sum()", {"x": (M23, (0.5, 1.5))}),
    ("sum(reciprocal(x))", {"x": (V3, POS)}), ("sum(relu(x) * x)", {"x": (V3, ANY)}),
    ("sum(reshape(x, 3, 2) @ [1, 2])", {"x": (M23, ANY)}), ("sum(reshape_as(x, y) * y)", {"x": (M23, ANY), "y": ((3, 2), ANY)}),
    ("sum(rsqrt(x))", {"x": (V3, POS)}), ("sum(sigmoid(x))", {"x": (V3, ANY)}), ("sum(sign(x) * x)", {"x": (V3, POS)}),
    ("sum(sin(x))", {"x": (V3, ANY)}), ("sum(sinh(x))", {"x": (V3, ANY)}),
    ("sum(softmax(x, 1) * [1, 2, 3])", {"x": (M23, ANY)}), ("sum(softplus(x))", {"x": (V3, ANY)}),
    ("sum(sqrt(x))", {"x": (V3, POS)}), ("sum(square(x))", {"x": (V3, ANY)}),
    ("sum(squeeze(reshape(x, 1, 3)) * x)", {"x": (V3, ANY)}), ("sum(stack([x, y * x], 0) * 2)", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("std(x)", {"x": (V3, ANY)}), ("sum(x - y)", {"x": (M23, ANY), "y": ((2, 1), ANY)}), ("sum(x) * y", {"x": (V3, ANY), "y": ((), ANY)}),
    ("sum(tan(x))", {"x": (V3, (-1.2, 1.2))}), ("sum(tanh(x))", {"x": (V3, ANY)}), ("trace(x @ x)", {"x": (M33, ANY)}),
    ("sum(transpose(x, 0, 1) @ x)", {"x": (M23, ANY)}), ("sum(x.T * [1, 2])", {"x": (M23, ANY)}),
    ("sum(unreduce(x, y, dim=1, keepdim=True) * y)", {"x": ((2, 1), ANY), "y": (M23, ANY)}),
    ("sum(unsqueeze(x, 1) * y)", {"x": (V3, ANY), "y": ((3, 2), ANY)}), ("var(x)", {"x": (V3, ANY)}),
    ("var(x, dim=0).sum()", {"x": (M23, ANY)}), ("sum(where(x > 0, x * x, y))", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("sum(1 - x) + sum(2 / x) + sum(x / 2)", {"x": (V3, POS)}),
    ("h = tanh(W @ x + b); y = sum(h ^ 2)", {"W": (M23, ANY), "x": (V3, ANY), "b": ((2,), ANY)}),
    # indexing and cat: no rule text in the table; written with masks, 0/1 matrices and slices
    ("sum(x[0] * x)", {"x": (V3, ANY)}), ("sum(cat([x, x * y], 0) * [1, 2, 3, 4, 5, 6])", {"x": (V3, ANY), "y": (V3, ANY)}),
    ("sum(x[:, 1] * x[1]) + x[-1, -1]", {"x": (M33, ANY)}), ("sum(x[::2, 1:] ^ 2)", {"x": (M33, ANY)}),
    ("sum((1 - x[:-1]) ^ 2 + 100 * (x[1:] - x[:-1] ^ 2) ^ 2)", {"x": ((4,), ANY)}),
    ("sum(cat([x, y], 1) ^ 2)", {"x": (M23, ANY), "y": ((2, 1), ANY)}),
]
def _points(spec, seed):
    rng = np.random.default_rng(seed)
    while True:
        values = {n: rng.uniform(lo, hi, size=s) for n, (s, (lo, hi)) in spec.items()}
        # stay off the kinks of max/min/abs/relu/clamp, where one-sided derivatives differ
        flat = np.concatenate([np.ravel(v) for v in values.values()])
        gaps = np.abs(np.subtract.outer(flat, flat))[~np.eye(flat.size, dtype=bool)] if flat.size > 1 else [1]
        if np.min(gaps) > 1e-2 and np.min(np.abs(np.abs(flat) - 0.5)) > 1e-2 and np.min(np.abs(flat)) > 1e-2:
            return values


def _tensors(values):
    return {n: G.tensor(v, requires_grad=True) for n, v in values.items()}


def _evaluate(text, values):
    program = parse(text)
    unknown = [n for n in program.inputs if n not in values]
    assert not unknown, (text, unknown)
    return np.asarray(run(program, {n: G.tensor(values[n]) for n in program.inputs}).output.data)


def _engine_grads(text, values):
    program = parse(text)
    inputs = _tensors(values)
    out = run(program, inputs).output
    out = out.sum() if out.shape else out
    grads = G.autograd.grad([out], list(inputs.values()), allow_unused=True)
    return {n: (np.zeros(np.shape(values[n])) if g is None else np.asarray(g.data)) for n, g in zip(inputs, grads)}


def _numeric(text, values, name, eps=1e-6):
    """Central differences of sum(output) w.r.t. ``name``."""
    base = {k: np.array(v, dtype=float) for k, v in values.items()}
    grad = np.zeros(np.shape(base[name]))
    flat = grad.reshape(-1)
    for i in range(flat.size):
        plus = {k: v.copy() for k, v in base.items()}
        minus = {k: v.copy() for k, v in base.items()}
        plus[name].reshape(-1)[i] += eps
        minus[name].reshape(-1)[i] -= eps
        hi = np.sum(np.asarray(run(parse(text), _tensors(plus)).output.data))
        lo = np.sum(np.asarray(run(parse(text), _tensors(minus)).output.data))
        flat[i] = (hi - lo) / (2 * eps)
    return grad


def _check_first(text, spec, seed):
    values = _points(spec, seed)
    formulas, notes = gradient_formulas(parse(text), _tensors(values), list(spec))
    want = _engine_grads(text, values)
    for name in spec:
        formula = formulas[name]
        assert formula is not None, (text, name, notes)
        got = _evaluate(formula, values)
        assert got.shape == want[name].shape, (text, name, formula)
        np.testing.assert_allclose(got, want[name], rtol=1e-9, atol=1e-11, err_msg=f"{text} d/d{name}: {formula}")
        np.testing.assert_allclose(got, _numeric(text, values, name), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{text} d/d{name}: {formula}")
    return formulas


def _engine_derivative(text, values, names):
    inputs = _tensors(values)
    current = run(parse(text), inputs).output
    for name in names:
        if current.shape:
            current = current.sum()
        x = inputs[name]
        g = None
        if current.requires_grad:
            (g,) = G.autograd.grad([current], [x], create_graph=True, allow_unused=True)
        current = g if g is not None else G.tensor(np.zeros(x.shape))
    return np.asarray(current.data)


def _check_order(text, spec, names, seed):
    values = _points(spec, seed)
    formula, notes = derivative_formula(parse(text), _tensors(values), names)
    assert formula is not None, (text, names, notes)
    got = _evaluate(formula, values)
    want = _engine_derivative(text, values, names)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=f"{text} d/d{names}: {formula}")
    # and against finite differences of the engine's derivative of one order less
    if len(names) > 1:
        base = {k: np.array(v, dtype=float) for k, v in values.items()}
        last, eps = names[-1], 1e-6
        fd = np.zeros(np.shape(base[last]))
        for i in range(fd.size):
            plus = {k: v.copy() for k, v in base.items()}
            minus = {k: v.copy() for k, v in base.items()}
            plus[last].reshape(-1)[i] += eps
            minus[last].reshape(-1)[i] -= eps
            fd.reshape(-1)[i] = (np.sum(_engine_derivative(text, plus, names[:-1]))
                                 - np.sum(_engine_derivative(text, minus, names[:-1]))) / (2 * eps)
        np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-5, err_msg=f"{text} d/d{names}: {formula}")
    return formula


def test_every_differentiable_function_has_a_program_here():
    import test_ops_sweep

    from gradcli.language import ast as A
    covered = set()
    for text, _ in OP_PROGRAMS:
        for statement in parse(text).statements:
            covered.update(n.func for n in A.walk(statement) if isinstance(n, A.Call))
    missing = set(test_ops_sweep.DIFFERENTIABLE) - covered - {"select"}        # x[0] is select
    assert not missing, missing


@pytest.mark.parametrize("text, spec", OP_PROGRAMS, ids=[t for t, _ in OP_PROGRAMS])
def test_first_derivative_formula_of_every_function(text, spec):
    _check_first(text, spec, zlib.crc32(text.encode()))


@pytest.mark.parametrize("text, spec", OP_PROGRAMS, ids=[t for t, _ in OP_PROGRAMS])
def test_second_derivative_formula_of_every_function(text, spec):
    names = list(spec)
    _check_order(text, spec, [names[0], names[0]], zlib.crc32(text.encode()) + 1)
    if len(names) > 1:
        _check_order(text, spec, [names[0], names[1]], zlib.crc32(text.encode()) + 2)


def test_an_input_as_the_output_has_the_seed_as_its_formula():
    """d x / d x = 1: the output is the input's own leaf (no grad_fn), also as the last order of a
    higher derivative (x^2/2 -> x -> 1, x*y -> y -> 1)."""
    assert gradient_formulas(parse("x"), _tensors({"x": 3.0}), ["x"])[0] == {"x": "1"}
    assert gradient_formulas(parse("y = x; y"), _tensors({"x": [1.0, 2.0]}), ["x"],
                             seed=G.tensor([3.0, 4.0]))[0] == {"x": "[3, 4]"}
    assert derivative_formula(parse("x ^ 2 / 2"), _tensors({"x": 3.0}), ["x", "x"])[0] == "1"
    assert derivative_formula(parse("x * y"), _tensors({"x": 3.0, "y": 2.0}), ["x", "y"])[0] == "1"


def test_a_step_without_a_rule_text_gives_null_and_says_why():
    from gradcli.autograd import Function

    class Twice(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    values = {"x": np.array([1.0, 2.0])}
    formulas, notes = gradient_formulas(parse("sum(twice(x) * x)"), _tensors(values), ["x"],
                                        functions={"twice": Twice.apply})
    assert formulas == {"x": None}
    assert "TwiceBackward" in notes[0] and "no rule text" in notes[0]


# ---------------------------------------------------------------------------------------------
# random composite programs

UNARY = ["sin", "cos", "tanh", "exp", "sigmoid", "softplus", "atan", "erf", "square", "asinh"]
POSITIVE = ["log", "sqrt", "reciprocal"]        # applied to x*x + 0.5 so that they are defined


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


@pytest.mark.parametrize("k", range(50))
def test_random_composite_program(k):
    rng = random.Random(1000 + k)
    text, spec = random_program(rng)
    while not spec:                                 # a program of constants only: draw again
        text, spec = random_program(rng)
    formulas = _check_first(text, spec, 77 + k)
    name = sorted(spec)[k % len(spec)]
    _check_order(text, spec, [name, sorted(spec)[(k + 1) % len(spec)]], 177 + k)
    for formula in formulas.values():
        assert len(formula) < 60 * len(text), (text, formula)        # linear in the program


# ---------------------------------------------------------------------------------------------
# the simplifier and the printed text

@pytest.mark.parametrize("text, values, expected", [
    ("w*x+b", {"w": 2.0, "x": 3.0, "b": 1.0}, {"w": "x", "x": "w", "b": "1"}),
    ("sin(x*y)", {"x": 2.0, "y": 3.0}, {"x": "cos(x * y) * y", "y": "cos(x * y) * x"}),
    ("x ^ 2 + 3 * x", {"x": 1.0}, {"x": "3 + 2 * x"}),
    ("sum(x * [1, 2])", {"x": [1.0, 2.0]}, {"x": "[1, 2]"}),
    ("-(-x) + 0 * x", {"x": 1.0}, {"x": "1"}),
    ("sum(x) + sum(x * y)", {"x": [1.0, 2.0], "y": 3.0}, {"x": "(y + 1) * ones(2)", "y": "sum(x, dim=0)"}),
])
def test_simplified_text(text, values, expected):
    formulas, _ = gradient_formulas(parse(text), _tensors(values), list(values))
    assert formulas == expected


def test_no_identity_left_in_the_text():
    for text, spec in OP_PROGRAMS[:40]:
        values = _points(spec, 3)
        formulas, _ = gradient_formulas(parse(text), _tensors(values), list(spec))
        for formula in formulas.values():
            assert not re.search(r"\* 1\b(?!\.)|\b1 \*(?! *[0-9])|\+ 0\b(?!\.)|\^ 1\b(?!\.)|- -|--", formula), formula


def test_repeated_subexpressions_are_named_and_the_text_stays_linear():
    depth = 60
    text = "x"
    for _ in range(depth):
        text = f"tanh({text} * y)"
    values = {"x": 0.3, "y": 0.9}
    formulas, _ = gradient_formulas(parse(text), _tensors(values), ["x", "y"])
    for formula in formulas.values():
        assert len(formula) < 40 * len(text)
        assert formula.count("; ") >= depth - 1                 # each tanh named once
    want = _engine_grads(text, values)
    for name in values:
        np.testing.assert_allclose(_evaluate(formulas[name], values), want[name], rtol=1e-9)
# ---------------------------------------------------------------------------------------------
# the command line

GRADCLI = [sys.executable, "-m", "gradcli"]


def test_grad_formula_json_and_eval_gives_the_same_numbers():
    proc = subprocess.run(GRADCLI + ["grad", "h = tanh(w * x + b); h * x", "w=0.5", "x=2", "b=-1", "--formula", "--json"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data["formulas"]) == {"w", "x", "b"}
    for name, formula in data["formulas"].items():
        needed = parse(formula).inputs
        values = [f"{n}={v}" for n, v in (("w", "0.5"), ("x", "2"), ("b", "-1")) if n in needed]
        out = subprocess.run(GRADCLI + ["eval", formula, *values, "--json"], capture_output=True, text=True, check=False, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["value"] == pytest.approx(data["grads"][name], rel=1e-12)


def test_diff_formula_second_order_cli():
    proc = subprocess.run(GRADCLI + ["diff", "sin(x) * y", "x=1", "y=2", "--wrt", "x,x,y", "--formula", "--json"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["derivative"] == pytest.approx(-np.sin(1.0))
    (formula,) = data["formulas"].values()
    assert _evaluate(formula, {"x": 1.0, "y": 2.0}) == pytest.approx(-np.sin(1.0))
