"""Errors that carry a kind and a position.

Every problem a user can cause is a ``GradcliError``; ``cli.py`` is the one place that turns
them into exit codes (``exit_code``) and messages.  The engine raises plain ``RuntimeError`` /
``ValueError`` with PyTorch's wording, as PyTorch does; the command layer wraps those that are
the user's fault.
"""

from __future__ import annotations

# kind -> exit code (SPEC §5)
KINDS = {
    "syntax": 2,  # the program text does not parse
    "name": 2,  # unknown function or name
    "value": 2,  # missing, unknown or malformed input value
    "shape": 2,  # shape mismatch in an operation
    "type": 2,  # wrong argument types / counts for a function
    "option": 2,  # a bad command-line option
    "usage": 2,  # a malformed command line (unknown option, bad choice, conflicting options)
    "file": 2,  # unreadable file
    "dependency": 2,  # missing optional dependency (cupy)
    "autograd": 2,  # an autograd rule was broken (implicit grad of non-scalar, ...)
    "plugin": 2,  # a plugin file failed to load, or its code raised
    "limit": 2,  # over a limit (--max-elements, program size, diff order), or out of memory
    "nonfinite": 1,  # --strict or --detect-anomaly saw NaN or infinity
    "output": 74,  # the output could not be written (stdout closed or full): EX_IOERR
}

#: exit code of Ctrl-C (128 + SIGINT), quietly
INTERRUPTED = 130


class GradcliError(Exception):
    """A user-facing error: ``kind`` (a key of ``KINDS``), ``message``, optional position.

    ``line`` and ``column`` are 1-based; ``span`` is a ``(start, end)`` pair of character
    offsets into the program text; ``source`` is the text the position refers to, so that the
    renderer can show the line with a caret.  ``hint`` is one line on what to do (or why), shown
    after the message: PyTorch's own messages stay word for word in ``message``.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        line: int | None = None,
        column: int | None = None,
        span: tuple[int, int] | None = None,
        source: str | None = None,
        hint: str | None = None,
    ):
        message = clean(message)
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
        return (
            f"{where}{self.message}" + (f"\n{shown}" if shown else "") + (f"\nhint: {self.hint}" if self.hint else "")
        )

    def locate(self, source: str, span: tuple[int, int]) -> "GradcliError":
        """Give the error a position in ``source`` (unless it has one) and return it."""
        if self.line is None and span is not None:
            self.span = tuple(span)
            self.source = source
            self.line, self.column = position(source, span[0])
        return self


_MAX_MESSAGE = 2000


def clean(text: str, keep_newlines: bool = True) -> str:
    """``text`` safe for a terminal: control characters (escape sequences) shown as ``\\x1b``, and
    cut in the middle past a couple of thousand characters (a 10 MB name gives a short message)."""
    text = str(text)
    if len(text) > _MAX_MESSAGE:
        text = (
            text[: _MAX_MESSAGE // 2]
            + f" ... ({len(text) - _MAX_MESSAGE:,} characters left out) ... "
            + text[-_MAX_MESSAGE // 2 :]
        )
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or (keep_newlines and c == "\n") else (" " if c == "\t" else ascii(c)[1:-1]) for c in text
    )


def quiet_interrupts() -> None:
    """When gradcli runs as a program: Ctrl-C at any moment (even while modules are still being
    imported, before ``main`` can catch it) exits 130 without a traceback.  Set once, by
    ``cli.main`` and, for the first moments, by the package when it is the program being run."""
    import sys

    previous = sys.excepthook
    if getattr(previous, "_gradcli", False):
        return

    def hook(kind, value, traceback):
        if _interrupted(value):
            import os

            os._exit(INTERRUPTED)
        previous(kind, value, traceback)

    hook._gradcli = True
    sys.excepthook = hook


def _interrupted(exc) -> bool:
    """Ctrl-C, also when a library turned it into another error (numpy's C extensions raise
    ImportError when the interrupt lands while they import)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, ImportError) and "PyCapsule_Import could not import" in str(exc)
        ):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def user_error(exc: BaseException) -> GradcliError | None:
    """The ``GradcliError`` a non-gradcli exception stands for when it is the user's doing (the
    machine ran out of memory, a plugin's code raised, a matrix was singular, ...), else None: a
    bug in gradcli."""
    if isinstance(exc, GradcliError):
        return exc
    name = type(exc).__name__
    plugin = _plugin_frame(exc)
    if plugin is not None:
        module, line = plugin
        return GradcliError("plugin", f"plugin code raised {name} (in {module}, line {line}): {_short(exc)}")
    if isinstance(exc, MemoryError):
        detail = f": {_short(exc)}" if str(exc) else ""
        return GradcliError(
            "limit",
            f"out of memory{detail}; use smaller inputs, fewer --wrt inputs, or a lower "
            "--max-elements to be stopped before allocating",
        )
    if name == "LinAlgError":
        return GradcliError(
            "value",
            f"linear algebra failed: {_short(exc)} (a singular matrix has no inverse; "
            "its gradient through det/inv is undefined here)",
        )
    if isinstance(exc, RecursionError):
        return GradcliError("value", "the input is nested too deeply to process")
    return None


def _short(exc, limit=300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _plugin_frame(exc):
    """(plugin module, line) of the innermost traceback frame in a ``--plugin`` file, or None."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith("gradcli_plugin_"):
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


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
    if not text.isprintable():  # escape sequences in a comment must not reach the terminal
        text = "".join(c if c.isprintable() else "?" for c in text)
    start = 0
    if len(text) > 100:
        start = max(0, column - 60)
        text = ("..." if start else "") + text[start : start + 100] + ("..." if start + 100 < len(text) else "")
        column = column - start + (3 if start else 0)
    width = max(1, min(width, len(text) - column + 1))
    gutter = f"{line} | "
    return f"{gutter}{text}\n{' ' * len(gutter)}{' ' * (column - 1)}{'^' * width}"
