"""``gradcli functions [NAME]``: every function of the language, read from the op table.

Each entry is the function's signature (from the callable itself), its one-line doc and the
derivative rule the op table writes beside the derivative (``rules_text``: the vector-Jacobian
product as an expression of the language, checked against the code by tests/test_rules.py).
Nothing here repeats the table.
"""

from __future__ import annotations

import inspect

from .errors import GradcliError

#: parameters of the Python API that the listing leaves out (the language gives them no meaning)
_HIDDEN = {"dtype", "device", "requires_grad"}


def _table():
    """(functions, docs, rule of a name or None, constructors): the op table's public view."""
    import gradcli  # noqa: F401 - importing the package makes every registration

    from . import ops, public

    def rule(name):
        op = ops.OPS.get(name)
        if op is None:
            return None
        texts = tuple(getattr(op, "rules_text", None) or ())
        if getattr(op, "nondiff", False) or not texts:
            return "no gradient"
        if len(texts) == 1:
            return texts[0]
        return "; ".join(f"{x}: {text}" for x, text in zip(("x", "y", "z"), texts))

    return public.FUNCTIONS, public.DOCS, rule, public.CONSTRUCTORS


def names() -> list[str]:
    """Every function of the language, in table order."""
    return list(_table()[0])


def signature(name, function) -> str:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return f"{name}(...)"
    shown = [str(p) for p in parameters if p.name not in _HIDDEN]
    return f"{name}({', '.join(shown)})"


def entries(name: str | None = None) -> list[dict]:
    """[{name, signature, doc, rule}] for every function (or the one named), in table order, then
    the language's grad modes and detach (``interpreter.LANGUAGE_FUNCTIONS``: not ops)."""
    from .language.interpreter import LANGUAGE_FUNCTIONS

    functions, docs, rule_of, constructors = _table()
    language = {n: entry for n, entry in LANGUAGE_FUNCTIONS.items() if n not in functions}
    names = list(functions) + list(language)
    if name is not None and name in language:
        signature_, doc, rule = language[name]
        return [{"name": name, "signature": signature_, "doc": doc, "rule": rule}]
    if name is not None:
        if name not in functions:
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "; 'gradcli functions' lists them all"
            raise GradcliError("name", f"unknown function '{name}'{hint}")
        names = [name]
    out = []
    for n in names:
        if n in language:
            signature_, doc, rule = language[n]
            out.append({"name": n, "signature": signature_, "doc": doc, "rule": rule})
            continue
        rule = rule_of(n)
        if n in constructors:
            rule = "no gradient (makes a constant)"
        elif rule is None:
            rule = "built from other functions: differentiated through them"
        out.append({"name": n, "signature": signature(n, functions[n]), "doc": docs.get(n, ""), "rule": rule})
    return out


def text(items) -> str:
    """Per function: ``signature  doc`` and, indented below, its derivative rule."""
    return "\n".join(f"{e['signature']}  {e['doc']}\n    derivative: {e['rule']}" for e in items)


def functions(name=None):
    """The ``functions`` command: a Result whose text is the listing and whose JSON is the entries."""
    from .commands import Result

    items = entries(name)
    result = Result("functions", "", dtype=None)
    result.extra["functions"] = items
    result.text = text(items)
    return result
