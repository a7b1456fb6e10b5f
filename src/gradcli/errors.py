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
    renderer can show the line with a caret.
    """

    def __init__(self, kind: str, message: str, line: int | None = None, column: int | None = None,
                 span: tuple[int, int] | None = None, source: str | None = None):
        super().__init__(message)
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
        return {"kind": self.kind, "message": self.message, "line": self.line, "column": self.column}

    def __str__(self) -> str:
        return self.message
