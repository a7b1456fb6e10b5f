"""The command line, declared once: every command and every option of gradcli (SPEC §3).

``cli.py`` builds both of its parsers from these two tables: the fast path (standard library
only, for start-up) and the typer app (help, completion, usage errors).  A test runs a matrix of
command lines through both and compares what they hand to the command.

**Adding an option is one row in ``OPTIONS``.**  Its ``dest`` says where the value goes:

- ``to="call"`` (the default): a keyword argument of the command's function
  (``commands.check(spec, ..., eps=1e-6)``);
- ``to="spec"``: a field of ``commands.Inputs`` (add the field there too);
- ``to="cli"``: used by ``cli.py`` itself (output format, precision).

``commands`` names the commands that take it (``ALL`` for every command that runs a program).
A flag may have several rows for different commands (``--format``: only ``graph`` takes
``tree``/``dot``).  Kinds: ``str int float flag`` (a switch), ``list`` (repeatable), ``names``
(repeatable, each comma-separated: ``--wrt a,b --wrt c`` = ``[a, b, c]``).

Exit codes and environment variables shown by ``gradcli --help`` are rows of ``EXIT_CODES`` and
``ENVIRONMENT``.  Adding a command is one row in ``COMMANDS`` and a function ``f(spec: Inputs, **options)``
returning a ``commands.Result`` (``function`` may name another module: ``"gradcli.explain:explain"``).
"""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    name: str  # as typed: gradcli NAME
    function: str  # in gradcli.commands, or "module:function"
    help: str  # the first line of COMMAND --help
    example: str  # a command line that runs from any folder
    program: bool = True  # takes PROGRAM [NAME=VALUE]... (else: its own arguments, see cli.py)


COMMANDS = (
    Command("eval", "evaluate", "Evaluate the program and print its output.", 'gradcli eval "sum([1, 2, 3] * x)" x=2'),
    Command(
        "grad",
        "grad",
        "Gradients of the output with respect to --wrt inputs (default: all).",
        'gradcli grad "w*x+b" w=2 x=3 b=1 --wrt w,x,b',
    ),
    Command(
        "backward",
        "backward",
        "Run output.backward() and show every named tensor: value, requires_grad, is_leaf, grad_fn, grad.",
        'gradcli backward "h = w*x; y = h^2" w=2 x=3 --retain-grad h --retain-graph --times 3',
    ),
    Command(
        "jacobian",
        "jacobian",
        "Jacobian of the output with respect to each --wrt input.",
        'gradcli jacobian "[x*y, x+y]" x=2 y=3',
    ),
    Command(
        "hessian",
        "hessian",
        "Hessian of a scalar output: every block d2y/da db.",
        'gradcli hessian "sum((1 - x[:-1])^2 + 100*(x[1:] - x[:-1]^2)^2)" "x=[1.5, 2]"',
    ),
    Command(
        "diff",
        "diff",
        "Higher-order derivatives: --wrt x,x,y applies d/dx, d/dx, d/dy in order; --order N repeats one input N times.",
        'gradcli diff "sin(x)*y" x=1 y=2 --wrt x,x,y',
    ),
    Command(
        "graph",
        "graph",
        "The grad_fn graph as a tree, or --format dot / json.",
        'gradcli graph "tanh(w*x+b)" w=2 x=3 b=1 --format dot',
    ),
    Command(
        "check",
        "check",
        "Compare analytic derivatives with finite differences; exit 1 on mismatch.",
        'gradcli check "sum(tanh(x)^2)" "x=[0.5, -1]" --order 2',
    ),
    Command(
        "explain",
        "gradcli.explain:explain",
        "Run backward step by step: each node's forward text, the "
        "gradient arriving, its derivative rule and what it sends to each input; every leaf's .grad.",
        'gradcli explain "tanh(w*x + b)" w=2 x=3 b=1',
    ),
    Command(
        "functions",
        "gradcli.catalog:functions",
        "List the functions of the language: signature, doc and derivative rule (all, or the one named).",
        "gradcli functions tanh",
        program=False,
    ),
)

ALL = tuple(c.name for c in COMMANDS if c.program)
FORMATS = ("auto", "table", "plain", "json")


class Option(NamedTuple):
    flag: str  # "--wrt"
    dest: str  # the keyword (or Inputs field) that receives the value
    kind: str  # str int float flag list names
    help: str
    commands: tuple = ALL
    default: object = None
    choices: tuple = ()  # allowed values: an enum in --help and completion; others are a usage error
    metavar: str = ""
    to: str = "call"  # call | spec | cli (see the module docstring)
    aliases: tuple = ()  # other spellings, accepted but not shown in --help


N = "NAME[,NAME...]"

OPTIONS = (
    # -- inputs (every command that runs a program) -------------------------------------------
    Option("--set", "values", "list", "an input value NAME=VALUE (repeatable)", metavar="NAME=VALUE", to="spec"),
    Option("--values", "values_file", "str", "a .json or .npz file of input values", metavar="FILE", to="spec"),
    Option("--freeze", "freeze", "names", "inputs given requires_grad=False", metavar=N, to="spec"),
    Option(
        "--dtype",
        "dtype",
        "str",
        "floating dtype of the inputs",
        default="float64",
        choices=("float64", "float32"),
        to="spec",
    ),
    Option(
        "--device",
        "device",
        "str",
        "cpu, cuda or cuda:N (cuda needs gradcli[cuda])",
        default="cpu",
        metavar="DEVICE",
        to="spec",
    ),
    Option("--seed", "seed", "int", "seed for rand/randn", metavar="N", to="spec"),
    Option(
        "--plugin", "plugins", "list", "a Python file of Function subclasses (repeatable)", metavar="FILE.py", to="spec"
    ),
    # -- output -----------------------------------------------------------------------------------
    Option(
        "--format",
        "fmt",
        "str",
        "output format (auto: a table on a terminal, plain when piped)",
        commands=tuple(c for c in ALL if c != "graph") + ("functions",),
        default="auto",
        choices=FORMATS,
        to="cli",
    ),
    Option(
        "--format",
        "fmt",
        "str",
        "output format (auto: a tree)",
        commands=("graph",),
        default="auto",
        choices=FORMATS + ("tree", "dot"),
        to="cli",
    ),
    Option(
        "--json", "json_", "flag", "short for --format json", commands=ALL + ("functions",), default=False, to="cli"
    ),
    Option("--precision", "precision", "int", "significant digits in tables", default=6, metavar="N", to="cli"),
    Option(
        "--each",
        "each",
        "str",
        "JSON Lines of input values, one run per line ('-': stdin); JSON Lines out",
        metavar="FILE",
        to="cli",
    ),
    # -- the commands' own ------------------------------------------------------------------------
    Option(
        "--wrt",
        "wrt",
        "names",
        "inputs to differentiate with respect to (default: all)",
        commands=("grad", "jacobian", "hessian", "diff", "check"),
        metavar=N,
    ),
    Option(
        "--grad-output",
        "grad_output",
        "str",
        "the gradient seed: a VALUE or 'ones'",
        commands=("grad", "backward", "explain"),
        metavar="VALUE",
    ),
    Option(
        "--formula",
        "formula",
        "flag",
        "also each derivative as a formula of the language (eval runs it)",
        commands=("grad", "diff"),
        default=False,
    ),
    Option(
        "--retain-grad",
        "retain",
        "names",
        "named tensors whose grad is retained (h.retain_grad())",
        commands=("backward", "explain"),
        metavar=N,
        to="spec",
        aliases=("--retain",),
    ),
    Option(
        "--retain-graph",
        "retain_graph",
        "flag",
        "keep the graph for another backward (retain_graph=True)",
        commands=("backward",),
        default=False,
    ),
    Option(
        "--create-graph",
        "create_graph",
        "flag",
        "grads get a graph of their own (create_graph=True)",
        commands=("backward",),
        default=False,
    ),
    Option(
        "--inputs",
        "inputs",
        "names",
        "accumulate only into these named tensors (inputs=...)",
        commands=("backward",),
        metavar=N,
    ),
    Option(
        "--times",
        "times",
        "int",
        "run backward K times (gradients accumulate; needs --retain-graph)",
        commands=("backward",),
        default=1,
        metavar="K",
    ),
    Option("--zero-grad", "zero_grad", "flag", "zero the grads between runs", commands=("backward",), default=False),
    Option(
        "--order", "order", "int", "derivative order (repeats the one --wrt input)", commands=("diff",), metavar="N"
    ),
    Option(
        "--order",
        "order",
        "int",
        "1: gradients, 2: also second derivatives",
        commands=("check",),
        default=1,
        metavar="N",
    ),
    Option("--eps", "eps", "float", "finite-difference step (1e-6)", commands=("check",), metavar="EPS"),
    Option("--atol", "atol", "float", "absolute tolerance (1e-5)", commands=("check",), metavar="ATOL"),
    Option("--rtol", "rtol", "float", "relative tolerance (1e-3)", commands=("check",), metavar="RTOL"),
    # -- limits and non-finite numbers (issue 13: gradcli.limits, gradcli.anomaly) ---------------
    Option(
        "--max-elements",
        "max_elements",
        "int",
        "the most numbers any tensor, file, Jacobian or Hessian may hold (default 2^27; also GRADCLI_MAX_ELEMENTS)",
        metavar="N",
        to="spec",
    ),
    Option(
        "--detect-anomaly",
        "detect_anomaly",
        "flag",
        "the first NaN or infinity (forward or backward) is an error naming the operation (exit 1)",
        default=False,
        to="spec",
    ),
    Option(
        "--strict",
        "strict",
        "flag",
        "exit 1 when the output or a gradient holds NaN or infinity",
        default=False,
        to="spec",
    ),
)


#: shown by ``gradcli --help``: (exit code, meaning) and (environment variable, effect)
EXIT_CODES = (
    ("0", "success"),
    (
        "1",
        "the answer is a failure: check found a mismatch, --strict or --detect-anomaly saw a NaN or "
        "infinity, a --each line failed",
    ),
    ("2", "bad input: syntax, names, values, shapes, options, files, usage, over a limit"),
    ("70", "a bug in gradcli (please report it)"),
    ("74", "the output could not be written (stdout closed or full)"),
    ("130", "interrupted"),
)
ENVIRONMENT = (
    ("GRADCLI_NUM_THREADS", "threads for large elementwise operations (1: none)"),
    ("GRADCLI_DEBUG=1", "show the Python traceback of an internal error"),
    ("GRADCLI_MAX_ELEMENTS", "the element limit (default 2^27; --max-elements overrides it)"),
    ("GRADCLI_MAX_PROGRAM_SIZE", "the largest program in bytes (default 16 MB)"),
    ("NO_COLOR", "no colour in tables (also TERM=dumb)"),
)


def command(name: str) -> Command:
    return next(c for c in COMMANDS if c.name == name)


def options_for(name: str, aliases: bool = False) -> dict:
    """flag -> Option for the command ``name`` (its own row where a flag has several); with
    ``aliases``, each alias too."""
    found = {o.flag: o for o in OPTIONS if name in o.commands}
    if aliases:
        found.update({a: o for o in list(found.values()) for a in o.aliases})
    return found


def check_tables():
    """The tables' own consistency (run by the tests)."""
    dests = {}
    for name in (c.name for c in COMMANDS):
        seen = set()
        for o in OPTIONS:
            if name in o.commands:
                for flag in (o.flag,) + tuple(o.aliases):
                    assert flag not in seen, f"{name}: {flag} has two rows"
                    seen.add(flag)
                assert dests.setdefault(o.dest, o.to) == o.to, f"{o.dest}: one dest, two targets"
    for o in OPTIONS:
        assert o.kind in ("str", "int", "float", "flag", "list", "names"), o
        assert o.to in ("call", "spec", "cli"), o
        assert set(o.commands) <= {c.name for c in COMMANDS}, o
