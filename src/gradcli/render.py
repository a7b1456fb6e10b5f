"""Result -> JSON text | plain lines | rich table (SPEC §4).  The renderer never computes.

JSON is strict (``allow_nan=False``): numbers in shortest round-trip form, NaN and infinities
as the strings "NaN", "Infinity", "-Infinity".  rich is imported only for tables, so the JSON
and plain paths start fast.
"""
from __future__ import annotations

import json
import math

_SPECIAL = {math.inf: "Infinity", -math.inf: "-Infinity"}


def jsonable(value):
    """Plain Python data for JSON: arrays as nested lists, non-finite floats as strings."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return _SPECIAL.get(value, value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if tolist is not None:                      # numpy arrays and scalars
        return jsonable(tolist())
    return str(value)


def dumps(value, indent=None) -> str:
    return json.dumps(jsonable(value), allow_nan=False, indent=indent,
                      separators=(",", ":") if indent is None else None)


def to_json(result) -> str:
    """Exactly one JSON object: the common keys, then the command's own (SPEC §4)."""
    data = {"program": result.program, "value": result.value, "shape": list(result.shape or ()),
            "dtype": result.dtype, "grad_fn": result.grad_fn}
    data.update(result.extra)
    return dumps(data)


def to_plain(result) -> list[str]:
    """``name<TAB>value`` lines, the value a number or a one-line JSON array."""
    return [f"{name}\t{dumps(value)}" for name, value in result.items()]


def error_json(error) -> str:
    return dumps({"error": error.to_json()})


def summarise(value, precision: int = 6) -> str:
    """A readable, bounded text for an array: long arrays are cut with '...'."""
    if value is None:
        return "-"
    if isinstance(value, (bool, str)):
        return str(value)
    import numpy as np
    array = np.asarray(value)
    if array.dtype.kind == "b":
        return np.array2string(array, threshold=24, edgeitems=3) if array.ndim else str(bool(array))
    if array.ndim == 0:
        return np.format_float_positional(float(array), precision=precision, trim="-") \
            if math.isfinite(float(array)) else str(float(array))
    return np.array2string(array, precision=precision, threshold=24, edgeitems=3, suppress_small=True,
                           max_line_width=80)


def _cell(cell, precision):
    """A table cell: text as it is, a value summarised, ``(value, text)`` as the value above the text."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, tuple):
        return f"{summarise(cell[0], precision)}\n{cell[1]}"
    return summarise(cell, precision)


def to_table(result, precision: int = 6, color: bool = True):
    """A rich renderable (import of rich happens here only)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = []
    header = Text(f"{result.command}: {result.program}", style="bold" if color else "")
    parts.append(header)
    if result.rows is not None:
        columns, rows = result.rows
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*[_cell(cell, precision) for cell in row])
        parts.append(table)
        for mark, warning in zip("¹²³⁴⁵⁶⁷⁸⁹", getattr(result, "warnings", ())):
            parts.append(Text(f"{mark} {warning}"))
    else:
        table = Table("name", "value")
        for name, value in result.items():
            table.add_row(name, summarise(value, precision))
        parts.append(table)
    return Group(*parts)


def render(result, fmt: str, precision: int = 6, color: bool = True, out=None) -> None:
    """Write ``result`` to ``out`` (stdout) in ``fmt``: json, plain, table, or text (graph)."""
    import sys
    out = out or sys.stdout
    if fmt == "json":
        out.write(to_json(result) + "\n")
    elif result.text is not None:
        out.write(result.text if result.text.endswith("\n") else result.text + "\n")
    elif fmt == "plain":
        lines = to_plain(result)
        out.write("\n".join(lines) + ("\n" if lines else ""))
    else:
        from rich.console import Console
        console = Console(file=out, no_color=not color, highlight=False, soft_wrap=False)
        console.print(to_table(result, precision, color))
