"""Input values: NAME=VALUE in the language, @FILE arrays, --values files; never unpickled."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradcli as G
from gradcli.errors import GradcliError
from gradcli.values import load_array, load_values, parse_assignment, parse_value


def arr(t):
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2", 2.0),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("1e-3", 0.001),
        ("[1, 2]", [1.0, 2.0]),
        ("[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]),
        ("ones(2, 2) * 0.5", [[0.5, 0.5], [0.5, 0.5]]),
        ("zeros(3)", [0.0, 0.0, 0.0]),
        ("2 * pi", 2 * np.pi),
        ("[1, -2] ^ 2", [1.0, 4.0]),
        ("eye(2)", [[1.0, 0.0], [0.0, 1.0]]),
        ("a = [1, 2]; a * 3", [3.0, 6.0]),
        ("  7  ", 7.0),
    ],
)
def test_values_are_programs_without_free_names(text, expected):
    value = parse_value(text)
    assert isinstance(value, G.Tensor)
    np.testing.assert_allclose(arr(value), np.asarray(expected))
    assert value.dtype == np.float64 and value.is_leaf and not value.requires_grad


def test_dtype_and_seeded_random_values():
    assert parse_value("[1, 2]", dtype="float32").dtype == np.float32
    assert parse_value("randn(3, 3)", dtype="float32").dtype == np.float32
    G.manual_seed(7)
    a = arr(parse_value("randn(3, 3)"))
    G.manual_seed(7)
    b = arr(parse_value("randn(3, 3)"))
    assert a.shape == (3, 3) and (a == b).all()
    assert arr(parse_value("rand(4)")).min() >= 0.0


@pytest.mark.parametrize(
    "text, kind",
    [
        ("x + 1", "value"),
        ("[1, y]", "value"),
        ("1 +", "syntax"),
        ("__import__('os')", "syntax"),
        ("foo(1)", "name"),
        ("[1, 2] @ [1, 2, 3]", "shape"),
    ],
)
def test_bad_values_are_gradcli_errors(text, kind):
    with pytest.raises(GradcliError) as info:
        parse_value(text)
    assert info.value.kind == kind and info.value.exit_code == 2
    if kind == "value":
        assert "cannot use the name" in info.value.message and info.value.column is not None


def test_parse_assignment():
    assert parse_assignment("x=2") == ("x", "2")
    assert parse_assignment(" W = randn(3, 3) ") == ("W", "randn(3, 3)")
    assert parse_assignment("b=-1") == ("b", "-1")
    assert parse_assignment("m=[1,2]==[1,3]") == ("m", "[1,2]==[1,3]")
    for bad in ("x", "=2", "1x=2", "x y=2", "x=", "x.y=2"):
        with pytest.raises(GradcliError) as info:
            parse_assignment(bad)
        assert info.value.kind == "value"


def test_files_npy_json_txt_csv(tmp_path):
    data = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / "a.npy", data)
    (tmp_path / "a.json").write_text(json.dumps(data.tolist()))
    np.savetxt(tmp_path / "a.txt", data)
    np.savetxt(tmp_path / "a.csv", data, delimiter=",")
    (tmp_path / "n.json").write_text('[1, "NaN", "Infinity", "-Infinity"]')
    for name in ("a.npy", "a.json", "a.txt", "a.csv"):
        value = parse_value(f"@{tmp_path / name}")
        assert arr(value).tolist() == data.tolist() and value.dtype == np.float64
    assert parse_value(f"@{tmp_path / 'a.npy'}", dtype="float32").dtype == np.float32
    special = arr(load_array(str(tmp_path / "n.json")))
    assert special[0] == 1 and np.isnan(special[1]) and special[2] == np.inf and special[3] == -np.inf
    np.save(tmp_path / "i.npy", np.arange(3))
    assert arr(parse_value(f"@{tmp_path / 'i.npy'}")).dtype == np.float64


def test_files_are_never_unpickled(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(GradcliError) as info:
        parse_value(f"@{tmp_path / 'obj.npy'}")
    assert info.value.kind == "value"
    (tmp_path / "evil.npy").write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n" * 3)
    with pytest.raises(GradcliError):
        parse_value(f"@{tmp_path / 'evil.npy'}")
    np.savez(tmp_path / "obj.npz", a=np.array([None], dtype=object))
    with pytest.raises(GradcliError):
        load_values(str(tmp_path / "obj.npz"))


@pytest.mark.parametrize(
    "name, content, kind",
    [
        ("missing.npy", None, "file"),
        ("a.xyz", "1", "file"),
        ("bad.json", "[1, 'a']", "value"),
        ("str.json", '["1", 2]', "value"),
        ("ragged.json", "[[1, 2], [3]]", "value"),
        ("obj.json", '{"a": 1}', "value"),
        ("bad.txt", "1 2\n3 x\n", "value"),
        ("null.json", "[null]", "value"),
        ("bool.json", "[true]", "value"),
    ],
)
def test_bad_files(tmp_path, name, content, kind):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(GradcliError) as info:
        parse_value(f"@{tmp_path / name}")
    assert info.value.kind == kind


def test_values_files(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps({"x": 2, "W": [[1, 2], [3, 4]], "b": "ones(2) * 3"}))
    values = load_values(str(tmp_path / "v.json"))
    assert list(values) == ["x", "W", "b"]
    assert arr(values["x"]) == 2.0 and arr(values["W"]).shape == (2, 2)
    assert arr(values["b"]).tolist() == [3.0, 3.0]
    np.savez(tmp_path / "v.npz", x=np.ones(3), y=np.eye(2))
    values = load_values(str(tmp_path / "v.npz"), dtype="float32")
    assert sorted(values) == ["x", "y"] and values["y"].dtype == np.float32
    for name, content in [("list.json", "[1, 2]"), ("badname.json", '{"1x": 1}'), ("v.txt", "1")]:
        (tmp_path / name).write_text(content)
        with pytest.raises(GradcliError):
            load_values(str(tmp_path / name))
    with pytest.raises(GradcliError) as info:
        load_values(str(tmp_path / "nope.json"))
    assert info.value.kind == "file"
    with pytest.raises(GradcliError) as info:
        parse_value("@")
    assert info.value.kind == "file"


# -- standard input, special files, errors that name the value (through the console script) ------

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from terminal import run  # noqa: E402


@pytest.mark.parametrize("data", ["[1, 2]", "1 2\n", "1,2\n", '[1, "NaN"]'])
def test_value_from_standard_input(data):
    r = run("eval", "x", "x=@-", "--format", "plain", input=data)
    assert r.returncode == 0, r.stderr
    expected = '[1.0,"NaN"]' if "NaN" in data else "[1.0,2.0]"
    assert r.stdout == f"value\t{expected}\n"
    r = run("eval", "x", "x=@/dev/stdin", "--format", "plain", input=data)
    assert r.returncode == 0 and r.stdout == f"value\t{expected}\n"


def test_npy_and_npz_from_standard_input(tmp_path):
    np.save(tmp_path / "a.npy", np.array([1.5, 2.5]))
    r = subprocess_run(tmp_path / "a.npy", "eval", "x", "x=@-")
    assert r.returncode == 0 and r.stdout == "value\t[1.5,2.5]\n"
    np.savez(tmp_path / "v.npz", x=np.array(3.0), unused=np.ones(2))
    r = subprocess_run(tmp_path / "v.npz", "eval", "x * 2", "--values", "-")
    assert r.returncode == 0 and r.stdout == "value\t6.0\n"
    assert r.stderr == "note: --values standard input: skipped 'unused', not an input of the program\n"


def subprocess_run(path, *args):
    import subprocess

    from terminal import ROOT, environment, executable

    with open(path, "rb") as handle:
        return subprocess.run(
            [*executable(), *args, "--format", "plain"],
            stdin=handle,
            capture_output=True,
            text=True,
            env=environment(),
            cwd=ROOT,
            timeout=60,
        )


def test_standard_input_redirected_from_a_file(tmp_path):
    (tmp_path / "in.txt").write_text("[1, 2]")
    for value in ("x=@-", "x=@/dev/stdin"):
        r = subprocess_run(tmp_path / "in.txt", "eval", "x", value)
        assert r.returncode == 0 and r.stdout == "value\t[1.0,2.0]\n"
    (tmp_path / "in.json").write_text('{"x": 3}')
    r = subprocess_run(tmp_path / "in.json", "eval", "x", "--values", "/dev/stdin")
    assert r.returncode == 0 and r.stdout == "value\t3.0\n"
    r = subprocess_run(tmp_path / "in.json", "eval", "x", "--values", "/dev/stdin", "x=@-")
    assert r.returncode == 2 and "standard input can be read only once: --values and the value of x" in r.stderr


def test_values_file_from_standard_input_skips_unused_keys_with_one_note():
    r = run("eval", "sum(x)", "--values", "-", "--format", "plain", input='{"x": [1, 2], "z": 3, "w": "1 +"}')
    assert r.returncode == 0 and r.stdout == "value\t3.0\n"
    assert r.stderr == "note: --values standard input: skipped 'z' and 'w', not inputs of the program\n"


def test_command_line_value_that_is_not_an_input_stays_an_error():
    r = run("eval", "x", "x=1", "z=2")
    assert r.returncode == 2 and r.stderr == "error: unknown input 'z': the program's inputs are x\n"


@pytest.mark.parametrize(
    "args, stdin_owner",
    [
        (["eval", "x+y", "x=@-", "y=@-"], "the value of x and the value of y"),
        (["eval", "-", "x=@-"], "the program and the value of x"),
        (["eval", "x", "x=@-", "--values", "-"], "--values and the value of x"),
    ],
)
def test_standard_input_is_read_once(args, stdin_owner):
    r = run(*args, input="[1, 2]")
    assert r.returncode == 2
    assert r.stderr == (
        f"error: standard input can be read only once: {stdin_owner} both ask for it (put one of them in a file)\n"
    )


def test_directories_and_fifos(tmp_path):
    r = run("eval", "x", f"x=@{tmp_path}")
    assert r.returncode == 2
    assert r.stderr == f"error: in the value of x: cannot read '{tmp_path}': it is a directory; name a file in it\n"
    r = run("eval", "x", "--values", str(tmp_path))
    assert r.returncode == 2 and r.stderr == f"error: cannot read '{tmp_path}': it is a directory; name a file in it\n"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    def feed():
        with open(fifo, "w") as handle:
            handle.write("[5, 6]")

    writer = threading.Thread(target=feed)
    writer.start()
    r = run("eval", "x", f"x=@{fifo}", "--format", "plain")
    writer.join(timeout=10)
    assert r.returncode == 0 and r.stdout == "value\t[5.0,6.0]\n"


def test_errors_inside_a_value_name_it(tmp_path):
    r = run("eval", "x+y", "x=1", "y=[1,2")
    assert r.returncode == 2 and r.stderr == (
        "error: line 1, column 7: in the value of y: expected ']' or ',' after '2', found the end of the value\n"
        "1 | y=[1,2\n"
        "          ^\n"
    )
    r = run("eval", "x+y", "x=1", "y=[1,2", "--json")
    assert json.loads(r.stderr)["error"]["message"].startswith("in the value of y: expected ']'")
    r = run("eval", "x+y", "x=1", "y=foo(2)")
    assert r.stderr.startswith("error: line 1, column 3: in the value of y: unknown function 'foo'")
    (tmp_path / "v.json").write_text('{"x": 1, "y": [1, "a"]}')
    r = run("eval", "x+y", "--values", str(tmp_path / "v.json"))
    assert r.returncode == 2 and r.stderr == (
        f"error: in the value of y in '{tmp_path / 'v.json'}': expected numbers or nested lists of numbers, "
        'found "a"\n'
    )
    (tmp_path / "v.json").write_text('{"x": 1, "y": "[1, 2"}')
    r = run("eval", "x+y", "--values", str(tmp_path / "v.json"))
    assert r.returncode == 2 and f"in the value of y in '{tmp_path / 'v.json'}': expected ']'" in r.stderr
    (tmp_path / "bad.json").write_text("[1, 'a']")
    r = run("eval", "x", f"x=@{tmp_path / 'bad.json'}")
    assert r.returncode == 2 and r.stderr.startswith(
        f"error: in the value of x: '{tmp_path / 'bad.json'}' does not hold"
    )
    r = run("eval", "x", "x=@-", input="[[1, 2], [3]]")
    assert r.stderr == (
        "error: in the value of x: standard input: the nested lists are ragged (rows of different lengths)\n"
    )
    r = run("eval", "x", "x=@-", input="")
    assert r.stderr == (
        "error: in the value of x: standard input is empty: give a number, a JSON array or a table of numbers\n"
    )
