"""The command line: CliRunner and real subprocesses; SPEC §3-§5."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def cli(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def sub(*args, input=None, env=None):
    environment = dict(os.environ, **(env or {}))
    environment["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + environment.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "gradcli", *args],
        capture_output=True,
        text=True,
        input=input,
        env=environment,
        cwd=ROOT,
        timeout=60,
    )


def js(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


COMMON = {"program", "value", "shape", "dtype", "grad_fn"}


def test_help_leads_with_example():
    r = cli("--help")
    assert r.exit_code == 0 and 'gradcli grad "w*x+b"' in r.output
    for command in ("eval", "grad", "backward", "jacobian", "hessian", "diff", "graph", "check"):
        r = cli(command, "--help")
        assert r.exit_code == 0 and "Example:" in r.output and "gradcli " + command in r.output


def test_version():
    r = sub("--version")
    assert r.returncode == 0 and r.stdout.startswith("gradcli")


def test_syntax_error_has_caret_and_json():
    r = sub("grad", "w*+", "w=2")
    assert r.returncode == 2 and "^" in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    r = sub("grad", "w*+", "w=2", "--json")
    error = js(r.stderr)["error"]
    assert r.returncode == 2 and error["kind"] == "syntax" and error["line"] == 1 and error["column"] == 4


@pytest.mark.parametrize(
    "args",
    [
        ["grad", "@no/such/file.grad", "w=2"],
        ["grad", "w", "--dtype", "int8"],
        ["grad", "w", "--format", "xml"],
        ["grad", "w", "--bogus"],
    ],
)
def test_bad_options_exit_2(args):
    r = sub(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_grad_json_and_plain():
    r = sub("grad", "w*x+b", "w=2", "x=3", "b=1", "--wrt", "w,x", "--wrt", "b", "--json")
    assert r.returncode == 0, r.stderr
    data = js(r.stdout)
    assert COMMON <= set(data) and data["value"] == 7.0 and data["grad_fn"] == "AddBackward0"
    assert data["grads"] == {"w": 3.0, "x": 2.0, "b": 1.0}
    r = cli("grad", "w*x+b", "w=2", "x=3", "b=1", "--format", "plain")
    assert r.exit_code == 0
    assert dict(line.split("\t") for line in r.stdout.splitlines()) == {"w": "3.0", "x": "2.0", "b": "1.0"}


def test_grad_unused_input_is_null_with_note():
    r = sub("grad", "a = z * 2; y = w * 2", "w=2", "z=1", "--json")
    assert r.returncode == 0, r.stderr
    assert js(r.stdout)["grads"]["z"] is None and "z" in r.stderr


def test_eval():
    r = sub("eval", "sum([1, 2, 3] * x)", "x=2", "--json")
    assert r.returncode == 0 and js(r.stdout)["value"] == 12.0
    r = cli("eval", "-", "x=2", input="y = x ^ 2\n")
    assert r.exit_code == 0 and r.stdout == "y\t4.0\n"


def test_backward_times_and_retain():
    r = sub("backward", "@samples/accumulate.grad", "w=2", "x=3", "--times", "3", "--retain-graph", "--json")
    assert r.returncode == 0, r.stderr
    rows = {t["name"]: t for t in js(r.stdout)["tensors"]}
    assert [t for t in rows][:2] == ["w", "x"]
    assert rows["w"]["grad"] == 3 * (3 + 4) and rows["x"]["grad"] == 3 * 2
    assert rows["y"]["is_leaf"] is False and rows["y"]["grad"] is None
    r = sub(
        "backward", "@samples/accumulate.grad", "w=2", "x=3", "--times", "3", "--retain-graph", "--zero-grad", "--json"
    )
    rows = {t["name"]: t for t in js(r.stdout)["tensors"]}
    assert rows["w"]["grad"] == 7.0
    r = cli("backward", "h = w*x; y = h + 1", "w=2", "x=3", "--retain", "h", "--freeze", "x", "--json")
    rows = {t["name"]: t for t in js(r.stdout)["tensors"]}
    assert rows["h"]["grad"] == 1.0 and rows["x"]["grad"] is None and rows["x"]["requires_grad"] is False


def test_backward_table_on_terminal_like_output():
    r = cli("backward", "y = w*x", "w=2", "x=3", "--format", "table")
    assert r.exit_code == 0 and "requires_grad" in r.stdout and "MulBackward0" in r.stdout


def test_jacobian_and_hessian():
    r = sub("jacobian", "[x*y, x+y]", "x=2", "y=3", "--json")
    assert r.returncode == 0, r.stderr
    assert js(r.stdout)["jacobian"] == {"x": [3.0, 1.0], "y": [2.0, 1.0]}
    r = sub("hessian", "@samples/rosenbrock.grad", "x=[1, 1]", "--json")
    assert r.returncode == 0, r.stderr
    assert js(r.stdout)["hessian"]["x"]["x"] == [[802.0, -400.0], [-400.0, 200.0]]


def test_diff():
    r = sub("diff", "x^3", "x=2", "--order", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert js(r.stdout)["derivative"] == 12.0
    r = sub("diff", "x^2", "x=2", "--order", "4", "--json")
    assert r.returncode == 0 and js(r.stdout)["derivative"] == 0.0
    r = sub("diff", "x*y^2", "x=2", "y=3", "--wrt", "x,y,y", "--json")
    data = js(r.stdout)
    assert data["wrt"] == ["x", "y", "y"] and data["derivative"] == 2.0


def test_graph_formats():
    r = sub("graph", "tanh(w*x+b)", "w=2", "x=3", "b=1")
    assert r.returncode == 0 and "TanhBackward0" in r.stdout and "AccumulateGrad (w)" in r.stdout
    r = sub("graph", "tanh(w*x+b)", "w=2", "x=3", "b=1", "--format", "dot")
    assert r.stdout.startswith("digraph") and "->" in r.stdout
    r = sub("graph", "tanh(w*x+b)", "w=2", "x=3", "b=1", "--format", "json")
    nodes = js(r.stdout)["nodes"]
    assert nodes[0]["name"] == "TanhBackward0"
    assert {n["input"] for n in nodes if n["name"] == "AccumulateGrad"} == {"w", "x", "b"}


def test_check():
    r = sub("check", "sum(tanh(x)^2)", "x=[0.5, -1]", "--json")
    assert r.returncode == 0, r.stderr
    data = js(r.stdout)
    assert data["ok"] is True and data["max_abs_error"] < 1e-5


@pytest.mark.parametrize(
    "args,kind",
    [
        (["grad", "w*+"], "syntax"),
        (["grad", "nosuch(w)", "w=1"], "name"),
        (["grad", "w*x", "w=1"], "value"),
        (["grad", "w*x", "w=1", "x=2", "--wrt", "q"], "option"),
        (["grad", "w+x", "w=[1, 2]", "x=[1, 2, 3]"], "shape"),
        (["grad", "w*2", "w=[1, 2]"], "autograd"),
        (["grad", "w", "w=@no_such.npy"], "file"),
        (["grad", "w", "w=1", "--device", "cuda"], "dependency"),
    ],
)
def test_bad_inputs_exit_2(args, kind):
    if kind == "dependency" and shutil.which("nvidia-smi"):
        pytest.skip("a GPU machine may have cupy")
    r = sub(*args, "--json")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert js(r.stderr)["error"]["kind"] == kind


def _console_script():
    """The installed ``gradcli`` script: next to this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name("gradcli")
    return str(beside) if beside.exists() else shutil.which("gradcli")


@pytest.mark.parametrize(
    "args, key",
    [
        (["eval", "w*x+b", "w=2", "x=3", "b=1"], "value"),
        (["grad", "w*x+b", "w=2", "x=3", "b=1"], "grads"),
        (["backward", "h = w*x; y = h+b", "w=2", "x=3", "b=1", "--retain", "h"], "tensors"),
        (["jacobian", "x*2", "x=[1,2]"], "jacobian"),
        (["hessian", "sum(x^3)", "x=[1,2]"], "hessian"),
        (["diff", "x^3", "x=2", "--order", "2"], "derivative"),
        (["graph", "w*x+b", "w=2", "x=3", "b=1"], "nodes"),
        (["check", "sin(x)", "x=1"], "ok"),
    ],
)
def test_installed_console_script_runs_every_command(args, key):
    exe = _console_script()
    if exe is None:
        pytest.skip("the gradcli console script is not installed (pip install .)")
    r = subprocess.run([exe, *args, "--json"], capture_output=True, text=True, cwd=ROOT.parent, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and key in js(r.stdout)


def test_json_path_does_not_import_rich():
    code = (
        "import sys\nfrom gradcli.cli import app\n"
        "try:\n    app(['grad', 'w*+', 'w=2', '--json'], prog_name='gradcli')\nexcept SystemExit: pass\n"
        "print('rich' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.strip().endswith("False"), r.stdout + r.stderr


def test_broken_pipe_is_quiet():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    p = subprocess.run(
        f'"{sys.executable}" -m gradcli --help | head -1', shell=True, capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert "Traceback" not in p.stderr


def test_fast_path_avoids_typer():
    code = (
        "import sys\nfrom gradcli.cli import main\n"
        "try:\n    main(['grad', 'w*+', 'w=2', '--json'])\nexcept SystemExit as e: print(e.code)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'rich', 'pydantic'}))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.split() == ["2", "[]"], r.stdout + r.stderr


def test_huge_hessian_is_refused_with_a_hint():
    r = cli("hessian", "sum(x^4) + x @ A @ x", "x=zeros(300)", "A=zeros(300, 300)", "--json")
    assert r.exit_code == 2
    assert "--wrt" in r.output and "Traceback" not in r.output
    r = cli("hessian", "sum(x^4) + x @ A @ x", "x=[1, 2]", "A=eye(2)", "--wrt", "x", "--json")
    assert r.exit_code == 0 and js(r.stdout)["hessian"]["x"]["x"] == [[14.0, 0.0], [0.0, 50.0]]
