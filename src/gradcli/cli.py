"""The command line: two parsers built from one table (``options.py``), thin commands over
``commands`` and ``render``, and the one place errors become exit codes (SPEC §5).

Start-up: this module imports only the standard library.  ``main`` parses ordinary command
lines itself (``parse_fast``) and runs the command without importing typer; anything else
(``--help``, completion, a usage error) goes to the typer app, built on first use from the same
table.  Both hand ``run`` the same ``{dest: value}`` arguments (a test compares them).
numpy, the engine and rich (tables only) are imported when a command runs.
"""

import os
import sys

from .options import COMMANDS, ENVIRONMENT, EXIT_CODES, options_for
from .options import command as find_command

ROOT_HELP = "Differentiate expressions with PyTorch's autograd semantics, on numpy."


# ------------------------------------------------------------------------------------------
# running a command (both parsers end here)


def _split(items) -> list:
    return [part.strip() for item in items or () for part in item.split(",") if part.strip()]


def _program_text(program: str) -> str:
    from .limits import read_program  # regular files and stdin only, bounded, in chunks

    if program == "-" and sys.stdin is not None and sys.stdin.isatty():
        _say("gradcli: reading the program from standard input (end it with Ctrl-D)")
    return read_program(program)


def _color() -> bool:
    return (
        sys.stdout is not None
        and sys.stdout.isatty()
        and "NO_COLOR" not in os.environ
        and os.environ.get("TERM") != "dumb"
    )


def _say(text) -> None:
    """A line on stderr; a closed or full stderr is no reason to fail (nor to write on stdout)."""
    if sys.stderr is None:
        return
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        sys.stderr = None


def _write_failed(exc) -> int:
    """stdout is closed or full: say so on stderr, exit 74 (EX_IOERR; README, exit codes)."""
    from .errors import KINDS

    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is closed"
    _say(f"error: cannot write the output: {why}")
    _quiet_pipe()
    return KINDS["output"]


def wants_json(argv) -> bool:
    """Whether a command line asks for JSON (for errors found before its options are parsed)."""
    argv = list(argv)
    if "--" in argv:
        argv = argv[: argv.index("--")]
    for i, item in enumerate(argv):
        if item == "--json" or item == "--format=json" or (item == "--format" and argv[i + 1 : i + 2] == ["json"]):
            return True
    return False


def _function(name):
    module, _, attr = name.rpartition(":")
    if not module:
        from . import commands

        return getattr(commands, name)
    import importlib

    return getattr(importlib.import_module(module), attr)


def run(name: str, args: dict) -> int:
    """Run command ``name`` on parsed ``args`` ({dest: value} with defaults filled): build the
    inputs, call the command's function, render; map errors to exit codes."""
    fmt = args.get("fmt", "auto")
    if args.get("json_"):
        fmt = "json" if fmt in ("auto", "json") else fmt
    writing = False
    try:
        from .errors import GradcliError

        if sys.stdout is None:
            raise GradcliError("output", "standard output is closed: there is nowhere to write the answer")
        if args.get("json_") and fmt != "json":
            fmt = "json"
            raise GradcliError("usage", f"--json and --format {args['fmt']} contradict each other: give one")
        from . import commands, render

        table = options_for(name)
        spec_args, call_args = {}, {}
        for option in table.values():
            if option.to == "cli":
                continue
            value = args.get(option.dest, option.default)
            if option.kind == "names":
                value = _split(value)
            elif option.kind == "list":
                value = list(value or ())
            (spec_args if option.to == "spec" else call_args)[option.dest] = value
        if args.get("precision", 6) < 1:
            raise GradcliError(
                "option", f"--precision {args['precision']}: give the number of significant digits (1 or more)"
            )
        device = spec_args.get("device", "cpu")
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise GradcliError("option", f"--device {device}: expected cpu, cuda or cuda:N")
        function = _function(find_command(name).function)
        if find_command(name).program:
            assignments = list(args.get("assignments") or ())
            _no_twice(assignments, spec_args.get("values", []))
            spec_args["values"] = assignments + spec_args.get("values", [])
            spec = commands.Inputs(
                program=_program_text(args["program"]),
                progress=_progress_bar(fmt),
                stdin_owner="the program" if args["program"] == "-" else None,
                **spec_args,
            )
            each = args.get("each")
            if each is not None and args["program"] == "-" and each == "-":
                raise GradcliError(
                    "option",
                    "--each - reads the values from stdin, so the program cannot "
                    "also come from stdin: give it as text or @FILE",
                )
            import numpy as np

            from .anomaly import guarded

            with np.errstate(all="ignore"):  # inf and nan are answers here (as in PyTorch), not warnings
                if each is not None:
                    from .each import Stream
                    from .limits import set_max_elements

                    set_max_elements(spec.max_elements)  # each line's tensors stay within the limit
                    return Stream(function, spec, call_args).run(each)
                result = guarded(function, spec, **call_args)  # limits, --detect-anomaly, --strict
        else:
            result = function(args.get("name"), **call_args)
        for note in result.notes:
            _say(note)
        if fmt == "auto":
            fmt = "table" if sys.stdout.isatty() else "plain"
        if fmt == "plain":  # tables show them as footnotes, JSON as "warnings"
            for warning in getattr(result, "warnings", ()):
                _say(f"warning: {warning}")
        writing = True
        render.render(result, fmt, precision=args.get("precision", 6), color=_color(), origin=args.get("program"))
        sys.stdout.flush()
        code = 0 if result.ok else 1
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        _quiet_pipe()
        code = 0
    except Exception as exc:  # noqa: BLE001 - the one place
        code = _write_failed(exc) if writing and isinstance(exc, (OSError, ValueError)) else _report(exc, fmt)
    return code


def _progress_bar(fmt):
    """A factory of rich progress bars on stderr, or None: only when both stdout and stderr are a
    terminal and the output is not JSON (a bar never mixes with piped or JSON output)."""
    if (
        fmt == "json"
        or sys.stderr is None
        or sys.stdout is None
        or not (sys.stderr.isatty() and sys.stdout.isatty())
        or os.environ.get("TERM") == "dumb"
    ):
        return None

    def factory(total, description):
        import contextlib

        @contextlib.contextmanager
        def bar():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            console.print(description, highlight=False, markup=False)
            with Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task(description.split(":")[0], total=total)
                yield lambda k=1: progress.advance(task, k)
                if total is None:
                    progress.update(task, total=1, completed=1)

        return bar()

    return factory


def _no_twice(assignments, sets):
    """The same input given twice (``b=1 b=2``, ``b=1 --set b=2``) is an error naming both."""
    from .errors import GradcliError

    seen = {}
    for text, where in [(t, t) for t in assignments] + [(t, f"--set {t}") for t in sets]:
        name = text.partition("=")[0].strip()
        if name in seen:
            raise GradcliError("value", f"input '{name}' is given twice: {seen[name]} and {where}; give it once")
        seen[name] = where


def _report(exc, fmt) -> int:
    from .errors import clean, user_error

    error = user_error(exc)  # out of memory, a plugin's own error, ...: the user's, exit 2
    if os.environ.get("GRADCLI_DEBUG") and error is not exc and sys.stderr is not None:
        import traceback

        traceback.print_exception(exc)
    if error is not None:
        if fmt == "json":
            from .render import error_json

            _say(error_json(error))
        else:
            _say(f"error: {error.describe()}")
        return error.exit_code
    message = clean(f"internal error: {type(exc).__name__}: {exc}")
    if fmt == "json":
        from .render import dumps

        _say(dumps({"error": {"kind": "internal", "message": message, "line": None, "column": None}}))
    else:
        _say(
            f"gradcli: {message}\nThis is a bug in gradcli; please report it with the command you ran "
            "(set GRADCLI_DEBUG=1 to see the traceback)."
        )
    return 70


def _usage_error(message, argv) -> int:
    """A usage error (unknown option, bad choice, missing argument): exit 2, as JSON under --json."""
    if wants_json(argv):
        from .render import dumps

        _say(dumps({"error": {"kind": "usage", "message": message, "line": None, "column": None}}))
    else:
        _say(message)
    return 2


def _quiet_pipe():
    if sys.stdout is None:
        return
    try:  # stdout is gone: stop Python's flush complaint
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# ------------------------------------------------------------------------------------------
# the fast parser: the common command lines, without typer

_CONVERT = {"int": int, "float": float, "str": str, "list": str, "names": str}


def parse_fast(argv):
    """``(command, {dest: value})`` for a plain command line; None when typer must handle it
    (help, completion, anything malformed: typer then gives the usage error)."""
    if not argv or any(k.startswith("_GRADCLI_COMPLETE") for k in os.environ):
        return None
    name = argv[0]
    if name not in {c.name for c in COMMANDS}:
        return None
    table = options_for(name, aliases=True)
    args = {o.dest: ([] if o.kind in ("list", "names") else o.default) for o in table.values()}
    positional = []
    items = iter(argv[1:])
    for item in items:
        if item == "--":
            positional.extend(items)
            break
        if item == "-" or not item.startswith("-"):
            positional.append(item)
            continue
        flag, eq, value = item.partition("=")
        option = table.get(flag)
        if option is None:
            return None
        if option.kind == "flag":
            if eq:
                return None
            args[option.dest] = True
            continue
        if not eq:
            value = next(items, None)
            if value is None:
                return None
        try:
            value = _CONVERT[option.kind](value)
        except ValueError:
            return None
        if option.choices and value not in option.choices:
            return None
        if option.kind in ("list", "names"):
            args[option.dest].append(value)
        else:
            args[option.dest] = value
    for option in table.values():  # typer gives None for an empty repeatable option
        if option.kind in ("list", "names") and not args[option.dest]:
            args[option.dest] = None
    if find_command(name).program:
        if not positional:
            return None
        args["program"], args["assignments"] = positional[0], (positional[1:] or None)
    else:
        if len(positional) > 1:
            return None
        args["name"] = positional[0] if positional else None
    return name, args


# ------------------------------------------------------------------------------------------
# the typer app, generated from the same table


def _help(command) -> str:
    return f"{command.help}\n\nExample:\n\n    {command.example}"


def _root_help() -> str:
    """``gradcli --help``: what it is, an example, exit codes and environment (click keeps
    paragraphs that start with a \\b line as they are)."""
    import textwrap

    def rows(table):  # a long text wraps under itself (click indents 2 more: 80 columns)
        width = max(len(key) for key, _ in table)
        return "\n".join(
            textwrap.fill(f"  {key:<{width}}  {text}", 78, subsequent_indent=" " * (width + 4), break_on_hyphens=False)
            for key, text in table
        )

    indent, env = rows(EXIT_CODES), rows(ENVIRONMENT)
    return (
        f"{ROOT_HELP}\n\nExample:\n\n    {find_command('grad').example}\n\n"
        "Run 'gradcli COMMAND -h' for a command's options, 'gradcli functions' for the functions "
        "of the language, 'gradcli completion SHELL' for shell completion.\n\n"
        f"\b\nExit codes:\n{indent}\n\n\b\nEnvironment:\n{env}"
    )


def _annotation(option, typer):
    """The type and typer.Option of one row."""
    import enum
    from typing import Annotated, List, Optional

    kind = option.kind
    extra = {}
    if option.choices:
        base = enum.Enum(f"{option.dest}_choices", {c: c for c in option.choices}, type=str)
        extra["case_sensitive"] = True
    else:
        base = {"int": int, "float": float, "flag": bool}.get(kind, str)
    if kind in ("list", "names"):
        base = Optional[List[base]]
    elif option.default is None:
        base = Optional[base]
    if option.metavar:
        extra["metavar"] = option.metavar
    info = typer.Option(
        option.flag, *option.aliases, help=option.help, show_default=option.default not in (None, False), **extra
    )
    return Annotated[base, info]


def _usage_pieces(command) -> list:
    if command.program:
        return ["[OPTIONS]", "PROGRAM", "[NAME=VALUE]..."]
    return ["[OPTIONS]", "[NAME]"]


def _option_label(option) -> str:
    if option.kind == "flag":
        return option.flag
    return f"{option.flag} {option.metavar or '|'.join(map(str, option.choices)) or option.kind.upper()}"


def help_text(command, formatter) -> str:
    """COMMAND --help, written from the table with click's formatter (same layout everywhere)."""
    formatter.write_usage(f"gradcli {command.name}", " ".join(_usage_pieces(command)))
    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(command.help)
        formatter.write_paragraph()
        formatter.write_text("Example:")
        formatter.write_paragraph()
        formatter.write_text("\b\n    " + command.example)
    if command.program:
        arguments = [
            ("PROGRAM", "the program text, '-' for standard input, or @FILE"),
            (
                "[NAME=VALUE]...",
                "input values: a number, [1, 2], an expression such as randn(3), or @FILE (.npy .json .txt)",
            ),
        ]
    else:
        arguments = [("[NAME]", "one function (default: all)")]
    with formatter.section("Arguments"):
        formatter.write_dl(arguments)
    rows = []
    for option in options_for(command.name).values():
        text = option.help
        if option.default not in (None, False, ()):
            text += f"  [default: {option.default}]"
        rows.append((_option_label(option), text))
    rows.append(("-h, --help", "show this message and exit"))
    with formatter.section("Options"):
        formatter.write_dl(rows)
    return formatter.getvalue().rstrip("\n")


def _command_class(command, typer):
    """typer's command class with the usage line and help page written from the table."""
    import typer.core

    class Command(typer.core.TyperCommand):
        def collect_usage_pieces(self, ctx):
            return _usage_pieces(command)

        def get_help(self, ctx):
            return help_text(command, ctx.make_formatter())

    return Command


def _function_names(incomplete: str):
    """Completion of ``gradcli functions NAME``: the language's functions."""
    from .catalog import names

    return [n for n in names() if n.startswith(incomplete)]


def _typer_command(command, typer):
    """A function whose signature typer reads: PROGRAM, [NAME=VALUE]..., then the options."""
    import enum
    import inspect
    from typing import Annotated, List, Optional

    P = inspect.Parameter
    params = []
    if command.program:
        params.append(
            P(
                "program",
                P.POSITIONAL_OR_KEYWORD,
                annotation=Annotated[str, typer.Argument(metavar="PROGRAM", show_default=False)],
            )
        )
        params.append(
            P(
                "assignments",
                P.POSITIONAL_OR_KEYWORD,
                default=None,
                annotation=Annotated[Optional[List[str]], typer.Argument(metavar="NAME=VALUE", show_default=False)],
            )
        )
    else:
        params.append(
            P(
                "name",
                P.POSITIONAL_OR_KEYWORD,
                default=None,
                annotation=Annotated[
                    Optional[str], typer.Argument(metavar="NAME", show_default=False, autocompletion=_function_names)
                ],
            )
        )
    for option in options_for(command.name).values():
        params.append(
            P(option.dest, P.POSITIONAL_OR_KEYWORD, default=option.default, annotation=_annotation(option, typer))
        )

    def invoke(**args):
        args = {
            k: (
                v.value
                if isinstance(v, enum.Enum)
                else [x.value if isinstance(x, enum.Enum) else x for x in v]
                if isinstance(v, list)
                else v
            )
            for k, v in args.items()
        }
        raise typer.Exit(_HOOK["run"](command.name, args))

    invoke.__signature__ = inspect.Signature(params)
    invoke.__annotations__ = {p.name: p.annotation for p in params}
    invoke.__name__ = command.name
    return invoke


#: what the typer app calls with (command, args): ``run``; a test swaps it to compare parsers
_HOOK = {"run": run}

SHELLS = ("bash", "zsh", "fish")


def _build_app():
    """The typer app (typer is imported only here: the fast path in ``main`` does without it)."""
    from typing import Annotated, Optional

    import typer
    import typer.core

    try:  # typer's completion classes (the scripts and requests use them)
        from typer import _completion_classes

        _completion_classes.completion_init()
    except (ImportError, AttributeError):
        pass

    app = typer.Typer(
        name="gradcli",
        help=_root_help(),
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def _version(value: bool):
        if value:
            from importlib.metadata import PackageNotFoundError, version

            try:
                print(f"gradcli {version('gradcli')}")
            except PackageNotFoundError:
                print("gradcli (not installed)")
            raise typer.Exit()

    @app.callback()
    def _root(
        version: Annotated[
            Optional[bool],
            typer.Option("--version", callback=_version, is_eager=True, help="show the version and exit"),
        ] = None,
    ):
        pass

    for command in COMMANDS:
        app.command(command.name, help=_help(command), short_help=command.help, cls=_command_class(command, typer))(
            _typer_command(command, typer)
        )

    import enum

    Shell = enum.Enum("Shell", {s: s for s in SHELLS}, type=str)

    class _Usage(typer.core.TyperCommand):
        def collect_usage_pieces(self, ctx):
            return ["SHELL"]

    @app.command(
        "completion",
        cls=_Usage,
        help="Print the shell completion script for SHELL.\n\n"
        "\b\nInstall it with one of:\n"
        "  echo 'eval \"$(gradcli completion bash)\"' >> ~/.bashrc\n"
        "  echo 'eval \"$(gradcli completion zsh)\"' >> ~/.zshrc\n"
        "  gradcli completion fish > ~/.config/fish/completions/gradcli.fish",
    )
    def completion(shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish")]):
        print(completion_script(shell.value, app))

    return app


def completion_script(shell: str, app=None) -> str:
    """The completion script for ``shell`` (click's, through typer's command)."""
    import importlib

    import typer.main

    group = typer.main.get_command(app or _build_app())
    base = next(c for c in type(group).__mro__ if c.__name__ == "Command")
    module = importlib.import_module(base.__module__.rpartition(".")[0] + ".shell_completion")
    cls = module.get_completion_class(shell)
    return cls(group, {}, "gradcli", "_GRADCLI_COMPLETE").source()


def __getattr__(name):
    if name == "app":
        globals()["app"] = built = _build_app()
        return built
    raise AttributeError(name)


def _click_exception():
    import typer

    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def run_app(argv) -> int:
    """Run the typer app on ``argv``; usage errors become exit 2 (as JSON under --json)."""
    app = __getattr__("app")
    usage = _click_exception()
    try:
        code = app(argv, prog_name="gradcli", standalone_mode=False)
    except usage as exc:
        text = exc.format_message().replace("Value error, ", "")
        context = getattr(exc, "ctx", None)
        if not wants_json(argv) and context is not None:
            text = f"{context.get_usage()}\nTry '{context.command_path} -h' for help.\n\nerror: {text}"
        elif not wants_json(argv):
            text = f"error: {text}"
        return _usage_error(text, argv) if exc.exit_code == 2 else exc.exit_code
    return code if isinstance(code, int) else 0


def main(argv=None) -> None:
    """The console script: ``gradcli``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    from .errors import quiet_interrupts

    quiet_interrupts()
    if sys.stdout is None:  # started with stdout closed (>&-)
        sys.exit(_write_failed(None))
    argv = argv or ["--help"]
    try:
        parsed = parse_fast(argv)
        if parsed is not None:
            sys.exit(run(*parsed))
        sys.exit(run_app(argv))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        _quiet_pipe()
        sys.exit(0)
    except OSError as exc:  # --help and usage text into a full stdout
        sys.exit(_write_failed(exc))
