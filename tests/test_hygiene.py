"""House rules that a reader cannot see from one file (issue 9, hygiene): test modules share
their cases through ``tests/cases.py``, never by importing each other; no test skips on a
module of gradcli's own being absent (a skip that can never fire); every error kind is raised
somewhere (``check``'s exit 1 is its result's verdict, not an error)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src" / "gradcli"


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_test_modules_do_not_import_each_other():
    found = []
    for path in sorted(TESTS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [
            f"{path.name} imports {name}"
            for name in _imports(tree)
            if name.split(".")[0].startswith("test_") or name.startswith("tests.")
        ]
    assert not found, "shared cases belong in tests/cases.py: " + "; ".join(found)


def test_no_skip_on_gradcli_itself_being_absent():
    found = []
    for path in sorted(TESTS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "importorskip"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).split(".")[0] == "gradcli"
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, "gradcli is always importable here; a skip on it can never fire: " + ", ".join(found)


def test_every_error_kind_is_raised_somewhere():
    from gradcli.errors import KINDS

    raised = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "GradcliError"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                raised.add(node.args[0].value)
    assert set(KINDS) - raised == set()
