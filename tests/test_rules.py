"""Every op's ``rules_text`` is a program of gradcli's language that computes its derivative.

The sweep cases (``cases.py``) are run forward and, with ``create_graph``, backward twice
(which reaches the ops that appear only inside derivatives); every call of a table op is
recorded (its input arrays and parameters).  For each recorded call the rule text of each input
is bound to the parameters (``gradcli.rules.bind``), run by the language's interpreter with
``g``, ``out`` and the inputs, un-broadcast to the input's shape, and compared with the
gradient the engine computes for the same call.  So a rule text cannot drift from the code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import CASES, check_rule_text, inputs_for

import gradcli as G
from gradcli import ops, rules
from gradcli.language import parse

#: ops whose derivative cannot be written in the language: their ``rules_text`` is None
NO_TEXT = {
    "select": "scatters the gradient into zeros at an index (no scatter in the language)",
    "slice": "scatters the gradient into zeros at a slice (no scatter in the language)",
    "slice_back": "slices along a dimension given by number (the language slices by position)",
    "cat": "each input's part of the gradient starts at an offset the language cannot compute",
    "permute": "needs the inverse permutation (an argsort of dims)",
    "prod_others": "each element's gradient is a sum of products that leave out two elements (exclusive cumprods)",
    "take": "gathers by flat position (advanced indexing): no gather in the language",
    "take_back": "scatters into zeros by flat position (no scatter in the language)",
    "put": "writes at flat positions (index_put, CopySlices): no scatter in the language",
}


def _unsupported(op, params, arrays):
    """Calls whose parameters the one text does not cover, with the reason (kept short)."""
    if op.name == "matmul" and min(params["ndims"]) < 2:
        return "the text is the matrix case; a vector operand is a row or a column of it"
    if op.name == "norm" and params["p"] == math.inf:
        return "the text is the p-norm for finite p; p=inf is its limit"
    if op.name in ("trace", "diagonal") and arrays[0].shape[-1] != arrays[0].shape[-2]:
        return "the text is for square matrices"
    return None


# a few calls the sweep does not make
EXTRA = [
    ("to", lambda a: a.to(dtype="float32"), [(3,)]),
    ("norm", lambda a: G.norm(a, p=3), [(2, 3)]),
    ("norm", lambda a: G.norm(a, p=1, dim=0), [(2, 3)]),
    ("clamp", lambda a: G.clamp(a, min=-0.5), [(2, 3)]),
    ("clamp", lambda a: G.clamp(a, max=0.5), [(2, 3)]),
    ("stack", lambda a, b: G.stack([a, b], dim=1), [(2, 3), (2, 3)]),
    ("copy_grad", lambda a: ops.apply(ops.OPS["copy_grad"], (a,)), [(3,)]),  # the engine's (create_graph)
    ("fill", lambda a, b: G.ops.fill(a, b, "FillBackward3"), [(2, 3), ()]),
    ("masked_fill", lambda a, b: G.masked_fill(a, a > 0.0, b), [(2, 3), ()]),
]


def _record():
    """{op name: [(arrays, params), ...]}: calls of every table op made by the sweep."""
    seen: dict = {}
    originals = {name: op.fwd for name, op in ops.OPS.items()}

    def wrap(name, fwd):
        def recorded(xp, *arrays, **params):
            calls = seen.setdefault(name, [])
            if len(calls) < 12:
                calls.append(([a.copy() if hasattr(a, "copy") else a for a in arrays], dict(params)))
            return fwd(xp, *arrays, **params)

        return recorded

    for name, op in ops.OPS.items():
        op.fwd = wrap(name, op.fwd)
    try:
        runs = [
            (fn, [G.tensor(np.random.default_rng(1).uniform(-1, 1, s), requires_grad=True) for s in shapes])
            for _, fn, shapes in EXTRA
        ]
        runs += [(case.fn(G), inputs_for(case)) for case in CASES]
        for fn, xs in runs:
            y = fn(*xs)
            if not y.requires_grad:
                continue
            grads = G.autograd.grad(y.sum(), xs, create_graph=True, allow_unused=True)
            total = sum((g * g).sum() for g in grads if g is not None and g.requires_grad)
            if isinstance(total, G.Tensor):
                G.autograd.grad(total, xs, allow_unused=True)
    finally:
        for name, op in ops.OPS.items():
            op.fwd = originals[name]
    return seen


_CALLS = _record()


@pytest.mark.parametrize("name", sorted(n for n, op in ops.OPS.items() if not op.nondiff))
def test_rule_text_computes_the_derivative(name):
    op = ops.OPS[name]
    if name in NO_TEXT:
        assert all(t is None for t in op.rules_text), name
        return
    assert op.rules_text and all(isinstance(t, str) for t in op.rules_text), name
    calls = _CALLS.get(name, [])
    checked = 0
    for arrays, params in calls:
        if _unsupported(op, params, arrays) is None:
            checked += check_rule_text(op, arrays, params)
    assert checked, f"no call of {name} was checked (the sweep made {len(calls)})"


def test_every_rule_text_parses_and_reads_only_known_names():
    for name, op in ops.OPS.items():
        for text in op.rules_text:
            if text is None:
                continue
            program = parse(text)
            assert len(program.statements) == 1, name
            for free in program.inputs:
                assert free in rules.OPERANDS or free in (
                    "base",
                    "alpha",
                    "exponent",
                    "dim",
                    "keepdim",
                    "p",
                    "correction",
                    "dim0",
                    "dim1",
                    "index",
                    "min",
                    "max",
                    "cond",
                    "other",
                    "i",
                ), (name, free)


def test_nondifferentiable_ops_have_no_text():
    for name, op in ops.OPS.items():
        if op.nondiff:
            assert op.rules_text == (), name


def test_bind_writes_parameters_as_literals():
    assert rules.bind("sum(g, dim=dim, keepdim=keepdim)", {"dim": None, "keepdim": True}) == "sum(g, keepdim=True)"
    assert rules.bind("unreduce(g, x, dim=dim)", {"dim": (-2, -1)}) == "unreduce(g, x, dim=[-2, -1])"
    assert rules.bind("g * exponent * x ^ (exponent - 1)", {"exponent": 2.5}) == "g * 2.5 * x ^ (2.5 - 1)"
    assert rules.bind("where(cond, g, 0)", {"cond": np.array([True])}) == "where(cond, g, 0)"
    assert rules.bind("select(g, dim, i)", {"dim": -1, "i": 2}) == "select(g, -1, 2)"
