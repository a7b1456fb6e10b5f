"""The tree builder: one callback per grammar rule, run by the LALR driver at each reduction.

The tree is built while parsing, so no parse tree is made and nothing recurses.  The driver
hands each callback all of its rule's tokens (punctuation too), which gives every node its
exact span (``f(x)`` ends at ``)``).  Grammar aliases that are not structural rules are op
names: a reduction of ``a + b`` by the rule aliased ``add`` becomes ``Call("add", (a, b))``.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import GradcliError
from . import ast as A

_INT64_MAX = 2**63 - 1

#: prefixes of other libraries' functions (``np.sin(x)``): the hint is to drop them
FOREIGN = {"np": "numpy", "numpy": "numpy", "torch": "PyTorch", "math": "Python's math", "jnp": "JAX"}


def start_of(item):
    return item.start_pos if not isinstance(item, A.Node) else item.span[0]


def end_of(item):
    return item.end_pos if not isinstance(item, A.Node) else item.span[1]


def span_of(children) -> tuple[int, int]:
    items = [c for c in children if c is not None and not isinstance(c, (list, Kwarg))]
    return (start_of(items[0]), end_of(items[-1]))


class Kwarg:
    __slots__ = ("name", "value", "span")

    def __init__(self, name, value, span):
        self.name, self.value, self.span = name, value, span


class Builder:
    """LALR callbacks, one per rule alias; ``text`` is the program (for hints that quote it)."""

    text = ""

    def program(self, c):
        return [s for s in c if isinstance(s, A.Node)]

    def assign(self, c):
        name, _, value = c
        if name.value in A.CONSTANT_NAMES or name.value in A.BOOLEAN_NAMES:
            raise GradcliError(
                "name",
                f"cannot assign to the constant {name.value}: choose another name",
                span=(name.start_pos, name.end_pos),
            )
        return A.Assign(name.value, value, (name.start_pos, end_of(value)))

    def number(self, c):
        (token,) = c
        text = token.value
        if text.isdigit() and len(text) <= 19 and int(text) <= _INT64_MAX:  # no int() of 4301 digits
            value = int(text)
        else:
            value = float(text)
            if value == float("inf") and text.isdigit():  # as int -> float in Python: an overflow
                raise GradcliError(
                    "value",
                    f"the integer {text[:12]}... ({len(text)} digits) is too large for a float (at most about 1.8e308)",
                    span=(token.start_pos, token.end_pos),
                )
        return A.Const(value, (token.start_pos, token.end_pos))

    def name(self, c):
        (token,) = c
        span = (token.start_pos, token.end_pos)
        if token.value in A.BOOLEAN_NAMES:
            return A.Const(A.BOOLEAN_NAMES[token.value], span)
        return A.Name(token.value, span)

    def call(self, c):
        return _call(c[0].value, [], c[2], span_of(c))

    def method(self, c):
        self._foreign(c[0], c[2], span_of(c), call=True)
        return _call(c[2].value, [c[0]], c[4], span_of(c))

    def attr(self, c):
        value, _, name = c
        self._foreign(value, name, span_of(c), call=False)
        if name.value != "T":
            raise GradcliError(
                "name",
                f"unknown attribute '.{name.value}': the only attribute is .T (methods take parentheses: x.sum(dim=0))",
                span=(name.start_pos, name.end_pos),
            )
        return A.Attr(value, "T", span_of(c))

    def _foreign(self, value, name, span, call):
        """``np.sin(x)``, ``math.pi``: another library's spelling; say what gradcli writes."""
        if isinstance(value, A.Name) and value.id in FOREIGN and (call or name.value != "T"):
            written = self.text[name.start_pos : span[1]] if call else name.value
            raise GradcliError(
                "name",
                f"'{value.id}.{name.value}' is how {FOREIGN[value.id]} spells it: drop the prefix: {written}",
                span=span,
            )

    def index(self, c):
        return A.Index(c[0], tuple(c[2]), span_of(c))

    def slice(self, c):
        parts, section = [None, None, None], 0
        for item in c:
            if isinstance(item, A.Node):
                parts[section] = item
            elif item is not None:  # a ':' token
                section += 1
        return A.Slice(*parts, span=span_of(c))

    def array(self, c):
        return A.Array(tuple(c[1] or ()), span_of(c))

    def atom(self, c):  # "(" expr ")": the span takes in the parentheses
        return replace(c[1], span=span_of(c))

    def kwarg(self, c):
        name, _, value = c
        return Kwarg(name.value, value, (name.start_pos, end_of(value)))

    def elements(self, c):
        return [x for x in c if isinstance(x, A.Node)]

    subscripts = elements

    def arguments(self, c):
        return [x for x in c if isinstance(x, (A.Node, Kwarg))]


def _call(func, args, arguments, span):
    kwargs, seen = [], set()
    for item in arguments or ():
        if isinstance(item, Kwarg):
            if item.name in seen:
                raise GradcliError("syntax", f"keyword argument '{item.name}' given twice", span=item.span)
            seen.add(item.name)
            kwargs.append((item.name, item.value))
        elif kwargs:
            raise GradcliError("syntax", "a positional argument follows a keyword argument", span=item.span)
        else:
            args.append(item)
    return A.Call(func, tuple(args), tuple(kwargs), span)


def _operator(op):
    """The callback of an operator rule: ``[a, token, b]`` or ``[token, a]`` -> ``Call(op, ...)``."""
    Call = A.Call

    def build(self, c):
        if len(c) == 3:
            left, _, right = c
            return Call(op, (left, right), (), (left.span[0], right.span[1]))
        token, operand = c
        return Call(op, (operand,), (), (token.start_pos, operand.span[1]))

    build.__name__ = op
    return build


def builder_for(operators) -> Builder:
    """A builder whose class has one callback per operator alias of the grammar."""
    return type("Builder", (Builder,), {op: _operator(op) for op in operators})()
