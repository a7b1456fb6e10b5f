"""--plugin FILE.py: Function subclasses join the language by lower-cased class name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradcli as G
from gradcli.errors import GradcliError
from gradcli.language import parse, run
from gradcli.plugins import load_plugin, load_plugins

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def arr(t):
    return np.asarray(t.detach().numpy())


def test_sample_line_plugin_forward_and_backward():
    functions = load_plugin(SAMPLES / "line_plugin.py")
    assert list(functions) == ["line"]
    w, x, b = (G.tensor(v, requires_grad=True) for v in (2.0, 3.0, 1.0))
    ev = run(parse("y = line(w, x, b); sum(y ^ 2)"), {"w": w, "x": x, "b": b}, functions=functions)
    assert arr(ev.tensors["y"]) == 7.0
    ev.output.backward()
    assert (arr(w.grad), arr(x.grad), arr(b.grad)) == (14.0 * 3.0, 14.0 * 2.0, 14.0)


def test_sample_program_using_the_plugin():
    program = parse((SAMPLES / "plugin_line.grad").read_text())
    assert program.inputs == ("w", "x", "b", "t") and program.output_name == "loss"
    values = {k: G.tensor(v, requires_grad=True) for k, v in dict(w=2.0, x=3.0, b=1.0, t=5.0).items()}
    ev = run(program, values, functions=load_plugin(str(SAMPLES / "line_plugin.py")))
    ev.output.backward()
    assert arr(ev.output) == 4.0
    assert arr(values["w"].grad) == 12.0 and arr(values["b"].grad) == 4.0


def test_only_classes_the_file_defines(tmp_path):
    (tmp_path / "two.py").write_text(
        "from gradcli.autograd import Function\n"
        "class Twice(Function):\n"
        "    @staticmethod\n    def forward(ctx, x):\n        return x * 2\n"
        "    @staticmethod\n    def backward(ctx, g):\n        return g * 2\n"
        "class helper:\n    pass\n"
    )
    functions = load_plugin(tmp_path / "two.py")
    assert list(functions) == ["twice"]
    assert list(load_plugins([tmp_path / "two.py", SAMPLES / "line_plugin.py"])) == ["twice", "line"]
    with pytest.raises(GradcliError, match="twice"):
        load_plugins([tmp_path / "two.py", tmp_path / "two.py"])


@pytest.mark.parametrize(
    "source, words",
    [
        (None, "no such file"),
        ("x = 1\n", "defines no gradcli.autograd.Function"),
        ("def broken(:\n", "syntax error"),
        ("raise ValueError('boom')\n", "line 1 failed to load: ValueError: boom"),
        ("import sys\nsys.exit(3)\n", "SystemExit"),
        ("from gradcli.autograd import Function\nclass Sum(Function):\n    pass\n", "built-in function 'sum'"),
    ],
)
def test_plugin_errors(tmp_path, source, words):
    path = tmp_path / "plugin.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(GradcliError) as info:
        load_plugin(path)
    assert words in info.value.message
    assert info.value.kind in ("plugin", "file") and info.value.exit_code == 2


def test_a_plugin_that_fails_when_called_is_a_gradcli_error(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from gradcli.autograd import Function\n"
        "class oops(Function):\n"
        "    @staticmethod\n    def forward(ctx, x):\n        raise KeyError('inside')\n"
        "    @staticmethod\n    def backward(ctx, g):\n        return g\n"
    )
    with pytest.raises(GradcliError) as info:
        run(parse("oops(x)"), {"x": G.tensor(1.0)}, functions=load_plugin(tmp_path / "bad.py"))
    assert info.value.kind == "plugin" and "inside" in info.value.message and info.value.column == 1
