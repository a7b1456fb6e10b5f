"""gradcli check: per-input worst elements, tolerances, non-finite failures, float64 numerics,
the fast mode for large inputs, usage errors; through the installed console script."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from terminal import on_terminal, run  # noqa: E402

BAD_PLUGIN = '''
from gradcli.autograd import Function
import gradcli
import numpy as np


class badsq(Function):
    """x^2 with a backward that is off by one at element 7."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        bump = np.zeros(x.shape)
        bump.flat[7] = 1.0
        return g * 2 * x + gradcli.tensor(bump)
'''


def js(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.fixture
def bad(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(BAD_PLUGIN)
    return str(path)


def test_nonfinite_analytic_is_a_failure_reported_as_such():
    r = run("check", "sum(sqrt(x * x))", "x=[0, 0]", "--json")  # 1/(2*0) * 0 = nan; the numbers say 0
    assert r.returncode == 1
    assert r.stdout == (
        '{"program":"sum(sqrt(x * x))","value":0.0,"shape":[],"dtype":"float64","grad_fn":"SumBackward0",'
        '"ok":false,"max_abs_error":"NaN","max_rel_error":"NaN","atol":1e-05,"rtol":0.001,"eps":1e-06,'
        '"order":1,"numerical_dtype":"float64","inputs":{"x":{"max_abs_error":"NaN","max_rel_error":"NaN",'
        '"worst":[{"index":[0],"analytic":"NaN","numerical":0.0,"abs_error":"NaN","rel_error":"NaN"},'
        '{"index":[1],"analytic":"NaN","numerical":0.0,"abs_error":"NaN","rel_error":"NaN"}],'
        '"elements":2,"checked":"all","failed":2}}}\n'
    )
    assert r.stderr == "check: x[0]: analytic nan, numerical 0.0: non-finite (analytic) (and 1 more element)\n"


def test_float32_gradients_pass_with_float64_numerics():
    r = run("check", "sum(sin(x))", "x=[0.1, 0.2]", "--dtype", "float32", "--format", "plain")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split("\t") for line in r.stdout.splitlines())
    assert lines["ok"] == "true" and float(lines["max_abs_error"]) < 1e-6
    code, shown = on_terminal("check", "sum(sin(x))", "x=[0.1, 0.2]", "--dtype", "float32")
    assert code == 0
    assert shown.splitlines()[:5] == [
        "check: sum(sin(x))",
        "first derivatives; pass when |analytic - numerical| <= atol + rtol*|numerical|",
        "atol 1e-05, rtol 0.001; numerical: central differences, eps 1e-06, in float64",
        "the program runs in float32; its numerical derivatives are taken in float64",
        "x: ok; all 2 elements",
    ]


def test_table_names_the_worst_elements(bad):
    code, shown = on_terminal("check", "sum(badsq(x))", "x=[1, 2, 3, 4, 5, 6, 7, 8]", "--plugin", bad)
    assert code == 1
    assert shown == (
        "check: x[7]: analytic 17.0, numerical 16.0: differs by 1.0 > atol + rtol*|numerical| = 0.01601\n"
        "check: sum(badsq(x))\n"
        "first derivatives; pass when |analytic - numerical| <= atol + rtol*|numerical|\n"
        "atol 1e-05, rtol 0.001; numerical: central differences, eps 1e-06, in float64\n"
        "x: FAILED; all 8 elements\n"
        "┏━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━┓\n"
        "┃ element ┃ analytic ┃ numerical ┃ abs error ┃ rel error ┃ ok  ┃\n"
        "┡━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━┩\n"
        "│ x[7]    │ 17.0     │ 16.0      │ 1.0       │ 0.0625    │ NO  │\n" + shown.split("│ NO  │\n", 1)[1]
    )


def test_json_names_input_element_and_tolerances(bad):
    r = run(
        "check",
        "sum(badsq(x))",
        "x=[1, 2, 3, 4, 5, 6, 7, 8]",
        "--plugin",
        bad,
        "--json",
        "--atol",
        "1e-7",
        "--rtol",
        "0",
        "--eps",
        "1e-5",
    )
    assert r.returncode == 1
    data = js(r.stdout)
    assert (data["ok"], data["atol"], data["rtol"], data["eps"]) == (False, 1e-7, 0.0, 1e-5)
    worst = data["inputs"]["x"]["worst"][0]
    assert worst["index"] == [7] and worst["analytic"] == 17.0 and abs(worst["numerical"] - 16.0) < 1e-6
    assert data["inputs"]["x"]["failed"] == 1


def test_large_input_fast_mode_finds_the_culprit(bad):
    start = time.perf_counter()
    r = run("check", "sum(badsq(x))", "x=randn(200, 200)", "--seed", "0", "--plugin", bad, "--json")
    took = time.perf_counter() - start
    assert r.returncode == 1
    entry = js(r.stdout)["inputs"]["x"]
    assert entry["worst"][0]["index"] == [0, 7] and entry["checked"] == "sampled" and entry["failed"] == 1
    assert took < 20, f"check on a 200x200 input took {took:.1f} s"


def test_200_by_200_passes_in_seconds():
    start = time.perf_counter()
    r = run("check", "sum(tanh(x)^2)", "x=randn(200, 200)", "--seed", "0", "--json")
    took = time.perf_counter() - start
    assert r.returncode == 0, r.stderr
    assert js(r.stdout)["inputs"]["x"]["elements"] == 40000
    assert took < 20, f"check on a 200x200 input took {took:.1f} s"


def test_nonscalar_output_and_second_order():
    r = run("check", "[x*y, x+y]", "x=2", "y=3", "--json")
    assert r.returncode == 0, r.stderr
    data = js(r.stdout)
    assert set(data["inputs"]) == {"x", "y"} and "output_index" in data["inputs"]["x"]["worst"][0]
    r = run("check", "sum(tanh(x)^2)", "x=[0.5, -1]", "--order", "2", "--json")
    data = js(r.stdout)
    assert r.returncode == 0 and data["order"] == 2 and data["max_abs_error"] < 1e-6
    code, shown = on_terminal("check", "sum(tanh(x)^2)", "x=[0.5, -1]", "--order", "2")
    assert shown.splitlines()[1].startswith("second derivatives; pass when")
    assert "│ ∂²/∂x[1]∂x[1] │ -0.621627 │ -0.621627 │" in shown
    code, shown = on_terminal("check", "[x*y, x+y]", "x=2", "y=3")
    assert shown.splitlines()[3:5] == ["x: ok; 1 element", "y: ok; 1 element"]
    assert "│ ∂out[0]/∂x │ 3.0      │ 3.0       │" in shown


@pytest.mark.parametrize(
    "args, message",
    [
        (["--order", "0"], "--order 0: check compares first (--order 1) or second (--order 2) derivatives"),
        (["--order", "3"], "--order 3: check compares first (--order 1) or second (--order 2) derivatives"),
        (["--eps", "0"], "--eps 0.0: the finite-difference step must be a positive number"),
        (["--atol=-1"], "--atol -1.0: a tolerance must be a number >= 0"),
        (["--rtol", "nan"], "--rtol nan: a tolerance must be a number >= 0"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    r = run("check", "sin(x)", "x=1", *args)
    assert r.returncode == 2 and r.stderr == f"error: {message}\n" and r.stdout == ""
    r = run("check", "sin(x)", "x=1", *args, "--json")
    assert r.returncode == 2 and js(r.stderr)["error"]["kind"] == "option"


def test_progress_bar_only_on_a_terminal():
    code, shown = on_terminal("check", "sum(x^2)", "x=randn(60)")
    assert code == 0 and shown.startswith("check: 120 evaluations of the program\n")
    code, shown = on_terminal("check", "sum(x^2)", "x=randn(60)", "--json")
    assert "evaluations" not in shown and shown.startswith("{")
    r = run("check", "sum(x^2)", "x=randn(60)")
    assert "evaluations" not in r.stderr and r.stdout.startswith("ok\ttrue\n")
    code, shown = on_terminal("check", "sum(x^2)", "x=randn(10)")
    assert "evaluations" not in shown


def test_gradcheck_module_is_untouched_and_agrees():
    import gradcli as G
    from gradcli.autograd import gradcheck

    x = G.tensor([0.5, -1.0], requires_grad=True)
    assert gradcheck(lambda t: (t.tanh() ** 2).sum(), (x,))


def test_progress_for_a_jacobian_of_a_million_numbers():
    code, shown = on_terminal("jacobian", "tanh(x)", "x=randn(1000)")
    assert code == 0 and shown.startswith("jacobian: 1,000,000 numbers in one batched backward pass\n")
    code, shown = on_terminal("jacobian", "tanh(x)", "x=randn(10)")
    assert shown.startswith("jacobian: tanh(x)\n")
    r = run("jacobian", "tanh(x)", "x=randn(1000)", "--json")
    assert r.returncode == 0 and r.stderr == ""


def test_random_numbers_in_the_program_are_the_same_in_every_evaluation():
    r = run("check", "sum(x * randn(3))", "x=[1, 2, 3]", "--json")
    assert r.returncode == 0 and js(r.stdout)["max_abs_error"] < 1e-6
    r = run("check", "sum(x * rand(3000))", "x=randn(3000)", "--seed", "1", "--json")
    assert r.returncode == 0 and js(r.stdout)["inputs"]["x"]["checked"] == "sampled"


@pytest.mark.parametrize("size", [12, 50, 333])
def test_fast_mode_agrees_with_every_element(bad, monkeypatch, size):
    """The same problems, checked element by element and in fast mode (FULL lowered): same
    verdict, and the bisection finds the one wrong element."""
    from gradcli import check, commands

    spec = commands.Inputs(program="sum(badsq(x)) + sum(tanh(x))", values=[f"x=randn({size})"], seed=3, plugins=[bad])
    full = commands.check(spec)
    monkeypatch.setattr(check, "FULL", 4)
    fast = commands.check(commands.Inputs(program=spec.program, values=spec.values, seed=3, plugins=[bad]))
    assert full.ok is False and fast.ok is False
    assert full.extra["inputs"]["x"]["worst"][0]["index"] == [7] == fast.extra["inputs"]["x"]["worst"][0]["index"]
    assert full.extra["inputs"]["x"]["checked"] == "all" and fast.extra["inputs"]["x"]["checked"] == "sampled"
    good = commands.check(commands.Inputs(program="sum(tanh(x) * x)", values=[f"x=randn({size})"], seed=3))
    assert good.ok is True
