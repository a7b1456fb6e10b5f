"""One row of the op table is all an elementwise op needs (issue 9, deliverable 1).

A fixture adds ``cube`` (x^3) with one call of ``ops.unary`` — the forward, the derivative,
the rule text, the doc and the domain — and nothing else.  The test then finds it in the
language, the Python API (``gradcli.cube`` and ``Tensor.cube``), the command line, the
function list and docs, and runs the op sweep's checks and the rule-text check over it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cases import (
    check_float32_stays_float32,
    check_gradcheck_and_gradgradcheck,
    check_hessian_equals_differences_of_the_gradient,
    check_rule_text,
    check_vectorized_jacobian_equals_one_hot_grads,
    unary_cases,
)
from typer.testing import CliRunner

import gradcli as G
from gradcli import ops, public
from gradcli.cli import app
from gradcli.language import parse, run


@pytest.fixture
def cube():
    op = ops.unary(
        "cube", lambda xp, x: x * x * x, lambda g, x: g * 3.0 * x * x, "g * 3 * x * x", "x cubed", (-2.0, 2.0)
    )
    try:
        yield op
    finally:
        del ops.OPS["cube"]
        ops.UNARY_OPS.remove("cube")
        public.unregister("cube")


def test_one_row_is_in_the_language(cube):
    program = parse("y = cube(x) + x.cube(); y")
    out = run(program, {"x": G.tensor(2.0, requires_grad=True)}).output
    assert out.item() == 16.0 and out.grad_fn.name() == "AddBackward0"
    assert out.grad_fn.next_functions[0][0].name() == "CubeBackward0"


def test_one_row_is_in_the_python_api(cube):
    x = G.tensor([1.0, -2.0], requires_grad=True)
    G.cube(x).sum().backward()
    assert x.grad.tolist() == [3.0, 12.0]
    assert x.cube().tolist() == [1.0, -8.0]
    assert "cube" in G.FUNCTIONS and G.public.DOCS["cube"] == "x cubed"


def test_one_row_is_on_the_command_line(cube):
    result = CliRunner().invoke(app, ["grad", "cube(x)", "x=2", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["grads"]["x"] == 12.0


@pytest.mark.parametrize(
    "check",
    [
        check_gradcheck_and_gradgradcheck,
        check_vectorized_jacobian_equals_one_hot_grads,
        check_hessian_equals_differences_of_the_gradient,
        check_float32_stays_float32,
    ],
)
def test_one_row_is_swept(cube, check):
    cases = unary_cases("cube", torch=False)
    assert [c.id for c in cases] == ["cube-scalar", "cube-vec", "cube-mat", "cube-method"]
    for case in cases:
        check(case)


def test_one_row_has_a_checked_rule(cube):
    assert check_rule_text(cube, [np.array([0.5, -1.5])], {}) == 1


def test_the_fixture_leaves_nothing_behind():
    assert "cube" not in ops.OPS and "cube" not in G.FUNCTIONS and not hasattr(G.Tensor, "cube")
    with pytest.raises(AttributeError):
        G.cube  # noqa: B018 - the attribute lookup is the test
