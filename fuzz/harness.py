"""Random command lines for gradcli, and one in-process run of the real entry point.

``Case`` is a command line (argv, standard input, environment); ``generate(rng, files)`` makes
one from a ``random.Random``: random programs of the language, token soups, values (numbers,
lists, ragged lists, constructors, files), files (good, bad, huge headers, random bytes) and
option combinations.  ``run(case)`` calls ``gradcli.cli.main`` in this process with its own
stdin/stdout/stderr and returns the outcome; ``verdict(outcome)`` says what is wrong with it
(None: a result or a gradcli error with exit 1 or 2, as SPEC §5 wants).

Used by ``tests/test_fuzz.py`` (hypothesis) and ``fuzz/run.py`` (10^5 inputs).
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

NAMES = ("x", "y", "W", "b", "h")
NUMBERS = ("0", "1", "2", "3", "2.5", ".5", "1e-3", "-1", "1e308", "1e400", "0/0", "1/0", "-0.0", "7", "100")
UNARY = (
    "abs",
    "sign",
    "sqrt",
    "rsqrt",
    "square",
    "reciprocal",
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "sigmoid",
    "relu",
    "softplus",
    "erf",
    "sum",
    "mean",
    "prod",
    "amax",
    "amin",
    "max",
    "min",
    "norm",
    "logsumexp",
    "var",
    "std",
    "trace",
    "det",
    "inv",
    "diag",
    "flatten",
    "squeeze",
    "softmax",
    "log_softmax",
    "detach",
    "no_grad",
    "enable_grad",
    "numel",
    "ones_like",
    "unsqueeze",
    "transpose",
    "neg",
)
BINARY = (
    "pow",
    "atan2",
    "maximum",
    "minimum",
    "matmul",
    "dot",
    "outer",
    "add",
    "sub",
    "mul",
    "div",
    "reshape",
    "expand_as",
    "reshape_as",
    "select",
    "unreduce",
    "set_grad_enabled",
)
OPERATORS = ("+", "-", "*", "/", "@", "^", "**", "<", "<=", ">", ">=", "==", "!=")
CONSTRUCTORS = ("zeros", "ones", "rand", "randn", "eye", "arange", "linspace")
KWARGS = (
    "dim=0",
    "dim=-1",
    "dim=1",
    "dim=5",
    "axis=0",
    "keepdim=True",
    "keepdim=false",
    "p=2",
    "p=1",
    "min=0",
    "max=1",
    "dtype=1",
    "bogus=3",
    "dim=[0, 1]",
    "dim=x",
)
TOKENS = (
    "x",
    "y",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "\n",
    "=",
    ".",
    ":",
    "#",
    "sum",
    "tanh",
    "T",
    "@",
    "^",
    "**",
    "+",
    "-",
    "*",
    "/",
    "<",
    "==",
    "1",
    "2.5",
    "1e",
    "e",
    "pi",
    "True",
    "dim",
    "keepdim",
    "x.sum()",
    " ",
    "\t",
    "'",
    '"',
    "\\",
    "$",
    "\x00",
    "\x1b[2J",
    "\ufeff",
    "é",
    "𝑥",
    "--",
    "@x",
    "-",
    "9" * 30,
)
COMMANDS = ("eval", "grad", "backward", "jacobian", "hessian", "diff", "graph", "check")


@dataclass
class Case:
    argv: list
    stdin: bytes = b""
    env: dict = field(default_factory=dict)

    def shell(self) -> str:
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + "gradcli " + " ".join(shlex.quote(a) for a in self.argv)


@dataclass
class Outcome:
    code: object
    stdout: str
    stderr: str
    crash: str | None = None  # a traceback that escaped main()
    hang: bool = False


# -- programs -----------------------------------------------------------------------------------


def expression(rng: random.Random, depth: int = 3) -> str:
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(NAMES[:3] if rng.random() < 0.8 else NAMES) if rng.random() < 0.6 else rng.choice(NUMBERS)
    kind = rng.random()
    sub = lambda: expression(rng, depth - 1)  # noqa: E731
    if kind < 0.25:
        return f"{sub()} {rng.choice(OPERATORS)} {sub()}"
    if kind < 0.45:
        extra = f", {rng.choice(KWARGS)}" if rng.random() < 0.3 else ""
        return f"{rng.choice(UNARY)}({sub()}{extra})"
    if kind < 0.55:
        return f"{rng.choice(BINARY)}({sub()}, {sub()})"
    if kind < 0.62:
        sizes = ", ".join(
            rng.choice(("0", "1", "2", "3", "4", "-1", "2.5", "1e9", "x")) for _ in range(rng.randint(0, 3))
        )
        return f"{rng.choice(CONSTRUCTORS)}({sizes})"
    if kind < 0.70:
        return f"[{', '.join(sub() for _ in range(rng.randint(0, 3)))}]"
    if kind < 0.78:
        index = rng.choice(("0", "-1", "1:3", ":, 0", "::2", "[0, 1]", "x > 0", "5", "0.5", "x", "...", ":"))
        return f"{sub()}[{index}]"
    if kind < 0.84:
        return (
            f"{sub()}.{rng.choice(('T', 'sum()', 'sum(dim=0)', 'detach()', 'requires_grad_(False)', 'mean(1)', 'foo'))}"
        )
    if kind < 0.88:
        return f"-{sub()}"
    if kind < 0.92:
        return f"where({sub()} > 0, {sub()}, {sub()})"
    if kind < 0.96:
        return f"{rng.choice(('stack', 'cat'))}([{sub()}, {sub()}]{rng.choice(('', ', 0', ', dim=1', ', 5'))})"
    return f"clamp({sub()}, min={rng.choice(NUMBERS)})"


ELEMENTWISE = (
    "abs",
    "sqrt",
    "square",
    "exp",
    "log",
    "log1p",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "softplus",
    "erf",
    "atan",
    "asinh",
    "reciprocal",
    "rsqrt",
    "expm1",
)


def sane_expression(rng: random.Random, depth: int = 3) -> str:
    """Mostly well-formed: x and y of one shape, elementwise functions, operators, numbers."""
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(("x", "y", "x", "y", rng.choice(NUMBERS[:8])))
    sub = lambda: sane_expression(rng, depth - 1)  # noqa: E731
    kind = rng.random()
    if kind < 0.45:
        return f"({sub()} {rng.choice(('+', '-', '*', '/', '^'))} {sub()})"
    if kind < 0.85:
        return f"{rng.choice(ELEMENTWISE)}({sub()})"
    if kind < 0.92:
        return f"maximum({sub()}, {sub()})"
    return f"where({sub()} > 0, {sub()}, {sub()})"


def sane_case(rng: random.Random) -> "Case":
    command = rng.choice(COMMANDS)
    body = sane_expression(rng, rng.randint(1, 4))
    scalar_out = command in ("grad", "hessian", "backward", "check") or rng.random() < 0.5
    text = f"h = {body}; sum(h)" if scalar_out and rng.random() < 0.5 else (f"sum({body})" if scalar_out else body)
    shape = rng.choice(((), (2,), (3,)))

    def val():
        numbers = [rng.choice(("0.5", "-1.5", "2", "0", "1e-3", "3", "-0.25", "10")) for _ in range(max(1, sum(shape)))]
        return numbers[0] if not shape else "[" + ", ".join(numbers[: shape[0]]) + "]"

    import re

    used = [n for n in ("x", "y") if re.search(rf"\b{n}\b", text)]
    argv = [command, text] + [f"{n}={val()}" for n in used]
    if command in ("diff", "grad", "jacobian", "hessian", "check") and "x" not in used:
        argv[1] = text = f"{text} + x" if not scalar_out else f"{text} + sum(x)"
        argv.append(f"x={val()}")
    if command in ("grad", "jacobian", "hessian", "check") and rng.random() < 0.3:
        argv += ["--wrt", rng.choice(("x", "y", "x,y"))]
    if command == "diff":
        argv += (
            ["--wrt", rng.choice(("x", "x,y", "x,x", "y,x,x"))]
            if rng.random() < 0.6
            else ["--wrt", "x", "--order", str(rng.randint(1, 8))]
        )
    if command == "check" and rng.random() < 0.3:
        argv += ["--order", "2"]
    for flag, p in (("--json", 0.3), ("--strict", 0.15), ("--detect-anomaly", 0.15)):
        if rng.random() < p:
            argv.append(flag)
    if rng.random() < 0.1:
        argv += ["--dtype", "float32"]
    if rng.random() < 0.1 and "--json" not in argv:
        argv += ["--format", rng.choice(("plain", "table", "json"))]
    return Case(argv)


def program(rng: random.Random) -> str:
    statements = []
    for _ in range(rng.randint(1, 3)):
        e = expression(rng, rng.randint(1, 4))
        statements.append(f"{rng.choice(('h', 'z', 'y', 'pi', 'sum'))} = {e}" if rng.random() < 0.3 else e)
    text = rng.choice(("; ", "\n", ";\n")).join(statements)
    if rng.random() < 0.1:
        text = "# a comment\n" + text + "  # trailing"
    return text


def token_soup(rng: random.Random) -> str:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 25)))


def mutate(rng: random.Random, text: str) -> str:
    if not text:
        return text
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        if not chars:
            break
        i = rng.randrange(len(chars))
        action = rng.random()
        if action < 0.4:
            del chars[i]
        elif action < 0.8:
            chars.insert(i, rng.choice(TOKENS))
        else:
            chars[i] = rng.choice("()[],;=.:^*+-/@<>#0123456789xe \n")
    return "".join(chars)


# -- values and files ---------------------------------------------------------------------------


def _list(rng: random.Random, depth: int) -> str:
    if depth == 0:
        return rng.choice(NUMBERS[:9])
    n = rng.randint(1, 3)
    items = [_list(rng, depth - 1) for _ in range(n)]
    if rng.random() < 0.1 and len(items) > 1:
        items[-1] = _list(rng, max(0, depth - 2))  # ragged
    return "[" + ", ".join(items) + "]"


def value(rng: random.Random, files: dict) -> str:
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(NUMBERS)
    if kind < 0.65:
        return _list(rng, rng.randint(1, 3))
    if kind < 0.8:
        sizes = ", ".join(str(rng.randint(0, 4)) for _ in range(rng.randint(1, 2)))
        return f"{rng.choice(('ones', 'zeros', 'randn', 'rand'))}({sizes})" + rng.choice(("", " * 0.5", " - 1"))
    if kind < 0.93 and files:
        return "@" + rng.choice(list(files.values()))
    return rng.choice(
        (
            "",
            "x",
            "nan",
            "inf",
            "[1, ",
            "1 +",
            "@",
            "@-",
            "@/nonexistent.npy",
            "ones(2",
            "9" * 400,
            "[[1, 2], [3]]",
            "'1'",
            "exp(1000)",
            "randn(1e9)",
            "@/dev/null",
            "@/",
            "1e999",
        )
    )


def make_files(folder: Path) -> dict:
    """Fixture files of every kind a value or ``--values`` may name; name -> path."""
    import numpy as np
    from numpy.lib import format as npformat

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}

    def add(name, data):
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        paths[name] = str(path)

    buffer = io.BytesIO()
    np.save(buffer, np.arange(6.0).reshape(2, 3))
    add("good.npy", buffer.getvalue())
    buffer = io.BytesIO()
    npformat.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    add("huge.npy", buffer.getvalue())
    buffer = io.BytesIO()
    np.save(buffer, np.array(["a", "b"]))
    add("strings.npy", buffer.getvalue())
    buffer = io.BytesIO()
    np.savez(buffer, x=np.ones(3), y=np.ones((2, 2)), W=np.eye(3))
    add("good.npz", buffer.getvalue())
    add("bad.npz", "not a zip")
    add("bad.npy", b"\x93NUMPY\x01\x00garbage")
    add("good.json", json.dumps({"x": [1, 2, 3], "y": 2, "W": [[1, 0], [0, 1]], "b": "NaN"}))
    add("list.json", "[[1, 2], [3, 4]]")
    add("ragged.json", '{"x": [[1, 2], [3]]}')
    add("deep.json", '{"x": ' + "[" * 5000 + "1" + "]" * 5000 + "}")
    add("bigint.json", '{"x": ' + "9" * 400 + "}")
    add("text.json", '{"x": "randn(3)", "y": "bad ("}')
    add("broken.json", "{")
    add("good.txt", "1 2 3\n4 5 6\n")
    add("empty.txt", "")
    add("good.csv", "1,2\n3,4\n")
    add("junk.txt", "a b\nc d\n")
    add("binary.bin", bytes(range(256)))
    add("program.grad", "tanh(W @ x + b)")
    add(
        "plugin.py",
        "from gradcli.autograd import Function\nclass line(Function):\n    @staticmethod\n"
        "    def forward(ctx, w, x):\n        ctx.save_for_backward(w, x)\n        return w * x\n"
        "    @staticmethod\n    def backward(ctx, g):\n"
        "        w, x = ctx.saved_tensors\n        raise ValueError('no')\n",
    )
    add("syntax_plugin.py", "def (:\n")
    paths["folder"] = str(folder)
    return paths


# -- whole command lines -------------------------------------------------------------------------


def generate(rng: random.Random, files: dict) -> Case:
    if rng.random() < 0.4:
        return sane_case(rng)
    command = rng.choice(COMMANDS)
    mode = rng.random()
    stdin = b""
    if mode < 0.7:
        text = program(rng)
    elif mode < 0.85:
        text = mutate(rng, program(rng))
    else:
        text = token_soup(rng)
    where = rng.random()
    if where < 0.08:
        stdin, text = text.encode("utf-8", "surrogatepass"), "-"
    elif where < 0.12 and files:
        text = "@" + rng.choice(list(files.values()))
    if text.startswith("-") and text != "-":
        argv = [command, "--", text]
        options_after = False
    else:
        argv = [command, text]
        options_after = True
    values = []
    for name in NAMES:
        if rng.random() < (0.8 if name in ("x", "y", "W") else 0.3):
            values.append(f"{name}={value(rng, files)}")
    if rng.random() < 0.05:
        values.append(rng.choice(("=3", "x", "1x=2", "x=", "x=1", "zz=4")))
    options = []
    if rng.random() < 0.15 and files:
        options += [
            "--values",
            rng.choice(
                [
                    files.get("good.json", "-"),
                    files.get("good.npz", "-"),
                    files.get("bad.npz", "-"),
                    files.get("deep.json", "-"),
                    files.get("ragged.json", "-"),
                    "/nonexistent.json",
                    "-",
                ]
            ),
        ]
    if command in ("grad", "jacobian", "hessian", "diff", "check") and rng.random() < 0.5:
        options += ["--wrt", ",".join(rng.sample(NAMES + ("q",), rng.randint(1, 3)))]
    if command in ("diff", "check") and rng.random() < 0.5:
        options += ["--order", rng.choice(("1", "2", "3", "0", "-1", "7", "1000000", "x"))]
    if command in ("grad", "backward") and rng.random() < 0.2:
        options += [f"--grad-output={rng.choice(('ones', '1', '[1, 2]', 'x', '0/0', '[[1]]'))}"]
    if command == "backward":
        if rng.random() < 0.3:
            options += ["--times", rng.choice(("1", "2", "3", "0", "-2"))]
        for flag in ("--zero-grad", "--retain-graph", "--create-graph"):
            if rng.random() < 0.2:
                options.append(flag)
        if rng.random() < 0.2:
            options += ["--retain-grad", rng.choice(("h", "x", "q", "h,x"))]
        if rng.random() < 0.1:
            options += ["--inputs", rng.choice(("x", "h", "q"))]
    if command == "check" and rng.random() < 0.2:
        options += [rng.choice(("--eps", "--atol", "--rtol")), rng.choice(("1e-6", "0", "-1", "nan", "1e9"))]
    if rng.random() < 0.2:
        options += ["--freeze", rng.choice(("x", "y", "q", "x,y"))]
    if rng.random() < 0.3:
        options += ["--format", rng.choice(("json", "plain", "table", "tree", "dot", "auto", "xml"))]
    if rng.random() < 0.2:
        options.append("--json")
    if rng.random() < 0.15:
        options += ["--dtype", rng.choice(("float32", "float64", "int8"))]
    if rng.random() < 0.1:
        options += ["--precision", rng.choice(("1", "3", "17", "0", "-1", "100"))]
    if rng.random() < 0.15:
        options += ["--seed", rng.choice(("0", "42", "-1", str(2**70), "x"))]
    if rng.random() < 0.1:
        options += ["--max-elements", rng.choice(("1", "10", "100", "0", "-5", "1e3"))]
    if rng.random() < 0.15:
        options.append("--detect-anomaly")
    if rng.random() < 0.15:
        options.append("--strict")
    if rng.random() < 0.05 and files:
        options += [
            "--plugin",
            rng.choice(
                [
                    files.get("plugin.py", "x.py"),
                    files.get("syntax_plugin.py", "x.py"),
                    "/nonexistent.py",
                    files.get("good.json", "x.json"),
                ]
            ),
        ]
    if rng.random() < 0.03:
        options.append(rng.choice(("--bogus", "--wrt", "-h", "--set", "--device", "--device=cuda:x")))
    if rng.random() < 0.03:
        options += ["--device", rng.choice(("cuda", "tpu", "cpu"))]
    groups = [[v] for v in values] + _groups(options)
    if options_after:
        rng.shuffle(groups)  # options in any order, each flag with its value
    argv += [item for group in groups for item in group]
    if rng.random() < 0.03 and len(argv) > 2:
        del argv[rng.randrange(2, len(argv))]  # a flag that lost its value, and such
    return Case(argv, stdin)


def _groups(options):
    groups = []
    for item in options:
        if (
            groups
            and item.startswith("-") is False
            and groups[-1][0].startswith("--")
            and len(groups[-1]) == 1
            and groups[-1][0] not in _SWITCHES
        ):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


_SWITCHES = {
    "--zero-grad",
    "--retain-graph",
    "--create-graph",
    "--json",
    "--detect-anomaly",
    "--strict",
    "--bogus",
    "-h",
}


# -- running one -----------------------------------------------------------------------------


class Hang(BaseException):
    """Raised by the alarm: a run took too long (not an Exception, so gradcli cannot catch it)."""


def _alarm(signum, frame):
    raise Hang()


def run(case: Case, timeout: float = 20.0) -> Outcome:
    """``gradcli.cli.main(case.argv)`` in this process, with the case's stdin and environment."""
    from gradcli import cli

    stdin = io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8", errors="strict")
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.get(k) for k in case.env}
    os.environ.update(case.env)
    old = signal.signal(signal.SIGALRM, _alarm) if timeout else None
    if timeout:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    crash, code, hang = None, None, False
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    saved_hook = sys.excepthook
    try:
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
        try:
            cli.main(list(case.argv))
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    except Hang:
        hang = True
    except BaseException:  # noqa: BLE001 - anything that escaped main is a finding
        crash = traceback.format_exc()
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.excepthook = saved_hook
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reset()
    return Outcome(code, stdout.getvalue(), stderr.getvalue(), crash, hang)


def _reset():
    """Leave no mode behind for the next case (a failed run must not leak grad or anomaly mode)."""
    from gradcli.autograd import grad_mode

    grad_mode.state.enabled = True
    grad_mode.state.anomaly = False
    from gradcli import limits

    limits.set_max_elements(None)


def verdict(outcome: Outcome) -> str | None:
    """What is wrong with an outcome (None: fine): a crash, a hang, exit 70, a traceback, output
    on stdout with an error, or an exit code SPEC §5 does not have."""
    if outcome.crash:
        return "crash: " + outcome.crash.strip().splitlines()[-1]
    if outcome.hang:
        return "hang"
    if outcome.code == 70:
        return "exit 70: " + next(
            (line for line in outcome.stderr.splitlines() if "internal error" in line), outcome.stderr[:200]
        )
    if "Traceback" in outcome.stderr:
        return "traceback on stderr: " + outcome.stderr.strip().splitlines()[-1][:200]
    if outcome.code not in (0, 1, 2, None):
        return f"exit {outcome.code}"
    if outcome.code == 2 and outcome.stdout:
        return "an error with output on stdout"
    return None


def signature(problem: str) -> str:
    """A problem without its variable parts, to count distinct ones."""
    import re

    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'…'", problem))[:160]
