"""Input values: ``NAME=VALUE`` with VALUE in the program language, ``@FILE``, ``--values FILE``.

A VALUE is a program with no free names (``2``, ``[1, 2]``, ``randn(3, 3)``,
``ones(2, 2) * 0.5``), evaluated by the same parser and interpreter as programs, or ``@FILE``
naming a ``.npy``, ``.json``, ``.txt`` (or ``.csv``) array.  Files are data, never code:
``.npy`` / ``.npz`` load with ``allow_pickle=False`` and JSON must hold numbers.

``@-`` (and ``--values -``) read standard input, as do pipes and devices such as
``@/dev/stdin`` or ``@<(command)``: their content is recognised (``.npy`` / ``.npz`` bytes, JSON,
or a table of numbers).  Standard input is read at most once per command: the program (``-``),
a value and ``--values`` cannot share it.  An error inside a value names it ("in the value of
y: ..."), with the file and key for ``--values`` files.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import sys
from pathlib import Path

from . import limits
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


class Stdin:
    """Standard input, read at most once per command (by the program, a value or ``--values``)."""

    def __init__(self, owner: str | None = None):
        self.owner = owner  # "the program" when PROGRAM is '-'

    def read(self, who: str) -> bytes:
        if self.owner is not None:
            raise GradcliError(
                "value",
                f"standard input can be read only once: {self.owner} and {who} "
                "both ask for it (put one of them in a file)",
            )
        self.owner = who
        stream = sys.stdin
        if stream is None:
            raise GradcliError("file", f"{who}: there is no standard input to read")
        if stream.isatty() and sys.stderr is not None:
            print(f"gradcli: reading {who} from the terminal; end it with Ctrl-D", file=sys.stderr)
        data = _bounded(stream.buffer if hasattr(stream, "buffer") else stream, who)
        return data.encode("utf-8") if isinstance(data, str) else data


def gather(assignments, values_file, inputs, dtype="float64", device="cpu", stdin=None):
    """The input tensors given on the command line: ``(given, notes)``.

    ``assignments`` are ``NAME=VALUE`` texts (a name that is not an input is an error);
    ``values_file`` a ``--values`` file whose keys the program does not use are skipped, with
    one note (a values file may serve several programs).
    """
    stdin = stdin or Stdin()
    wanting = [stdin.owner] if stdin.owner else []
    if values_file in ("-", "/dev/stdin", "/dev/fd/0"):
        wanting.append("--values")
    for text in assignments:
        name, _, value = text.partition("=")
        if value.strip() in ("@-", "@/dev/stdin", "@/dev/fd/0"):
            wanting.append(f"the value of {name.strip()}")
    if len(wanting) > 1:
        raise GradcliError(
            "value",
            f"standard input can be read only once: {wanting[0]} and {wanting[1]} "
            "both ask for it (put one of them in a file)",
        )
    given, notes = {}, []
    if values_file:
        loaded = load_values(values_file, dtype=dtype, device=device, stdin=stdin, keep=set(inputs))
        skipped = [n for n in loaded if n not in inputs]
        if skipped:
            where = "standard input" if values_file == "-" else f"'{values_file}'"
            notes.append(
                f"note: --values {where}: skipped {_listing(skipped)}, not "
                f"{'an input' if len(skipped) == 1 else 'inputs'} of the program"
            )
        given.update({n: v for n, v in loaded.items() if n in inputs})
    for text in assignments:
        name, value = parse_assignment(text)
        if name not in inputs:
            raise GradcliError(
                "value", f"unknown input '{name}': the program's inputs are {', '.join(inputs) or '(none)'}"
            )
        if name in given:
            raise GradcliError(
                "value", f"input '{name}' is given twice: in --values {values_file} and as {text.strip()}; give it once"
            )
        given[name] = parse_value(value, dtype=dtype, device=device, name=name, stdin=stdin)
    return given, notes


def _listing(names):
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def parse_value(text: str, dtype="float64", device="cpu", name=None, stdin=None):
    """A constant tensor from VALUE text: an expression with no free names, or ``@FILE``
    (``@-``: standard input).  With ``name``, an error names the value it is in."""
    try:
        return _parse_value(text, dtype, device, name, stdin)
    except GradcliError as error:
        if name is None or error.message.startswith(("in the value of", "standard input can be read only once")):
            raise
        raise _in_value(error, name, text) from None


def _in_value(error, name, text):
    """``error`` as an error in ``NAME=VALUE``: the message names it, the caret points into it."""
    message = error.message.replace("the end of the program", "the end of the value")
    located = GradcliError(error.kind, f"in the value of {name}: {message}", hint=getattr(error, "hint", None))
    if error.span is not None and error.source is not None and error.source == text.strip():
        offset = len(name) + 1 + (len(text) - len(text.lstrip()))
        located.locate(f"{name}={text}", (error.span[0] + offset, error.span[1] + offset))
    return located


def _parse_value(text, dtype, device, name, stdin):
    text = text.strip()
    if text.startswith("@"):
        return load_array(
            text[1:], dtype=dtype, device=device, stdin=stdin, who=f"the value of {name}" if name else "a value"
        )
    from .language import parse, run

    program = parse(text)
    if program.inputs:
        free = program.inputs[0]
        from .language.ast import scan_names

        span = scan_names(program.statements)[0][free]  # where the free name is first read
        special = {"nan": "0/0", "NaN": "0/0", "inf": "1/0", "Infinity": "1/0", "infinity": "1/0"}
        if free in special:
            raise GradcliError(
                "value",
                f"'{free}' is not a name gradcli knows: write {special[free]} for "
                f"{'NaN' if special[free] == '0/0' else 'infinity'} (and -1/0), or "
                '"NaN" / "Infinity" in a JSON file',
            ).locate(text, span)
        raise GradcliError(
            "value",
            f"a value cannot use the name '{free}': write numbers, [lists], "
            "constants (pi, e) and functions such as randn(3) or ones(2, 2) * 0.5",
        ).locate(text, span)
    return _constant(run(program, {}, dtype=dtype, device=device).output, dtype, device)


def load_array(path: str, dtype="float64", device="cpu", stdin=None, who="a value"):
    """A constant tensor from a ``.npy``, ``.json``, ``.txt`` or ``.csv`` file, or from standard
    input / a pipe (``-``, ``/dev/stdin``, ``<(command)``), whose content is recognised."""
    import numpy as np

    file = _readable(path)
    if file is None or not file.is_file() or _is_stdin(file):
        data = _special(path, file, stdin, who)
        where = "standard input" if file is None or _is_stdin(file) else f"'{path}'"
        return _from_array(_sniff_array(data, where), where, dtype, device)
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            with open(file, "rb") as handle:
                limits.npy_header(handle, f"'{path}'")  # the shape, checked before reading data
                handle.seek(0)
                array = np.load(handle, allow_pickle=False)
        elif suffix == ".json":
            array = _from_json(_json(file.read_text(encoding="utf-8"), f"'{path}'"), path)
        elif suffix in (".txt", ".csv", ".tsv"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # numpy's "input contained no data"
                try:
                    array = np.loadtxt(file, dtype=np.float64, delimiter="," if suffix == ".csv" else None)
                except UserWarning:
                    raise GradcliError("value", f"'{path}' holds no numbers") from None
        else:
            raise GradcliError(
                "file",
                f"cannot read '{path}': unsupported file type '{suffix or file.name}' "
                "(use .npy, .json, .txt or .csv; --values takes .json or .npz)",
            )
    except GradcliError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise GradcliError("file", f"cannot read '{path}': {exc}") from None
    except (ValueError, TypeError, EOFError, OverflowError) as exc:
        raise GradcliError("value", f"'{path}' does not hold a numeric array: {exc}") from None
    return _from_array(array, path, dtype, device)


def load_values(path: str, dtype="float64", device="cpu", stdin=None, keep=None) -> dict:
    """Many values at once: a ``.json`` object (name -> number, nested list, or VALUE text)
    or a ``.npz`` archive (name -> array); ``-`` reads either from standard input.  With
    ``keep``, only those names are converted (the others are returned as None)."""
    import numpy as np

    file = _readable(path)
    special = file is None or not file.is_file() or _is_stdin(file)
    where = "standard input" if file is None or (special and _is_stdin(file)) else f"'{path}'"
    if special:
        raw = _special(path, file, stdin, "--values")
        suffix = ".npz" if raw[:2] == b"PK" else ".json"
    else:
        suffix = file.suffix.lower()
    out = {}
    try:
        if suffix == ".json":
            text = raw.decode("utf-8") if special else file.read_text(encoding="utf-8")
            try:
                data = _json(text, where)
            except json.JSONDecodeError as exc:
                raise GradcliError("value", f"{where} is not a JSON object of name -> value: {exc}") from None
            if not isinstance(data, dict):
                raise GradcliError("value", f"{where} must hold a JSON object of name -> value")
            for name, value in data.items():
                _check_name(name, where)
                if keep is not None and name not in keep:
                    out[name] = None
                elif isinstance(value, str) and value not in _JSON_SPECIAL:
                    try:
                        out[name] = parse_value(value, dtype=dtype, device=device)
                    except GradcliError as error:
                        raise _in_file(error, name, where) from None
                else:
                    out[name] = _from_array(
                        _from_json(value, f"in the value of {name} in {where}", quoted=False),
                        f"{where}: {name}",
                        dtype,
                        device,
                    )
        elif suffix == ".npz":
            _npz_headers(io.BytesIO(raw) if special else file, where)  # every shape, before reading data
            with np.load(io.BytesIO(raw) if special else file, allow_pickle=False) as archive:
                for name in archive.files:
                    _check_name(name, where)
                    if keep is not None and name not in keep:
                        out[name] = None
                        continue
                    try:
                        array = archive[name]
                    except ValueError as exc:
                        raise GradcliError("value", f"in the value of {name} in {where}: {exc}") from None
                    out[name] = _from_array(array, f"{where}: {name}", dtype, device)
        else:
            raise GradcliError("file", f"cannot read values from '{path}': use a .json object or a .npz archive")
    except GradcliError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise GradcliError("file", f"cannot read '{path}': {exc}") from None
    except (ValueError, TypeError, EOFError, OverflowError) as exc:
        raise GradcliError("value", f"'{path}' does not hold numeric values: {exc}") from None
    return out


# ------------------------------------------------------------------------------------------


def _readable(path) -> Path | None:
    """The file to read (None: standard input); directories and missing files are errors."""
    if not str(path):
        raise GradcliError("file", "no file name after '@' (use @- for standard input)")
    if path == "-":
        return None
    file = Path(path).expanduser()
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise GradcliError("file", f"cannot read '{path}': no such file") from None
    except OSError as exc:
        raise GradcliError("file", f"cannot read '{path}': {limits._why(exc)}") from None
    except ValueError:
        raise GradcliError("file", f"cannot read '{path}': a file name cannot hold a NUL character") from None
    if not os.access(file, os.R_OK):
        raise GradcliError("file", f"cannot read '{path}': permission denied")
    if stat.S_ISDIR(mode):
        raise GradcliError("file", f"cannot read '{path}': it is a directory; name a file in it")
    if stat.S_ISSOCK(mode):
        raise GradcliError("file", f"cannot read '{path}': it is a socket, not a file")
    return file


def _is_stdin(file) -> bool:
    try:
        return os.path.samefile(file, "/dev/stdin") or str(file) in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")
    except OSError:
        return str(file) in ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")


def _special(path, file, stdin, who) -> bytes:
    """The bytes of standard input or of a pipe / device (read once, to the end)."""
    if file is None or _is_stdin(file):
        return (stdin or Stdin()).read(who)
    kind = "a named pipe (FIFO)" if stat.S_ISFIFO(file.stat().st_mode) else "a device"
    try:
        with open(file, "rb") as handle:
            return _bounded(handle, f"'{path}'")
    except OSError as exc:
        raise GradcliError("file", f"cannot read '{path}' ({kind}): {exc.strerror or exc}") from None


def _sniff_array(data: bytes, where):
    """An array from bytes of unknown type: .npy, JSON, or a whitespace / comma table."""
    import numpy as np

    if data.startswith(b"\x93NUMPY"):
        limits.npy_header(io.BytesIO(data), where)
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise GradcliError("value", f"{where} holds a .npy array that cannot be read: {exc}") from None
    try:
        text = data.decode("utf-8").lstrip("\ufeff").strip()
    except UnicodeDecodeError:
        raise GradcliError("value", f"{where} is neither a .npy array nor text") from None
    if not text:
        raise GradcliError("value", f"{where} is empty: give a number, a JSON array or a table of numbers")
    try:
        parsed = _json(text, where)
    except json.JSONDecodeError:
        parsed = None
    if parsed is not None:
        return _from_json(parsed, where, quoted=False)
    try:
        delimiter = "," if "," in text.splitlines()[0] else None
        return np.loadtxt(io.StringIO(text), dtype=np.float64, delimiter=delimiter, ndmin=0)
    except ValueError as exc:
        raise GradcliError("value", f"{where} holds neither JSON nor a table of numbers: {exc}") from None


def _bounded(stream, where) -> bytes:
    """All of ``stream`` (standard input, a pipe, a device), read in chunks and refused once it is
    larger than any array the element limit allows (``yes |`` and ``/dev/zero`` end)."""
    limit = 8 * limits.max_elements() + (1 << 20)
    parts, total = [], 0
    while True:
        chunk = stream.read(1 << 16)
        if not chunk:
            return (b"" if not parts or isinstance(parts[0], bytes) else "").join(parts)
        total += len(chunk)
        if total > limit:
            raise GradcliError(
                "limit",
                f"{where} is larger than {limits.size(limit, 1)}, more than an array "
                "within the element limit can take (--max-elements or GRADCLI_MAX_ELEMENTS)",
            )
        parts.append(chunk)


def _json(text, where):
    """A JSON document; one nested too deeply is an error, not a RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise GradcliError("value", f"{where} is nested too deeply to read") from None


def _npz_headers(file, where):
    import zipfile

    try:
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    with archive.open(info) as handle:
                        limits.npy_header(handle, f"{where}: {info.filename[:-4]}")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        where = where if where.startswith("'") or where == "standard input" else f"'{where}'"
        raise GradcliError("file", f"{where} is not a .npz archive (a zip of .npy arrays): {exc}") from None


def _in_file(error, name, where):
    message = error.message.replace("the end of the program", "the end of the value")
    return GradcliError(
        error.kind,
        f"in the value of {name} in {where}: {message}",
        line=error.line,
        column=error.column,
        span=error.span,
        source=error.source,
    )


def _check_name(name, where):
    if not NAME.match(name):
        raise GradcliError("value", f"{where}: {name!r} is not a valid input name")


def _from_json(data, where, quoted=True):
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
            shown = f"'{where}'" if quoted else where
            raise GradcliError(
                "value", f"{shown}: expected numbers or nested lists of numbers, found {json.dumps(item)[:40]}"
            )
    if special:
        data = _map_nested(data, lambda v: _JSON_SPECIAL.get(v, v) if isinstance(v, str) else v)
    shown = f"'{where}'" if quoted else where
    try:
        return np.array(data, dtype=np.float64)
    except ValueError:
        raise GradcliError("value", f"{shown}: the nested lists are ragged (rows of different lengths)") from None
    except OverflowError:
        raise GradcliError("value", f"{shown}: a number is too large for float64 (at most about 1.8e308)") from None
    except RecursionError:
        raise GradcliError("value", f"{shown} is nested too deeply") from None


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
    limits.check_shape(array.shape, where if where.startswith("'") or where == "standard input" else f"'{where}'")
    import gradcli as G

    return G.tensor(array.astype(np.dtype(dtype)), dtype=dtype, device=device)


def _constant(tensor, dtype, device):
    import numpy as np

    import gradcli as G

    from .backend import to_numpy

    array = np.asarray(to_numpy(tensor.detach()._data))
    if array.dtype.kind not in "biuf":  # pragma: no cover - the language makes numbers
        raise GradcliError("value", f"a value must be numeric, not {array.dtype}")
    return G.tensor(array.astype(np.dtype(dtype)), dtype=dtype, device=device)
