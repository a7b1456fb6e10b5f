"""render: strict JSON, plain lines, bounded table text."""
import json
import math

import numpy as np

from gradcli.commands import Result
from gradcli.errors import GradcliError
from gradcli import render


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
