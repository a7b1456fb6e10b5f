"""``gradcli explain``: the steps are the engine's — what each step says it sends is what the next
steps receive and what the leaves accumulate — and each span covers exactly its operation's text."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
from cases import OP_PROGRAMS, points, random_program

import gradcli as G
from gradcli import commands
from gradcli.explain import explain, trim
from gradcli.language import ast as A
from gradcli.language import parse, run

COMPOSITE = [
    ("h = tanh(W @ x + b); y = sum(h ^ 2)", {"W": ((2, 3), (-2, 2)), "x": ((3,), (-2, 2)), "b": ((2,), (-2, 2))}),
    ("a = x * y; b = a + x; sum(b * a) + mean(exp(-a))", {"x": ((3,), (-1, 1)), "y": ((), (-1, 1))}),
    ("sum(softmax(x @ W, 0) * [1, 2]) + x[0] * 3", {"x": ((3,), (-1, 1)), "W": ((3, 2), (-1, 1))}),
    ("z = [x * y, x + y, y]; sum(z * z)", {"x": ((), (-1, 1)), "y": ((), (-1, 1))}),
]


def _inputs(spec, seed):
    values = points({n: (s, d) for n, (s, d) in spec.items()}, seed)
    return [f"{n}={json.dumps(np.asarray(v).tolist())}" for n, v in values.items()], values


def _explained(text, spec, seed, **kw):
    texts, values = _inputs(spec, seed)
    result = explain(commands.Inputs(program=text, values=texts), **kw)
    return result, values


def _engine_grads(text, values):
    inputs = {n: G.tensor(v, requires_grad=True) for n, v in values.items()}
    out = run(parse(text), inputs).output
    out.backward(G.tensor(np.ones(out.shape)) if out.shape else None)
    return {n: None if t.grad is None else np.asarray(t.grad.data) for n, t in inputs.items()}


def _check(result, text, values):
    steps = result.extra["steps"]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    received: dict = {}
    for step in steps:
        k = step["step"]
        if k in received:  # what the step got is the sum of what was sent to it
            np.testing.assert_allclose(np.asarray(step["grad_in"], float), received[k], rtol=1e-12, atol=1e-15)
        elif k > 1:
            raise AssertionError(f"step {k} got a gradient no earlier step sent")
        for target, g in zip(step["to"], step["grads_out"]):
            if target is not None:
                assert target > k  # sent forward in the engine's order
                g = np.asarray(g, float)
                received[target] = received[target] + g if target in received else g
    want = _engine_grads(text, values)
    assert set(result.extra["grads"]) == set(want)
    for name, g in want.items():
        if g is None:
            assert result.extra["grads"][name] is None
            continue
        np.testing.assert_allclose(np.asarray(result.extra["grads"][name], float), g, rtol=1e-12, atol=1e-15)
        (leaf,) = [s for s in steps if s.get("accumulates") == name]
        np.testing.assert_allclose(np.asarray(leaf["grad"], float), g, rtol=1e-12, atol=1e-15)
    _check_spans(steps, text)


def _check_spans(steps, text):
    """A node's span is exactly the text of one operation of the program (a call, an operator,
    an index, ``.T`` or an array literal), and the node is that operation's."""
    program = parse(text)
    by_span = {}
    for statement in program.statements:
        for node in A.walk(statement.value if isinstance(statement, A.Assign) else statement):
            if isinstance(node, (A.Call, A.Index, A.Attr, A.Array)):
                by_span.setdefault(tuple(trim(text, node.span)), node)
    for step in steps:
        if "accumulates" in step:
            s, e = step["span"]
            assert text[s:e] == step["accumulates"]
            continue
        if step["span"] is None:
            continue  # an inner step of a function (2 / x)
        s, e = step["span"]
        assert (s, e) in by_span, (text, step["op"], step["span"])
        node = by_span[(s, e)]
        assert step["op"] == text[s:e]
        (parsed,) = parse(text[s:e]).statements
        assert A.to_source(parsed) == A.to_source(node)  # exactly that operation's text
        assert text[s:e] == text[s:e].strip()


@pytest.mark.parametrize("text, spec", OP_PROGRAMS, ids=[t for t, _ in OP_PROGRAMS])
def test_every_function_steps_send_what_the_engine_accumulates(text, spec):
    result, values = _explained(text, spec, zlib.crc32(text.encode()))
    _check(result, text, values)


@pytest.mark.parametrize("text, spec", COMPOSITE)
def test_composite_programs(text, spec):
    result, values = _explained(text, spec, 5)
    _check(result, text, values)


@pytest.mark.parametrize("k", range(10))
def test_random_programs(k):
    import random

    text, spec = random_program(random.Random(500 + k))
    if not spec:
        pytest.skip("no inputs")
    result, values = _explained(text, spec, k, grad_output="ones")
    _check(result, text, values)


def test_rule_unbroadcast_and_order():
    result = explain(
        commands.Inputs(program="h = w*x; y = tanh(h + b)", values=["w=2", "x=[1, 3]", "b=0.5"]), grad_output="ones"
    )
    steps = result.extra["steps"]
    assert [s["node"] for s in steps] == [
        "TanhBackward0",
        "AddBackward0",
        "MulBackward0",
        "AccumulateGrad",
        "AccumulateGrad",
        "AccumulateGrad",
    ]
    assert steps[0]["rule"] == "x: g * (1 - out * out)" and steps[0]["op"] == "tanh(h + b)"
    assert steps[1]["inputs"] == ["h", "b"] and steps[1]["unbroadcast"] == [None, {"from": [2], "to": []}]
    assert steps[2]["rule"] == "x: g * y; y: g * x" and steps[2]["inputs"] == ["w", "x"]
    assert [s["accumulates"] for s in steps[3:]] == ["b", "w", "x"]


def test_retain_grad_and_freeze():
    result = explain(
        commands.Inputs(program="h = w*x; y = h*b", values=["w=2", "x=3", "b=4"], retain=["h"], freeze=["b"])
    )
    assert result.extra["grads"] == {"w": 12.0, "x": 8.0, "h": 4.0}
    assert [s.get("accumulates") for s in result.extra["steps"] if "accumulates" in s] == ["w", "x"]


def test_an_input_as_the_output_accumulates_the_seed():
    result = explain(commands.Inputs(program="y = x; y", values=["x=[1, 2]"]), grad_output="[3, 4]")
    assert {n: np.asarray(g).tolist() for n, g in result.extra["grads"].items()} == {"x": [3.0, 4.0]}
    assert [(s["node"], s["accumulates"], np.asarray(s["grad"]).tolist()) for s in result.extra["steps"]] == [
        ("AccumulateGrad", "x", [3.0, 4.0])
    ]


def test_pow_rule_has_its_parameter_written_in():
    result = explain(commands.Inputs(program="sum(x ^ 3)", values=["x=[1, 2]"]))
    assert result.extra["steps"][1]["rule"] == "x: g * 3 * x ^ (3 - 1)"


GRADCLI = [sys.executable, "-m", "gradcli"]


def test_cli_json_plain_and_errors():
    proc = subprocess.run(
        GRADCLI + ["explain", "w*x+b", "w=2", "x=3", "b=1", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["grads"] == {"w": 3.0, "x": 2.0, "b": 1.0}
    assert data["steps"][0] == {
        "step": 1,
        "node": "AddBackward0",
        "op": "w*x+b",
        "span": [0, 5],
        "grad_in": 1.0,
        "rule": "x: g; y: g",
        "rules": ["g", "g"],
        "inputs": ["w*x", "b"],
        "grads_out": [1.0, 1.0],
        "to": [2, 3],
        "unbroadcast": [None, None],
    }
    proc = subprocess.run(
        GRADCLI + ["explain", "w*x+b", "w=2", "x=3", "b=1"], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.startswith("step 1\tAddBackward0\tw*x+b\t[0:5]\n")
    assert "w.grad\t3.0" in proc.stdout
    proc = subprocess.run(
        GRADCLI + ["explain", "[x, x]", "x=1"], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 2 and "--grad-output" in proc.stderr
