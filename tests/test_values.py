"""Input values: NAME=VALUE in the language, @FILE arrays, --values files; never unpickled."""
from __future__ import annotations

import json

import numpy as np
import pytest

G = pytest.importorskip("gradcli.ops") and __import__("gradcli")
from gradcli.errors import GradcliError  # noqa: E402
from gradcli.values import load_array, load_values, parse_assignment, parse_value  # noqa: E402


def arr(t):
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize("text, expected", [
    ("2", 2.0), ("-2.5", -2.5), (".5", 0.5), ("1e-3", 0.001), ("[1, 2]", [1.0, 2.0]),
    ("[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]), ("ones(2, 2) * 0.5", [[0.5, 0.5], [0.5, 0.5]]),
    ("zeros(3)", [0.0, 0.0, 0.0]), ("2 * pi", 2 * np.pi), ("[1, -2] ^ 2", [1.0, 4.0]),
    ("eye(2)", [[1.0, 0.0], [0.0, 1.0]]), ("a = [1, 2]; a * 3", [3.0, 6.0]), ("  7  ", 7.0),
])
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


@pytest.mark.parametrize("text, kind", [
    ("x + 1", "value"), ("[1, y]", "value"), ("1 +", "syntax"), ("__import__('os')", "syntax"),
    ("foo(1)", "name"), ("[1, 2] @ [1, 2, 3]", "shape"),
])
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


@pytest.mark.parametrize("name, content, kind", [
    ("missing.npy", None, "file"), ("a.xyz", "1", "file"), ("bad.json", "[1, 'a']", "value"),
    ("str.json", '["1", 2]', "value"), ("ragged.json", "[[1, 2], [3]]", "value"),
    ("obj.json", '{"a": 1}', "value"), ("bad.txt", "1 2\n3 x\n", "value"),
    ("null.json", "[null]", "value"), ("bool.json", "[true]", "value"),
])
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
