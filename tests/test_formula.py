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
from cases import DIFFERENTIABLE, OP_PROGRAMS, points, random_program

import gradcli as G
from gradcli.formula import derivative_formula, gradient_formulas
from gradcli.language import parse, run


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
    values = points(spec, seed)
    formulas, notes = gradient_formulas(parse(text), _tensors(values), list(spec))
    want = _engine_grads(text, values)
    for name in spec:
        formula = formulas[name]
        assert formula is not None, (text, name, notes)
        got = _evaluate(formula, values)
        assert got.shape == want[name].shape, (text, name, formula)
        np.testing.assert_allclose(got, want[name], rtol=1e-9, atol=1e-11, err_msg=f"{text} d/d{name}: {formula}")
        np.testing.assert_allclose(
            got, _numeric(text, values, name), rtol=1e-5, atol=1e-6, err_msg=f"{text} d/d{name}: {formula}"
        )
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
    values = points(spec, seed)
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
            fd.reshape(-1)[i] = (
                np.sum(_engine_derivative(text, plus, names[:-1])) - np.sum(_engine_derivative(text, minus, names[:-1]))
            ) / (2 * eps)
        np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-5, err_msg=f"{text} d/d{names}: {formula}")
    return formula


def test_every_differentiable_function_has_a_program_here():
    from gradcli.language import ast as A

    covered = set()
    for text, _ in OP_PROGRAMS:
        for statement in parse(text).statements:
            covered.update(n.func for n in A.walk(statement) if isinstance(n, A.Call))
    missing = set(DIFFERENTIABLE) - covered - {"select"}  # x[0] is select
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
    assert gradient_formulas(parse("y = x; y"), _tensors({"x": [1.0, 2.0]}), ["x"], seed=G.tensor([3.0, 4.0]))[0] == {
        "x": "[3, 4]"
    }
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
    formulas, notes = gradient_formulas(
        parse("sum(twice(x) * x)"), _tensors(values), ["x"], functions={"twice": Twice.apply}
    )
    assert formulas == {"x": None}
    assert "TwiceBackward" in notes[0] and "no rule text" in notes[0]


# ---------------------------------------------------------------------------------------------
# random composite programs


@pytest.mark.parametrize("k", range(50))
def test_random_composite_program(k):
    rng = random.Random(1000 + k)
    text, spec = random_program(rng)
    while not spec:  # a program of constants only: draw again
        text, spec = random_program(rng)
    formulas = _check_first(text, spec, 77 + k)
    name = sorted(spec)[k % len(spec)]
    _check_order(text, spec, [name, sorted(spec)[(k + 1) % len(spec)]], 177 + k)
    for formula in formulas.values():
        assert len(formula) < 60 * len(text), (text, formula)  # linear in the program


# ---------------------------------------------------------------------------------------------
# the simplifier and the printed text


@pytest.mark.parametrize(
    "text, values, expected",
    [
        ("w*x+b", {"w": 2.0, "x": 3.0, "b": 1.0}, {"w": "x", "x": "w", "b": "1"}),
        ("sin(x*y)", {"x": 2.0, "y": 3.0}, {"x": "cos(x * y) * y", "y": "cos(x * y) * x"}),
        ("x ^ 2 + 3 * x", {"x": 1.0}, {"x": "3 + 2 * x"}),
        ("sum(x * [1, 2])", {"x": [1.0, 2.0]}, {"x": "[1, 2]"}),
        ("-(-x) + 0 * x", {"x": 1.0}, {"x": "1"}),
        ("sum(x) + sum(x * y)", {"x": [1.0, 2.0], "y": 3.0}, {"x": "(y + 1) * ones(2)", "y": "sum(x, dim=0)"}),
    ],
)
def test_simplified_text(text, values, expected):
    formulas, _ = gradient_formulas(parse(text), _tensors(values), list(values))
    assert formulas == expected


def test_no_identity_left_in_the_text():
    for text, spec in OP_PROGRAMS[:40]:
        values = points(spec, 3)
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
        assert formula.count("; ") >= depth - 1  # each tanh named once
    want = _engine_grads(text, values)
    for name in values:
        np.testing.assert_allclose(_evaluate(formulas[name], values), want[name], rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# the command line

GRADCLI = [sys.executable, "-m", "gradcli"]


def test_grad_formula_json_and_eval_gives_the_same_numbers():
    proc = subprocess.run(
        GRADCLI + ["grad", "h = tanh(w * x + b); h * x", "w=0.5", "x=2", "b=-1", "--formula", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data["formulas"]) == {"w", "x", "b"}
    for name, formula in data["formulas"].items():
        needed = parse(formula).inputs
        values = [f"{n}={v}" for n, v in (("w", "0.5"), ("x", "2"), ("b", "-1")) if n in needed]
        out = subprocess.run(
            GRADCLI + ["eval", formula, *values, "--json"], capture_output=True, text=True, check=False, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["value"] == pytest.approx(data["grads"][name], rel=1e-12)


def test_diff_formula_second_order_cli():
    proc = subprocess.run(
        GRADCLI + ["diff", "sin(x) * y", "x=1", "y=2", "--wrt", "x,x,y", "--formula", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["derivative"] == pytest.approx(-np.sin(1.0))
    (formula,) = data["formulas"].values()
    assert _evaluate(formula, {"x": 1.0, "y": 2.0}) == pytest.approx(-np.sin(1.0))
