"""``--each FILE|-``: JSON Lines in, JSON Lines out, in order, one error per bad line, streaming,
quiet under ``| head``, memory flat, and batched lines printing exactly what lines run one by
one print."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time

import pytest

from gradcli import commands
from gradcli.each import Stream, elementwise
from gradcli.language import parse
from gradcli.ops import UNARY_OPS

GRADCLI = [sys.executable, "-m", "gradcli"]


def cli(*args, stdin=None):
    return subprocess.run(GRADCLI + list(args), input=stdin, capture_output=True, text=True, timeout=120, check=False)


def stream(command, program, lines, batch=True, values=(), **kwargs):
    """Run a Stream in-process; (exit code, output lines, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    s = Stream(
        command,
        commands.Inputs(program=program, values=list(values), freeze=kwargs.pop("freeze", [])),
        kwargs,
        out=out,
        err=err,
    )
    if not batch:
        s.batchable = False
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"each-{os.getpid()}-{random.random()}.jsonl")
    with open(path, "w") as f:
        f.write("".join(json.dumps(line) + "\n" if not isinstance(line, str) else line + "\n" for line in lines))
    try:
        code = s.run(path)
    finally:
        os.unlink(path)
    return code, out.getvalue().splitlines(), err.getvalue()


def test_order_errors_and_exit_code():
    lines = [
        '{"w": 2, "x": 3, "b": 1}',
        "not json",
        '{"w": 2}',
        "",
        "[1, 2]",
        '{"w": 2, "x": 3, "b": 1, "q": 0}',
        '{"w": 1, "x": [1, 2], "b": 0}',
        '{"w": "2 * 3", "x": 1, "b": 0}',
        '{"w": 0.5, "x": 4, "b": "Infinity"}',
    ]
    text = "".join(line + "\n" for line in lines)
    proc = cli("grad", "w*x+b", "--each", "-", stdin=text)
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 8  # the blank line gives nothing
    assert out[0]["grads"] == {"w": 3.0, "x": 2.0, "b": 1.0} and out[0]["value"] == 7.0
    assert set(out[0]) == {"program", "value", "shape", "dtype", "grad_fn", "grads"}
    errors = {i: o["error"] for i, o in enumerate(out) if "error" in o}
    assert sorted(errors) == [1, 2, 3, 4, 5]
    assert [errors[i]["input_line"] for i in sorted(errors)] == [2, 3, 5, 6, 7]
    assert errors[2]["kind"] == "value" and "missing" in errors[2]["message"]
    assert "unknown input 'q'" in errors[4]["message"]
    assert "scalar outputs" in errors[5]["message"]
    assert out[6]["value"] == 6.0 and out[6]["grads"]["w"] == 1.0  # a VALUE text
    assert out[7]["value"] == "Infinity"
    assert "Traceback" not in proc.stderr


def test_all_lines_good_exit_zero_and_same_keys_as_json():
    lines = "".join(json.dumps({"x": v}) + "\n" for v in (0.5, 1.5, -2.0))
    for command, extra in (
        ("eval", []),
        ("grad", []),
        ("backward", []),
        ("jacobian", []),
        ("hessian", []),
        ("diff", ["--order", "2"]),
        ("graph", []),
        ("check", []),
        ("explain", []),
    ):
        proc = cli(command, "sin(x) * x", "--each", "-", *extra, stdin=lines)
        assert proc.returncode == 0, (command, proc.stderr)
        got = proc.stdout.splitlines()
        assert len(got) == 3
        single = cli(command, "sin(x) * x", "x=1.5", "--json", *extra)
        assert json.loads(got[1]) == json.loads(single.stdout), command


def _random_lines(rng, count, shapes):
    lines = []
    for _ in range(count):
        line = {}
        for name, shape in shapes.items():
            size = 1
            for s in shape:
                size *= s
            values = [rng.choice([rng.uniform(-3, 3), rng.uniform(0.1, 2), 0.0]) for _ in range(size)]
            import numpy as np

            line[name] = np.array(values).reshape(shape).tolist() if shape else values[0]
        lines.append(line)
    return lines


@pytest.mark.parametrize(
    "program, shapes, kwargs",
    [
        ("w*x+b", {"w": (), "x": (), "b": ()}, {}),
        ("tanh(w*x+b) ^ 2 - sqrt(abs(x)) / (1 + exp(-w))", {"w": (), "x": (3,), "b": ()}, {"grad_output": "ones"}),
        (
            "where(x > 0, log1p(x*x), sin(x)) * maximum(w, 0.5) + clamp(x, min=-1, max=1)",
            {"w": (2, 1), "x": (3,)},
            {"grad_output": "ones"},
        ),
        ("h = w * [1, 2, 3]; h * x + pi", {"w": (), "x": ()}, {"grad_output": "[1, 0.5, -1]"}),
        ("x ^ 2.5 + 2 ^ x - x ^ -1", {"x": ()}, {}),  # runs line by line (pow)
        ("x ^ 2 * 3 - x ^ 1", {"x": ()}, {}),
        ("w*x+b", {"w": (), "x": ()}, {"wrt": ["x"]}),
    ],
)
@pytest.mark.parametrize("command", ["grad", "evaluate"])
def test_batched_lines_print_what_single_lines_print(program, shapes, kwargs, command):
    rng = random.Random(hash((program, command)) & 0xFFFF)
    lines = _random_lines(rng, 60, shapes)
    values = ["b=0.25"] if "b" not in shapes and "b" in program else []
    if command == "evaluate":
        kwargs = {}
    fn = getattr(commands, command)
    code1, batched, _ = stream(fn, program, lines, True, values=values, **dict(kwargs))
    code2, single, _ = stream(fn, program, lines, False, values=values, **dict(kwargs))
    assert code1 == code2 == 0
    assert batched == single


def test_batching_breaks_at_a_new_shape_and_at_errors():
    lines = [
        {"x": 1.0, "w": 2.0},
        {"x": 2.0, "w": 3.0},
        {"x": [1.0, 2.0], "w": 1.0},
        {"x": [3.0, 4.0], "w": 1.0},
        "oops",
        {"x": 5.0, "w": [1.0, 2.0, 3.0]},
        {"x": [1.0, 2.0], "w": [1.0, 2.0, 3.0]},
        {"x": 1.0, "w": 1.0},
        {"x": "NaN", "w": 1.0},
    ]
    got1 = stream(commands.grad, "x * w", lines, True, grad_output="ones")
    got2 = stream(commands.grad, "x * w", lines, False, grad_output="ones")
    assert got1 == got2
    code, out, _ = got1
    assert code == 1
    assert ["error" in json.loads(o) for o in out] == [False, False, False, False, True, False, True, False, False]


FUNCTIONS = sorted(UNARY_OPS) + ["square"]  # every elementwise function of the table


@pytest.mark.parametrize(
    "program",
    [f"{f}(x) * y" for f in FUNCTIONS]
    + [
        "atan2(x, y)",
        "maximum(x, y)",
        "minimum(x, y)",
        "x / y - y",
        "clamp(x, min=-0.5, max=0.5) + y",
        "where(x > y, x, y)",
        "x ^ 2 + y",
    ],
)
def test_every_batched_function_gives_the_same_bits(program):
    rng = random.Random(program)
    lines = [
        {"x": rng.choice([rng.uniform(-3, 3), rng.uniform(0, 1.5), 0.0, 1.0, -1.0]), "y": rng.uniform(-3, 3)}
        for _ in range(400)
    ]
    assert elementwise(parse(program))
    for command in (commands.grad, commands.evaluate):
        assert stream(command, program, lines, True) == stream(command, program, lines, False)


def test_freeze_and_frozen_notes_once():
    code, out, err = stream(commands.grad, "w*x", [{"w": 1.0, "x": float(i)} for i in range(50)], freeze=["w"])
    assert code == 0 and len(out) == 50
    assert json.loads(out[7])["grads"] == {"w": None, "x": 1.0}
    assert err.count("note:") == 1


def test_elementwise_detection():
    assert elementwise(parse("tanh(w*x+b) + [1, -2] * x ^ 2"))
    for text in ("sum(x)", "x @ y", "x[0]", "x.T", "[x, y]", "mean(x * 2)", "x ^ 3", "2 ^ x", "x ^ y"):
        assert not elementwise(parse(text)), text


def test_streaming_first_result_before_input_ends():
    proc = subprocess.Popen(
        GRADCLI + ["grad", "w*x+b", "--each", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        proc.stdin.write('{"w": 2, "x": 3, "b": 1}\n')
        proc.stdin.flush()
        first = proc.stdout.readline()  # stdin is still open
        assert json.loads(first)["value"] == 7.0
        proc.stdin.write('{"w": 1, "x": 1, "b": 1}\n')
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["value"] == 2.0
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_head_stops_quietly(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"x": i * 0.001}) + "\n" for i in range(200_000)))
    script = f"{' '.join(GRADCLI)} grad 'sum(x * [1, 2])' --each {path} | head -n 3; echo \"rc=${{PIPESTATUS[0]}}\" >&2"
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert len(proc.stdout.splitlines()) == 3
    assert proc.stderr.strip() == "rc=0", proc.stderr
    assert time.perf_counter() - start < 60


def _maxrss(args, path):
    code = (
        "import resource, subprocess, sys\n"
        f"subprocess.run({GRADCLI + args + ['--each', str(path)]!r}, stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize(
    "args, small, large",
    [
        (["grad", "w*x+b"], 10_000, 100_000),  # batched
        (["grad", "sum(w*x)+b"], 2_000, 20_000),  # line by line
    ],
)
def test_memory_does_not_grow_with_lines(tmp_path, args, small, large):
    rss = []
    for count in (small, large):
        path = tmp_path / f"{count}.jsonl"
        path.write_text("".join(json.dumps({"w": i * 1e-3, "x": 2.0, "b": 1.0}) + "\n" for i in range(count)))
        rss.append(_maxrss(args, path))
    assert rss[1] - rss[0] < 16 * 1024, rss  # KiB: ten times the lines, not ten times the memory


def test_each_file_errors():
    proc = cli("grad", "w*x", "--each", "/no/such/file.jsonl")
    assert proc.returncode == 2 and "cannot read --each file" in proc.stderr
    proc = cli("grad", "-", "--each", "-", stdin="w*x")
    assert proc.returncode == 2 and "--each -" in proc.stderr


def test_byte_order_mark_crlf_and_no_final_newline():
    proc = cli("eval", "x * 2", "--each", "-", stdin='\ufeff{"x": 1}\r\n{"x": 2}\r\n{"x": 3}')
    assert proc.returncode == 0, proc.stdout
    assert [json.loads(line)["value"] for line in proc.stdout.splitlines()] == [2.0, 4.0, 6.0]
