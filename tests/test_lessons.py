"""The autograd lessons from the command line (issue 11), through the installed console script.

Each lesson is a gradcli command and the same computation written for PyTorch.  Their answers —
values, grads, requires_grad / is_leaf / grad_fn, error messages — are compared with the golden
values in ``tests/golden/lessons.json`` (written from torch by ``scripts/make_lessons_golden.py``)
always, and with torch itself where it is installed.  Then the notes, warnings and footnotes
that say what is true, in every output format.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "lessons.json"
TUTORIAL = ROOT / "docs" / "tutorial.md"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import examples  # noqa: E402 - console blocks, read as the README's are


def _console_script():
    """The installed ``gradcli`` script: next to this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).with_name("gradcli")
    return str(beside) if beside.exists() else shutil.which("gradcli")


def gradcli(*args, env=None):
    exe = _console_script()
    if exe is None:
        pytest.skip("the gradcli console script is not installed (pip install .)")
    environment = dict(os.environ, NO_COLOR="1")
    environment.pop("COLUMNS", None)
    environment.update(env or {})
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120)


def js(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


# ------------------------------------------------------------------------------------------------
# PyTorch's side of each lesson (T is torch; float64 throughout)


def _leaf(T, value, requires_grad=True):
    return T.tensor(value, dtype=T.float64, requires_grad=requires_grad)


def _fn(tensor):
    fn = tensor.grad_fn
    return None if fn is None else fn.name().replace("torch::autograd::", "")


def _value(tensor):
    return None if tensor is None else tensor.detach().tolist()


def _tensors(create_graph=False, **named):
    """What ``gradcli backward --json`` reports of each tensor, read as PyTorch code reads it."""
    out, warned = {}, []
    for name, t in named.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g = t.grad
        if any(issubclass(w.category, UserWarning) and "not a leaf" in str(w.message) for w in caught):
            warned.append(name)
        out[name] = {"requires_grad": t.requires_grad, "is_leaf": t.is_leaf, "grad_fn": _fn(t), "grad": _value(g)}
        if create_graph:
            out[name]["grad_grad_fn"] = None if g is None else _fn(g)
    return {"tensors": out, "warned": warned}


def _error(fn):
    try:
        fn()
    except RuntimeError as exc:
        return {"error": str(exc)}
    raise AssertionError("torch raised no error")


def t_detach(T):
    x = _leaf(T, 3.0)
    y = x.detach() * x
    y.backward()
    return _tensors(x=x, y=y)


def t_no_grad(T):
    x = _leaf(T, 3.0)
    with T.no_grad():
        z = x * 2
    y = z * x
    y.backward()
    return _tensors(x=x, z=z, y=y)


def t_nested(T):
    x = _leaf(T, 3.0)
    with T.no_grad():
        with T.enable_grad():
            z = x * 2
        u = x * 5
    y = z * x + u
    y.backward()
    return _tensors(x=x, z=z, u=u, y=y)


def t_set_grad_enabled(T):
    x = _leaf(T, [1.0, 2.0])
    with T.set_grad_enabled(False):
        a = x * 2
    with T.set_grad_enabled(True):
        b = x**3
    y = (a * b).sum()
    y.backward()
    return _tensors(x=x, a=a, b=b, y=y)


def t_requires_grad_(T):
    x, w = _leaf(T, 3.0), _leaf(T, 2.0)
    x.requires_grad_(False)
    y = x * w
    y.backward()
    return _tensors(x=x, w=w, y=y)


def t_accumulate(T):
    w, x = _leaf(T, 2.0), _leaf(T, 3.0)
    y = w * x + w**2
    for _ in range(3):
        y.backward(retain_graph=True)
    return _tensors(w=w, x=x, y=y)


def t_zero_grad(T):
    w, x = _leaf(T, 2.0), _leaf(T, 3.0)
    y = w * x + w**2
    for k in range(3):
        if k:
            w.grad = x.grad = None
        y.backward(retain_graph=True)
    return _tensors(w=w, x=x, y=y)


def t_second_pass(T):
    w, x = _leaf(T, 2.0), _leaf(T, 3.0)
    y = w * x + w**2
    y.backward()
    return _error(y.backward)


def t_create_graph_twice(T):
    w, x = _leaf(T, 2.0), _leaf(T, 3.0)
    y = w * x + w**2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference-cycle warning: gradcli tells it
        y.backward(create_graph=True)
        y.backward(create_graph=True)
    return _tensors(True, w=w, x=x)


def t_create_graph_once(T):
    w, x = _leaf(T, 2.0), _leaf(T, 3.0)
    y = w * x + w**2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y.backward(create_graph=True)
    return _tensors(True, w=w, x=x)


def _t_create_graph_retained(times):
    def lesson(T):
        w = _leaf(T, [2.0, 1.0])
        h = w * 3
        h.retain_grad()
        y = (h**2).sum()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(times):
                y.backward(create_graph=True)
        return _tensors(True, w=w, h=h)

    return lesson


def t_retain_grad(T):
    w, x = _leaf(T, 2.0), _leaf(T, 3.0)
    h = w * x
    h.retain_grad()
    y = h**2
    y.backward()
    return _tensors(w=w, x=x, h=h, y=y)


def t_inputs(T):
    w, x = _leaf(T, 2.0), _leaf(T, 3.0)
    h = w * x
    y = h**2
    y.backward(inputs=[h, x])
    return _tensors(w=w, x=x, h=h, y=y)


def t_grad_output(T):
    x = _leaf(T, [1.0, 2.0, 3.0])
    y = x**2
    y.backward(T.tensor([1.0, 0.1, 0.01], dtype=T.float64))
    return _tensors(x=x, y=y)


def t_grad_intermediate(T):
    x, y = _leaf(T, 2.0), _leaf(T, 3.0)
    h = x * y
    z = h**2 + x
    gh, gx = T.autograd.grad(z, [h, x])
    return {"grads": {"h": _value(gh), "x": _value(gx)}}


def t_grad_unused(T):
    x, w, u = _leaf(T, 1.0), _leaf(T, 2.0), _leaf(T, 3.0)
    y = x.detach() * w + (u > 0)
    gx, gw, gu = T.autograd.grad(y, [x, w, u], allow_unused=True)
    return {"grads": {"x": _value(gx), "w": _value(gw), "u": _value(gu)}}


def t_jacobian_intermediate(T):
    x, y = _leaf(T, 2.0), _leaf(T, [3.0, 1.0])
    h = x * y
    z = T.stack([h[0] ** 2, h[1] * h[0]])
    rows = [T.autograd.grad(z[i], [h, x], retain_graph=True) for i in range(2)]
    return {"jacobian": {"h": [_value(r[0]) for r in rows], "x": [_value(r[1]) for r in rows]}}


def t_hessian_intermediate(T):
    x = _leaf(T, [2.0, 1.0])
    h = x * 3
    z = (h**3).sum() + (x**2).sum()
    (gh,) = T.autograd.grad(z, [h], create_graph=True)
    block = [_value(T.autograd.grad(gh[i], [h], retain_graph=True)[0]) for i in range(2)]
    return {"hessian": {"h": {"h": block}}}


def t_backward_no_grad(T):
    x = _leaf(T, 1.0)
    return _error(lambda: (x > 0).to(T.float64).backward())


def t_retain_frozen(T):
    return _error(lambda: _leaf(T, 1.0, False).retain_grad())


def t_requires_grad_nonleaf(T):
    x = _leaf(T, 1.0)
    return _error(lambda: (x * 2).requires_grad_(False))


#: name -> (gradcli arguments, PyTorch's computation)
LESSONS = {
    "detach": (["backward", "y = x.detach() * x", "x=3"], t_detach),
    "no_grad": (["backward", "z = no_grad(x * 2); y = z * x", "x=3"], t_no_grad),
    "nested": (["backward", "z = no_grad(enable_grad(x * 2)); u = no_grad(x * 5); y = z * x + u", "x=3"], t_nested),
    "set_grad_enabled": (
        [
            "backward",
            "a = set_grad_enabled(False, x * 2); b = set_grad_enabled(True, x ^ 3); y = sum(a * b)",
            "x=[1, 2]",
        ],
        t_set_grad_enabled,
    ),
    "requires_grad_": (["backward", "x.requires_grad_(False); y = x * w", "x=3", "w=2"], t_requires_grad_),
    "freeze": (["backward", "y = x * w", "x=3", "w=2", "--freeze", "x"], t_requires_grad_),
    "accumulate": (
        ["backward", "@samples/accumulate.grad", "w=2", "x=3", "--times", "3", "--retain-graph"],
        t_accumulate,
    ),
    "zero_grad": (
        ["backward", "@samples/accumulate.grad", "w=2", "x=3", "--times", "3", "--retain-graph", "--zero-grad"],
        t_zero_grad,
    ),
    "second_pass": (["backward", "@samples/accumulate.grad", "w=2", "x=3", "--times", "2"], t_second_pass),
    "create_graph_twice": (
        ["backward", "y = w * x + w ^ 2", "w=2", "x=3", "--create-graph", "--times", "2"],
        t_create_graph_twice,
    ),
    "create_graph_once": (["backward", "y = w * x + w ^ 2", "w=2", "x=3", "--create-graph"], t_create_graph_once),
    "create_graph_retained_once": (
        ["backward", "h = w * 3; y = sum(h ^ 2)", "w=[2, 1]", "--retain-grad", "h", "--create-graph"],
        _t_create_graph_retained(1),
    ),
    "create_graph_retained_twice": (
        ["backward", "h = w * 3; y = sum(h ^ 2)", "w=[2, 1]", "--retain-grad", "h", "--create-graph", "--times", "2"],
        _t_create_graph_retained(2),
    ),
    "retain_grad": (["backward", "h = w * x; y = h ^ 2", "w=2", "x=3", "--retain-grad", "h"], t_retain_grad),
    "retain_alias": (["backward", "h = w * x; y = h ^ 2", "w=2", "x=3", "--retain", "h"], t_retain_grad),
    "inputs": (["backward", "h = w * x; y = h ^ 2", "w=2", "x=3", "--inputs", "h,x"], t_inputs),
    "grad_output": (["backward", "y = x ^ 2", "x=[1, 2, 3]", "--grad-output=[1, 0.1, 0.01]"], t_grad_output),
    "grad_intermediate": (["grad", "h = x * y; z = h ^ 2 + x", "x=2", "y=3", "--wrt", "h,x"], t_grad_intermediate),
    "grad_unused": (["grad", "y = x.detach() * w + (u > 0)", "x=1", "w=2", "u=3"], t_grad_unused),
    "jacobian_intermediate": (
        ["jacobian", "h = x * y; z = [h[0] ^ 2, h[1] * h[0]]", "x=2", "y=[3, 1]", "--wrt", "h,x"],
        t_jacobian_intermediate,
    ),
    "hessian_intermediate": (
        ["hessian", "h = x * 3; z = sum(h ^ 3) + sum(x ^ 2)", "x=[2, 1]", "--wrt", "h"],
        t_hessian_intermediate,
    ),
    "backward_no_grad": (["backward", "x > 0", "x=1"], t_backward_no_grad),
    "retain_frozen": (["backward", "y = x * w", "x=1", "w=2", "--freeze", "x", "--retain-grad", "x"], t_retain_frozen),
    "requires_grad_nonleaf": (["backward", "h = x * 2; h.requires_grad_(False)", "x=1"], t_requires_grad_nonleaf),
}
#: lessons where gradcli's engine does not yet match PyTorch: name -> why
KNOWN_GAPS: dict = {}


def torch_answer(name):
    T = pytest.importorskip("torch", reason="torch is not installed: the golden values still run")
    return _jsonable(LESSONS[name][1](T))


def _jsonable(value):
    return json.loads(json.dumps(value))


def gradcli_answer(name, expected):
    """gradcli's answer to lesson ``name``, in the shape of ``expected`` (PyTorch's)."""
    args, _ = LESSONS[name]
    r = gradcli(*args, "--json")
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr, r.stderr
    if "error" in expected:
        assert r.returncode == 2 and r.stdout == "", r.stderr
        return {"error": js(r.stderr)["error"]["message"]}
    assert r.returncode == 0, r.stderr
    data = js(r.stdout)
    if "tensors" in expected:
        rows = {t["name"]: t for t in data["tensors"]}
        return {
            "tensors": {n: {k: rows[n][k] for k in keys} for n, keys in expected["tensors"].items()},
            "warned": [n for n in _warned(data["warnings"]) if n in expected["tensors"]],
        }
    key = next(iter(expected))
    return {key: data[key]}


def _warned(texts) -> list:
    """The tensors whose non-leaf .grad warning gradcli reports ("h and y are not leaves: ...")."""
    for text in texts:
        found = re.match(r"(.*?) (?:is not a leaf|are not leaves):", text)
        if found:
            return re.split(r", | and ", found.group(1))
    return []


def assert_same(got, expected, where=""):
    if isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), f"{where}: {got} != {expected}"
        for k in expected:
            assert_same(got[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{where}: {got} != {expected}"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(got, (int, float)) and math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-12), (
            f"{where}: {got} != {expected}"
        )
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def _golden():
    return json.loads(GOLDEN.read_text(encoding="utf-8"))["lessons"]


def _marks(name):
    gap = KNOWN_GAPS.get(name)
    return [pytest.mark.xfail(strict=True, reason=gap)] if gap else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in LESSONS])
def test_lesson_matches_golden(name):
    expected = _golden()[name]
    assert_same(gradcli_answer(name, expected), expected, name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in LESSONS])
def test_lesson_matches_torch(name):
    expected = torch_answer(name)
    assert_same(gradcli_answer(name, expected), expected, name)


def test_golden_values_are_torch_s():
    pytest.importorskip("torch", reason="torch is not installed")
    golden = _golden()
    assert set(golden) == set(LESSONS), "run scripts/make_lessons_golden.py"
    for name in LESSONS:
        assert_same(golden[name], torch_answer(name), name)


# ------------------------------------------------------------------------------------------------
# 1. grad modes and detach in every output format


@pytest.mark.parametrize(
    "program",
    [
        "no_grad(x * 2)",
        "set_grad_enabled(False, x * 2)",
        "x.detach() * 2",
        "detach(x) * 2",
        "x.requires_grad_(False) * 2",
    ],
)
def test_a_result_without_grad_is_a_leaf_without_grad_fn_in_every_format(program):
    r = gradcli("eval", program, "x=3", "--json")
    data = js(r.stdout)
    assert r.returncode == 0 and data["value"] == 6.0
    assert data["grad_fn"] is None
    backward = ("backward", f"z = {program}; y = z * w", "x=3", "w=2")
    r = gradcli(*backward, "--json")
    z = {t["name"]: t for t in js(r.stdout)["tensors"]}["z"]
    assert (z["requires_grad"], z["is_leaf"], z["grad_fn"], z["grad"]) == (False, True, None, None)
    r = gradcli(*backward, "--format", "table")
    line = next(row for row in r.stdout.splitlines() if row.startswith("│ z "))
    assert [c.strip() for c in line.strip("│").split("│")][3:7] == ["False", "True", "None", "None"]
    r = gradcli(*backward, "--format", "plain")
    assert "z\tnull" in r.stdout.splitlines()


def test_nesting_follows_the_context_managers():
    r = gradcli(
        "backward",
        "a = no_grad(enable_grad(x * 2)); b = enable_grad(no_grad(x * 2)); "
        "c = no_grad(x * enable_grad(x * 2)); y = a + b + c",
        "x=3",
        "--json",
    )
    rows = {t["name"]: t for t in js(r.stdout)["tensors"]}
    assert rows["a"]["grad_fn"] == "MulBackward0" and rows["b"]["grad_fn"] is None
    assert rows["c"]["grad_fn"] is None and rows["x"]["grad"] == 2.0


def test_grad_mode_is_restored_after_an_error_inside_it():
    import gradcli as G
    from gradcli.errors import GradcliError
    from gradcli.language import parse, run

    program = parse("no_grad(x @ x)")
    with pytest.raises(GradcliError, match="shape mismatch"):
        run(program, {"x": G.tensor([1.0, 2.0, 3.0], requires_grad=True).reshape(3, 1)})
    assert G.is_grad_enabled()


@pytest.mark.parametrize(
    "program, message",
    [
        ("no_grad(x, x)", "no_grad(expr) takes one argument"),
        ("set_grad_enabled(x, x)", "set_grad_enabled(mode, expr) takes True or False"),
        ("enable_grad() + x", "enable_grad(expr) takes one argument"),
        ("detatch(x)", "did you mean 'detach'?"),
        ("x.requires_grad_(2)", "requires_grad_ takes True or False"),
    ],
)
def test_misused_grad_modes_are_bad_input(program, message):
    r = gradcli("eval", program, "x=1")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------------------
# 2. backward's options


def test_second_pass_without_retain_graph_is_pytorch_s_error_with_a_hint():
    r = gradcli("backward", "@samples/accumulate.grad", "w=2", "x=3", "--times", "2")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: Trying to backward through the graph a second time")
    assert lines[1].startswith("hint: ") and "--retain-graph" in lines[1]
    r = gradcli("backward", "@samples/accumulate.grad", "w=2", "x=3", "--times", "2", "--json")
    assert "--retain-graph" in js(r.stderr)["error"]["hint"]


def test_a_graph_that_saves_nothing_runs_twice_as_in_pytorch():
    r = gradcli("backward", "y = w + x", "w=2", "x=3", "--times", "2", "--json")
    assert r.returncode == 0 and {t["name"]: t["grad"] for t in js(r.stdout)["tensors"]}["w"] == 2.0


def test_create_graph_shows_the_grad_s_grad_fn_in_the_table():
    r = gradcli(
        "backward",
        "y = w * x + w ^ 2",
        "w=2",
        "x=3",
        "--create-graph",
        "--times",
        "2",
        "--format",
        "table",
        env={"COLUMNS": "100"},
    )
    assert r.returncode == 0 and "grad_fn=<AddBackward0>" in r.stdout
    assert "reference cycle" in r.stdout  # PyTorch's warning about backward(create_graph=True)


def test_retain_grad_and_inputs_name_real_tensors():
    r = gradcli("backward", "y = w * x", "w=2", "x=3", "--retain-grad", "h")
    assert r.returncode == 2 and "--retain-grad h" in r.stderr
    r = gradcli("backward", "y = w * x", "w=2", "x=3", "--inputs", "q")
    assert r.returncode == 2 and "--inputs q" in r.stderr


def test_help_names_the_pytorch_options():
    r = gradcli("backward", "--help")
    for option in ("--retain-graph", "--create-graph", "--retain-grad", "--inputs"):
        assert option in r.stdout
    assert "--retain " not in r.stdout  # the old name works, hidden


# ------------------------------------------------------------------------------------------------
# 4. the non-leaf .grad lesson


def test_non_leaf_grad_reads_none_with_one_footnote_and_no_raw_warning():
    r = gradcli(
        "backward",
        "@samples/accumulate.grad",
        "w=2",
        "x=3",
        "--times",
        "3",
        "--retain-graph",
        "--zero-grad",
        "--format",
        "table",
    )
    assert r.returncode == 0 and r.stderr == ""
    row = next(line for line in r.stdout.splitlines() if line.startswith("│ y "))
    assert row.rstrip("│ ").endswith("None ¹")
    footnotes = [line for line in r.stdout.splitlines() if line.startswith("¹")]
    assert len(footnotes) == 1 and "--retain-grad y" in r.stdout.replace("\n", " ")
    r = gradcli("backward", "@samples/accumulate.grad", "w=2", "x=3", "--json")
    data = js(r.stdout)
    assert {t["name"]: t["grad"] for t in data["tensors"]}["y"] is None
    assert len(data["warnings"]) == 1 and "retain" in data["warnings"][0]
    assert r.stderr == ""
    r = gradcli("backward", "@samples/accumulate.grad", "w=2", "x=3", "--format", "plain")
    assert r.stdout.splitlines()[-1] == "y\tnull"
    assert r.stderr.startswith("warning: y is not a leaf") and ".py" not in r.stderr and "line " not in r.stderr


def test_retained_grads_have_no_warning():
    r = gradcli("backward", "h = w * x; y = h ^ 2", "w=2", "x=3", "--retain-grad", "h,y", "--json")
    data = js(r.stdout)
    assert data["warnings"] == [] and {t["name"]: t["grad"] for t in data["tensors"]} == {
        "w": 36.0,
        "x": 24.0,
        "h": 12.0,
        "y": 1.0,
    }


# ------------------------------------------------------------------------------------------------
# 5. notes that say what is true


def test_frozen_input_note():
    r = gradcli(
        "grad",
        "@samples/frozen_layer.grad",
        "W1=[[1, 0], [0, 1]]",
        "W2=[0.5, -0.5]",
        "x=[1, 2]",
        "--freeze",
        "W1",
        "--json",
    )
    assert r.returncode == 0 and js(r.stdout)["grads"]["W1"] is None
    assert r.stderr.strip() == "note: W1 is frozen (requires_grad=False): no gradient"


def test_leaf_without_grad_fn_graph_note():
    r = gradcli("graph", "x", "x=1")
    assert r.returncode == 0 and "requires_grad=True" in r.stdout and "does not require grad" not in r.stdout


@pytest.mark.parametrize(
    "program, reason",
    [
        ("x > 0", "x > 0 is a comparison: its result does not require grad"),
        ("no_grad(x * 2)", "no_grad(x * 2) is computed under no_grad (requires_grad=False)"),
        ("h = x.detach(); y = h * 2", "x.detach() is detached from the graph (requires_grad=False)"),
        ("y = 2 * x + w", "x is frozen (requires_grad=False); w is frozen (requires_grad=False)"),
    ],
)
def test_output_without_grad_says_why(program, reason):
    r = gradcli("grad", program, "x=1", *(["w=2", "--freeze", "x,w"] if "w" in program else []))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "error: element 0 of tensors does not require grad and does not have a grad_fn",
        f"hint: {reason}",
    ]


def test_unused_input_notes():
    r = gradcli("grad", "y = x.detach() * w + (u > 0)", "x=1", "w=2", "u=3")
    notes = r.stderr.splitlines()
    assert r.returncode == 0 and len(notes) == 2
    assert notes[0].startswith("note: no gradient reaches x: x.detach() is detached from the graph")
    assert notes[1].startswith("note: no gradient reaches u: (u > 0) is a comparison")
    r = gradcli("grad", "y = w * 2 + 0 * v", "w=1", "v=2", "--wrt", "w")
    assert r.stderr == ""


def test_the_output_not_using_an_intermediate():
    r = gradcli("grad", "h = x * 2; y = x * 3", "x=1", "--wrt", "h", "--json")
    assert js(r.stdout)["grads"]["h"] is None and "the output does not use h" in r.stderr


# ------------------------------------------------------------------------------------------------
# 6. the tutorial


def test_tutorial_is_linked_from_the_readme_and_covers_every_lesson():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tutorial = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    assert "(docs/tutorial.md)" in readme
    for word in (
        "requires_grad",
        "is_leaf",
        "retain_grad",
        "grad_fn",
        "--zero-grad",
        "--grad-output",
        "--retain-graph",
        "--create-graph",
        "allow_unused",
        "no_grad",
        "enable_grad",
        "set_grad_enabled",
        "--plugin samples/line_plugin.py",
    ):
        assert word in tutorial, word


@pytest.mark.parametrize("command, expected", examples(TUTORIAL), ids=[c for c, _ in examples(TUTORIAL)])
def test_tutorial_example(command, expected):
    """Each lesson's command prints what the tutorial shows: stderr, then stdout, then ``[exit N]``
    if it fails; tables at 100 columns; trailing spaces on a line do not count."""
    argv = shlex.split(command)
    assert argv[0] == "gradcli"
    code = re.search(r"^\[exit (\d+)\]\n\Z", expected, re.M)
    r = gradcli(*argv[1:], env={"COLUMNS": "100"})
    assert r.returncode == (int(code.group(1)) if code else 0), r.stderr
    shown = expected[: code.start()] if code else expected
    assert [line.rstrip() for line in (r.stderr + r.stdout).splitlines()] == [
        line.rstrip() for line in shown.splitlines()
    ]


def test_functions_lists_grad_modes_and_detach():
    r = gradcli("functions", "--json")
    names = [f["name"] for f in js(r.stdout)["functions"]]
    for name in ("detach", "no_grad", "enable_grad", "set_grad_enabled", "requires_grad_"):
        assert name in names
    r = gradcli("functions", "set_grad_enabled")
    assert r.returncode == 0 and r.stdout.startswith("set_grad_enabled(mode, expr)")


def test_check_says_why_detach_and_no_grad_differ_from_finite_differences():
    r = gradcli("check", "y = no_grad(x * 2) * x + detach(x)", "x=3", "--format", "plain")
    assert r.returncode == 1 and "note: the program uses no_grad and detach" in r.stderr
    r = gradcli("check", "y = x * x", "x=3", "--format", "plain")
    assert r.returncode == 0 and "no_grad" not in r.stderr
