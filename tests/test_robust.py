"""Issue 13: users' mistakes are exit 2 with one clear line (never a traceback, never 70), limits
are checked before work or allocation, output-stream failures and Ctrl-C exit quietly with their
documented codes, and non-finite numbers are found on request (--detect-anomaly, --strict).

Everything runs through the real entry point: a subprocess of ``python -m gradcli``.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("GRADCLI_MAX_ELEMENTS", None)
ENV.pop("GRADCLI_DEBUG", None)


def gradcli(*args, input=None, env=None, cwd=None, timeout=60, **popen):
    environment = dict(ENV, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "gradcli", *map(str, args)],
        capture_output=True,
        text=True,
        input=input,
        env=environment,
        cwd=cwd or ROOT,
        timeout=timeout,
        **popen,
    )


def user_error(r, code=2, words=()):
    """Exit ``code``, nothing on stdout, and one ``error:`` line first on stderr (an excerpt of the
    program may follow it), no traceback and no "internal error"."""
    assert r.returncode == code, (r.returncode, r.stdout[:500], r.stderr[:2000])
    assert r.stdout == "", r.stdout[:500]
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[:2000]
    first = r.stderr.splitlines()[0]
    assert first.startswith("error:"), r.stderr[:2000]
    assert len(r.stderr) < 3000, r.stderr[:3000]
    for word in words:
        assert word.lower() in r.stderr.lower(), (word, r.stderr[:2000])
    return first


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from numpy.lib import format as npformat

    folder = tmp_path_factory.mktemp("robust")
    (folder / "deep.json").write_text('{"x": ' + "[" * 100_000 + "1" + "]" * 100_000 + "}")
    (folder / "bigint.json").write_text('{"x": ' + "9" * 400 + "}")
    (folder / "notzip.npz").write_text("hello")
    (folder / "empty.txt").write_text("")
    (folder / "bad.npy").write_text("not an array")
    with open(folder / "huge.npy", "wb") as handle:
        npformat.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    import io
    import zipfile

    header = io.BytesIO()
    npformat.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue())
    np.save(folder / "small.npy", np.arange(3.0))
    (folder / "folder").mkdir()
    os.mkfifo(folder / "fifo")
    os.symlink(folder / "loop", folder / "loop")
    (folder / "bad_backward.py").write_text(
        "from gradcli.autograd import Function\n"
        "class bad(Function):\n"
        "    @staticmethod\n"
        "    def forward(ctx, x):\n"
        "        return x * 2\n"
        "    @staticmethod\n"
        "    def backward(ctx, g):\n"
        "        raise ZeroDivisionError('oops')\n"
    )
    (folder / "big.grad").write_text("x + " * 10 + "x")
    return folder


# -- deliverable 2: every user mistake is exit 2, one line -------------------------------------


def test_zero_to_the_x_has_pytorchs_gradient():
    r = gradcli("grad", "0^x", "x=0", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["grads"]["x"] == 0.0  # torch: 0 (0 * log(0) masked)


def test_negative_base_gives_nan_not_a_crash():
    r = gradcli("grad", "(-2)^x", "x=2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["grads"]["x"] == "NaN"


@pytest.mark.parametrize(
    "args, words",
    [
        (("eval", "x", "x=[[1,2],[3]]"), ["ragged"]),
        (("eval", "[[1, 2], [3]]"), ["ragged"]),
        (("eval", "rand(2)", "--seed", "-1"), ["--seed"]),
        (("eval", "1", "--precision", "-1"), ["--precision"]),
        (("eval", "1 + " + "9" * 4301), ["too large"]),
        (("eval", "x", "x=nan"), ["0/0"]),
        (("eval", "ones(2, device=1)"), ["device"]),
        (("diff", "tanh(x)", "x=0.3", "--order", "0"), ["at least 1"]),
    ],
)
def test_user_mistakes_are_one_line_exit_2(args, words):
    line = user_error(gradcli(*args), words=words)
    assert "shape mismatch" not in line or "ragged" in words


def test_value_errors_are_not_all_shape_mismatches():
    line = user_error(gradcli("eval", "ones(1e30)"), words=["limit"])
    assert "shape mismatch" not in line


@pytest.mark.parametrize(
    "option, name, words",
    [
        ("--values", "deep.json", ["nested too deeply"]),
        ("--values", "bigint.json", ["too large"]),
        ("--values", "notzip.npz", ["not a .npz archive"]),
        ("x=@", "huge.npy", ["10,000,000,000", "74.5 GiB", "--max-elements"]),
        ("--values", "huge.npz", ["10,000,000,000", "74.5 GiB"]),
        ("x=@", "bad.npy", ["not a valid .npy"]),
        ("x=@", "empty.txt", ["no numbers"]),
        ("x=@", "folder", ["directory"]),
        ("x=@", "loop", ["symbolic link loop"]),
        ("x=@", "missing.npy", ["no such file"]),
    ],
)
def test_bad_files_are_one_line_exit_2(files, option, name, words):
    args = ("--values", str(files / name)) if option == "--values" else (f"x=@{files / name}",)
    start = time.monotonic()
    user_error(gradcli("eval", "x", *args, timeout=30), words=words)
    assert time.monotonic() - start < 20


def test_no_numpy_warning_leaks(files):
    r = gradcli("eval", "std(x)", "x=[1]")
    assert r.returncode == 0
    assert "Warning" not in r.stderr and "numpy" not in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_in_a_folder_without_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    np.save(locked / "x.npy", np.ones(2))
    locked.chmod(0)
    try:
        user_error(gradcli("eval", "x", f"x=@{locked / 'x.npy'}"), words=["permission denied"])
    finally:
        locked.chmod(0o700)


# -- the program: only regular files, bounded size -----------------------------------------


@pytest.mark.parametrize(
    "name, words",
    [
        ("folder", ["directory"]),
        ("fifo", ["FIFO", "standard input"]),
        ("loop", ["symbolic link loop"]),
        ("missing.grad", ["no such file"]),
    ],
)
def test_program_files_must_be_regular(files, name, words):
    user_error(gradcli("eval", f"@{files / name}", "x=1", timeout=30), words=words)


def test_program_from_a_device_is_refused():
    user_error(gradcli("eval", "@/dev/null"), words=["device"])
    user_error(gradcli("eval", "@/dev/zero", timeout=30), words=["device"])


def test_program_size_is_bounded(files):
    r = gradcli("eval", f"@{files / 'big.grad'}", "x=1", env={"GRADCLI_MAX_PROGRAM_SIZE": "20"})
    user_error(r, words=["larger than", "GRADCLI_MAX_PROGRAM_SIZE"])
    r = gradcli("eval", "-", "x=1", input="x + " * 10 + "x", env={"GRADCLI_MAX_PROGRAM_SIZE": "20"})
    user_error(r, words=["standard input", "larger than"])
    assert gradcli("eval", f"@{files / 'big.grad'}", "x=1").returncode == 0


def test_endless_standard_input_stops_at_the_limit():
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        r = gradcli("eval", "-", stdin=yes.stdout, env={"GRADCLI_MAX_PROGRAM_SIZE": "1000000"}, timeout=30)
    finally:
        yes.kill()
        yes.wait()
    user_error(r, words=["larger than"])


def test_program_not_utf8(tmp_path):
    (tmp_path / "p.grad").write_bytes(b"x * \xff")
    user_error(gradcli("eval", f"@{tmp_path / 'p.grad'}", "x=1"), code=2, words=["UTF-8"])


def test_huge_identifier_gives_a_short_message(tmp_path):
    (tmp_path / "p.grad").write_text("y" * 2_000_000)
    r = gradcli("eval", f"@{tmp_path / 'p.grad'}")
    user_error(r)


def test_escape_sequences_never_reach_the_terminal(tmp_path):
    (tmp_path / "p.grad").write_text("# \x1b]0;pwned\x07\x1b[2J\nx +* 1")
    r = gradcli("eval", f"@{tmp_path / 'p.grad'}", "x=1")
    user_error(r)
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr


# -- deliverable 3: limits before allocation ---------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [
        "zeros(30000, 30000)",
        "ones(1e30)",
        "randn(100000, 100000)",
        "eye(20000)",
        "arange(0, 1e12)",
        "linspace(0, 1, 1e10)",
    ],
)
def test_constructors_over_the_limit(program):
    start = time.monotonic()
    user_error(gradcli("eval", program), words=["numbers", "--max-elements"])
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("program", ["outer(x, x)", "x + x.T", "sum(x.T @ x)"])
def test_results_of_two_operands_over_the_limit(program):
    start = time.monotonic()
    user_error(gradcli("eval", program, "x=ones(1, 20000)"), words=["400,000,000 numbers", "3.0 GiB"])
    assert time.monotonic() - start < 20


def test_each_keeps_the_element_limit():
    r = gradcli("eval", "x * ones(200)", "--each", "-", "--max-elements", "100", input='{"x": 1}\n')
    assert r.returncode == 1 and "limit of 100" in r.stdout


def test_max_elements_from_the_environment():
    user_error(gradcli("eval", "zeros(10, 10)", env={"GRADCLI_MAX_ELEMENTS": "50"}), words=["100 numbers"])
    assert gradcli("eval", "zeros(5, 5)", env={"GRADCLI_MAX_ELEMENTS": "50"}).returncode == 0
    user_error(gradcli("eval", "1", env={"GRADCLI_MAX_ELEMENTS": "lots"}), words=["GRADCLI_MAX_ELEMENTS"])


def test_hessian_intermediates_are_estimated_before_work():
    start = time.monotonic()
    first = user_error(gradcli("hessian", "sum(outer(x, x))", "x=ones(7000)"), words=["Hessian", "TiB"])
    assert "343,000,000,000" in first
    assert time.monotonic() - start < 20


def test_jacobian_and_check_sizes():
    user_error(gradcli("jacobian", "outer(x, x)", "x=ones(600)"), words=["Jacobian", "216,000,000"])
    user_error(gradcli("check", "outer(x, x)", "x=ones(600)"), words=["check"])


def test_diff_order_is_bounded_and_explained():
    start = time.monotonic()
    user_error(gradcli("diff", "sum(sin(x))", "x=[1, 2]", "--wrt", "x", "--order", "1000000"), words=["grow"])
    user_error(gradcli("diff", "tanh(x)", "x=0.3", "--order", "30", timeout=60), words=["doubles"])
    assert time.monotonic() - start < 40
    r = gradcli("diff", "sin(x)", "x=0", "--order", "20", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["derivative"] == 0.0


def test_deeply_nested_array_literals_are_quick():
    for inner in ("1", "x"):
        text = "[" * 100_000 + inner + "]" * 100_000
        start = time.monotonic()
        r = gradcli("eval", text if len(text) < 100_000 else "-", "x=1", input=text, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "RecursionError" not in r.stderr, r.stderr[-500:]
        assert time.monotonic() - start < 30
    text = "[" * 60 + "x" + "]" * 60
    r = gradcli("eval", text, "x=2", "--json")
    assert r.returncode == 0 and np.asarray(json.loads(r.stdout)["value"]).shape == (1,) * 60


# -- output streams and Ctrl-C ---------------------------------------------------------------


def shell(command, timeout=60):
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=timeout)


PY = f'"{sys.executable}" -m gradcli'


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"])
@pytest.mark.parametrize("args", ['eval "1+1"', 'grad "x*y" x=2 y=3 --json', "--help", 'eval "1+"'])
def test_stdout_closed_or_full_exits_74(redirect, args):
    r = shell(f"{PY} {args} {redirect}")
    if args == 'eval "1+"' and redirect == ">/dev/full":
        assert r.returncode == 2  # the error goes to stderr, which works
    else:
        assert r.returncode == 74, (r.returncode, r.stderr)
        assert "cannot write the output" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


@pytest.mark.parametrize("redirect", ["2>&-", "2>/dev/full"])
def test_stderr_closed_or_full_keeps_the_exit_code(redirect):
    r = shell(f"{PY} eval '1+' {redirect}")
    assert r.returncode == 2 and r.stdout == ""  # never the error on stdout, never exit 1
    r = shell(f"{PY} check 'sum(x^2)' 'x=[1, 2]' {redirect}")
    assert r.returncode == 0 and r.stdout.startswith("ok")
    r = shell(f"{PY} eval 'log(x)' x=0 {redirect}")  # a note that cannot be written
    assert r.returncode == 0 and "Infinity" in r.stdout


def test_both_streams_broken():
    r = shell(f"{PY} eval '1+1' 2>&- >/dev/full")
    assert r.returncode == 74


def test_standard_input_closed():
    r = shell(f"{PY} eval - <&-")
    user_error(r, words=["standard input", "closed"])


def test_broken_pipe_stays_quiet():
    r = shell(f"{PY} eval 'ones(200000)' | head -c 10 >/dev/null; exit ${{PIPESTATUS[0]}}")
    assert r.returncode == 0 and "Traceback" not in r.stderr


def _numpy_loading(pid) -> bool:
    try:
        return "numpy" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the start-up")
@pytest.mark.parametrize("delay", [0.0, 0.002, 0.01, 0.05, 0.15, 0.6])
@pytest.mark.parametrize(
    "args",
    [
        ("jacobian", "tanh(x @ x)", "x=randn(45, 45)"),  # importing, then computing
        ("eval", "-"),
    ],
)  # waiting for its input
def test_ctrl_c_at_any_moment_exits_130_quietly(delay, args):
    """From the moment gradcli's package starts importing (numpy's libraries appear in the process:
    the package has installed its quiet Ctrl-C first) to the end.  Before that, Python itself is
    still starting (site, .pth files): no program's code runs yet."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gradcli", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while not _numpy_loading(process.pid) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    # communicate, not wait: a run the signal missed writes a large result, and a pipe nobody
    # reads would block it forever
    out, err = (stream.decode() for stream in process.communicate(timeout=60))
    if process.returncode == 0 and args[0] == "jacobian":
        return  # it finished before the signal: nothing to interrupt
    # a Ctrl-C that lands while Python is shutting down ends the process by SIGINT itself, which a
    # shell reports as 130 too
    assert process.returncode in (130, -signal.SIGINT), (process.returncode, err[-2000:])
    assert "Traceback" not in err and out == "", err[-2000:]


# -- deliverable 2: errors the engine or a plugin raises ------------------------------------


def test_plugin_whose_backward_raises(files):
    user_error(
        gradcli("grad", "bad(x)", "x=1", "--plugin", files / "bad_backward.py"),
        words=["plugin", "ZeroDivisionError", "oops"],
    )


def test_singular_matrix_in_backward():
    user_error(gradcli("grad", "det(x)", "x=[[1, 2], [2, 4]]"), words=["singular"])


# -- deliverable 4: non-finite numbers on request --------------------------------------------


def test_max_elements_option():
    user_error(gradcli("eval", "zeros(10, 10)", "--max-elements", "50"), words=["100 numbers", "limit of 50"])
    assert gradcli("eval", "zeros(10, 10)", "--max-elements", "100").returncode == 0
    user_error(gradcli("eval", "1", "--max-elements", "0"), words=["--max-elements"])


@pytest.mark.parametrize(
    "args, op, caret",
    [
        (("eval", "y = x + 1; log(y - 1)", "x=0"), "log produced infinity (forward)", "^^^^^^^^^^"),
        (("grad", "sqrt(x)", "x=0"), "SqrtBackward0", "^^^^^^^"),
        (("grad", "sum(x / (x - 1))", "x=[1, 2]"), "div ('/') produced infinity", "^^^^^^^^^^^"),
        (("hessian", "sum(sqrt(x))", "x=[0, 1]"), "SqrtBackward0", "^^^^^^^"),
        (("eval", "x * 2", "x=1/0"), "input 'x' holds infinity", "^"),
    ],
)
def test_detect_anomaly_names_the_operation_and_underlines_it(args, op, caret):
    r = gradcli(*args, "--detect-anomaly")
    user_error(r, code=1, words=[op])
    assert r.stderr.splitlines()[-1].strip() == caret, r.stderr


def test_detect_anomaly_passes_finite_programs():
    r = gradcli("grad", "sum(tanh(x) ^ 2)", "x=[0.5, -1]", "--detect-anomaly", "--json")
    assert r.returncode == 0 and r.stderr == ""


def test_strict_fails_on_a_non_finite_answer():
    r = gradcli("grad", "sqrt(x)", "x=0", "--strict", "--json")
    assert r.returncode == 1 and r.stdout == ""
    error = json.loads(r.stderr)["error"]
    assert error["kind"] == "nonfinite" and "gradient for 'x'" in error["message"] and error["column"] == 1
    r = gradcli("eval", "log(x)", "x=[1, 2]", "--strict")
    assert r.returncode == 0 and r.stderr == ""


def test_without_flags_inf_and_nan_are_values_with_one_note():
    r = gradcli("eval", "a = exp(x); a - a", "x=1000", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["value"] == "NaN"
    notes = r.stderr.splitlines()
    assert len(notes) == 1 and notes[0].startswith("note: the output holds NaN")
    assert "exp produced infinity" in notes[0] and "column 5" in notes[0]


def test_the_note_finds_the_same_random_numbers():
    for _ in range(3):
        r = gradcli("eval", "x = rand(50); log(x - 0.5)")
        assert r.returncode == 0 and "log produced NaN" in r.stderr, r.stderr
