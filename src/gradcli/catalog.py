"""``gradcli functions [NAME]``: every function of the language, read from the op table.

Each entry is the function's signature (from the callable itself), its one-line doc and the
derivative rule the op table writes beside the derivative.  Nothing here repeats the table.
"""
from __future__ import annotations

import inspect

from .errors import GradcliError

#: parameters of the Python API that the listing leaves out (the language gives them no meaning)
_HIDDEN = {"dtype", "device", "requires_grad"}


def _table():
    """(functions, docs, rule of a name or None, constructors): the op table's public view."""
    from . import ops
    constructors = set(getattr(ops, "CONSTRUCTORS", None) or getattr(ops, "_CONSTRUCTOR_DOCS", ()))

    def rule(name):
        op = ops.OPS.get(name)
        return getattr(op, "rule", None) if op is not None else None
    return ops.FUNCTIONS, ops.DOCS, rule, constructors


def signature(name, function) -> str:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return f"{name}(...)"
    shown = [str(p) for p in parameters if p.name not in _HIDDEN]
    return f"{name}({', '.join(shown)})"


def entries(name: str | None = None) -> list[dict]:
    """[{name, signature, doc, rule}] for every function (or the one named), in table order."""
    functions, docs, rule_of, constructors = _table()
    names = list(functions)
    if name is not None:
        if name not in functions:
            import difflib
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "; 'gradcli functions' lists them all"
            raise GradcliError("name", f"unknown function '{name}'{hint}")
        names = [name]
    out = []
    for n in names:
        rule = rule_of(n)
        if n in constructors:
            rule = "no gradient (makes a constant)"
        elif rule is None:
            rule = "built from other functions: differentiated through them"
        out.append({"name": n, "signature": signature(n, functions[n]), "doc": docs.get(n, ""), "rule": rule})
    return out


def text(items, detail: bool) -> str:
    if detail:
        return "\n\n".join(f"{e['signature']}\n    {e['doc']}\n    derivative: {e['rule']}" for e in items)
    width = min(max(len(e["signature"]) for e in items), 44)
    return "\n".join(f"{e['signature']:<{width}}  {e['doc']}" for e in items)


def functions(name=None):
    """The ``functions`` command: a Result whose text is the listing and whose JSON is the entries."""
    from .commands import Result
    items = entries(name)
    result = Result("functions", "", dtype=None)
    result.extra["functions"] = items
    result.text = text(items, detail=name is not None)
    return result
