"""Result -> JSON text | plain lines | rich table (SPEC §4).  The renderer never computes.

JSON is strict (``allow_nan=False``): numbers in shortest round-trip form, NaN and infinities
as the strings "NaN", "Infinity", "-Infinity".  Plain lines are the same JSON per value, except
that float32 numbers are written in float32's own shortest form (``0.995``, not float64's
``0.9950000047683716``): each reads back as the same number of its dtype.  Tables show numbers
with ``--precision`` significant digits (never rounding a nonzero to 0), arrays summarised as
numpy does, every cell a rich ``Text`` (so ``[inf ...]`` is never read as markup).  rich is
imported only for tables, so the JSON and plain paths start fast.
"""

from __future__ import annotations

import json
import math

_SPECIAL = {math.inf: "Infinity", -math.inf: "-Infinity"}
#: cut arrays longer than this (per table cell) to their first and last EDGE items per axis
THRESHOLD, EDGE = 24, 3


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
    if tolist is not None:  # numpy arrays and scalars
        return jsonable(tolist())
    return str(value)


def dumps(value, indent=None) -> str:
    return json.dumps(
        jsonable(value), allow_nan=False, indent=indent, separators=(",", ":") if indent is None else None
    )


def to_json(result) -> str:
    """Exactly one JSON object: the common keys, then the command's own (SPEC §4)."""
    data = {
        "program": result.program,
        "value": result.value,
        "shape": list(result.shape or ()),
        "dtype": result.dtype,
        "grad_fn": result.grad_fn,
    }
    data.update(result.extra)
    return dumps(data)


# ------------------------------------------------------------------------------------------
# numbers: one formatter for plain and table output


def _is_float32(value) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and str(dtype) == "float32"


def _as_shown(value):
    """float32 data as the float64 numbers whose shortest repr is float32's shortest form.

    numpy writes a float32 in its own shortest round-trip digits (``astype(str)``); parsed as
    float64 those digits give a float64 whose ``repr`` is the same digits.  So JSON of the
    result reads back (through float32) as the original number.
    """
    import numpy as np

    return np.asarray(value).astype(str).astype(np.float64)


def plain_value(value) -> str:
    """The plain-output text of one value: a number or a one-line JSON array (SPEC §4)."""
    if _is_float32(value):
        value = _as_shown(value)
    return dumps(value)


def shortest(value, float32: bool = False) -> str:
    """The shortest text that reads back as ``value`` in its dtype, laid out as Python's repr
    (scientific below 1e-4 and from 1e16 on): ``0.1``, ``2.0611536224385583e-09``, ``1e+20``."""
    value = float(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if float32:
        import numpy as np

        value = float(str(np.float32(value)))
    return repr(value)


def _digits(text: str) -> int:
    """Significant digits of a number's text (``100000.0`` has 1, ``0.0120`` has 2)."""
    mantissa = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0").rstrip("0")
    return max(1, len(mantissa))


def number(value, precision: int = 6, float32: bool = False) -> str:
    """A number for a table: at most ``precision`` significant digits (fewer when its shortest
    form has fewer), scientific where ``%g`` would use it; a nonzero never shows as 0."""
    short = shortest(value, float32)
    if short in ("nan", "inf", "-inf"):
        return short
    base = float(short) if _digits(short) <= precision else float(value)
    text = f"{base:.{max(1, precision)}g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text


def _edges(array):
    """The elements numpy shows of a summarised array (the first and last EDGE per long axis)."""
    import numpy as np

    if array.size <= THRESHOLD:
        return array
    for axis, n in enumerate(array.shape):
        if n > 2 * EDGE:
            array = np.take(array, list(range(EDGE)) + list(range(n - EDGE, n)), axis=axis)
    return array


def _element_texts(values, precision, float32):
    """Uniform texts for the shown elements (numpy style): all scientific with the same mantissa
    length if any needs it or their magnitudes differ by more than 1e3, else decimal-aligned
    positional (``3.``, ``0.25``)."""
    finite = [v for v in values if math.isfinite(v)]
    texts = {v: number(v, precision, float32) for v in finite}
    magnitudes = [abs(v) for v in finite if v]
    spread = bool(magnitudes) and max(magnitudes) > 1e3 * min(magnitudes)
    if spread or any("e" in t for t in texts.values()):
        digits = max((_digits(t) for t in texts.values()), default=1)
        shown = {v: f"{v:.{digits - 1}e}" for v in finite}
    else:
        shown = {v: (t[:-1] if t.endswith(".0") else t) for v, t in texts.items()}
    return shown


def array_text(value, precision: int = 6, width: int = 60) -> str:
    """An array (or scalar) for a table cell, numpy style: summarised with '...' when long,
    rows wrapped at ``width`` characters, numbers as ``number`` writes them."""
    import numpy as np

    if value is None:
        return "-"
    if isinstance(value, (bool, str)):
        return str(value)
    array = np.asarray(value)
    float32 = array.dtype == np.float32
    if array.dtype.kind not in "fc":
        if array.ndim == 0:
            return str(array.item())
        return np.array2string(array, threshold=THRESHOLD, edgeitems=EDGE, max_line_width=max(width, 20))
    if array.ndim == 0:
        return number(array.item(), precision, float32)
    values = [float(v) for v in _edges(array).ravel().tolist()]
    shown = _element_texts(values, precision, float32)
    left = max((len(t.split(".")[0]) for t in shown.values() if "e" not in t), default=0)
    right = max((len(t.split(".")[1]) for t in shown.values() if "e" not in t and "." in t), default=0)
    wide = max([len(t) for t in shown.values()] + [3 if any(not math.isfinite(v) for v in values) else 0])

    def cell(x):
        x = float(x)
        if not math.isfinite(x):
            text = shortest(x)
        else:
            text = shown.get(x)
            if text is None:  # not among the shown (cannot happen; be safe)
                text = number(x, precision, float32)
            elif "e" not in text:
                whole, _, frac = text.partition(".")
                text = whole.rjust(left) + "." + frac.ljust(right)
        return text.rjust(max(wide, left + 1 + right if left else wide))

    return np.array2string(
        array,
        threshold=THRESHOLD,
        edgeitems=EDGE,
        max_line_width=max(width, 20),
        separator=" ",
        formatter={"float_kind": cell},
    )


def _cell(cell, precision, width) -> str:
    """A numeric column's cell: text as it is, a value as ``array_text``, ``(value, text)`` as the
    value above the text (``grad_fn=<...>`` under a grad built with create_graph)."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, tuple):
        return f"{array_text(cell[0], precision, width)}\n{cell[1]}"
    return array_text(cell, precision, width)


def summarise(value, precision: int = 6) -> str:
    """A readable, bounded text for an array: long arrays are cut with '...'."""
    return array_text(value, precision)


def shape_text(value) -> str:
    import numpy as np

    if value is None:
        return "-"
    shape = np.shape(value)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


# ------------------------------------------------------------------------------------------
# plain and table


def to_plain(result) -> list[str]:
    """``name<TAB>value`` lines, the value a number or a one-line JSON array."""
    return [f"{name}\t{plain_value(value)}" for name, value in result.items()]


def error_json(error) -> str:
    return dumps({"error": error.to_json()})


def title(result, origin: str | None = None, width: int = 80) -> str:
    """``command: @FILE`` or ``command: first line of the program``, shortened to ``width``."""
    if origin and origin.startswith("@"):
        shown = origin
    else:
        lines = [line.strip() for line in (result.program or "").strip().splitlines()]
        lines = [line for line in lines if line]
        shown = (lines[0] if lines else "") + (" …" if len(lines) > 1 else "")
    text = f"{result.command}: {shown}"
    return text if len(text) <= width else text[: width - 1] + "…"


#: columns whose cells are numbers / arrays (they take the room that is left)
VALUE_COLUMNS = {"value", "grad", "analytic", "numerical", "abs error", "rel error"}
#: columns of errors: their size matters, not their digits
ERROR_COLUMNS = {"abs error": 3, "rel error": 3}


def to_table(result, precision: int = 6, color: bool = True, width: int = 80, origin: str | None = None):
    """A rich renderable (import of rich happens here only): a title line, the result's
    ``header`` lines, and a table with a shape column.  Names, flags and grad_fn are never cut:
    numbers take the room that is left, and when too little is left (the ``backward`` table at
    80 columns) the values move to a second table beside the names and shapes."""
    from rich.console import Group
    from rich.text import Text

    if result.rows is not None:
        columns, rows = result.rows
        rows = [list(row) for row in rows]
    else:
        columns = ("name", "shape", "value")
        rows = [[name, shape_text(value), value] for name, value in result.items()]
    numeric = [i for i, c in enumerate(columns) if c in VALUE_COLUMNS]
    fixed = [i for i in range(len(columns)) if i not in numeric]
    texts = [{i: "-" if row[i] is None else str(row[i]) for i in fixed} for row in rows]
    widths = {i: max([len(columns[i])] + [max(map(len, t[i].split("\n"))) for t in texts]) for i in fixed}
    parts = [Text(title(result, origin, width), style="bold" if color else "")]
    parts.extend(Text(line) for line in getattr(result, "header", ()) or ())
    groups = [list(range(len(columns)))]
    natural = sum(
        max(
            [len(columns[i])]
            + [
                len(line)
                for row in rows
                for line in _cell(row[i], min(precision, ERROR_COLUMNS.get(columns[i], precision)), 10_000).split("\n")
            ]
        )
        for i in numeric
    )
    if (
        numeric
        and len(fixed) > 2
        and natural > _room(width, groups[0], numeric, widths) * len(numeric)
        and _room(width, groups[0], numeric, widths) < 20
    ):
        keep = [i for i in fixed if columns[i] in ("name", "shape", "input", "index")][:2] or fixed[:1]
        groups = [fixed, sorted(keep + numeric)]
    for group in groups:
        parts.append(_table(columns, rows, texts, group, numeric, widths, precision, width))
    for mark, warning in zip("¹²³⁴⁵⁶⁷⁸⁹", getattr(result, "warnings", ())):
        parts.append(Text(f"{mark} {warning}"))
    return Group(*parts)


def _room(width, group, numeric, widths) -> int:
    """Characters left for each numeric column of ``group`` (rich's borders and padding: 3 a column)."""
    shown = [i for i in group if i in numeric]
    used = 3 * len(group) + 1 + sum(widths[i] for i in group if i not in numeric)
    return (width - used) // max(1, len(shown))


def _table(columns, rows, texts, group, numeric, widths, precision, width):
    from rich.table import Table
    from rich.text import Text

    over = 3 * len(group) + 1 + sum(widths[i] if i not in numeric else 12 for i in group) - width
    names = [i for i in group if columns[i] in ("name", "input") and i not in numeric]
    if over > 0 and names:  # too wide even so: the name folds (never cut), grad_fn stays whole
        widths = {**widths, names[0]: max(len(columns[names[0]]), widths[names[0]] - over)}
    room = max(12, _room(width, group, numeric, widths))
    digits = {i: min(precision, ERROR_COLUMNS.get(columns[i], precision)) for i in group}
    cells = [
        [t[i] if i not in numeric else _cell(row[i], digits[i], room) for i in group] for row, t in zip(rows, texts)
    ]
    folded = over > 0 and names and any(len(t[names[0]]) > widths[names[0]] for t in texts)
    table = Table(show_lines=bool(folded) or any("\n" in c for row in cells for c in row))
    for i in group:
        if i in numeric:
            table.add_column(columns[i], overflow="fold")
        elif names and i == names[0] and over > 0:
            table.add_column(columns[i], width=widths[i], overflow="fold")
        else:
            table.add_column(columns[i], no_wrap=True, min_width=widths[i], overflow="fold")
    for row in cells:
        table.add_row(*[Text(cell) for cell in row])
    return table


def render(result, fmt: str, precision: int = 6, color: bool = True, out=None, origin: str | None = None) -> None:
    """Write ``result`` to ``out`` (stdout) in ``fmt``: json, plain, table, or text (graph).

    ``origin`` is the PROGRAM argument as typed (``@FILE`` gives the table its title)."""
    import sys

    out = out or sys.stdout
    if fmt == "json":
        out.write(to_json(result) + "\n")
    elif getattr(result, "view", None) is not None and fmt in ("plain", "table"):
        shown = result.view(fmt, color)
        if isinstance(shown, str):
            out.write(shown)
        else:
            from rich.console import Console

            Console(file=out, no_color=not color, highlight=False, soft_wrap=False).print(shown)
    elif result.command == "graph" and (result.extra.get("nodes") or fmt == "dot"):
        out.write(graph_dot(result.extra["nodes"]) if fmt == "dot" else graph_tree(result.extra["nodes"]))
        out.write("\n")
    elif result.text is not None:
        out.write(result.text if result.text.endswith("\n") else result.text + "\n")
    elif fmt == "plain":
        lines = to_plain(result)
        out.write("\n".join(lines) + ("\n" if lines else ""))
    else:
        from rich.console import Console

        console = Console(file=out, no_color=not color, highlight=False, soft_wrap=False)
        console.print(to_table(result, precision, color, width=console.width, origin=origin))


# graphs (``gradcli graph``): nodes [{id, name, next, input}] -> text


def _graph_label(node):
    return node["name"] + (f" ({node['input']})" if node["input"] else "")


def graph_tree(nodes) -> str:
    """The grad_fn graph as an indented tree; a node reached twice is shown once (then "shown above")."""
    lines, seen = [], set()
    stack = [(0, "", "", True)]
    by_id = {n["id"]: n for n in nodes}
    while stack:
        nid, prefix, branch, _ = stack.pop()
        node = by_id[nid]
        again = nid in seen
        lines.append(prefix + branch + _graph_label(node) + (" (shown above)" if again and node["next"] else ""))
        if again:
            continue
        seen.add(nid)
        child_prefix = prefix + ("" if not branch else ("    " if branch.startswith("└") else "│   "))
        kids = node["next"]
        for i in reversed(range(len(kids))):
            stack.append((kids[i], child_prefix, "└── " if i == len(kids) - 1 else "├── ", True))
    return "\n".join(lines)


def graph_dot(nodes) -> str:
    """The grad_fn graph in Graphviz dot."""
    out = ["digraph gradcli {", "  node [shape=box];"]
    for n in nodes:
        label = _graph_label(n).replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'  n{n["id"]} [label="{label}"];')
    for n in nodes:
        for m in n["next"]:
            out.append(f"  n{n['id']} -> n{m};")
    out.append("}")
    return "\n".join(out)
