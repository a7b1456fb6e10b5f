"""Fuzzing the real entry point (issue 13, part 5): random programs, token soups, values, files and
option combinations through ``gradcli.cli.main`` (in-process, for speed).  Every run ends in a
result or a gradcli error with exit 1 or 2: never a traceback, never exit 70, never a hang.

The generators live in ``fuzz/harness.py`` (shared with ``fuzz/run.py``, the 10^5-input run);
hypothesis drives them here, with a bounded budget (the whole file takes well under a minute).
"""

import random
import sys
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import harness  # noqa: E402

SETTINGS = settings(
    max_examples=600, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return harness.make_files(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    monkeypatch.setenv("GRADCLI_MAX_ELEMENTS", "20000")  # keeps every run small and quick
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("GRADCLI_DEBUG", raising=False)


def check(case):
    outcome = harness.run(case, timeout=30)
    problem = harness.verdict(outcome)
    assert problem is None, f"{problem}\n$ {case.shell()}\n{outcome.stderr[-1500:]}\n{outcome.crash or ''}"
    return outcome


# -- whole command lines from the harness, seeded by hypothesis --------------------------------


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_random_command_lines(files, seed):
    check(harness.generate(random.Random(seed), files))


# -- hypothesis' own strategies: shrinkable programs and values -----------------------------------

names = st.sampled_from(["x", "y"])
numbers = st.one_of(
    st.integers(-3, 3).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["0/0", "1/0", "1e308", "1e400", ".5"]),
)
leaves = st.one_of(names, numbers)


def _combine(children):
    unary = st.sampled_from(harness.UNARY)
    binary = st.sampled_from(harness.BINARY)
    ops = st.sampled_from(harness.OPERATORS)
    return st.one_of(
        st.tuples(children, ops, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(unary, children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(binary, children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(children, st.sampled_from(["0", "-1", "1:", ":, 0", "[0]", "x > 0"])).map(
            lambda t: f"{t[0]}[{t[1]}]"
        ),
    )


expressions = st.recursive(leaves, _combine, max_leaves=8)
values = st.one_of(
    numbers,
    st.lists(numbers, min_size=1, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    st.lists(st.lists(numbers, min_size=1, max_size=3), min_size=1, max_size=3).map(
        lambda rows: "[" + ", ".join("[" + ", ".join(r) + "]" for r in rows) + "]"
    ),
)
commands = st.sampled_from(harness.COMMANDS)
flags = st.lists(
    st.sampled_from(
        [
            ["--json"],
            ["--strict"],
            ["--detect-anomaly"],
            ["--dtype", "float32"],
            ["--wrt", "x"],
            ["--order", "2"],
            ["--format", "plain"],
            ["--max-elements", "5"],
            ["--freeze", "y"],
            ["--precision", "3"],
            ["--seed", "1"],
        ]
    ),
    max_size=3,
    unique_by=lambda f: f[0],
)


@SETTINGS
@given(command=commands, program=expressions, x=values, y=values, options=flags)
def test_programs_values_and_options(command, program, x, y, options):
    argv = [command, program, f"x={x}", f"y={y}"]
    for option in options:
        if option[0] in ("--wrt", "--order") and command not in ("grad", "jacobian", "hessian", "diff", "check"):
            continue
        if option[0] == "--order" and command not in ("diff", "check"):
            continue
        argv += option
    outcome = check(harness.Case(argv))
    if outcome.code == 0:
        assert outcome.stdout


@SETTINGS
@given(soup=st.lists(st.sampled_from(harness.TOKENS), max_size=30).map("".join), command=commands)
def test_token_soups(soup, command):
    check(harness.Case([command, "--", soup, "x=1", "y=2"] if soup.startswith("-") else [command, soup, "x=1", "y=2"]))


@SETTINGS
@given(text=st.text(max_size=40), command=commands)
def test_any_text_as_program_or_value(text, command):
    check(harness.Case([command, "--", text]))
    check(harness.Case([command, "x + 1", f"x={text}"]))


@SETTINGS
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".npy", ".npz", ".json", ".txt", ".csv", ".grad"]))
def test_random_bytes_as_files(tmp_path_factory, data, suffix):
    folder = tmp_path_factory.mktemp("bytes", numbered=True)
    path = folder / f"data{suffix}"
    path.write_bytes(data)
    check(harness.Case(["eval", "x * 2", f"x=@{path}"]))
    check(harness.Case(["eval", "x", "--values", str(path)]))
    check(harness.Case(["eval", f"@{path}", "x=1"]))
    check(harness.Case(["eval", "-", "x=1"], stdin=data))
