"""Syntax errors in words: where the LALR driver stopped, said as a person would.

``expected an operand after '+', found the end of the program``: what was expected (an
operand, an operator, a closing bracket, the end of the statement), after what, and what was
found; characters that are not the language get a hint (strings, ``!``, Unicode look-alikes).
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import GradcliError
from . import ast as A
from .builder import Kwarg, end_of
from .lalr import Failure  # noqa: F401 - parse() catches it from here

_OPERATOR_WORDS = {"+", "-", "*", "/", "@", "<", "<=", ">", ">=", "==", "!=", "_POW"}
_CLOSERS = ("]", ")", ",", ":")
_COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}
#: characters that look like the language's own: the ASCII to type instead
LOOKALIKES = {
    "\u2212": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": "*",
    "\u22c5": "*",
    "\u00b7": "*",
    "\u00f7": "/",
    "\u2044": "/",
    "\u00a0": "a space",
    "\u2009": "a space",
    "\u3000": "a space",
}


def _follows_comparison(stack, words):
    return len(stack) >= 2 and words.get(getattr(stack[-2], "type", None)) in _COMPARISONS


def _expected(names, words, stack=()) -> str:
    shown = {words.get(n, n) for n in names}
    # closers only where a bracket is open: the innermost open one is on the parser's stack
    opened = [t for t in stack if getattr(t, "type", None) in ("LPAR", "LSQB")]
    keep = {"LPAR": {")", ","}, "LSQB": {"]", ",", ":"}}.get(opened[-1].type if opened else None, set())
    shown -= set(_CLOSERS) - keep
    parts = []
    operand = bool(shown & {"NAME", "NUMBER"})
    if operand:
        parts.append("an operand")
    elif shown & _OPERATOR_WORDS:
        parts.append("an operator")
    parts += [f"'{p}'" for p in _CLOSERS if p in shown]
    if not operand and shown & {"_SEP", "$END"}:
        parts.append("the end of the statement")
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _last_token_text(text, end):
    match = re.search(
        r"([A-Za-z_]\w*|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|\*\*|[<>=!]=|\S)\Z", text[max(0, end - 64) : end]
    )
    return match.group(1) if match else ""


def _after(stack, text) -> tuple[str, int]:
    """(' after ...' words, offset just past the previous token) from the parser's stack."""
    last = stack[-1] if stack else None
    if isinstance(last, list):  # arguments / elements already reduced
        last = next((x for x in reversed(last) if x is not None), None)
    if isinstance(last, Kwarg):
        last = last.value
    if last is None:
        return " at the start of the program", 0
    end = end_of(last)
    if not isinstance(last, A.Node) and last.type == "_SEP":
        return " at the start of a statement", end
    shown = last.value if not isinstance(last, A.Node) else _last_token_text(text, end)
    return f" after '{shown}'", end


def _found(token) -> str:
    if token.type == "$END":
        return "the end of the program"
    if token.type == "_SEP" and token.value == "\n":
        return "the end of the line"
    return f"'{token.value}'"


def unexpected_token(failure, text, words) -> GradcliError:
    after, offset = _after(failure.value_stack, text)
    token = failure.token
    start = offset if token.type == "$END" else token.start_pos
    end = start + max(1, len(token.value)) if token.type != "$END" else start
    message = f"expected {_expected(failure.expected, words, failure.value_stack)}{after}, found {_found(token)}"
    if words.get(token.type) in _COMPARISONS and _follows_comparison(failure.value_stack, words):
        message = f"comparisons do not chain: found a second comparison '{token.value}' (use parentheses)"
    if token.type == "$END" and not text[offset:].strip():
        start = end = offset
    return GradcliError("syntax", message, span=(start, end)).locate(text, (start, end))


def unexpected_character(failure, text, words) -> GradcliError:
    pos = failure.pos
    char = text[pos]
    shown = char if char.isprintable() and not char.isspace() else repr(char)[1:-1]
    message = f"unexpected character {shown!r}" if char == "'" else f"unexpected character '{shown}'"
    if char in LOOKALIKES:
        name = unicodedata.name(char, f"U+{ord(char):04X}")
        ascii_ = LOOKALIKES[char]
        message += f" ({name}): use ASCII {ascii_}"
        return GradcliError("syntax", message, span=(pos, pos + 1)).locate(text, (pos, pos + 1))
    if char in "'\"\u2018\u2019\u201c\u201d":
        message += " (the language has no strings)"
    elif char == "!":
        message += " (did you mean '!='?)"
    after, _ = _after(failure.value_stack, text)
    if failure.expected:
        message += f": expected {_expected(failure.expected, words, failure.value_stack)}{after}"
    return GradcliError("syntax", message, span=(pos, pos + 1)).locate(text, (pos, pos + 1))
