"""The op table, swept: every differentiable public op at random points of its domain.

The cases and the checks are in ``cases.py`` (shared with ``test_torch_parity``, ``test_rules``
and ``scripts/make_golden.py``): first derivatives (``gradcheck``), second derivatives
(``gradgradcheck``), the vectorized Jacobian (``is_grads_batched``) against one-hot
``autograd.grad`` calls, the Hessian of a weighted sum against central differences of the
gradient, and float32 kept float32.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import (
    CASES,
    COMPARISONS,
    DIFFERENTIABLE,
    check_float32_stays_float32,
    check_gradcheck_and_gradgradcheck,
    check_hessian_equals_differences_of_the_gradient,
    check_vectorized_jacobian_equals_one_hot_grads,
)

import gradcli as G
from gradcli import ops, public

CONSTRUCTORS = public.CONSTRUCTORS


# ----------------------------------------------------------------------------------------------
# the table itself


def test_every_op_has_doc_and_rule():
    for name, op in ops.OPS.items():
        assert isinstance(op.doc, str) and op.doc.strip(), name
        assert isinstance(op.rules_text, tuple), name  # evaluated in test_rules.py


def test_every_public_function_has_a_doc():
    for name in ops.FUNCTIONS:
        assert isinstance(ops.DOCS.get(name), str) and ops.DOCS[name].strip(), name


def test_every_differentiable_function_is_swept():
    covered = {name for case in CASES for name in case.covers}
    assert set(DIFFERENTIABLE) - covered == set()


def test_every_differentiable_table_op_is_swept():
    """Every op of the table with a derivative is reached by some case (as its op, or inside it)."""
    reached = {case.op for case in CASES}
    nondiff = {n for n, op in ops.OPS.items() if op.nondiff}
    # reached only as the derivative of another op (checked by the second-order sweep)
    inner = {
        "sum_to",
        "select_back",
        "slice_back",
        "softplus_slope",
        "prod_others",
        "copy_grad",  # the engine's: a leaf's first .grad under create_graph (test_lessons)
        "take",
        "take_back",
        "put",
        "fill",
        "masked_fill",
    }  # indexing, index_put, fill_: tests/test_pytorch_compat.py
    elsewhere = {"to"}  # dtype conversion: float32 rounding defeats finite differences (test_engine)
    assert set(ops.OPS) - nondiff - inner - elsewhere - reached == set()


def test_domains_are_intervals():
    for name, op in ops.OPS.items():
        dom = op.domain
        intervals = dom if isinstance(dom[0], (tuple, list)) else (dom,)
        for lo, hi in intervals:
            assert lo < hi, name


@pytest.mark.parametrize("name", sorted(COMPARISONS))
@pytest.mark.parametrize("other", ["tensor", "number"])
def test_comparisons_give_bool_masks_without_grad(name, other):
    x = G.tensor([0.5, 1.0, 2.0], requires_grad=True)
    y = G.tensor([1.0, 1.0, 1.0], requires_grad=True) if other == "tensor" else 1.0
    mask = ops.FUNCTIONS[name](x, y)
    expected = getattr(
        np,
        {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal", "eq": "equal", "ne": "not_equal"}[
            name
        ],
    )(x.detach().numpy(), 1.0)
    assert mask.dtype == np.bool_
    assert mask.requires_grad is False and mask.grad_fn is None and mask.is_leaf
    assert mask.tolist() == expected.tolist()


def test_comparison_operators_match_functions():
    x = G.tensor([0.5, 1.0, 2.0], requires_grad=True)
    pairs = [(x < 1.0, "lt"), (x <= 1.0, "le"), (x > 1.0, "gt"), (x >= 1.0, "ge"), (x == 1.0, "eq"), (x != 1.0, "ne")]
    for mask, name in pairs:
        assert mask.tolist() == ops.FUNCTIONS[name](x, 1.0).tolist() and mask.grad_fn is None


# ----------------------------------------------------------------------------------------------
# the sweep: every case, first and second order, batched and one by one


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_gradcheck_and_gradgradcheck(case):
    check_gradcheck_and_gradgradcheck(case)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_vectorized_jacobian_equals_one_hot_grads(case):
    check_vectorized_jacobian_equals_one_hot_grads(case)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_hessian_equals_differences_of_the_gradient(case):
    check_hessian_equals_differences_of_the_gradient(case)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float32_stays_float32(case):
    check_float32_stays_float32(case)
