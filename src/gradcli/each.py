"""``--each FILE|-``: one command over a stream of JSON Lines (SPEC §3 "Beyond PyTorch").

Each input line is a JSON object of input values (a number, a nested list, or a VALUE text such
as ``"randn(3)"``); each output line is the object ``--json`` would print for that line, or
``{"error": {...}}`` for a line that failed (with ``input_line``, its 1-based number).  The
program is parsed once.  Input is read in chunks as it arrives, so output starts before the
input ends and memory does not grow with the number of lines.

Throughput: a run of consecutive lines whose inputs have the same names and shapes is
evaluated as one batch (the lines stacked along a new leading dimension) when the program is
elementwise (only operators and elementwise functions: broadcasting then keeps each line's
numbers apart; powers only as ``x ^ 2``, see ``_squared``) and the command is ``eval`` or ``grad``.
The first line of each new shape signature runs alone, which both gives its answer and says
what shape each line's output has;
anything the batch cannot do exactly as the lines would (an error, a different shape) falls
back to running those lines one by one.  Tests check that both ways print the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import sys

from .errors import GradcliError
from .formula import ELEMENTWISE as FORMULA_ELEMENTWISE

#: language functions (and operators) whose result at each element depends only on the inputs'
#: elements there: a program made of these alone can be run on many lines at once.  Formulas use
#: the same set; a power is batched only as ``x ^ 2`` (``_squared``), and the grad modes only
#: change whether a graph is recorded.
ELEMENTWISE = (FORMULA_ELEMENTWISE - {"pow"}) | {"no_grad", "enable_grad", "set_grad_enabled"}
BATCHED_COMMANDS = ("evaluate", "grad")
CHUNK = 1 << 16  # bytes read at a time
MAX_BATCH = 4096  # lines evaluated together at most
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def elementwise(program) -> bool:
    """Whether every operation of ``program`` is elementwise (so lines can be stacked)."""
    from .language import ast as A

    for statement in program.statements:
        for node in A.walk(statement):
            kind = type(node)
            if kind is A.Call:
                if node.func == "pow":
                    if not _squared(node):
                        return False
                elif node.func not in ELEMENTWISE:
                    return False
            elif kind in (A.Index, A.Attr, A.Slice) or kind is A.Array and not _numbers_only(node):
                return False
    return True


def _squared(node) -> bool:
    """``x ^ 2`` or ``x ^ 1``: numpy's power of a scalar (libm's pow) and of an array (its own
    loop) differ in the last bit, so only the powers computed without ``pow`` can be batched."""
    from .language import ast as A

    if len(node.args) != 2 or node.kwargs or type(node.args[0]) is A.Const:
        return False
    exponent = node.args[1]
    return type(exponent) is A.Const and not isinstance(exponent.value, bool) and exponent.value in (1, 2)


def _numbers_only(array) -> bool:
    from .language import ast as A

    return all(type(n) in (A.Array, A.Const) or (type(n) is A.Call and n.func in ("neg", "pos")) for n in A.walk(array))


def lines_of(source):
    """(number, bytes) for each line of ``source`` ("-" for stdin, else a path), as it arrives."""
    if source == "-":
        fd, close = sys.stdin.fileno(), False
    else:
        try:
            fd, close = os.open(source, os.O_RDONLY), True
        except OSError as exc:
            raise GradcliError("file", f"cannot read --each file '{source}': {exc.strerror or exc}") from None
    try:
        number, rest = 0, b""
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            found = []
            for part in parts:
                number += 1
                found.append((number, part))
            if found:
                yield found
        if rest.strip():
            yield [(number + 1, rest)]
    finally:
        if close:
            os.close(fd)


class Stream:
    """Run ``command`` (a function of ``commands``) once per input line; write JSON Lines."""

    def __init__(self, command, spec, kwargs, out=None, err=None):
        from . import commands
        from .language import parse

        self.command, self.kwargs = command, kwargs
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.dtype, self.device = spec.dtype, spec.device
        parsed = parse(spec.program)
        functions = None
        if spec.plugins:
            from .plugins import load_plugins

            functions = load_plugins(spec.plugins)
        self.given = spec
        self.defaults = None  # the values given once for every line (``run`` reads them)
        self.spec = commands.Inputs(
            program=spec.program,
            dtype=spec.dtype,
            device=spec.device,
            seed=spec.seed,
            freeze=list(spec.freeze),
            retain=list(spec.retain),
            parsed=parsed,
            functions=functions or {},
        )
        self.program = parsed
        self.inputs = list(parsed.inputs)
        self.batchable = (
            command.__name__ in BATCHED_COMMANDS
            and not functions
            and spec.seed is None
            and not kwargs.get("formula")
            and elementwise(parsed)
        )
        self.shapes: dict = {}  # signature -> the output shape of one line (batching works)
        self.notes: set = set()
        self.failed = self.crashed = False
        self._grad_output = None

    # -- the loop --------------------------------------------------------------------------------
    def _defaults(self, source):
        """Values given on the command line (``NAME=VALUE``, ``--values``): the same for every line."""
        from . import values as V

        spec = self.given
        owner = spec.stdin_owner
        if source == "-":
            if owner:
                raise GradcliError(
                    "value",
                    f"standard input can be read only once: {owner} and --each "
                    "both ask for it (put one of them in a file)",
                )
            owner = "--each"
        given, notes = V.gather(
            spec.values, spec.values_file, self.inputs, dtype=spec.dtype, device=spec.device, stdin=V.Stdin(owner)
        )
        self._notes(notes)
        return given

    def run(self, source) -> int:
        """Process every line of ``source``; the exit code (0, 1 if a line failed, 70 on a bug)."""
        import numpy as np

        with np.errstate(all="ignore"):  # inf and nan are answers here, not warnings
            return self._run(source)

    def _run(self, source) -> int:
        if self.defaults is None:
            self.defaults = self._defaults(source)
        for chunk in lines_of(source):
            texts = []
            pending = []  # consecutive lines of one signature
            signature = None
            for number, raw in chunk:
                parsed = self._decode(number, raw)
                if parsed is None:
                    continue  # a blank line
                if isinstance(parsed, str):  # an error already encoded
                    texts.extend(self._flush(pending))
                    pending, signature = [], None
                    texts.append(parsed)
                    continue
                sig = _signature(parsed) if self.batchable else None
                if sig is None or sig != signature or len(pending) >= MAX_BATCH:
                    texts.extend(self._flush(pending))
                    pending, signature = [], sig
                pending.append((number, parsed, sig))
            texts.extend(self._flush(pending))
            if texts:
                self.out.write("\n".join(texts) + "\n")
                self.out.flush()
        return 70 if self.crashed else 1 if self.failed else 0

    def _decode(self, number, raw):
        """A line's values as {name: array or text}, None for a blank line, or an error line."""
        text = raw.strip()
        if number == 1 and text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]  # a UTF-8 byte order mark
        if not text:
            return None
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            return self._error(number, GradcliError("value", f"not a JSON object: {exc}"))
        if not isinstance(data, dict):
            return self._error(
                number,
                GradcliError("value", f'expected a JSON object of input values such as {{"x": 2}}, got {text[:40]!r}'),
            )
        return data

    def _flush(self, pending):
        if not pending:
            return []
        sig = pending[0][2]
        if sig is None or len(pending) == 1 and sig in self.shapes or not self.batchable:
            return [self._one(number, data) for number, data, _ in pending]
        texts = []
        if sig not in self.shapes:
            number, data, _ = pending[0]
            result = self._one(number, data, probe=sig)
            texts.append(result)
            pending = pending[1:]
            if sig not in self.shapes:  # the probe failed: these lines go one by one
                return texts + [self._one(number, data) for number, data, _ in pending]
        if pending:
            try:
                batched = self._batch(pending, self.shapes[sig])
            except (KeyboardInterrupt, BrokenPipeError):
                raise
            except Exception:  # noqa: BLE001 - the lines themselves will say what is wrong
                batched = None
            if batched is None:
                self.shapes.pop(sig, None)
                batched = [self._one(number, data) for number, data, _ in pending]
            texts.extend(batched)
        return texts

    # -- one line ----------------------------------------------------------------------------------
    def _one(self, number, data, probe=None) -> str:
        from . import render

        try:
            given = dict(self.defaults)
            for name, value in data.items():
                given[name] = self._tensor(name, value)
            spec = _replace(self.spec, given)
            result = self.command(spec, **self.kwargs)
        except GradcliError as exc:
            return self._error(number, exc)
        except RuntimeError as exc:
            return self._error(number, GradcliError("autograd", str(exc)))
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug, reported per line
            self.crashed = True
            return self._error(number, GradcliError("internal", f"{type(exc).__name__}: {exc}"))
        self._notes(result.notes)
        if not result.ok:
            self.failed = True
        if probe is not None:
            self.shapes[probe] = tuple(result.shape)
        return render.to_json(result)

    def _tensor(self, name, value):
        import gradcli as G

        from . import values as V

        if not isinstance(name, str) or not V.NAME.match(name):
            raise GradcliError("value", f"{name!r} is not a valid input name")
        if isinstance(value, str) and value not in _SPECIAL:
            return V.parse_value(value, dtype=self.dtype, device=self.device)
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            return G.tensor(float(value), dtype=self.dtype, device=self.device)
        return V._from_array(V._from_json(value, f"input line: {name}"), name, self.dtype, self.device)

    def _error(self, number, exc) -> str:
        from . import render

        self.failed = True
        body = exc.to_json()
        body["input_line"] = number
        return render.dumps({"error": body})

    def _notes(self, notes):
        for note in notes:
            if note not in self.notes:
                self.notes.add(note)
                print(note, file=self.err)

    # -- many lines at once ------------------------------------------------------------------------
    def _seed(self, out_shape):
        """One line's gradient seed as an array: ``--grad-output`` (a VALUE or ``ones``), else 1."""
        import numpy as np

        text = self.kwargs.get("grad_output")
        if text is None or text.strip() == "ones":
            return np.ones(out_shape, dtype=self.dtype)
        if self._grad_output is None:
            from .values import parse_value

            self._grad_output = np.asarray(parse_value(text, dtype=self.dtype)._data)
        return self._grad_output

    def _batch(self, pending, out_shape):
        """The JSON lines of ``pending`` (one signature) from one evaluation, or None to fall back."""
        import numpy as np

        import gradcli as G

        from .language import run

        count = len(pending)
        rank = len(out_shape)
        dtype = np.dtype(self.dtype)
        tensors, shapes = {}, {}
        given = dict(pending[0][2])
        try:
            for name in self.inputs:
                if name in given:
                    column = [data[name] for _, data, _ in pending]
                    array = (
                        np.array(column, dtype=dtype)
                        if given[name] == ()
                        else np.stack([_array(v, dtype) for v in column])
                    )
                elif name in self.defaults:
                    base = np.asarray(self.defaults[name]._data)
                    array = np.broadcast_to(base, (count,) + base.shape).astype(dtype)
                else:
                    return None
                shape = array.shape[1:]
                if len(shape) > rank:
                    return None
                shapes[name] = shape
                array = array.reshape((count,) + (1,) * (rank - len(shape)) + shape)
                tensor = G.tensor(array, dtype=self.dtype, device=self.device)
                if name not in self.spec.freeze:
                    tensor.requires_grad_()
                tensors[name] = tensor
        except (ValueError, TypeError):
            return None
        evaluation = run(self.program, tensors, None, dtype=self.dtype, device=self.device)
        out = evaluation.output
        if tuple(out.shape) != (count,) + out_shape:
            return None
        values = np.asarray(out.detach()._data).tolist()
        grad_fn = out.grad_fn.name() if out.grad_fn is not None else None
        head = {
            "program": self.program.source,
            "value": None,
            "shape": list(out_shape),
            "dtype": str(out.dtype).removeprefix("torch."),
            "grad_fn": grad_fn,
        }
        columns = [_column(values, dtype)]
        if self.command.__name__ == "grad":
            if not out.requires_grad:
                return None
            names = list(self.kwargs.get("wrt") or ()) or list(self.inputs)
            seed = G.tensor(np.broadcast_to(self._seed(out_shape), (count,) + out_shape).copy(), dtype=self.dtype)
            needing = [tensors[n] for n in names if tensors[n].requires_grad]
            found = iter(G.autograd.grad([out], needing, grad_outputs=[seed], allow_unused=True))
            for name in names:
                g = next(found) if tensors[name].requires_grad else None
                if g is None:
                    columns.append(["null"] * count)
                    continue
                data = np.asarray(g._data).reshape((count,) + shapes[name])
                columns.append(_column(data.tolist(), dtype))
            keys = ["value"] + [f"grads.{n}" for n in names]
        else:
            keys = ["value"]
        return _lines(head, keys, columns, count)


def _replace(spec, given):
    from dataclasses import replace

    return replace(spec, given=given)


def _signature(data):
    """(name, shape) pairs of a line's values, or None when they are not plain numbers/lists."""
    sig = []
    for name, value in data.items():
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            sig.append((name, ()))
        elif isinstance(value, list):
            shape = _shape(value)
            if shape is None:
                return None
            sig.append((name, shape))
        else:
            return None
    return tuple(sorted(sig))


def _shape(value):
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return tuple(shape)


def _array(value, dtype):
    import numpy as np

    array = np.array(value, dtype=dtype)  # a ragged or non-numeric list raises ValueError
    return array


def _column(values, dtype):
    """Each line's JSON text of one result (``values``: nested lists with the batch first)."""
    from . import render

    if dtype.kind == "f" and dtype.itemsize == 8:
        out = []
        for v in values:
            if v.__class__ is float and v - v == 0:
                out.append(repr(v))
            else:
                out.append(render.dumps(v))
        return out
    return [render.dumps(v) for v in values]


def _lines(head, keys, columns, count):
    """Assemble the JSON objects (key order as ``render.to_json``) from per-line column texts."""
    from . import render

    prefix = render.dumps(head)
    # head ends with ...,"grad_fn":X} ; "value" sits after "program"
    start = prefix.index('"value":null') + len('"value":')
    before, after = prefix[:start], prefix[start + len("null") : -1]
    grads = [k.split(".", 1)[1] for k in keys if k.startswith("grads.")]
    if grads:
        pieces = [after + ',"grads":{']
        for i, name in enumerate(grads):
            pieces.append(("," if i else "") + json.dumps(name) + ":")
        parts = pieces
        lines = []
        for row in range(count):
            text = [before, columns[0][row], parts[0]]
            for i in range(len(grads)):
                text.append(parts[i + 1])
                text.append(columns[i + 1][row])
            text.append("}}")
            lines.append("".join(text))
        return lines
    return [before + columns[0][row] + after + "}" for row in range(count)]
