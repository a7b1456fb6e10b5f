"""The grammar and the parse tables made from it.

``grammars/gradcli.lark`` is the one source of the syntax.  lark analyses it into LALR tables
once, when the grammar changes (``python scripts/make_parse_tables.py`` writes ``_tables.py``);
a test rebuilds them and fails if the committed file is stale.  At run time the tables are
plain data imported from the package: lark is not imported, nothing is unpickled, nothing is
cached on disk.

The tables hold what ``lalr.Driver`` needs: the action table, each rule's size and how its
children reach the tree builder (lark's own rule shaping, reproduced from lark's rule objects:
``?rule`` pass-through, ``[x]`` placeholders, inlined ``_rule`` children), the terminals as
regular expressions, and the words for messages.  Building them reads lark's analysed parser
(``lark.parsers.lalr_analysis``): pyproject pins the lark versions this is tested with, and
``tests/test_language_parser.py`` checks the driver's trees against ``Lark.parse``.
"""

from __future__ import annotations

import re
from pathlib import Path

#: rule names with a callback of their own; every other alias in the grammar is an op name
STRUCTURAL = frozenset(
    {
        "program",
        "assign",
        "number",
        "name",
        "call",
        "method",
        "attr",
        "index",
        "slice",
        "array",
        "kwarg",
        "elements",
        "arguments",
        "subscripts",
        "atom",
    }
)

_GRAMMAR: list = []


def grammar_text() -> str:
    """The grammar: from the installed package, or from the repository when run from source."""
    if _GRAMMAR:
        return _GRAMMAR[0]
    here = Path(__file__).resolve()
    for path in (here.parents[1] / "grammars" / "gradcli.lark", here.parents[3] / "grammars" / "gradcli.lark"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            break
    else:  # e.g. installed inside a zip
        from importlib.resources import files

        text = (files("gradcli") / "grammars" / "gradcli.lark").read_text(encoding="utf-8")
    _GRAMMAR.append(text)
    return text


def digest(grammar: str) -> str:
    # imported here, when tables are built: at import it cost 2 ms of every start-up
    import hashlib

    return hashlib.sha256(grammar.encode("utf-8")).hexdigest()


def operator_names(grammar: str | None = None) -> set[str]:
    """The grammar's operator aliases (``-> add`` ...): each must be a public function."""
    aliases = set(re.findall(r"->\s*([a-z_][a-z_0-9]*)", grammar or grammar_text()))
    return aliases - STRUCTURAL


def lark_parser(grammar: str | None = None, transformer=None):
    """lark's LALR parser for the grammar, configured as the tables are built (tests compare)."""
    from lark import Lark

    return Lark(
        grammar or grammar_text(),
        parser="lalr",
        start="program",
        maybe_placeholders=True,
        keep_all_tokens=True,
        transformer=transformer,
    )


def _shape(rule) -> list:
    """How a rule's children reach its callback, as lark's ParseTreeBuilder shapes them:
    ``[(index, inline, nones_before), ...]`` and the Nones to append."""
    expansion, options = rule.expansion, rule.options
    empty = options.empty_indices
    if empty:
        bits = "".join(str(int(b)) for b in empty)
        nones = [len(ones) for ones in bits.split("0")]
    else:
        nones = [0] * (len(expansion) + 1)
    include, pending = [], 0
    for i, symbol in enumerate(expansion):
        pending += nones[i]
        if options.keep_all_tokens or not (symbol.is_term and symbol.filter_out):
            include.append([i, (not symbol.is_term) and symbol.name.startswith("_"), pending])
            pending = 0
    return [include, pending + nones[len(expansion)]]


def build_tables(grammar: str | None = None) -> dict:
    """The parse tables as plain data (see the module docstring)."""
    from lark.parsers.lalr_analysis import Shift

    grammar = grammar or grammar_text()
    lark = lark_parser(grammar)
    table = lark.parser.parser.parser.parse_table
    rules, index = [], {}
    actions = {}
    for state, row in sorted(table.states.items()):
        out = {}
        for symbol, (action, arg) in sorted(row.items()):
            if action is Shift:
                out[str(symbol)] = arg
                continue
            if arg not in index:
                index[arg] = len(rules)
                through = (
                    len(arg.expansion) == 1 and arg.options.expand1 and not arg.alias and not arg.options.empty_indices
                )
                name = str(arg.alias or arg.options.template_source or arg.origin.name)
                include, append = _shape(arg)
                rules.append(
                    {
                        "size": len(arg.expansion),
                        "origin": str(arg.origin.name),
                        "callback": None if through else name,
                        "include": include,
                        "append": append,
                        "expand1": bool(arg.options.expand1 and not arg.alias),
                    }
                )
            out[str(symbol)] = -1 - index[arg]  # reductions are negative: -1 - rule
        actions[state] = out
    actions, rules, start, end = _canonical(actions, rules, table.start_states["program"], table.end_states["program"])
    terminals = lark.lexer_conf.terminals
    ordered = [t for t in terminals if t.pattern.type != "str"]
    ordered += sorted((t for t in terminals if t.pattern.type == "str"), key=lambda t: -len(t.pattern.value))
    return {
        "grammar_sha256": digest(grammar),
        "start": start,
        "end": end,
        "actions": actions,
        "rules": rules,
        "terminals": [[str(t.name), str(t.pattern.to_regexp())] for t in ordered],
        "ignore": sorted(map(str, lark.lexer_conf.ignore)),
        "words": {str(t.name): str(t.pattern.value) for t in terminals if t.pattern.type == "str"},
    }


def _canonical(actions, rules, start, end):
    """The same tables numbered independently of lark's set order (which varies with the hash
    seed): states breadth-first from the start state, symbols sorted; rules sorted by content."""
    import json

    keys = sorted({json.dumps(r, sort_keys=True) for r in rules})
    rule_id = {i: keys.index(json.dumps(r, sort_keys=True)) for i, r in enumerate(rules)}
    order, seen = [start], {start: 0}
    for state in order:
        for symbol in sorted(actions[state]):
            target = actions[state][symbol]
            if target >= 0 and target not in seen:
                seen[target] = len(order)
                order.append(target)
    canonical = {}
    for state in order:
        canonical[seen[state]] = {
            symbol: (seen[arg] if arg >= 0 else -1 - rule_id[-1 - arg])
            for symbol, arg in sorted(actions[state].items())
        }
    return canonical, [json.loads(k) for k in keys], 0, seen[end]


TABLES_FILE = Path(__file__).with_name("_tables.py")


def tables_source(tables: dict) -> str:
    import pprint

    return (
        '"""LALR tables of grammars/gradcli.lark, made by ``python scripts/make_parse_tables.py``.\n\n'
        'Generated: do not edit.  tests/test_language_parser.py fails when they are stale."""\n\n'
        f"TABLES = {pprint.pformat(tables, width=110, sort_dicts=True)}\n"
    )


def write_tables() -> Path:
    TABLES_FILE.write_text(tables_source(build_tables()), encoding="utf-8")
    return TABLES_FILE
