"""The README: its console examples run and print what it says; its function list is the table.

Regenerate the function list with ``GRADCLI_UPDATE_README=1 pytest tests/test_readme.py``.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cases import examples

from gradcli import ops

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_readme_has_examples_of_every_command():
    commands = {shlex.split(c)[1] for c, _ in examples(README)}
    assert {"eval", "grad", "backward", "jacobian", "hessian", "diff", "graph", "explain"} <= commands
    assert {"--formula", "--each"} <= {word for c, _ in examples(README) for word in shlex.split(c)}


@pytest.mark.parametrize("command,expected", examples(README), ids=[c for c, _ in examples(README)])
def test_readme_example(command, expected):
    argv = shlex.split(command)
    assert argv[0] == "gradcli"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), NO_COLOR="1")
    r = subprocess.run(
        [sys.executable, "-m", "gradcli", *argv[1:]], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected


def function_list() -> str:
    return "\n".join(f"- `{name}`: {doc}" for name, doc in sorted(ops.DOCS.items()))


def test_function_list_is_the_table():
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- functions -->\n(.*?)<!-- /functions -->", text, re.S)
    assert match
    wanted = function_list() + "\n"
    if os.environ.get("GRADCLI_UPDATE_README"):
        README.write_text(text[: match.start(1)] + wanted + text[match.end(1) :], encoding="utf-8")
        return
    assert match.group(1) == wanted, "regenerate with GRADCLI_UPDATE_README=1 pytest tests/test_readme.py"


def test_python_api_example_runs():
    """The README's Python block runs, and its custom Function works as it says."""
    block = re.search(r"## The Python API.*?```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block
    env = {}
    exec(compile(block.group(1), "README.md", "exec"), env)  # noqa: S102 - our own README, in a test
    import gradcli as G

    w, x, b = (G.tensor(v, requires_grad=True) for v in (2.0, 3.0, 1.0))
    out = env["line"].apply(w, x, b)
    out.backward()
    assert out.grad_fn.name() == "lineBackward"
    assert (w.grad.item(), x.grad.item(), b.grad.item()) == (3.0, 2.0, 1.0)
