"""Hints for habits at the interpreter level (issue 12, part 8): wrong keyword arguments list the
real ones, wrong argument counts in the language's words, unknown functions a plugin could
provide.  Through the installed console script, with exact messages."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from terminal import ROOT, run  # noqa: E402


@pytest.mark.parametrize(
    "program, values, message, hint",
    [
        (
            "sum(x, keepdims=True)",
            ["x=[1,2]"],
            "sum has no argument 'keepdims': did you mean keepdim?",
            "sum(input, dim=None, keepdim=False)",
        ),
        (
            "x.sum(keepdims=True)",
            ["x=[1,2]"],
            "sum has no argument 'keepdims': did you mean keepdim?",
            "sum(input, dim=None, keepdim=False)",
        ),
        (
            "sum(x, dim=0, foo=1)",
            ["x=[1,2]"],
            "sum has no argument 'foo' (its arguments: input, dim, keepdim)",
            "sum(input, dim=None, keepdim=False)",
        ),
        (
            "clamp(x, mn=0)",
            ["x=1"],
            "clamp has no argument 'mn': did you mean min?",
            "clamp(input, min=None, max=None)",
        ),
        ("sin(x, y)", ["x=1", "y=2"], "sin takes 1 argument, got 2", "sin(input)"),
        ("sum(x, 0, True, 1)", ["x=[1,2]"], "sum takes 1 to 3 arguments, got 4", "sum(input, dim=None, keepdim=False)"),
        ("matmul(x)", ["x=1"], "matmul takes 2 arguments, got 1: other missing", "matmul(input, other)"),
    ],
)
def test_argument_hints(program, values, message, hint):
    r = run("grad", program, *values)
    assert r.returncode == 2
    first, excerpt, caret, shown_hint = r.stderr.splitlines()
    assert first == f"error: line 1, column 1: {message}" and shown_hint == f"hint: {hint}"
    assert "<locals>" not in r.stderr and "Traceback" not in r.stderr
    r = run("grad", program, *values, "--json")
    error = json.loads(r.stderr)["error"]
    assert (error["kind"], error["message"], error["hint"]) == ("type", message, hint)


def test_unknown_function_a_plugin_could_provide():
    r = run("grad", "line(w,x,b)", "w=1", "x=2", "b=3")
    assert r.returncode == 2 and r.stderr == (
        "error: line 1, column 1: unknown function 'line': is 'line' from a plugin? pass --plugin FILE.py\n"
        "1 | line(w,x,b)\n"
        "    ^^^^\n"
    )
    r = run(
        "grad",
        "line(w,x,b)",
        "w=1",
        "x=2",
        "b=3",
        "--plugin",
        str(ROOT / "samples" / "line_plugin.py"),
        "--format",
        "plain",
    )
    assert r.returncode == 0 and r.stdout == "w\t2.0\nx\t1.0\nb\t1.0\n"
    r = run("grad", "affine(w,x,b)", "w=1", "x=2", "b=3", "--plugin", str(ROOT / "samples" / "line_plugin.py"))
    assert r.stderr.startswith(
        "error: line 1, column 1: unknown function 'affine': the plugins define line, "
        "not 'affine'; pass the file that defines it with --plugin FILE.py\n"
    )


def test_a_close_name_is_still_suggested():
    r = run("grad", "sigmod(x)", "x=1")
    assert r.stderr.startswith("error: line 1, column 1: unknown function 'sigmod': did you mean 'sigmoid'?\n")
