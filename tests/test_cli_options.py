"""The command-line table (``gradcli.options``): both parsers agree, help and usage errors come
from it, and the choices it declares are enforced.  Through the real entry point where output
matters (``python -m gradcli`` in a subprocess)."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli import cli as C
from gradcli.options import COMMANDS, OPTIONS, check_tables, options_for

ROOT = Path(__file__).resolve().parent.parent


def sub(*args, input=None, cwd=None, env=None):
    environment = dict(os.environ, **(env or {}))
    environment["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + environment.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "gradcli", *args],
        capture_output=True,
        text=True,
        input=input,
        env=environment,
        cwd=cwd or ROOT,
        timeout=60,
    )


def through_typer(argv):
    """What the typer app hands to ``run`` for ``argv`` (or its exit code when it hands nothing)."""
    seen = []
    saved = C._HOOK["run"]
    C._HOOK["run"] = lambda name, args: seen.append((name, args)) or 0
    try:
        code = C.run_app(argv)
    finally:
        C._HOOK["run"] = saved
    return seen[0] if seen else code


def test_tables_are_consistent():
    check_tables()


# -- both parsers, one table ----------------------------------------------------------------------

SAMPLE = {"str": "v", "int": "3", "float": "0.5", "list": "a=1", "names": "a,b"}


def _generated_matrix():
    """One command line per (command, option): each option given a sample value, both spellings."""
    lines = []
    for command in COMMANDS:
        head = [command.name, "x*y", "x=1"] if command.program else [command.name]
        for option in options_for(command.name).values():
            if option.kind == "flag":
                lines.append(head + [option.flag])
                continue
            value = str(option.choices[-1]) if option.choices else SAMPLE[option.kind]
            lines.append(head + [option.flag, value])
            lines.append([command.name, f"{option.flag}={value}"] + head[1:])
    return lines


MATRIX = [
    ["eval", "x*2", "x=3"],
    ["eval", "x*2", "--set", "x=3", "--json"],
    ["eval", "x*2", "x=3", "--format", "plain", "--precision", "3"],
    ["eval", "x*2", "x=3", "--format=table", "--dtype", "float32", "--seed", "1"],
    ["grad", "w*x+b", "w=2", "x=3", "b=1", "--wrt", "w,x", "--wrt", "b"],
    ["grad", "w*x", "w=2", "x=3", "--grad-output", "2", "--freeze", "x", "--device", "cpu"],
    ["grad", "w*x", "w=2", "--grad-output=-1", "x=3"],
    ["grad", "--json", "w", "w=1"],
    ["grad", "w", "--", "w=1"],
    ["grad", "--", "-w", "w=1"],
    ["grad", "-", "x=1"],
    ["backward", "h=w*x; y=h+b", "w=2", "x=3", "b=1", "--retain", "h", "--times", "3", "--zero-grad"],
    ["jacobian", "[x*y, x+y]", "x=2", "y=3", "--wrt=x"],
    ["hessian", "sum(x^2)", "x=[1,2]", "--values", "v.json", "--plugin", "a.py", "--plugin", "b.py"],
    ["diff", "x^3", "x=2", "--order", "2"],
    ["diff", "x*y", "x=2", "y=1", "--wrt", "x,y"],
    ["graph", "tanh(w)", "w=1", "--format", "dot"],
    ["graph", "tanh(w)", "w=1", "--format", "tree"],
    ["check", "sum(x^2)", "x=[1,2]", "--order", "2"],
    ["functions"],
    ["functions", "tanh", "--json"],
] + _generated_matrix()


@pytest.mark.parametrize("argv", MATRIX, ids=lambda a: shlex.join(a)[:60])
def test_fast_path_and_typer_agree(argv):
    fast = C.parse_fast(argv)
    assert fast is not None, "the fast path should take this line"
    assert through_typer(argv) == fast


@pytest.mark.parametrize(
    "argv",
    [
        ["grad", "w", "--bogus"],
        ["grad", "w", "--seed", "x"],
        ["grad", "w", "--format", "dot"],
        ["eval", "w", "--format", "tree"],
        ["graph", "w", "--format", "xml"],
        ["grad", "w", "--dtype", "int8"],
        ["grad", "w", "--order", "2"],
        ["eval", "w", "--wrt", "w"],
        ["grad"],
        ["grad", "w", "--json=1"],
        ["functions", "a", "b"],
        ["--help"],
        ["grad", "-h"],
        [],
    ],
)
def test_fast_path_leaves_the_rest_to_typer(argv):
    assert C.parse_fast(argv) is None
    assert not isinstance(through_typer(argv), tuple) or argv == ["grad", "-h"]


def test_adding_an_option_is_one_row(monkeypatch):
    """A new row reaches both parsers, the help page and the command's keyword arguments."""
    from gradcli import options

    row = options.Option(
        "--tolerance", "tolerance", "float", "how close is close", commands=("check",), default=1e-6, metavar="TOL"
    )
    monkeypatch.setattr(options, "OPTIONS", options.OPTIONS + (row,))
    monkeypatch.delitem(C.__dict__, "app", raising=False)
    argv = ["check", "sum(x^2)", "x=[1, 2]", "--tolerance", "0.25"]
    fast = C.parse_fast(argv)
    assert fast[1]["tolerance"] == 0.25 and through_typer(argv) == fast
    seen = {}
    monkeypatch.setattr(
        "gradcli.commands.check", lambda spec, **kw: seen.update(kw) or (_ for _ in ()).throw(KeyboardInterrupt)
    )
    assert C.run(*fast) == 130 and seen["tolerance"] == 0.25
    assert "--tolerance TOL" in C.help_text(options.command("check"), _formatter())
    monkeypatch.delitem(C.__dict__, "app", raising=False)


def _formatter():
    import typer.main

    group = typer.main.get_command(C._build_app())
    return group.make_context("gradcli", ["check", "-h"], resilient_parsing=True).make_formatter()


def test_every_option_row_is_in_the_help_of_its_commands():
    for command in COMMANDS:
        r = sub(command.name, "-h")
        assert r.returncode == 0, r.stderr
        for option in options_for(command.name).values():
            assert option.flag in r.stdout, (command.name, option.flag)
    assert all(o.help for o in OPTIONS)


# -- help ------------------------------------------------------------------------------------------


def test_dash_h_is_help_with_readable_metavars():
    r = sub("grad", "-h")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "Usage: gradcli grad [OPTIONS] PROGRAM [NAME=VALUE]..."
    assert "  --wrt NAME[,NAME...]            inputs to differentiate with respect to" in lines
    assert "  --format auto|table|plain|json  output format (auto: a table on a terminal," in lines
    assert "<str>" not in r.stdout and "list[str]" not in r.stdout
    assert sub("-h").stdout == sub("--help").stdout


def test_root_help_lists_exit_codes_and_environment():
    out = sub("--help").stdout
    from gradcli.options import ENVIRONMENT, EXIT_CODES

    assert "Exit codes:\n    0    success\n    1    the answer is a failure" in out
    assert "    2    bad input: syntax, names, values, shapes, options, files, usage, over a\n         limit\n" in out
    assert "    70   a bug in gradcli (please report it)\n    74   the output could not be written" in out
    assert "    130  interrupted\n" in out
    assert (
        "Environment:\n    GRADCLI_NUM_THREADS       threads" in out
        and "    NO_COLOR                  no colour" in out
    )
    for key, text in EXIT_CODES + ENVIRONMENT:  # long texts wrap within 80 columns
        assert f"{key}  " in out and " ".join(text.split()) in " ".join(out.split())
    assert max(map(len, out.splitlines())) <= 80


@pytest.mark.parametrize("command", [c for c in COMMANDS], ids=lambda c: c.name)
def test_help_examples_run_from_any_folder(command, tmp_path):
    help_text = sub(command.name, "--help").stdout
    assert f"Example:\n\n      {command.example}\n" in help_text
    argv = shlex.split(command.example)
    assert argv[0] == "gradcli" and "samples/" not in command.example
    r = sub(*argv[1:], "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)


# -- choices ---------------------------------------------------------------------------------------


def test_a_wrong_choice_is_a_usage_error_listing_the_right_ones():
    r = sub("graph", "x", "x=1", "--format", "xml")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (
        "Usage: gradcli graph [OPTIONS] PROGRAM [NAME=VALUE]...\n"
        "Try 'gradcli graph -h' for help.\n\n"
        "error: Invalid value for '--format': 'xml' is not one of 'auto', 'table', 'plain', "
        "'json', 'tree', 'dot'.\n"
    )
    r = sub("grad", "w*x", "w=2", "x=3", "--format", "dot")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.endswith(
        "error: Invalid value for '--format': 'dot' is not one of 'auto', 'table', 'plain', 'json'.\n"
    )
    r = sub("eval", "x", "x=1", "--dtype", "int8")
    assert r.returncode == 2 and "'int8' is not one of 'float64', 'float32'." in r.stderr


def test_usage_errors_honour_json():
    r = sub("grad", "x", "x=1", "--wrtt", "w", "--json")
    assert r.returncode == 2 and r.stdout == ""
    assert json.loads(r.stderr) == {
        "error": {
            "kind": "usage",
            "message": "No such option: --wrtt (Possible options: --wrt)",
            "line": None,
            "column": None,
        }
    }
    r = sub("graph", "x", "x=1", "--format=json", "--seed", "many")
    assert r.returncode == 2
    error = json.loads(r.stderr)["error"]
    assert error["kind"] == "usage" and error["message"].startswith("Invalid value for '--seed': ")


def test_format_and_json_must_agree():
    r = sub("grad", "x", "x=1", "--json", "--format", "plain")
    assert r.returncode == 2 and r.stdout == ""
    assert json.loads(r.stderr)["error"] == {
        "kind": "usage",
        "line": None,
        "column": None,
        "message": "--json and --format plain contradict each other: give one",
    }
    r = sub("grad", "x", "x=1", "--json", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["grads"] == {"x": 1.0}


# -- no silent choices -----------------------------------------------------------------------------


def test_an_input_given_twice_is_an_error_naming_both():
    r = sub("eval", "b", "b=1", "b=2")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "error: input 'b' is given twice: b=1 and b=2; give it once\n")
    r = sub("eval", "b", "b=1", "--set", "b=2")
    assert (r.returncode, r.stderr) == (2, "error: input 'b' is given twice: b=1 and --set b=2; give it once\n")


def test_diff_order_needs_wrt_with_several_inputs_and_labels_rows():
    r = sub("diff", "x^3*y", "x=2", "y=1", "--order", "2")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("error: diff --order 2: the program has several inputs (x, y): say which with --wrt NAME\n")
    r = sub("diff", "x^3*y", "x=2", "y=1", "--order", "2", "--wrt", "x")
    assert (r.returncode, r.stdout) == (0, "d2/dx2\t12.0\n")
    r = sub("diff", "x^3*y", "x=2", "y=1", "--wrt", "x,x,y")
    assert (r.returncode, r.stdout) == (0, "d3/dx2 dy\t12.0\n")
    r = sub("diff", "x^3", "x=2", "--order", "1")
    assert (r.returncode, r.stdout) == (0, "d/dx\t12.0\n")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_numpy_warnings_stay_quiet_and_global_state_untouched():
    r = sub("eval", "log(x)", "x=0")
    assert (r.returncode, r.stdout) == (0, 'value\t"-Infinity"\n')
    assert r.stderr.startswith("note: the output holds infinity; first: log") and "Warning" not in r.stderr
    import numpy as np

    before = np.geterr()
    from gradcli import commands

    commands.evaluate(commands.Inputs("log(x)", ["x=0"]))
    assert np.geterr() == before


# -- completion ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shell,marker", [("bash", "complete -o"), ("zsh", "#compdef gradcli"), ("fish", "complete --command gradcli")]
)
def test_completion_scripts(shell, marker):
    r = sub("completion", shell)
    assert r.returncode == 0 and marker in r.stdout and "_GRADCLI_COMPLETE" in r.stdout
    r = sub("completion", "tcsh")
    assert r.returncode == 2 and "'tcsh' is not one of 'bash', 'zsh', 'fish'" in r.stderr


def test_completion_offers_the_commands_choices():
    env = {"_GRADCLI_COMPLETE": "complete_bash", "COMP_WORDS": "gradcli graph x --format ", "COMP_CWORD": "4"}
    r = sub(env=env)
    assert r.returncode == 0 and r.stdout.split() == ["auto", "table", "plain", "json", "tree", "dot"]
    env["COMP_WORDS"], env["COMP_CWORD"] = "gradcli grad x --format ", "4"
    assert sub(env=env).stdout.split() == ["auto", "table", "plain", "json"]
    env["COMP_WORDS"], env["COMP_CWORD"] = "gradcli functions log", "2"
    assert sorted(sub(env=env).stdout.split()) == ["log", "log10", "log1p", "log2", "log_softmax", "logsumexp"]


def test_bash_runs_the_generated_script(tmp_path):
    import shutil

    if shutil.which("bash") is None:
        pytest.skip("no bash here")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gradcli").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m gradcli "$@"\n')
    (bindir / "gradcli").chmod(0o755)
    script = (
        'eval "$(gradcli completion bash)"; COMP_WORDS=(gradcli diff x --wrt x --or); COMP_CWORD=5; '
        '_gradcli_completion gradcli; echo "${COMPREPLY[@]}"'
    )
    env = dict(
        os.environ,
        PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.split() == ["--order"], r.stderr


# -- functions -------------------------------------------------------------------------------------


def test_functions_lists_every_function_from_the_table():
    from gradcli import public

    r = sub("functions")
    assert r.returncode == 0 and r.stderr == ""
    heads = [line.split("(")[0] for line in r.stdout.splitlines() if not line.startswith(" ")]
    from gradcli.language.interpreter import LANGUAGE_FUNCTIONS

    assert heads == list(public.FUNCTIONS) + list(LANGUAGE_FUNCTIONS)  # then grad modes and detach (lessons)
    r = sub("functions", "tanh")
    assert (r.returncode, r.stdout) == (0, "tanh(input)  hyperbolic tangent\n    derivative: g * (1 - out * out)\n")
    r = sub("functions", "mul", "--json")
    assert json.loads(r.stdout)["functions"] == [
        {"name": "mul", "signature": "mul(input, other)", "doc": "a * b", "rule": "x: g * y; y: g * x"}
    ]
    r = sub("functions", "tanhh")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "error: unknown function 'tanhh'; did you mean 'tanh'?\n")


def test_functions_shows_a_new_row(monkeypatch):
    from gradcli import catalog, ops, public

    ops.unary("cube", lambda xp, x: x * x * x, lambda g, x: g * 3.0 * x * x, "g * 3 * x * x", "x cubed", (-2.0, 2.0))
    try:
        (entry,) = catalog.entries("cube")
        assert entry == {"name": "cube", "signature": "cube(input)", "doc": "x cubed", "rule": "g * 3 * x * x"}
    finally:
        del ops.OPS["cube"]
        ops.UNARY_OPS.remove("cube")
        public.unregister("cube")


# -- parser-level hints, through the command line --------------------------------------------------


@pytest.mark.parametrize(
    "program, stderr",
    [
        (
            "np.sin(x)",
            "error: line 1, column 1: 'np.sin' is how numpy spells it: drop the prefix: sin(x)\n"
            "1 | np.sin(x)\n    ^^^^^^^^^\n",
        ),
        (
            "pi = 3",
            "error: line 1, column 1: cannot assign to the constant pi: choose another name\n1 | pi = 3\n    ^^\n",
        ),
        (
            "x \u2212 1",
            "error: line 1, column 3: unexpected character '\u2212' (MINUS SIGN): use ASCII -\n"
            "1 | x \u2212 1\n      ^\n",
        ),
    ],
)
def test_hints_through_the_command_line(program, stderr):
    r = sub("eval", program, "x=1")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", stderr)


def test_bom_and_bracketed_newlines_through_the_command_line(tmp_path):
    path = tmp_path / "p.grad"
    path.write_bytes("\ufeffy = sum(\n  x *\n  2)\n".encode())
    r = sub("eval", f"@{path}", "x=[1, 2]")
    assert (r.returncode, r.stdout, r.stderr) == (0, "y\t6.0\n", "")
    r = sub("eval", "-", "x=[1, 2]", input="\ufeffsum([x,\n x])")
    assert (r.returncode, r.stdout) == (0, "value\t6.0\n")


def test_a_terminal_on_stdin_gets_a_hint():
    import pty
    import select

    master, slave = pty.openpty()
    environment = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    p = subprocess.Popen(
        [sys.executable, "-m", "gradcli", "eval", "-", "x=2"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=ROOT,
    )
    os.close(slave)
    try:
        ready, _, _ = select.select([p.stderr], [], [], 30)
        assert ready, "no hint on stderr"
        hint = p.stderr.readline().decode()
        assert hint == "gradcli: reading the program from standard input (end it with Ctrl-D)\n"
        os.write(master, b"x * 3\n")
        os.write(master, b"\x04")
        out, err = p.communicate(timeout=30)
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
    assert (p.returncode, out.decode(), err.decode()) == (0, "value\t6.0\n", "")


def test_no_undeclared_imports():
    """typing_extensions is not a dependency: nothing may import it (typing has what we need)."""
    src = ROOT / "src" / "gradcli"
    offenders = [p.relative_to(src) for p in src.rglob("*.py") if "typing_extensions" in p.read_text()]
    assert offenders == []


def test_graph_text_is_drawn_by_render():
    from gradcli import commands, render

    assert not hasattr(commands, "_tree") and not hasattr(commands, "_dot")
    nodes = [
        {"id": 0, "name": "MulBackward0", "next": [1, 1], "input": None},
        {"id": 1, "name": "AccumulateGrad", "next": [], "input": "x"},
    ]
    assert render.graph_tree(nodes) == "MulBackward0\n├── AccumulateGrad (x)\n└── AccumulateGrad (x)"
    assert render.graph_dot(nodes).splitlines()[2:] == [
        '  n0 [label="MulBackward0"];',
        '  n1 [label="AccumulateGrad (x)"];',
        "  n0 -> n1;",
        "  n0 -> n1;",
        "}",
    ]


# -- random command lines: both parsers agree ------------------------------------------------------


_VALUES = {
    "str": st.sampled_from(["v", "ones", "a.json", "-1", "x=1", "cuda:0"]),
    "int": st.integers(-3, 30).map(str),
    "float": st.sampled_from(["1e-6", "0.5", "-2", "3"]),
    "list": st.sampled_from(["a=1", "b=[1, 2]", "p.py"]),
    "names": st.sampled_from(["a", "a,b", "x, y"]),
}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from([c for c in COMMANDS if c.program]))
    table = options_for(command.name, aliases=True)
    argv = [command.name]
    pieces = [["x*y"]] + [
        [f"{n}={v}"] for n, v in draw(st.lists(st.tuples(st.sampled_from("xyz"), st.integers(0, 9)), max_size=3))
    ]
    for _ in range(draw(st.integers(0, 5))):
        flag = draw(st.sampled_from(sorted(table)))
        option = table[flag]
        if option.kind == "flag":
            pieces.append([flag])
            continue
        value = draw(st.sampled_from([str(c) for c in option.choices]) if option.choices else _VALUES[option.kind])
        pieces.append([f"{flag}={value}"] if draw(st.booleans()) else [flag, value])
    order = draw(st.permutations(range(1, len(pieces))))
    argv += pieces[0] + [item for i in order for item in pieces[i]]
    return argv


@settings(max_examples=150, deadline=None)
@given(command_lines())
def test_random_command_lines_parse_the_same_both_ways(argv):
    fast = C.parse_fast(argv)
    typed = through_typer(argv)
    if fast is None:
        assert not isinstance(typed, tuple) or argv[-1] == "--", (argv, typed)
    else:
        assert typed == fast, argv


def test_no_arguments_is_the_help_and_completion_usage_reads_plainly():
    r = sub()
    assert (r.returncode, r.stdout) == (0, sub("--help").stdout)
    r = sub("completion")
    assert r.returncode == 2 and r.stderr.startswith("Usage: gradcli completion SHELL\n")


def test_an_input_in_the_values_file_and_on_the_command_line_is_an_error(tmp_path):
    (tmp_path / "v.json").write_text('{"b": 1, "c": 2}')
    r = sub("eval", "b", "b=2", "--values", str(tmp_path / "v.json"), cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: input 'b' is given twice: in --values {tmp_path / 'v.json'} and as b=2; give it once\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "x*2", "--set", "x=3", "--json"],
        ["grad", "w*x+b", "w=2", "x=3", "b=1", "--wrt", "w,x", "--wrt", "b", "--format", "plain"],
        ["backward", "h=w*x; y=h+b", "w=2", "x=3", "b=1", "--retain-grad", "h", "--json"],
        ["jacobian", "[x*y, x+y]", "x=2", "y=3", "--wrt=x", "--format=plain"],
        ["diff", "x^3", "x=2", "--order", "2", "--json"],
        ["graph", "tanh(w)", "w=1", "--format", "dot"],
        ["functions", "sin"],
        ["eval", "x +", "x=1", "--json"],
    ],
    ids=lambda a: shlex.join(a)[:50],
)
def test_both_paths_print_the_same(argv, capsys):
    """End to end: the fast path (main) and the typer app print the same and exit the same."""
    assert C.parse_fast(argv) is not None
    with pytest.raises(SystemExit) as fast:
        C.main(argv)
    fast_out = capsys.readouterr()
    typer_code = C.run_app(argv)
    typer_out = capsys.readouterr()
    assert (fast.value.code, fast_out.out, fast_out.err) == (typer_code, typer_out.out, typer_out.err)
