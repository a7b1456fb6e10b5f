"""render: strict JSON, plain lines, bounded table text."""

import json
import math

import numpy as np

from gradcli import render
from gradcli.commands import Result
from gradcli.errors import GradcliError


def _result(**extra):
    r = Result("grad", "w*x", value=np.array(6.0), shape=(), dtype="float64", grad_fn="MulBackward0")
    r.extra.update(extra)
    r.plain = [("w", np.array(3.0)), ("x", np.array([1.0, 2.0]))]
    return r


def test_json_is_strict_and_full_precision():
    r = _result(grads={"w": np.array([0.1, math.nan, math.inf, -math.inf]), "x": None})
    text = render.to_json(r)
    data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert data["program"] == "w*x" and data["value"] == 6.0 and data["shape"] == []
    assert data["grads"]["w"] == [0.1, "NaN", "Infinity", "-Infinity"]
    assert data["grads"]["x"] is None
    assert "\n" not in text


def test_shortest_round_trip():
    assert render.dumps(np.array(1 / 3)) == repr(1 / 3)
    assert render.dumps(np.float32(0.1)) == repr(float(np.float32(0.1)))


def test_plain_lines():
    lines = render.to_plain(_result())
    assert lines == ["w\t3.0", "x\t[1.0,2.0]"]


def test_error_json():
    err = GradcliError("syntax", "bad", line=1, column=3)
    assert json.loads(render.error_json(err)) == {"error": {"kind": "syntax", "message": "bad", "line": 1, "column": 3}}


def test_summarise_bounds_large_arrays():
    text = render.summarise(np.arange(10000.0))
    assert "..." in text and len(text) < 200


# -- one number formatter ------------------------------------------------------------------------

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from terminal import on_terminal, run  # noqa: E402


@pytest.mark.parametrize(
    "value, precision, shown",
    [
        (2.0611536224385583e-09, 6, "2.06115e-09"),
        (1e-300, 6, "1e-300"),
        (1e20, 6, "1e+20"),
        (-1e-7, 6, "-1e-07"),
        (3.0, 6, "3.0"),
        (0.0, 6, "0.0"),
        (-0.0, 6, "-0.0"),
        (0.1, 6, "0.1"),
        (1234567.891, 6, "1.23457e+06"),
        (100000.0, 6, "100000.0"),
        (2 / 3, 3, "0.667"),
        (5e-324, 1, "5e-324"),
        (-4e-320, 2, "-4e-320"),
        (math.nan, 6, "nan"),
        (-math.inf, 6, "-inf"),
    ],
)
def test_table_numbers_never_round_a_nonzero_to_zero(value, precision, shown):
    assert render.number(value, precision) == shown


def test_float32_in_its_own_shortest_form():
    x = np.float32(0.9950041770935059)
    assert render.number(x, 6, float32=True) == "0.995004"
    assert render.number(np.float32(0.1), 12, float32=True) == "0.1"
    assert render.plain_value(np.array([x, np.nan], dtype=np.float32)) == '[0.9950042,"NaN"]'
    assert render.plain_value(np.float32(0.1)) == "0.1"


def test_arrays_are_numpy_style_and_summarised():
    assert render.array_text(np.array([20.0, 30.0])) == "[20. 30.]"
    assert render.array_text(np.array([2.0611536224385583e-09, 9.357622968839299e-14])) == "[2.06115e-09 9.35762e-14]"
    assert render.array_text(np.array([np.inf, 0.5])) == "[inf 0.5]"
    assert render.array_text(np.array([[1, 2.5], [3, 100.125]])) == "[[  1.      2.5  ]\n [  3.    100.125]]"
    assert render.array_text(np.array([-0.0, 1.0])) == "[-0.  1.]"
    text = render.array_text(np.arange(10000.0).reshape(100, 100), width=70)
    assert "..." in text and len(text.splitlines()) == 7 and max(map(len, text.splitlines())) <= 70


def _read_plain(text, float32):
    """What a script reading plain output gets back: JSON numbers, "NaN" / "Infinity" strings."""
    value = json.loads(text)
    value = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
    return np.float32(value) if float32 else np.float64(value)


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_plain_float64_reads_back(x):
    assert _same(_read_plain(render.plain_value(np.float64(x)), False), np.float64(x))
    row = json.loads(render.plain_value(np.array([x, x])))
    assert len(row) == 2


@given(st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_plain_float32_reads_back(x):
    value = np.float32(x)
    text = render.plain_value(value)
    assert _same(_read_plain(text, True), value)
    if math.isfinite(value):
        assert len(text) <= len(repr(float(value)))  # never float64's noise


# -- through the console script ------------------------------------------------------------------


def test_plain_float32_output():
    r = run("eval", "x", "x=0.995", "--dtype", "float32", "--format", "plain")
    assert r.returncode == 0 and r.stdout == "value\t0.995\n"
    r = run("grad", "sum(sin(x))", "x=[0.1, 0.2]", "--dtype", "float32", "--format", "plain")
    assert r.stdout == "x\t[0.9950042,0.9800666]\n"


def test_plain_nonfinite_stays_json():
    r = run("eval", "log(x)", "x=[0, -1]", "--format", "plain")
    assert r.stdout == 'value\t["-Infinity","NaN"]\n'


def test_small_gradient_table_on_a_terminal():
    code, shown = on_terminal("grad", "sigmoid(x)", "x=20")
    assert code == 0 and shown == (
        "grad: sigmoid(x)\n"
        "┏━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━┓\n"
        "┃ name ┃ shape ┃ value       ┃\n"
        "┡━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━┩\n"
        "│ x    │ ()    │ 2.06115e-09 │\n"
        "└──────┴───────┴─────────────┘\n"
    )
    code, shown = on_terminal("grad", "sum(sigmoid(x))", "x=[20, 30]", "--precision", "3")
    assert "│ x    │ (2,)  │ [2.06e-09 9.35e-14] │" in shown
    for args, cell in [
        (("eval", "x", "x=1e-300"), "1e-300"),
        (("eval", "x", "x=1e20"), "1e+20"),
        (("eval", "x", "x=-1e-7"), "-1e-07"),
    ]:
        assert f"│ value │ ()    │ {cell} │" in on_terminal(*args)[1]


def test_nonfinite_cells_do_not_vanish():
    code, shown = on_terminal("grad", "sum(sqrt(x))", "x=[0,1]")
    assert "│ x    │ (2,)  │ [inf 0.5] │" in shown
    code, shown = on_terminal("backward", "h = log(x); y = sum(h)", "x=[-1, 1]", "--retain-grad", "h")
    assert code == 0 and shown == (
        "note: the output holds NaN; first: log produced NaN (forward) at line 1, column 5 (--detect-anomaly "
        "stops there, --strict makes it an error)\n"
        "backward: h = log(x); y = sum(h)\n"
        "┏━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━┓\n"
        "┃ name ┃ shape ┃ requires_grad ┃ is_leaf ┃ grad_fn      ┃\n"
        "┡━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━┩\n"
        "│ x    │ (2,)  │ True          │ True    │ None         │\n"
        "│ h    │ (2,)  │ True          │ False   │ LogBackward0 │\n"
        "│ y    │ ()    │ True          │ False   │ SumBackward0 │\n"
        "└──────┴───────┴───────────────┴─────────┴──────────────┘\n"
        "┏━━━━━━┳━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━┓\n"
        "┃ name ┃ shape ┃ value     ┃ grad      ┃\n"
        "┡━━━━━━╇━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━┩\n"
        "│ x    │ (2,)  │ [-1.  1.] │ [-1.  1.] │\n"
        "│ h    │ (2,)  │ [nan  0.] │ [1. 1.]   │\n"
        "│ y    │ ()    │ nan       │ None ¹    │\n"
        "└──────┴───────┴───────────┴───────────┘\n"
        "¹ y is not a leaf: PyTorch warns that the .grad of a non-leaf tensor is not \n"
        "populated during backward() (it reads None); add --retain-grad y to keep it \n"
        "(y.retain_grad())\n"
    )
    code, wide = on_terminal("backward", "h = log(x); y = sum(h)", "x=[-1, 1]", "--retain-grad", "h", columns=100)
    assert "│ h    │ (2,)  │ [nan  0.] │ True          │ False   │ LogBackward0 │ [1. 1.]   │" in wide


def test_backward_table_fits_80_columns_without_cutting_names():
    code, shown = on_terminal(
        "backward",
        "h = relu(W @ x + b); y = dot(h, h)",
        "W=[[1, -2, 3], [0.5, 1, -1], [2, 2, 2]]",
        "x=[1, 2, 3]",
        "b=[0.1, 0.2, 0.3]",
        "--retain-grad",
        "h",
    )
    assert code == 0
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    for word in ("requires_grad", "ReluBackward0", "DotBackward0", "is_leaf"):
        assert word in shown
    assert "…" not in shown
    assert "│ W    │ (3, 3) │ [[ 1.  -2.   3. ]" in shown


def test_title_is_the_file_or_the_first_line(tmp_path):
    program = tmp_path / "long.grad"
    program.write_text("".join(f"a{i} = x * {i}\n" for i in range(31)) + "y = a30 + a1\n")
    code, shown = on_terminal("grad", f"@{program}", "x=2")
    assert code == 0 and shown.splitlines()[0] == f"grad: @{program}"[:79] + (
        "…" if len(f"grad: @{program}") > 80 else ""
    )
    assert len(shown.splitlines()) == 6
    code, shown = on_terminal("grad", "h = x * 2\ny = h + 1", "x=2")
    assert shown.splitlines()[0] == "grad: h = x * 2 …"
    code, shown = on_terminal("grad", "x + " * 40 + "x", "x=2")
    assert shown.splitlines()[0] == ("grad: " + "x + " * 40)[:79] + "…"


def test_precision_must_be_positive():
    r = run("eval", "x", "x=1", "--precision", "0", "--format", "table")
    assert r.returncode == 2 and "--precision" in r.stderr


@pytest.mark.parametrize(
    "dtype, values",
    [
        ("float64", [5e-324, -0.0, 1.7976931348623157e308, 1e-310, 0.1, 2 / 3, "NaN", "Infinity", "-Infinity"]),
        ("float32", [1e-45, -0.0, 3.4028234663852886e38, 1.1754942e-38, 0.1, 2 / 3, "NaN", "Infinity"]),
    ],
)
def test_plain_output_reads_back_through_the_console_script(dtype, values):
    r = run("eval", "x", "x=@-", "--dtype", dtype, "--format", "plain", input=json.dumps(values))
    assert r.returncode == 0, r.stderr
    name, text = r.stdout.rstrip("\n").split("\t")
    kind = np.float32 if dtype == "float32" else np.float64
    special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    shown = [kind(special.get(v, v)) for v in json.loads(text)]
    wanted = [kind(special.get(v, v)) for v in values]
    assert all(_same(a, b) for a, b in zip(shown, wanted)) and len(shown) == len(wanted)
    if dtype == "float32":
        assert json.loads(text)[4] == 0.1 and json.loads(text)[5] == 0.6666667
