"""The typer app: thin commands over ``commands`` and ``render``; the one place errors become
exit codes (SPEC §5).  Shared options are declared once, as ``Annotated`` aliases.

Start-up: this module imports only the standard library.  ``main`` parses the common command
lines itself (``OPTIONS`` below) and runs the command without importing typer; anything else
(``--help``, completion, a usage error) goes to the typer app, built on first use.  numpy, lark,
the engine and rich (tables only) are imported when a command runs.
"""

import os
import sys
from typing import List, Optional



EXAMPLE = 'gradcli grad "w*x+b" w=2 x=3 b=1 --wrt w,x,b'

def _split(items) -> list:
    return [part.strip() for item in items or () for part in item.split(",") if part.strip()]


def _program_text(program: str) -> str:
    from .errors import GradcliError
    if program == "-":
        return sys.stdin.read()
    if program.startswith("@"):
        path = program[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise GradcliError("file", f"cannot read program file '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    return program


def _color() -> bool:
    return (sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb")


def _execute(command, fmt, json_flag, precision, program, assignments, set_, values, dtype, device, seed,
             plugin, freeze=(), retain=(), each=None, **kwargs):
    """Run one command: build the inputs, call ``commands``, render; map errors to exit codes."""
    fmt = "json" if json_flag else fmt
    try:
        from . import commands, render
        from .errors import GradcliError
        if fmt not in ("auto", "table", "plain", "json", "dot", "tree"):
            raise GradcliError("option", f"--format {fmt}: expected auto, table, plain or json")
        if precision < 1:
            raise GradcliError("option", f"--precision {precision}: give the number of significant digits (1 or more)")
        if dtype not in ("float64", "float32"):
            raise GradcliError("option", f"--dtype {dtype}: expected float64 or float32")
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise GradcliError("option", f"--device {device}: expected cpu or cuda")
        spec = commands.Inputs(program=_program_text(program), values=list(assignments or ()) + list(set_ or ()),
                               values_file=values, dtype=dtype, device=device, seed=seed,
                               plugins=list(plugin or ()), freeze=_split(freeze), retain=_split(retain),
                               progress=_progress_bar(fmt), stdin_owner="the program" if program == "-" else None)
        if command is commands.graph:
            kwargs["fmt"] = "json" if each is not None else fmt
        if each is not None:
            if program == "-" and each == "-":
                raise GradcliError("option", "--each - reads the values from stdin, so the program cannot "
                                   "also come from stdin: give it as text or @FILE")
            from .each import Stream
            return Stream(command, spec, kwargs).run(each)
        result = command(spec, **kwargs)
        for note in result.notes:
            print(note, file=sys.stderr)
        if fmt == "auto":
            fmt = "table" if sys.stdout.isatty() else "plain"
        if fmt == "plain":                  # tables show them as footnotes, JSON as "warnings"
            for warning in result.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        render.render(result, fmt, precision=precision, color=_color(), origin=program)
        sys.stdout.flush()
        code = 0 if result.ok else 1
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        _quiet_pipe()
        code = 0
    except Exception as exc:                                    # noqa: BLE001 - the one place
        code = _report(exc, fmt)
    return code


def _progress_bar(fmt):
    """A factory of rich progress bars on stderr, or None: only when both stdout and stderr are a
    terminal and the output is not JSON (a bar never mixes with piped or JSON output)."""
    if fmt == "json" or not (sys.stderr.isatty() and sys.stdout.isatty()) or os.environ.get("TERM") == "dumb":
        return None

    def factory(total, description):
        import contextlib

        @contextlib.contextmanager
        def bar():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            console = Console(stderr=True)
            console.print(description, highlight=False, markup=False)
            with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=console, transient=True) as progress:
                task = progress.add_task(description.split(":")[0], total=total)
                yield lambda k=1: progress.advance(task, k)
                if total is None:
                    progress.update(task, total=1, completed=1)
        return bar()
    return factory


def _report(exc, fmt) -> int:
    from .errors import GradcliError
    if isinstance(exc, GradcliError):
        if fmt == "json":
            from .render import error_json
            print(error_json(exc), file=sys.stderr)
        else:
            print(f"error: {exc.describe()}", file=sys.stderr)
        return exc.exit_code
    message = f"internal error: {type(exc).__name__}: {exc}"
    if fmt == "json":
        from .render import dumps
        print(dumps({"error": {"kind": "internal", "message": message, "line": None, "column": None}}),
              file=sys.stderr)
    else:
        print(f"gradcli: {message}\nThis is a bug in gradcli; please report it with the command you ran "
              "(set GRADCLI_DEBUG=1 to see the traceback).", file=sys.stderr)
    if os.environ.get("GRADCLI_DEBUG"):
        import traceback
        traceback.print_exception(exc)
    return 70


def _quiet_pipe():
    try:                                                  # stdout is gone: stop Python's flush complaint
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _build_app():
    """The typer app (typer is imported only here: the fast path in ``main`` does without it)."""
    import typer
    from typing_extensions import Annotated

    app = typer.Typer(
        name="gradcli",
        help=f"Differentiate expressions with PyTorch's autograd semantics, on numpy.\n\nExample:\n\n    {EXAMPLE}",
        add_completion=True, pretty_exceptions_enable=False, rich_markup_mode=None, no_args_is_help=True,
    )

    # -- shared options, declared once ---------------------------------------------------------------
    Program = Annotated[str, typer.Argument(help="the program text, '-' for stdin, or @FILE", show_default=False)]
    Assignments = Annotated[Optional[List[str]], typer.Argument(help="input values NAME=VALUE", show_default=False)]
    Set = Annotated[Optional[List[str]], typer.Option("--set", help="an input value NAME=VALUE (repeatable)")]
    ValuesFile = Annotated[Optional[str], typer.Option("--values", help="a .json or .npz file of input values")]
    Wrt = Annotated[Optional[List[str]], typer.Option("--wrt", help="inputs, comma-separated (repeatable)")]
    Freeze = Annotated[Optional[List[str]], typer.Option("--freeze", help="inputs given requires_grad=False")]
    Retain = Annotated[Optional[List[str]], typer.Option("--retain-grad", help="named tensors whose grad is retained (h.retain_grad())")]
    RetainAlias = Annotated[Optional[List[str]], typer.Option("--retain", hidden=True, help="old name of --retain-grad")]
    GradOutput = Annotated[Optional[str], typer.Option("--grad-output", help="the gradient seed: a VALUE or 'ones'")]
    Format = Annotated[str, typer.Option("--format", help="auto|table|plain|json")]
    Json = Annotated[bool, typer.Option("--json", help="short for --format json")]
    Dtype = Annotated[str, typer.Option("--dtype", help="float64|float32")]
    Device = Annotated[str, typer.Option("--device", help="cpu|cuda (cuda needs gradcli[cuda])")]
    Seed = Annotated[Optional[int], typer.Option("--seed", help="seed for rand/randn")]
    Plugin = Annotated[Optional[List[str]], typer.Option("--plugin", help="a Python file of Function subclasses")]
    Precision = Annotated[int, typer.Option("--precision", help="significant digits in tables")]
    Order = Annotated[Optional[int], typer.Option("--order", help="derivative order")]
    Each = Annotated[Optional[str], typer.Option("--each", help="JSON Lines of input values, one run per line "
                                                                "('-': stdin); JSON Lines out")]


    def _version(value: bool):
        if value:
            from importlib.metadata import PackageNotFoundError, version
            try:
                print(f"gradcli {version('gradcli')}")
            except PackageNotFoundError:
                print("gradcli (not installed)")
            raise typer.Exit()


    @app.callback()
    def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                              help="show the version and exit")] = None):
        """Differentiate expressions with PyTorch's autograd semantics, on numpy."""


    def _doc(text, example):
        return f"{text}\n\nExample:\n\n    {example}"


    @app.command("eval", help=_doc("Evaluate the program and print its output.", 'gradcli eval "sum([1, 2, 3] * x)" x=2'))
    def eval_command(program: Program, assignments: Assignments = None, set_: Set = None, values: ValuesFile = None,
                     fmt: Format = "auto", json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                     seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None, freeze: Freeze = None):
        from . import commands
        raise typer.Exit(_execute(commands.evaluate, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, each=each))


    @app.command("grad", help=_doc("Gradients of the output with respect to --wrt inputs (default: all).", EXAMPLE))
    def grad_command(program: Program, assignments: Assignments = None, set_: Set = None, values: ValuesFile = None,
                     wrt: Wrt = None, grad_output: GradOutput = None, freeze: Freeze = None,
                     fmt: Format = "auto", json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                     seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None):
        from . import commands
        raise typer.Exit(_execute(commands.grad, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, each=each, wrt=_split(wrt), grad_output=grad_output))


    @app.command("backward", help=_doc("Run output.backward() and show every named tensor: value, "
                                       "requires_grad, is_leaf, grad_fn, grad.",
                                       'gradcli backward "h = w*x; y = h^2" w=2 x=3 --retain-grad h --retain-graph --times 3'))
    def backward_command(program: Program, assignments: Assignments = None, set_: Set = None,
                         values: ValuesFile = None, grad_output: GradOutput = None, freeze: Freeze = None,
                         retain: Retain = None, retain_alias: RetainAlias = None,
                         retain_graph: Annotated[bool, typer.Option("--retain-graph", help="keep the graph for another backward (retain_graph=True)")] = False,
                         create_graph: Annotated[bool, typer.Option("--create-graph", help="grads get a graph of their own (create_graph=True)")] = False,
                         inputs: Annotated[Optional[List[str]], typer.Option("--inputs", help="accumulate only into these named tensors (inputs=...)")] = None,
                         times: Annotated[int, typer.Option("--times", help="run backward K times (accumulates; needs --retain-graph)")] = 1,
                         zero_grad: Annotated[bool, typer.Option("--zero-grad", help="zero grads between runs")] = False,
                         fmt: Format = "auto", json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                         seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None):
        from . import commands
        raise typer.Exit(_execute(commands.backward, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, list(retain or ()) + list(retain_alias or ()), each=each, grad_output=grad_output, times=times,
                 zero_grad=zero_grad, retain_graph=retain_graph, create_graph=create_graph, inputs=_split(inputs)))


    @app.command("jacobian", help=_doc("Jacobian of the output with respect to each --wrt input.",
                                       'gradcli jacobian "[x*y, x+y]" x=2 y=3'))
    def jacobian_command(program: Program, assignments: Assignments = None, set_: Set = None,
                         values: ValuesFile = None, wrt: Wrt = None, freeze: Freeze = None,
                         fmt: Format = "auto", json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                         seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None):
        from . import commands
        raise typer.Exit(_execute(commands.jacobian, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, each=each, wrt=_split(wrt)))


    @app.command("hessian", help=_doc("Hessian of a scalar output: every block d2y/da db.",
                                      'gradcli hessian @samples/rosenbrock.grad "x=[1.5, 2]"'))
    def hessian_command(program: Program, assignments: Assignments = None, set_: Set = None,
                        values: ValuesFile = None, wrt: Wrt = None, freeze: Freeze = None,
                        fmt: Format = "auto", json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                        seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None):
        from . import commands
        raise typer.Exit(_execute(commands.hessian, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, each=each, wrt=_split(wrt)))


    @app.command("diff", help=_doc("Higher-order derivatives: --wrt x,x,y applies d/dx, d/dx, d/dy in order.",
                                   'gradcli diff "sin(x)*y" x=1 y=2 --wrt x,x,y'))
    def diff_command(program: Program, assignments: Assignments = None, set_: Set = None, values: ValuesFile = None,
                     wrt: Wrt = None, order: Order = None, freeze: Freeze = None,
                     fmt: Format = "auto", json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                     seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None):
        from . import commands
        raise typer.Exit(_execute(commands.diff, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, each=each, wrt=_split(wrt), order=order))


    @app.command("graph", help=_doc("The grad_fn graph as a tree, or --format dot / json.",
                                    'gradcli graph "tanh(w*x+b)" w=2 x=3 b=1 --format dot'))
    def graph_command(program: Program, assignments: Assignments = None, set_: Set = None, values: ValuesFile = None,
                      freeze: Freeze = None,
                      fmt: Annotated[str, typer.Option("--format", help="tree|dot|json (auto: tree)")] = "auto",
                      json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                      seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None):
        from . import commands
        raise typer.Exit(_execute(commands.graph, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, each=each))


    @app.command("check", help=_doc("Compare analytic derivatives with finite differences; exit 1 on mismatch.",
                                    'gradcli check "sum(tanh(x)^2)" "x=[0.5, -1]" --order 2'))
    def check_command(program: Program, assignments: Assignments = None, set_: Set = None, values: ValuesFile = None,
                      wrt: Wrt = None, order: Annotated[int, typer.Option("--order", help="1 or 2")] = 1,
                      eps: Annotated[Optional[float], typer.Option("--eps", help="finite-difference step (1e-6)")] = None,
                      atol: Annotated[Optional[float], typer.Option("--atol", help="absolute tolerance (1e-5)")] = None,
                      rtol: Annotated[Optional[float], typer.Option("--rtol", help="relative tolerance (1e-3)")] = None,
                      freeze: Freeze = None,
                      fmt: Format = "auto", json_: Json = False, dtype: Dtype = "float64", device: Device = "cpu",
                      seed: Seed = None, plugin: Plugin = None, precision: Precision = 6, each: Each = None):
        from . import commands
        raise typer.Exit(_execute(commands.check, fmt, json_, precision, program, assignments, set_, values, dtype, device, seed,
                 plugin, freeze, each=each, wrt=_split(wrt), order=order, eps=eps, atol=atol, rtol=rtol))


    return app


def __getattr__(name):
    if name == "app":
        globals()["app"] = built = _build_app()
        return built
    raise AttributeError(name)


#: the fast path's view of the options: flag -> (parameter, kind); the typer app is the reference
OPTIONS = {"--set": ("set_", list), "--values": ("values", str), "--wrt": ("wrt", list),
           "--freeze": ("freeze", list), "--retain": ("retain", list), "--retain-grad": ("retain", list),
           "--retain-graph": ("retain_graph", bool), "--create-graph": ("create_graph", bool),
           "--inputs": ("inputs", list), "--grad-output": ("grad_output", str),
           "--format": ("fmt", str), "--json": ("json_", bool), "--dtype": ("dtype", str),
           "--device": ("device", str), "--seed": ("seed", int), "--plugin": ("plugin", list),
           "--precision": ("precision", int), "--order": ("order", int), "--times": ("times", int),
           "--zero-grad": ("zero_grad", bool), "--eps": ("eps", float), "--atol": ("atol", float),
           "--rtol": ("rtol", float), "--each": ("each", str)}
COMMON = {"--set", "--values", "--freeze", "--format", "--json", "--dtype", "--device", "--seed", "--plugin",
          "--precision", "--each"}
#: command -> (commands function name, its own options)
COMMANDS = {"eval": ("evaluate", set()), "grad": ("grad", {"--wrt", "--grad-output"}),
            "backward": ("backward", {"--grad-output", "--retain", "--retain-grad", "--retain-graph", "--create-graph",
                                      "--inputs", "--times", "--zero-grad"}),
            "jacobian": ("jacobian", {"--wrt"}), "hessian": ("hessian", {"--wrt"}),
            "diff": ("diff", {"--wrt", "--order"}), "graph": ("graph", set()),
            "check": ("check", {"--wrt", "--order", "--eps", "--atol", "--rtol"})}


def _fast(argv):
    """Run a plain command line without typer; None when typer must handle it."""
    if not argv or argv[0] not in COMMANDS or any(k.startswith("_GRADCLI_COMPLETE") for k in os.environ):
        return None
    name, own = COMMANDS[argv[0]]
    allowed = COMMON | own
    found = {"set_": [], "wrt": [], "freeze": [], "retain": [], "plugin": [], "inputs": []}
    positional = []
    items = iter(argv[1:])
    for item in items:
        if item == "-" or not item.startswith("-"):
            positional.append(item)
            continue
        flag, eq, value = item.partition("=")
        if flag not in allowed:
            return None
        param, kind = OPTIONS[flag]
        if kind is bool:
            if eq:
                return None
            found[param] = True
            continue
        if not eq:
            value = next(items, None)
            if value is None:
                return None
        if kind in (int, float):
            try:
                value = kind(value)
            except ValueError:
                return None
        if kind is list:
            found[param].append(value)
        else:
            found[param] = value
    if not positional:
        return None
    from . import commands
    extra = {}
    if name in ("grad", "jacobian", "hessian", "diff", "check"):
        extra["wrt"] = _split(found.pop("wrt"))
    if name in ("grad", "backward"):
        extra["grad_output"] = found.get("grad_output")
    if name == "backward":
        extra["times"] = found.get("times", 1)
        extra["zero_grad"] = found.get("zero_grad", False)
        extra["retain_graph"] = found.get("retain_graph", False)
        extra["create_graph"] = found.get("create_graph", False)
        extra["inputs"] = _split(found["inputs"])
    if name in ("diff", "check"):
        extra["order"] = found.get("order", None if name == "diff" else 1)
    if name == "check":
        extra.update({key: found.get(key) for key in ("eps", "atol", "rtol")})
    fmt = found.get("fmt", "auto")
    if name == "graph" and fmt not in ("auto", "tree", "dot", "json", "plain", "table"):
        return None
    return _execute(getattr(commands, name), fmt, found.get("json_", False), found.get("precision", 6),
                    positional[0], positional[1:], found["set_"], found.get("values"), found.get("dtype", "float64"),
                    found.get("device", "cpu"), found.get("seed"), found["plugin"], found["freeze"],
                    found["retain"], each=found.get("each"), **extra)


def main(argv=None) -> None:
    """The console script: ``gradcli``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = _fast(argv)
        if code is not None:
            sys.exit(code)
        _build_app()(argv, prog_name="gradcli")
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        _quiet_pipe()
        sys.exit(0)
