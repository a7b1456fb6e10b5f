"""Program text -> AST (``parse``).

The parts, each small: ``grammar`` (the grammar, and the LALR tables lark makes from it when
the package is built, shipped as ``_tables.py``), ``lalr`` (the driver that runs the tables),
``builder`` (the tree built at each reduction), ``messages`` (syntax errors in words) and
``ast.scan_names`` (free names).  Nothing is read from or written to disk at run time and lark
is not imported: the tables are plain data in the package.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

from ..errors import GradcliError, position
from . import ast as A
from .grammar import STRUCTURAL, grammar_text, operator_names  # noqa: F401 - the parser's public names

_LOCK = threading.RLock()
_PARSER: list = []


def _parser():
    """(driver, builder), made once per process from the shipped tables."""
    if not _PARSER:
        from ._tables import TABLES
        from .builder import builder_for
        from .lalr import Driver

        operators = {r["callback"] for r in TABLES["rules"] if r["callback"] and not r["callback"].startswith("_")}
        builder = builder_for(operators - STRUCTURAL)
        _PARSER.append((Driver(TABLES, builder), builder))
    return _PARSER[0]


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector while building a large acyclic structure.

    Trees and graphs of a million nodes would otherwise make the collector rescan everything it
    holds again and again (half of the time of parsing a 1 MB program).  Nothing made here
    forms cycles, so reference counting frees it all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse(text: str) -> A.Program:
    """Parse program text into a ``Program``; raise ``GradcliError`` ("syntax" or "name").

    The error gives line, column and the source, and says in words what was expected.  A UTF-8
    byte-order mark at the start is ignored; newlines inside brackets continue the statement.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() takes program text (str), not {type(text).__name__}")
    source = text
    if text.startswith("\ufeff"):  # the same length, so spans still index ``source``
        text = " " + text[1:]
    from . import messages

    with _LOCK, paused_gc():
        driver, builder = _parser()
        builder.text = text
        try:
            statements = driver.parse(text)
        except GradcliError as err:
            raise err.locate(source, err.span or (0, 0)) from None
        except messages.Failure as failure:
            if failure.token is not None:
                raise messages.unexpected_token(failure, source, driver.words) from None
            raise messages.unexpected_character(failure, source, driver.words) from None
        except RecursionError:
            raise GradcliError("syntax", "the program is nested too deeply").locate(source, (0, 0)) from None
        finally:
            builder.text = ""
    if not statements:
        raise GradcliError(
            "syntax",
            "the program is empty: write an expression such as x * y",
            line=1,
            column=1,
            source=source,
            span=(0, 0),
        )
    inputs, assigned, clash = A.scan_names(statements)
    if clash is not None:
        name, read, span = clash
        line, column = position(source, read[0])
        raise GradcliError(
            "name",
            f"cannot assign to '{name}': it is an input of the program (read at line "
            f"{line}, column {column} before this assignment); give the result a new name",
            span=span,
        ).locate(source, span)
    return A.Program(tuple(statements), source, tuple(inputs), tuple(assigned), (0, len(source)))
