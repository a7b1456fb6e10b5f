"""The grammar and the parser: precedence, spans, the printer, errors, limits."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcli.errors import GradcliError
from gradcli.language import ast as A
from gradcli.language import parse, to_source
from gradcli.language.builder import FOREIGN
from gradcli.language.grammar import grammar_text, operator_names

ROOT = Path(__file__).resolve().parents[1]


def paren(node) -> str:
    """Fully parenthesised text, to read the tree's shape at a glance (small trees only)."""
    if isinstance(node, A.Program):
        return "; ".join(paren(s) for s in node.statements)
    if isinstance(node, A.Assign):
        return f"{node.name} = {paren(node.value)}"
    if isinstance(node, A.Call):
        if node.func in A.BINARY and len(node.args) == 2:
            return f"({paren(node.args[0])} {A.BINARY[node.func][0]} {paren(node.args[1])})"
        if node.func in A.UNARY:
            return f"({A.UNARY[node.func]}{paren(node.args[0])})"
        args = [paren(a) for a in node.args] + [f"{k}={paren(v)}" for k, v in node.kwargs]
        return f"{node.func}({', '.join(args)})"
    if isinstance(node, A.Index):
        return f"{paren(node.value)}[{', '.join(paren(i) for i in node.items)}]"
    if isinstance(node, A.Slice):
        parts = ["" if p is None else paren(p) for p in (node.start, node.stop, node.step)]
        return ":".join(parts if node.step is not None else parts[:2])
    if isinstance(node, A.Attr):
        return f"{paren(node.value)}.{node.name}"
    if isinstance(node, A.Array):
        return f"[{', '.join(paren(e) for e in node.elements)}]"
    return to_source(node)


PRECEDENCE = [
    ("a + b * c", "(a + (b * c))"),
    ("a * b + c", "((a * b) + c)"),
    ("a - b - c", "((a - b) - c)"),
    ("a / b / c", "((a / b) / c)"),
    ("a / b * c", "((a / b) * c)"),
    ("a @ b @ c", "((a @ b) @ c)"),
    ("a + b @ c", "(a + (b @ c))"),
    ("2^3^2", "(2 ^ (3 ^ 2))"),
    ("2**3**2", "(2 ^ (3 ^ 2))"),
    ("2**3^2", "(2 ^ (3 ^ 2))"),
    ("-x^2", "(-(x ^ 2))"),
    ("-x**2", "(-(x ^ 2))"),
    ("x^-1", "(x ^ (-1))"),
    ("x^-y^2", "(x ^ (-(y ^ 2)))"),
    ("-x*y", "((-x) * y)"),
    ("--x", "(-(-x))"),
    ("+-x", "(+(-x))"),
    ("a - -b", "(a - (-b))"),
    ("a < b + c", "(a < (b + c))"),
    ("a + b >= c * d", "((a + b) >= (c * d))"),
    ("a == b", "(a == b)"),
    ("a != -b", "(a != (-b))"),
    ("(a + b) * c", "((a + b) * c)"),
    ("f(a)^2", "(f(a) ^ 2)"),
    ("x.T^2", "(x.T ^ 2)"),
    ("-x.T", "(-x.T)"),
    ("-x[0]", "(-x[0])"),
    ("x[0]^2", "(x[0] ^ 2)"),
    ("x.sum(dim=0) * 2", "(sum(x, dim=0) * 2)"),
    ("x.sum().T", "sum(x).T"),
    ("W@x+b", "((W @ x) + b)"),
    ("a*b@c", "((a * b) @ c)"),
    ("2 * x ^ 2 ^ -1", "(2 * (x ^ (2 ^ (-1))))"),
]


@pytest.mark.parametrize("text, shape", PRECEDENCE)
def test_precedence_and_associativity(text, shape):
    assert paren(parse(text)) == shape


SPEC_EXAMPLES = [
    "h = tanh(W @ x + b); y = sum(h ^ 2)",
    "w*x+b",
    "sum(tanh(W@x+b)^2)",
    "h = tanh(W@x+b); y = sum(h^2)",
    "2",
    "2.5",
    ".5",
    "1e-3",
    "[1, 2, 3]",
    "[[1, 2], [3, 4]]",
    "1 - x",
    "x ^ 2",
    "2 ^ x",
    "[x*y, x+y]",
    "pi * e",
    "x < y",
    "x <= y",
    "x > y",
    "x >= y",
    "x == y",
    "x != y",
    "2^3^2",
    "-x^2",
    "x^-1",
    "f(a, b, dim=0)",
    "x[0]",
    "x[:, 1]",
    "x[1:3]",
    "x[-1]",
    "x.T",
    "x.sum(dim=0)",
    "sum(x, axis=0)",
    "sum(x, dim=1, keepdim=True)",
    "max(x)",
    "max(x, dim=0)",
    "clamp(x, min=0, max=1)",
    "where(x > 0, x, 0)",
    "norm(x, p=2)",
    "logsumexp(x, 1)",
    "transpose(x, 0, 1)",
    "reshape(x, 2, 3)",
    "stack([x, y], 0)",
    "cat([x, y], dim=0)",
    "softmax(x, 1)",
    "zeros(2, 3)",
    "linspace(0, 1, 5)",
    "randn(3, 3)",
    "ones(2, 2) * 0.5",
    "line(w, x, b)",
    "keepdim = true\nx",
    "x  # a comment\n# another\ny = x * 2",
]


@pytest.mark.parametrize("text", SPEC_EXAMPLES)
def test_spec_examples_parse_and_print_back(text):
    program = parse(text)
    assert parse(to_source(program)) == program


def test_statements_separators_comments():
    program = parse("\n# header\na = x;; b = a * 2   # trailing\n\ny = b + a;\n")
    assert [type(s).__name__ for s in program.statements] == ["Assign", "Assign", "Assign"]
    assert program.inputs == ("x",)
    assert program.assigned == ("a", "b", "y")
    assert program.output_name == "y"
    assert parse("x * 2").output_name is None
    assert parse("a = x\r\nb = a * 2\r\n").assigned == ("a", "b")
    assert parse("a \\\n + b").statements[0] == A.Call("add", (A.Name("a"), A.Name("b")))


def test_numbers_and_booleans():
    values = [s.value for s in parse("2; 2.5; .5; 1e-3; 2.; 1E+2; True; false").statements]
    assert values == [2, 2.5, 0.5, 0.001, 2.0, 100.0, True, False]
    assert type(values[0]) is int and type(values[1]) is float and type(values[-1]) is bool
    assert parse("1 - x").statements[0] == A.Call("sub", (A.Const(1), A.Name("x")))


def test_inputs_are_free_names_in_order_of_first_use():
    program = parse("h = W @ x + b; y = sum(h * c) + pi * e + x")
    assert program.inputs == ("W", "x", "b", "c")
    assert program.assigned == ("h", "y")
    # a name used as a function only is not an input; reassigning an intermediate is allowed
    assert parse("h = tanh(x); h = h * 2; h").inputs == ("x",)


def test_assigning_an_input_or_a_constant_is_an_error():
    with pytest.raises(GradcliError) as info:
        parse("y = x * 2\nx = 3")
    assert info.value.kind == "name" and "'x'" in info.value.message and info.value.line == 2
    with pytest.raises(GradcliError, match="constant"):
        parse("pi = 3")
    with pytest.raises(GradcliError, match="constant"):
        parse("True = 1")


def test_method_calls_index_slices_and_transpose():
    node = parse("x.sum(dim=0, keepdim=True)").statements[0]
    assert node == A.Call("sum", (A.Name("x"),), (("dim", A.Const(0)), ("keepdim", A.Const(True))))
    node = parse("x[1:3, :, ::2, -1]").statements[0]
    assert isinstance(node, A.Index) and len(node.items) == 4
    assert node.items[0] == A.Slice(A.Const(1), A.Const(3), None)
    assert node.items[1] == A.Slice() and node.items[2] == A.Slice(None, None, A.Const(2))
    assert node.items[3] == A.Call("neg", (A.Const(1),))
    assert parse("x.T.T").statements[0] == A.Attr(A.Attr(A.Name("x")))


def test_spans_point_at_the_text():
    text = "h = tanh(W @ x + b); y = sum(h ^ 2)"
    program = parse(text)
    h, y = program.statements
    assert text[slice(*h.span)] == "h = tanh(W @ x + b)"
    assert text[slice(*h.value.span)] == "tanh(W @ x + b)"
    assert text[slice(*h.value.args[0].span)] == "W @ x + b"
    assert text[slice(*h.value.args[0].args[0].span)] == "W @ x"
    assert text[slice(*y.value.args[0].span)] == "h ^ 2"
    text = "(a + b) * c.sum(dim=0)[1:2].T"
    node = parse(text).statements[0]
    assert text[slice(*node.span)] == text
    assert text[slice(*node.args[0].span)] == "(a + b)"
    assert text[slice(*node.args[1].span)] == "c.sum(dim=0)[1:2].T"
    assert text[slice(*node.args[1].value.value.span)] == "c.sum(dim=0)"
    for node in A.walk(parse("x = [1, -2]; f(x, k=y[0:1])\n z ^ 2")):
        assert node.span[0] <= node.span[1]


def test_grammar_is_small_lalr_and_aliases_are_ops():
    grammar = grammar_text()
    assert len(grammar.splitlines()) <= 80
    names = operator_names(grammar)
    assert {"add", "sub", "mul", "div", "matmul", "pow", "neg", "pos", "lt", "le", "gt", "ge", "eq", "ne"} == names
    assert set(A.BINARY) | set(A.UNARY) == names


def test_operator_aliases_are_keys_of_the_op_table():
    from gradcli import ops

    assert operator_names() <= set(ops.FUNCTIONS)
    assert set(ops.CONSTANTS) == A.CONSTANT_NAMES


# ------------------------------------------------------------------------------------------
# errors


def error_of(text) -> GradcliError:
    with pytest.raises(GradcliError) as info:
        parse(text)
    return info.value


@pytest.mark.parametrize(
    "text, line, column, words",
    [
        ("x * ", 1, 4, "expected an operand after '*', found the end of the program"),
        ("x *\ny", 1, 4, "expected an operand after '*', found the end of the line"),
        ("a = 1\nb = a +* 2", 2, 8, "expected an operand after '+', found '*'"),
        ("f(x", 1, 4, "')'"),
        ("x y", 1, 3, "expected an operator or the end of the statement after 'x', found 'y'"),
        ("(x + 1))", 1, 8, "found ')'"),
        ("x[1", 1, 4, "']'"),
        ("a < b < c", 1, 7, "comparisons do not chain"),
        ("x $ y", 1, 3, "unexpected character '$'"),
        ("__import__('os')", 1, 12, "the language has no strings"),
        ("x.__class__", 1, 3, "unknown attribute '.__class__'"),
        ("f(dim=0, x)", 1, 10, "positional argument follows a keyword argument"),
        ("f(x, dim=0, dim=1)", 1, 13, "given twice"),
        ("\n\n   # nothing", 1, 1, "the program is empty"),
        ("= 2", 1, 1, "expected an operand at the start of the program, found '='"),
        ("x = 1;\n  * y", 2, 3, "at the start of a statement"),
    ],
)
def test_syntax_errors_name_line_column_and_expectation(text, line, column, words):
    err = error_of(text)
    assert err.kind in ("syntax", "name")
    assert (err.line, err.column) == (line, column), err.describe()
    assert words in err.message
    assert err.source == text
    shown = err.describe().splitlines()
    assert shown[0].startswith(f"line {line}, column {column}: ")
    # the excerpt: the offending line, then a caret under the column
    gutter = f"{line} | "
    assert shown[1] == gutter + text.split("\n")[line - 1]
    assert shown[2].index("^") == len(gutter) + column - 1
    assert not re.search(r"\b(STAR|NAME|NUMBER|LPAR|RPAR|__ANON|_SEP|\$END)\b", err.message)


def test_error_json_and_exit_code():
    err = error_of("x +")
    assert err.to_json() == {"kind": "syntax", "message": err.message, "line": 1, "column": 4}
    assert err.exit_code == 2


def test_long_line_excerpt_is_a_window():
    text = "x + " * 50_000 + ")"
    err = error_of(text)
    assert err.column == len(text)
    top, caret = err.describe().splitlines()[1:]
    assert len(top) < 130 and top[caret.index("^")] == ")"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=60))
def test_random_bytes_only_raise_gradcli_errors(data):
    text = data.decode("latin-1")
    try:
        parse(text)
    except GradcliError as err:
        assert err.line is not None and err.column is not None
        err.describe()


TOKENS = [
    "x",
    "y",
    "2",
    ".5",
    "1e-3",
    "+",
    "-",
    "*",
    "/",
    "@",
    "^",
    "**",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "=",
    "==",
    "<",
    ".",
    "T",
    "sum",
    "dim",
    ";",
    "\n",
    "#",
    " ",
    "True",
    "pi",
    "'",
    "!",
    "$",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14))
def test_near_miss_programs_only_raise_gradcli_errors(tokens):
    text = "".join(tokens)
    try:
        program = parse(text)
    except GradcliError as err:
        assert err.kind in ("syntax", "name") and err.line >= 1 and err.column >= 1
        err.describe()
    else:
        assert parse(to_source(program)) == program


# ------------------------------------------------------------------------------------------
# round trip: random trees print and parse back to themselves

names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,3}", fullmatch=True).filter(
    lambda s: s not in A.BOOLEAN_NAMES and s not in FOREIGN
)
constants = st.one_of(
    st.integers(0, 10**6),
    st.floats(0, 1e300, allow_nan=False, allow_infinity=False),
    st.booleans(),
).map(A.Const)
OPS = sorted(A.BINARY)


def extend(children):
    binary = st.tuples(st.sampled_from(OPS), children, children).map(lambda t: A.Call(t[0], (t[1], t[2])))
    unary = st.tuples(st.sampled_from(["neg", "pos"]), children).map(lambda t: A.Call(t[0], (t[1],)))
    kwargs = st.dictionaries(names, children, max_size=2).map(lambda d: tuple(d.items()))
    call = st.builds(A.Call, names, st.lists(children, max_size=3).map(tuple), kwargs)
    part = st.one_of(st.none(), children)
    item = st.one_of(children, st.builds(A.Slice, part, part, part))
    index = st.builds(A.Index, children, st.lists(item, min_size=1, max_size=3).map(tuple))
    attr = children.map(A.Attr)
    array = st.lists(children, max_size=3).map(lambda xs: A.Array(tuple(xs)))
    return st.one_of(binary, unary, call, index, attr, array)


expressions = st.recursive(st.one_of(names.map(A.Name), constants), extend, max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(expressions)
def test_printed_trees_parse_back_equal(tree):
    text = to_source(tree)
    (parsed,) = parse(text).statements
    assert parsed == tree, text
    assert hash(parsed) == hash(tree)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), expressions), min_size=1, max_size=4))
def test_printed_programs_parse_back_equal(statements):
    # assigned names have 5+ characters, so never one the expressions read as an input
    body = tuple(A.Assign(f"out{i}_", e) if assign else e for i, (assign, e) in enumerate(statements))
    program = A.Program(body)
    assert parse(to_source(program)) == program


def test_printer_minimal_parentheses_and_negative_constants():
    assert to_source(parse("(a + b) * (c - d) ^ 2 ^ -(1)")) == "(a + b) * (c - d) ^ 2 ^ -1"
    assert to_source(A.Call("pow", (A.Const(-2), A.Name("x")))) == "(-2) ^ x"
    assert to_source(A.Call("sub", (A.Name("x"), A.Const(-2.5)))) == "x - -2.5"
    assert to_source(A.Attr(A.Const(2))) == "(2).T"
    assert to_source(A.Const(float("inf"))) == "1e999"
    with pytest.raises(ValueError):
        to_source(A.Const(float("nan")))


def test_equality_ignores_spans_but_not_types():
    assert A.Name("x", (0, 1)) == A.Name("x", (5, 6))
    assert A.Const(True) != A.Const(1)
    assert A.Const(2) == A.Const(2.0)
    assert A.Call("add", (A.Name("x"), A.Name("y"))) != A.Call("add", (A.Name("y"), A.Name("x")))


# ------------------------------------------------------------------------------------------
# limits


def test_deep_nesting_parses_without_recursion():
    depth = 10_000
    program = parse("(" * depth + "x" + ")" * depth)
    assert program.statements[0] == A.Name("x")
    program = parse("-" * depth + "x")
    assert program.inputs == ("x",)
    deep = parse("f(" * depth + "x" + ")" * depth)
    assert deep == parse(to_source(deep))  # eq, hash, printer: all iterative
    hash(deep)
    unclosed = error_of("(" * depth + "x")
    assert unclosed.kind == "syntax" and "')'" in unclosed.message


def test_long_program_parses_and_prints_back():
    """(The 1 MB program is parsed and evaluated in test_language_interpreter.)"""
    text = "+".join(["x"] * 50_000)
    program = parse(text)
    assert program.inputs == ("x",)
    assert program.statements[0].span == (0, len(text))
    assert to_source(program).replace(" ", "") == text


# ------------------------------------------------------------------------------------------
# the shipped tables and the driver, against lark


def test_shipped_tables_are_current():
    """_tables.py is what lark makes of the grammar now (regenerate: python scripts/make_parse_tables.py)."""
    pytest.importorskip("lark")
    from gradcli.language._tables import TABLES
    from gradcli.language.grammar import build_tables, digest

    assert TABLES["grammar_sha256"] == digest(grammar_text()), "the grammar changed: regenerate the tables"
    assert build_tables() == TABLES


def test_tables_are_data_and_lark_stays_unimported():
    code = (
        "import sys\nfrom gradcli.language import parse\nparse('h = tanh(W @ x + b); y = sum(h ^ 2)')\n"
        "print(sorted(m for m in ('lark',) if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    text = (ROOT / "src" / "gradcli" / "language" / "_tables.py").read_text()
    assert "import" not in text and "pickle" not in text


def _lark_program(text):
    """``Lark.parse`` with the same tree builder: statements, or the error class it raised."""
    from gradcli.language.builder import builder_for
    from gradcli.language.grammar import lark_parser

    if not _LARK:
        _LARK.append(lark_parser(transformer=builder_for(operator_names())))
    builder = _LARK[0].options.transformer
    builder.text = text
    try:
        return _LARK[0].parse(text)
    except GradcliError as err:
        return ("GradcliError", err.message)
    except Exception:  # noqa: BLE001 - lark's UnexpectedInput family
        return "syntax"


_LARK: list = []


def _driver_program(text):
    from gradcli.language import messages
    from gradcli.language.parser import _parser

    driver, builder = _parser()
    builder.text = text
    try:
        return driver.parse(text)
    except GradcliError as err:
        return ("GradcliError", err.message)
    except messages.Failure:
        return "syntax"


def _same(ours, theirs):
    if isinstance(ours, list) and isinstance(theirs, list):
        assert A.Program(tuple(ours)) == A.Program(tuple(theirs))
        spans = [[n.span for n in A.walk(s)] for s in ours]
        assert spans == [[n.span for n in A.walk(s)] for s in theirs]
    else:
        assert ours == theirs


SOUP = [
    "x",
    "y",
    "2",
    ".5",
    "1e-3",
    "+",
    "-",
    "*",
    "/",
    "@",
    "^",
    "**",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "=",
    "==",
    "<",
    "<=",
    ">",
    ">=",
    "!=",
    ".",
    "T",
    "sum",
    "dim",
    ";",
    "#c\n",
    "True",
    "pi",
    "f",
    "(x)",
    "[1]",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=16), st.sampled_from([" ", "", "  "]))
def test_driver_agrees_with_lark_on_token_soups(tokens, sep):
    pytest.importorskip("lark")
    text = sep.join(tokens)
    if sep == "" and re.search(r"\d\.|\.\d|[A-Za-z_0-9]{2}", text):
        text = " ".join(tokens)  # glued tokens are other tokens (2.T, xy): keep them apart
    _same(_driver_program(text), _lark_program(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), expressions), min_size=1, max_size=3))
def test_driver_agrees_with_lark_on_random_programs(statements):
    pytest.importorskip("lark")
    body = tuple(A.Assign(f"out{i}_", e) if assign else e for i, (assign, e) in enumerate(statements))
    text = to_source(A.Program(body))
    ours = _driver_program(text)
    assert isinstance(ours, list), (text, ours)
    _same(ours, _lark_program(text))


def test_the_lark_versions_are_pinned():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("lark")]  # not needed at run time
    (lark,) = [d for d in project["optional-dependencies"]["test"] if d.startswith("lark")]
    assert re.fullmatch(r"lark>=[\d.]+,<[\d.]+", lark.replace(" ", ""))


# ------------------------------------------------------------------------------------------
# habits from other languages and editors


@pytest.mark.parametrize(
    "text, message",
    [
        ("np.sin(x)", "'np.sin' is how numpy spells it: drop the prefix: sin(x)"),
        ("torch.tanh(w * x)", "'torch.tanh' is how PyTorch spells it: drop the prefix: tanh(w * x)"),
        ("2 * math.pi", "'math.pi' is how Python's math spells it: drop the prefix: pi"),
        ("pi = 3", "cannot assign to the constant pi: choose another name"),
        ("True = x", "cannot assign to the constant True: choose another name"),
        ("x \u2212 y", "unexpected character '\u2212' (MINUS SIGN): use ASCII -"),
        ("x \u00d7 y", "unexpected character '\u00d7' (MULTIPLICATION SIGN): use ASCII *"),
    ],
)
def test_habits_get_hints(text, message):
    assert error_of(text).message == message


def test_a_bom_is_ignored_and_newlines_in_brackets_continue():
    assert parse("\ufeffx * 2") == parse("x * 2")
    assert parse("\ufeffx * 2").statements[0].span == (1, 6)
    assert parse("f(x,\n  y)\n[1,\n 2]") == parse("f(x, y); [1, 2]")
    assert parse("sum(\n  x  # a comment\n)") == parse("sum(x)")
    assert parse("np.T + 1").inputs == ("np",)  # an input that happens to be called np
    with pytest.raises(GradcliError, match="expected"):
        parse("f(x;\n y)")  # a ';' inside brackets is still an error


def test_no_cache_on_disk_and_no_home_needed(tmp_path):
    """Nothing is written anywhere; HOME unset, a relative or non-UTF-8 XDG_CACHE_HOME are fine."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CACHE_HOME", "GRADCLI_CACHE_DIR")}
    env["PYTHONPATH"] = str(ROOT / "src")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for extra in ({}, {"XDG_CACHE_HOME": "relative/cache"}, {"HOME": str(home)}):
        r = subprocess.run(
            [sys.executable, "-m", "gradcli", "grad", "w*x+b", "w=2", "x=3", "b=1", "--json"],
            env=dict(env, **extra),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0 and r.stderr == "", r.stderr
    environ = {k.encode(): v.encode() for k, v in env.items()}
    environ[b"XDG_CACHE_HOME"] = str(tmp_path).encode() + b"/\xff\xfe"
    r = subprocess.run(
        [sys.executable, "-m", "gradcli", "eval", "x*2", "x=3"], env=environ, cwd=cwd, capture_output=True, timeout=60
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, b"value\t6.0\n", b"")
    assert list(cwd.iterdir()) == [] and list(home.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == sorted(["home", "cwd"]) or set(
        p.name for p in tmp_path.iterdir()
    ) == {"home", "cwd"}


def test_a_uid_without_a_passwd_entry(tmp_path):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to run as another uid")
    import pwd

    uid = 54321
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    env["PYTHONPATH"] = str(ROOT / "src")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import gradcli"], env=env, user=uid, cwd="/", capture_output=True, text=True
        )
    except PermissionError:
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"uid {uid} cannot read this Python or the repository here")
    r = subprocess.run(
        [sys.executable, "-m", "gradcli", "grad", "w*x", "w=2", "x=3", "--json"],
        env=env,
        user=uid,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_no_home_and_no_passwd_entry_in_process(monkeypatch, capsys):
    """What a container gives: HOME unset and a uid with no passwd entry (Path.home() raises)."""
    import pwd
    from pathlib import Path as P

    from gradcli import cli

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    with pytest.raises(RuntimeError):
        P.home()
    with pytest.raises(SystemExit) as info:
        cli.main(["grad", "w*x+b", "w=2", "x=3", "b=1", "--format", "plain"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "w\t3.0\nx\t2.0\nb\t1.0\n"
