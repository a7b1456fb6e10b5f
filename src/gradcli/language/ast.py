"""The program as a tiny immutable tree, and a printer back to source text.

Every node carries ``span = (start, end)``: character offsets into the program text of the
text it came from (``explain`` and ``--detect-anomaly`` point at it).  Spans take no part in
equality, so a tree printed with ``to_source`` and parsed again compares equal to the original.

Operators are calls of the op they name: ``a + b`` is ``Call("add", (a, b))`` and ``-x`` is
``Call("neg", (x,))``; ``x.sum(dim=0)`` is ``Call("sum", (x,), (("dim", 0),))``.  The parser
never folds: ``-2`` is ``Call("neg", (Const(2),))``, a ``Const`` it makes is never negative.

Trees can be as deep as the user's text (``((((x))))``, ``x+x+...+x``), so equality, hashing,
the free-name analysis and ``to_source`` walk with explicit stacks, never by recursion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator, Union

from ..public import BINARY, UNARY  # noqa: F401 - read by the printer below (and by the interpreter)

#: names that are constants, not inputs (gradcli.ops.CONSTANTS holds their values)
CONSTANT_NAMES = frozenset({"pi", "e"})
#: boolean literals, for keyword flags such as ``keepdim=True``
BOOLEAN_NAMES = {"True": True, "False": False, "true": True, "false": False}

Span = tuple  # (start, end) character offsets


def _span():
    return field(default=(0, 0), compare=False, repr=False)


class Node:
    """Base class: structural equality and hashing, computed without recursion."""

    __slots__ = ()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return list(_flatten(self)) == list(_flatten(other))

    def __hash__(self):
        return hash(tuple(_flatten(self)))


@dataclass(frozen=True, eq=False, slots=True)
class Const(Node):
    """A number (``int`` when written without a point or exponent, else ``float``) or a bool."""

    value: Union[int, float, bool]
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Name(Node):
    """A name: an input, an assigned intermediate, or a constant (``pi``, ``e``)."""

    id: str
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Call(Node):
    """``func(*args, **dict(kwargs))``; ``func`` is a key of the op table or a plugin."""

    func: str
    args: tuple = ()
    kwargs: tuple = ()  # ((name, Node), ...) in source order
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Slice(Node):
    """``start:stop:step`` inside an index; each part a Node or None."""

    start: Node | None = None
    stop: Node | None = None
    step: Node | None = None
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Index(Node):
    """``value[items]``; items are Nodes (integers) and Slices."""

    value: Node
    items: tuple
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Attr(Node):
    """``value.name``; the only attribute the language has is ``T``."""

    value: Node
    name: str = "T"
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Array(Node):
    """``[a, b, ...]``: a constant tensor when all elements are numbers, else ``stack``."""

    elements: tuple
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Assign(Node):
    """``name = value``."""

    name: str
    value: Node
    span: Span = _span()


@dataclass(frozen=True, eq=False, slots=True)
class Program(Node):
    """Statements in order; the last one's value is the program's output.

    ``inputs``: free names (used before being assigned, not constants) in order of first use;
    ``assigned``: assigned names in program order (each once).  Computed when not given.
    """

    statements: tuple
    source: str = field(default="", compare=False, repr=False)
    inputs: tuple = field(default=None, compare=False, repr=False)
    assigned: tuple = field(default=None, compare=False, repr=False)
    span: Span = _span()

    def __post_init__(self):
        if self.inputs is None or self.assigned is None:
            inputs, assigned = free_names(self.statements)
            object.__setattr__(self, "inputs", inputs)
            object.__setattr__(self, "assigned", assigned)

    @property
    def output_name(self) -> str | None:
        """The name the output is assigned to, or None for a bare expression."""
        last = self.statements[-1] if self.statements else None
        return last.name if isinstance(last, Assign) else None


# ------------------------------------------------------------------------------------------
# walking

_FIELDS = {
    cls: tuple(f for f in cls.__dataclass_fields__ if f not in ("span", "source", "inputs", "assigned"))
    for cls in (Const, Name, Call, Slice, Index, Attr, Array, Assign, Program)
}


def children(node: Node) -> list:
    """The child Nodes of ``node`` in source order."""
    out = []
    for name in _FIELDS[type(node)]:
        value = getattr(node, name)
        if isinstance(value, Node):
            out.append(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    out.append(item)
                elif isinstance(item, tuple):  # a keyword pair
                    out.append(item[1])
    return out


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, in source order (pre-order), without recursion."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def _flatten(node):
    """A pre-order stream of (type, scalars, arity) that identifies a tree up to spans."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Node):
            yield type(item).__name__
            stack.extend(reversed([getattr(item, f) for f in _FIELDS[type(item)]]))
        elif isinstance(item, tuple):
            yield ("tuple", len(item))
            stack.extend(reversed(item))
        elif isinstance(item, bool):
            yield ("bool", item)
        else:
            yield item


def scan_names(statements):
    """Names in source order: ``(inputs, assigned, clash)``.

    ``inputs``: {name: span of its first read} for names read before any assignment (not
    constants); ``assigned``: {name: span of the name in its first assignment}; ``clash``: the
    first ``(name, read span, assignment span)`` of an input assigned later, or None.  The one
    free-name analysis: the parser reports the clash, ``Program`` keeps the names.
    """
    inputs, assigned, bound, clash = {}, {}, set(), None
    for statement in statements:
        is_assign = type(statement) is Assign
        stack = [statement.value if is_assign else statement]
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind is Name:
                if node.id not in bound and node.id not in CONSTANT_NAMES and node.id not in inputs:
                    inputs[node.id] = node.span
            elif kind is Call:
                stack.extend(value for _, value in reversed(node.kwargs))
                stack.extend(reversed(node.args))
            elif kind is not Const and node is not None:
                stack.extend(reversed(children(node)))
        if is_assign:
            name = statement.name
            span = (statement.span[0], statement.span[0] + len(name))
            if name in inputs and clash is None:
                clash = (name, inputs[name], span)
            bound.add(name)
            assigned.setdefault(name, span)
    return inputs, assigned, clash


def free_names(statements) -> tuple[tuple, tuple]:
    """(inputs, assigned): names read before any assignment, and assigned names, in order."""
    inputs, assigned, _ = scan_names(statements)
    return tuple(inputs), tuple(assigned)


# ------------------------------------------------------------------------------------------
# printing

# the operator tables come from the registry of public names (gradcli.public): BINARY maps an
# infix op name to (symbol, precedence), all but pow left-associative; UNARY a prefix op to its symbol
_UNARY_LEVEL, _ATOM_LEVEL = 4, 6


def _level(node) -> int:
    """How tightly ``node`` binds when printed: a child below its slot's level gets parentheses."""
    if isinstance(node, Call) and not node.kwargs:
        if node.func in BINARY and len(node.args) == 2:
            return BINARY[node.func][1]
        if node.func in UNARY and len(node.args) == 1:
            return _UNARY_LEVEL
    if isinstance(node, Const) and not isinstance(node.value, bool) and node.value < 0:
        return _UNARY_LEVEL
    return _ATOM_LEVEL


def _number(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        raise ValueError("NaN has no literal in the language")
    if math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def to_source(node: Node) -> str:
    """Print a tree as program text that parses back to an equal tree (minimal parentheses).

    Operators print infix (``Call("add", (a, b))`` -> ``a + b``), other calls as ``f(a, dim=0)``,
    statements one per line.  Iterative: the work list holds text pieces and nodes still to print.
    """
    out: list[str] = []
    work: list = [node]
    while work:
        item = work.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, need = item if isinstance(item, tuple) else (item, 0)
        if node is None:
            continue
        if _level(node) < need:
            work.extend([")", node, "("])
            continue
        work.extend(reversed(_pieces(node)))
    return "".join(out)


def _join(items, sep=", "):
    pieces = []
    for i, item in enumerate(items):
        if i:
            pieces.append(sep)
        pieces.append(item)
    return pieces


def _pieces(node) -> list:
    """The text pieces and (child, required level) pairs that print ``node``."""
    kind = type(node)
    if kind is Const:
        return [_number(node.value)]
    if kind is Name:
        return [node.id]
    if kind is Call:
        level = _level(node)
        if level in (1, 2, 3):
            symbol = BINARY[node.func][0]
            right = level + 1
            return [(node.args[0], level + (level == 1)), f" {symbol} ", (node.args[1], right)]
        if level == 5 and node.func == "pow":
            return [(node.args[0], _ATOM_LEVEL), " ^ ", (node.args[1], _UNARY_LEVEL)]
        if level == _UNARY_LEVEL:
            return [UNARY[node.func], (node.args[0], _UNARY_LEVEL)]
        arguments = list(node.args) + [[f"{k}=", v] for k, v in node.kwargs]
        pieces = [node.func, "("]
        for piece in _join(arguments):
            pieces.extend(piece if isinstance(piece, list) else [piece])
        return pieces + [")"]
    if kind is Index:
        pieces = [(node.value, _ATOM_LEVEL + _is_number(node.value)), "["]
        return pieces + _join(list(node.items)) + ["]"]
    if kind is Slice:
        pieces = [node.start, ":", node.stop]
        if node.step is not None:
            pieces += [":", node.step]
        return pieces
    if kind is Attr:
        return [(node.value, _ATOM_LEVEL + _is_number(node.value)), "." + node.name]
    if kind is Array:
        return ["["] + _join(list(node.elements)) + ["]"]
    if kind is Assign:
        return [f"{node.name} = ", node.value]
    if kind is Program:
        return _join(list(node.statements), "\n")
    raise TypeError(f"not a gradcli AST node: {node!r}")


def _is_number(node) -> int:
    """1 for a number literal: ``(2).T``, since ``2.T`` would read as ``2.`` then ``T``."""
    return int(isinstance(node, Const))
