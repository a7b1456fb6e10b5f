"""Errors that carry a kind and a position.

Every problem a user can cause is a ``GradcliError``; ``cli.py`` is the one place that turns
them into exit codes (``exit_code``) and messages.  The engine raises plain ``RuntimeError`` /
``ValueError`` with PyTorch's wording, as PyTorch does; the command layer wraps those that are
the user's fault.
"""
from __future__ import annotations

# kind -> exit code (SPEC §5)
KINDS = {
    "syntax": 2,        # the program text does not parse
    "name": 2,          # unknown function or name
    "value": 2,         # missing, unknown or malformed input value
    "shape": 2,         # shape mismatch in an operation
    "type": 2,          # wrong argument types / counts for a function
    "option": 2,        # a bad command-line option
    "usage": 2,         # a malformed command line (unknown option, bad choice, conflicting options)
    "file": 2,          # unreadable file
    "dependency": 2,    # missing optional dependency (cupy)
    "autograd": 2,      # an autograd rule was broken (implicit grad of non-scalar, ...)
    "plugin": 2,        # a plugin file failed to load
    "check": 1,         # check found a mismatch
    "nonfinite": 1,     # --strict saw NaN or infinity
}


class GradcliError(Exception):
    """A user-facing error: ``kind`` (a key of ``KINDS``), ``message``, optional position.

    ``line`` and ``column`` are 1-based; ``span`` is a ``(start, end)`` pair of character
    offsets into the program text; ``source`` is the text the position refers to, so that the
    renderer can show the line with a caret.  ``hint`` is one line on what to do (or why), shown
    after the message: PyTorch's own messages stay word for word in ``message``.
    """

    def __init__(self, kind: str, message: str, line: int | None = None, column: int | None = None,
                 span: tuple[int, int] | None = None, source: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.hint = hint
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
        self.span = span
        self.source = source

    @property
    def exit_code(self) -> int:
        return KINDS.get(self.kind, 2)

    def to_json(self) -> dict:
        data = {"kind": self.kind, "message": self.message, "line": self.line, "column": self.column}
        if self.hint:
            data["hint"] = self.hint
        return data

    def __str__(self) -> str:
        return self.message

    def excerpt(self) -> str:
        """The program line the error points at, with carets under its span (or "")."""
        if self.source is None or self.line is None or self.column is None:
            return ""
        width = 1
        if self.span is not None and self.span[1] > self.span[0]:
            if self.source.count("\n", self.span[0], self.span[1] - 1) == 0:
                width = self.span[1] - self.span[0]
        return excerpt(self.source, self.line, self.column, width)

    def describe(self) -> str:
        """``line L, column C: message`` and the excerpt below it: the text for people."""
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        shown = self.excerpt()
        return (f"{where}{self.message}" + (f"\n{shown}" if shown else "")
                + (f"\nhint: {self.hint}" if self.hint else ""))

    def locate(self, source: str, span: tuple[int, int]) -> "GradcliError":
        """Give the error a position in ``source`` (unless it has one) and return it."""
        if self.line is None and span is not None:
            self.span = tuple(span)
            self.source = source
            self.line, self.column = position(source, span[0])
        return self


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset into ``source``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def excerpt(source: str, line: int, column: int, width: int = 1) -> str:
    """The ``line``-th line of ``source`` with carets under ``width`` characters from ``column``.

    Long lines are cut to a window around the column, so a 1 MB one-line program still gives a
    readable two-line excerpt.
    """
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1].rstrip("\r").replace("\t", " ")
    start = 0
    if len(text) > 100:
        start = max(0, column - 60)
        text = ("..." if start else "") + text[start:start + 100] + ("..." if start + 100 < len(text) else "")
        column = column - start + (3 if start else 0)
    width = max(1, min(width, len(text) - column + 1))
    gutter = f"{line} | "
    return f"{gutter}{text}\n{' ' * len(gutter)}{' ' * (column - 1)}{'^' * width}"

