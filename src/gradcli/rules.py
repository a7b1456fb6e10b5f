"""The derivative rules of the op table as programs of gradcli's own language.

``ops.OPS[name].rules_text`` holds, per input, the vector-Jacobian product as text that may use
``g``, ``out``, ``x``, ``y``, ``z`` and the op's parameters (see ``gradcli.ops``).  ``bind``
turns one such text and a node's parameters into a program whose only free names are ``g``,
``out`` and the inputs (and parameters that are arrays, such as ``where``'s ``cond``): numbers,
flags and dimension tuples become literals, and a keyword argument whose parameter is None is
left out (None is every such keyword's default).  ``explain`` shows it; ``tests/test_rules.py``
evaluates it against the code's derivative for every op.
"""

from __future__ import annotations

import dataclasses
import numbers

from .language import ast as A
from .language.parser import parse

#: the names a rule reads that are not parameters (``i``, the input's position in a variadic op,
#: is written as a literal when ``params`` has it: ``bind(text, {**node.params, "i": 2})``)
OPERANDS = ("g", "out", "x", "y", "z")


def literal(value):
    """An AST literal for a parameter value, or None when the value has none (an array)."""
    if isinstance(value, bool):
        return A.Const(value)
    if isinstance(value, numbers.Integral):
        return A.Const(int(value))
    if isinstance(value, numbers.Real):
        return A.Const(float(value))
    if isinstance(value, (tuple, list)):
        parts = [literal(v) for v in value]
        return None if any(p is None for p in parts) else A.Array(tuple(parts))
    return None


def bind(text: str, params: dict) -> str:
    """``text`` with the parameters in ``params`` written as literals (see the module docstring)."""
    (statement,) = parse(text).statements
    return A.to_source(_bind(statement, params))


def _bind(node, params):
    if isinstance(node, A.Name):
        if node.id in params and node.id not in OPERANDS:
            value = params[node.id]
            if value is None:
                raise ValueError(f"parameter '{node.id}' is None where a value is needed")
            return literal(value) or node
        return node
    if isinstance(node, A.Call):
        kwargs = tuple(
            (k, _bind(v, params))
            for k, v in node.kwargs
            if not (isinstance(v, A.Name) and v.id not in OPERANDS and v.id in params and params[v.id] is None)
        )
        return dataclasses.replace(node, args=tuple(_bind(a, params) for a in node.args), kwargs=kwargs)
    changes = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, A.Node):
            changes[f.name] = _bind(value, params)
        elif isinstance(value, tuple) and value and all(isinstance(v, A.Node) or v is None for v in value):
            changes[f.name] = tuple(v if v is None else _bind(v, params) for v in value)
    return dataclasses.replace(node, **changes) if changes else node
