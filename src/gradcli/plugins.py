"""``--plugin FILE.py``: the user's own ``gradcli.autograd.Function`` subclasses as functions.

Loading a plugin runs the file, as ``python FILE.py`` would: it is code the user chose to run.
Every ``Function`` subclass the file *defines* (not ones it imports) becomes callable in the
language by its lower-cased class name: ``class line(Function)`` gives ``line(w, x, b)``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path

from . import ops
from .autograd import Function
from .errors import GradcliError


def load_plugin(path) -> dict:
    """Import ``path``; return ``{lower-cased class name: Cls.apply}`` for its Function subclasses."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise GradcliError("file", f"cannot read plugin '{path}': no such file")
    if file.suffix != ".py":
        raise GradcliError("plugin", f"plugin '{path}' is not a Python file (.py)")
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:10]
    module_name = f"gradcli_plugin_{re.sub(r'[^0-9A-Za-z_]', '_', file.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise GradcliError("plugin", f"cannot import plugin '{path}'")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so the plugin's own dataclasses / pickling work
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise GradcliError("plugin", f"plugin '{path}' line {exc.lineno}: syntax error: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code may raise anything
        sys.modules.pop(module_name, None)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
        where = f" line {frames[-1].lineno}" if frames else ""
        raise GradcliError("plugin", f"plugin '{path}'{where} failed to load: {type(exc).__name__}: {exc}") from None

    functions = {}
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Function)
            and value is not Function
            and value.__module__ == module_name
        ):
            name = value.__name__.lower()
            if name in ops.FUNCTIONS:
                raise GradcliError(
                    "plugin",
                    f"plugin '{path}': class {value.__name__} would hide the "
                    f"built-in function '{name}'; give it another name",
                )
            functions[name] = value.apply
    if not functions:
        raise GradcliError("plugin", f"plugin '{path}' defines no gradcli.autograd.Function subclass")
    return functions


def load_plugins(paths) -> dict:
    """Several plugins into one table; two classes with the same name are an error."""
    table: dict = {}
    for path in paths:
        for name, fn in load_plugin(path).items():
            if name in table:
                raise GradcliError("plugin", f"plugin '{path}': function '{name}' is defined twice")
            table[name] = fn
    return table
