"""Input values: ``NAME=VALUE`` with VALUE in the program language, ``@FILE``, ``--values FILE``.

A VALUE is a program with no free names (``2``, ``[1, 2]``, ``randn(3, 3)``,
``ones(2, 2) * 0.5``), evaluated by the same parser and interpreter as programs, or ``@FILE``
naming a ``.npy``, ``.json``, ``.txt`` (or ``.csv``) array.  Files are data, never code:
``.npy`` / ``.npz`` load with ``allow_pickle=False`` and JSON must hold numbers.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from .errors import GradcliError

NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_JSON_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``"NAME=VALUE"`` into ``(NAME, VALUE)``; the value text is not evaluated here."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not NAME.match(name):
        raise GradcliError("value", f"expected NAME=VALUE (such as x=2 or W=randn(3, 3)), got {text!r}")
    if not value.strip():
        raise GradcliError("value", f"no value after '{name}=': give it as {name}=VALUE")
    return name, value.strip()


def parse_value(text: str, dtype="float64", device="cpu"):
    """A constant tensor from VALUE text: an expression with no free names, or ``@FILE``."""
    text = text.strip()
    if text.startswith("@"):
        return load_array(text[1:], dtype=dtype, device=device)
    from .language import parse, run
    program = parse(text)
    if program.inputs:
        free = program.inputs[0]
        span = next(n.span for s in program.statements for n in _names(s) if n.id == free)
        raise GradcliError("value", f"a value cannot use the name '{free}': write numbers, [lists], "
                           "constants (pi, e) and functions such as randn(3) or ones(2, 2) * 0.5"
                           ).locate(text, span)
    return _constant(run(program, {}, dtype=dtype, device=device).output, dtype, device)


def load_array(path: str, dtype="float64", device="cpu"):
    """A constant tensor from a ``.npy``, ``.json``, ``.txt`` or ``.csv`` file."""
    import numpy as np
    file = _readable(path)
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(file, allow_pickle=False)
        elif suffix == ".json":
            array = _from_json(json.loads(file.read_text(encoding="utf-8")), path)
        elif suffix in (".txt", ".csv", ".tsv"):
            array = np.loadtxt(file, dtype=np.float64, delimiter="," if suffix == ".csv" else None)
        else:
            raise GradcliError("file", f"cannot read '{path}': unsupported file type '{suffix or file.name}' "
                               "(use .npy, .json, .txt or .csv; --values takes .json or .npz)")
    except GradcliError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise GradcliError("file", f"cannot read '{path}': {exc}") from None
    except (ValueError, TypeError, EOFError) as exc:
        raise GradcliError("value", f"'{path}' does not hold a numeric array: {exc}") from None
    return _from_array(array, path, dtype, device)


def load_values(path: str, dtype="float64", device="cpu") -> dict:
    """Many values at once: a ``.json`` object (name -> number, nested list, or VALUE text)
    or a ``.npz`` archive (name -> array)."""
    import numpy as np
    file = _readable(path)
    suffix = file.suffix.lower()
    out = {}
    try:
        if suffix == ".json":
            data = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise GradcliError("value", f"'{path}' must hold a JSON object of name -> value")
            for name, value in data.items():
                _check_name(name, path)
                if isinstance(value, str) and value not in _JSON_SPECIAL:
                    out[name] = parse_value(value, dtype=dtype, device=device)
                else:
                    out[name] = _from_array(_from_json(value, f"{path}: {name}"), path, dtype, device)
        elif suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                for name in archive.files:
                    _check_name(name, path)
                    out[name] = _from_array(archive[name], f"{path}: {name}", dtype, device)
        else:
            raise GradcliError("file", f"cannot read values from '{path}': use a .json object or a .npz archive")
    except GradcliError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise GradcliError("file", f"cannot read '{path}': {exc}") from None
    except (ValueError, TypeError, EOFError) as exc:
        raise GradcliError("value", f"'{path}' does not hold numeric values: {exc}") from None
    return out


# ------------------------------------------------------------------------------------------

def _readable(path) -> Path:
    file = Path(path).expanduser()
    if not str(path):
        raise GradcliError("file", "no file name after '@'")
    if not file.is_file():
        raise GradcliError("file", f"cannot read '{path}': no such file")
    return file


def _check_name(name, path):
    if not NAME.match(name):
        raise GradcliError("value", f"'{path}': {name!r} is not a valid input name")


def _from_json(data, where):
    """A float64 array from a JSON number or nested list of numbers (and "NaN", "Infinity")."""
    import numpy as np
    stack, special = [data], False
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item in _JSON_SPECIAL:
            special = True
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            raise GradcliError("value", f"'{where}': expected numbers or nested lists of numbers, "
                               f"found {json.dumps(item)[:40]}")
    if special:
        data = _map_nested(data, lambda v: _JSON_SPECIAL.get(v, v) if isinstance(v, str) else v)
    return np.array(data, dtype=np.float64)


def _map_nested(data, fn):
    if not isinstance(data, list):
        return fn(data)
    root: list = []
    stack = [(data, root)]
    while stack:
        source, target = stack.pop()
        for item in source:
            if isinstance(item, list):
                child: list = []
                target.append(child)
                stack.append((item, child))
            else:
                target.append(fn(item))
    return root


def _from_array(array, where, dtype, device):
    import numpy as np
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise GradcliError("value", f"'{where}' holds {array.dtype} data, not numbers")
    import gradcli as G
    return G.tensor(array.astype(np.dtype(dtype)), dtype=dtype, device=device)


def _constant(tensor, dtype, device):
    import numpy as np
    import gradcli as G
    from .backend import to_numpy
    array = np.asarray(to_numpy(tensor.detach().data))
    if array.dtype.kind not in "biuf":           # pragma: no cover - the language makes numbers
        raise GradcliError("value", f"a value must be numeric, not {array.dtype}")
    return G.tensor(array.astype(np.dtype(dtype)), dtype=dtype, device=device)


def _names(statement):
    from .language import ast as A
    return [n for n in A.walk(statement) if isinstance(n, A.Name)]
