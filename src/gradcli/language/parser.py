"""Program text -> AST, with lark's LALR parser built once and cached on disk.

The tree is built while parsing: the builder below is lark's *inline* transformer, whose
callbacks run at each LALR reduction.  No lark parse tree is made and nothing recurses, so a
10,000-deep nesting or a 1 MB ``x+x+...+x`` parses in one pass.  ``keep_all_tokens`` hands the
callbacks the punctuation too, which gives every node its exact span (``f(x)`` ends at ``)``).

Grammar aliases that are not structural rules are op names: a reduction of ``a + b`` by the
rule aliased ``add`` becomes ``Call("add", (a, b))``.  No table here repeats the grammar.
"""
from __future__ import annotations

import gc
import hashlib
import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..errors import GradcliError, position
from . import ast as A

#: rule names with a callback of their own; every other alias in the grammar is an op name
STRUCTURAL = frozenset({"program", "assign", "number", "name", "call", "method", "attr", "index",
                        "slice", "array", "kwarg", "elements", "arguments", "subscripts", "atom"})
_INT64_MAX = 2 ** 63 - 1


def grammar_text() -> str:
    """The grammar: from the installed package, or from the repository when run from source
    (plain file reads first: importing ``importlib.resources`` costs several milliseconds)."""
    text = _STATE.get("grammar")
    if text is not None:
        return text
    here = Path(__file__).resolve()
    for path in (here.parents[1] / "grammars" / "gradcli.lark", here.parents[3] / "grammars" / "gradcli.lark"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            break
    else:                                   # e.g. installed inside a zip
        from importlib.resources import files
        text = (files("gradcli") / "grammars" / "gradcli.lark").read_text(encoding="utf-8")
    _STATE["grammar"] = text
    return text


def operator_names(grammar: str | None = None) -> set[str]:
    """The grammar's operator aliases (``-> add`` ...): each must be a key of ops.FUNCTIONS."""
    aliases = set(re.findall(r"->\s*([a-z_][a-z_0-9]*)", grammar or grammar_text()))
    return aliases - STRUCTURAL


# ------------------------------------------------------------------------------------------
# tree building (runs inside lark's LALR loop)

def _start(item):
    return item.start_pos if not isinstance(item, A.Node) else item.span[0]


def _end(item):
    return item.end_pos if not isinstance(item, A.Node) else item.span[1]


def _span_of(children) -> tuple[int, int]:
    items = [c for c in children if c is not None and not isinstance(c, (list, _Kwarg))]
    return (_start(items[0]), _end(items[-1]))


class _Kwarg:
    __slots__ = ("name", "value", "span")

    def __init__(self, name, value, span):
        self.name, self.value, self.span = name, value, span


class _Builder:
    """LALR callbacks, one per rule alias; ``events`` records names read and assigned in order."""

    def __init__(self):
        self.events: list = []

    # lark looks these up with getattr; it must find nothing for the Transformer protocol hooks
    __visit_tokens__ = False

    def program(self, c):
        return [s for s in c if isinstance(s, A.Node)]

    def assign(self, c):
        name, _, value = c
        if name.value in A.CONSTANT_NAMES or name.value in A.BOOLEAN_NAMES:
            raise GradcliError("name", f"cannot assign to '{name}': it is a constant",
                               span=(name.start_pos, name.end_pos))
        self.events.append((False, name.value, (name.start_pos, name.end_pos)))
        return A.Assign(name.value, value, (name.start_pos, _end(value)))

    def number(self, c):
        (token,) = c
        text = token.value
        if text.isdigit() and int(text) <= _INT64_MAX:
            value = int(text)
        else:
            value = float(text)
        return A.Const(value, (token.start_pos, token.end_pos))

    def name(self, c):
        (token,) = c
        span = (token.start_pos, token.end_pos)
        if token.value in A.BOOLEAN_NAMES:
            return A.Const(A.BOOLEAN_NAMES[token.value], span)
        self.events.append((True, token.value, span))
        return A.Name(token.value, span)

    def call(self, c):
        return _call(c[0].value, [], c[2], _span_of(c))

    def method(self, c):
        return _call(c[2].value, [c[0]], c[4], _span_of(c))

    def attr(self, c):
        value, _, name = c
        if name.value != "T":
            raise GradcliError("name", f"unknown attribute '.{name.value}': the only attribute is .T "
                               "(methods take parentheses: x.sum(dim=0))",
                               span=(name.start_pos, name.end_pos))
        return A.Attr(value, "T", _span_of(c))

    def index(self, c):
        return A.Index(c[0], tuple(c[2]), _span_of(c))

    def slice(self, c):
        parts, section = [None, None, None], 0
        for item in c:
            if isinstance(item, A.Node):
                parts[section] = item
            elif item is not None:          # a ':' token
                section += 1
        return A.Slice(*parts, span=_span_of(c))

    def array(self, c):
        return A.Array(tuple(c[1] or ()), _span_of(c))

    def atom(self, c):                      # "(" expr ")": the span takes in the parentheses
        return replace(c[1], span=_span_of(c))

    def kwarg(self, c):
        name, _, value = c
        return _Kwarg(name.value, value, (name.start_pos, _end(value)))

    def elements(self, c):
        return [x for x in c if isinstance(x, A.Node)]

    subscripts = elements

    def arguments(self, c):
        return [x for x in c if isinstance(x, (A.Node, _Kwarg))]


def _call(func, args, arguments, span):
    kwargs, seen = [], set()
    for item in arguments or ():
        if isinstance(item, _Kwarg):
            if item.name in seen:
                raise GradcliError("syntax", f"keyword argument '{item.name}' given twice", span=item.span)
            seen.add(item.name)
            kwargs.append((item.name, item.value))
        elif kwargs:
            raise GradcliError("syntax", "a positional argument follows a keyword argument",
                               span=item.span)
        else:
            args.append(item)
    return A.Call(func, tuple(args), tuple(kwargs), span)


def _operator(op):
    """The callback of an operator rule: ``[a, token, b]`` or ``[token, a]`` -> ``Call(op, ...)``."""
    Call = A.Call

    def build(self, c):
        if len(c) == 3:
            left, _, right = c
            return Call(op, (left, right), (), (left.span[0], right.span[1]))
        token, operand = c
        return Call(op, (operand,), (), (token.start_pos, operand.span[1]))
    build.__name__ = op
    return build


# ------------------------------------------------------------------------------------------
# the parser, built once

_LOCK = threading.RLock()
_STATE: dict = {}


def _cache_file(grammar: str):
    """A per-user cache file for lark's analysed grammar, or False where none is writable.

    lark pickles its cache, so it is only read from a directory this user owns.
    """
    import lark
    digest = hashlib.sha256(f"{grammar}|{lark.__version__}|{sys.version}".encode()).hexdigest()[:16]
    folder = _cache_file_folder()
    return str(folder / f"gradcli-grammar-{digest}.lark-cache") if folder else False


def _cache_file_folder():
    """This user's cache folder for gradcli (created), or None where none is usable."""
    if "cache_folder" in _STATE:
        return _STATE["cache_folder"]
    candidates = []
    if os.environ.get("GRADCLI_CACHE_DIR"):
        candidates.append(Path(os.environ["GRADCLI_CACHE_DIR"]))
    xdg = os.environ.get("XDG_CACHE_HOME")
    candidates.append(Path(xdg) / "gradcli" if xdg else Path.home() / ".cache" / "gradcli")
    uid = os.getuid() if hasattr(os, "getuid") else None
    candidates.append(Path(tempfile.gettempdir()) / f"gradcli-cache-{uid if uid is not None else 'user'}")
    found = None
    for folder in candidates:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if uid is not None and folder.stat().st_uid != uid:
                continue
            if os.access(folder, os.W_OK):
                found = folder
                break
        except (OSError, RuntimeError):
            continue
    _STATE["cache_folder"] = found
    return found


class Token:
    """A token for the callbacks: type (terminal name), text, and its character offsets."""
    __slots__ = ("type", "value", "start_pos", "end_pos")

    def __init__(self, type_, value, start, end):
        self.type, self.value, self.start_pos, self.end_pos = type_, value, start, end

    def __repr__(self):
        return f"Token({self.type!r}, {self.value!r})"


class _Failure(Exception):
    """Where the driver stopped: the state stacks and the token (or character) it could not take."""

    def __init__(self, expected, value_stack, token=None, pos=None):
        super().__init__()
        self.expected, self.value_stack, self.token, self.pos = expected, value_stack, token, pos


class _Driver:
    """Runs lark's LALR tables over the text with a lean loop of its own.

    lark compiles the grammar (and caches the analysis on disk); this loop replaces lark's
    per-token machinery: one regular expression for all terminals, light tokens, and the chains
    of single-child reductions (``sum: product``, ``product: unary``, ...) that every operand
    passes through collapsed into one memoised step.  Same tables, same callbacks, same trees;
    about three times faster on a 1 MB program.  Iterative, as lark's is.
    """

    def __init__(self, lark):
        from lark.parsers.lalr_analysis import Shift
        frontend = lark.parser.parser.parser
        table = frontend.parse_table
        self.start = table.start_states["program"]
        self.end = table.end_states["program"]
        self.actions = {}               # state -> {symbol: (True, state) | (False, rule)}
        self.rules = {}                 # rule -> (size, origin, callback or None for pass-through)
        for state, row in table.states.items():
            self.actions[state] = {sym: (action is Shift, arg) for sym, (action, arg) in row.items()}
            for action, arg in row.values():
                if action is not Shift and arg not in self.rules:
                    through = (len(arg.expansion) == 1 and arg.options.expand1 and not arg.alias
                               and not arg.options.empty_indices)
                    self.rules[arg] = (len(arg.expansion), arg.origin.name,
                                       None if through else frontend.callbacks[arg])
        terminals = lark.lexer_conf.terminals
        self.ignore = frozenset(lark.lexer_conf.ignore)
        ordered = [t for t in terminals if t.pattern.type != "str"]
        ordered += sorted((t for t in terminals if t.pattern.type == "str"), key=lambda t: -len(t.pattern.value))
        self.scanner = re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in ordered))
        self.chains: dict = {}
        # the same alternation without groups, for findall; and token text -> terminal name
        self.plain = re.compile(re.sub(r"(?<!\\)\((?!\?)", "(?:", re.sub(r"\(\?P<\w+>", "(?:", self.scanner.pattern)))
        self.kinds: dict = {}

    def _chain(self, below, top, kind):
        """The state after every pass-through reduction from ``top`` on lookahead ``kind``."""
        actions, rules = self.actions, self.rules
        while True:
            step = actions[top].get(kind)
            if step is None or step[0] or rules[step[1]][2] is not None:
                return top
            top = actions[below][rules[step[1]][1]][1]

    def tokens(self, text):
        """The tokens, then ``$END``; a ``$GAP`` token where no terminal matches.

        ``findall`` splits the whole text at C speed; when the pieces cover it exactly (the usual
        case), positions are running sums.  Otherwise ``finditer`` finds where the gap is.
        """
        if len(self.kinds) > 50_000:          # names and numbers seen so far: keep it bounded
            self.kinds.clear()
        kinds, ignore = self.kinds, self.ignore
        words = self.plain.findall(text)
        pos = 0
        if sum(map(len, words)) == len(text):
            for word in words:
                end = pos + len(word)
                kind = kinds.get(word)
                if kind is None:
                    kind = kinds[word] = self.scanner.fullmatch(word).lastgroup
                if kind not in ignore:
                    yield Token(kind, word, pos, end)
                pos = end
        else:
            for match in self.scanner.finditer(text):
                start, end = match.span()
                if start != pos:
                    break
                if match.lastgroup not in ignore:
                    yield Token(match.lastgroup, match.group(), start, end)
                pos = end
            if pos < len(text):
                yield Token("$GAP", text[pos], pos, pos + 1)
                return
        yield Token("$END", "", len(text), len(text))

    def parse(self, text):
        actions, rules, chains = self.actions, self.rules, self.chains
        states, values = [self.start], []
        for token in self.tokens(text):
            kind = token.type
            while True:
                top = states[-1]
                step = actions[top].get(kind)
                if step is None:
                    if kind == "$GAP":
                        raise _Failure(self._expected(top), values, pos=token.start_pos)
                    raise _Failure(self._expected(top), values, token=token)
                shift, arg = step
                if shift:
                    states.append(arg)
                    values.append(token)
                    break
                size, origin, callback = rules[arg]
                if callback is None:                  # pass-through: collapse the whole chain
                    key = (states[-2], top, kind)
                    target = chains.get(key)
                    if target is None:
                        target = chains[key] = self._chain(states[-2], top, kind)
                    states[-1] = target
                    continue
                if size:
                    children = values[-size:]
                    del states[-size:]
                    del values[-size:]
                else:
                    children = []
                values.append(callback(children))
                states.append(actions[states[-1]][origin][1])
                if kind == "$END" and states[-1] == self.end:
                    return values[-1]

    def _expected(self, state):
        return {s for s in self.actions[state] if s.isupper() or s == "$END"}


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector while building a large acyclic structure.

    Trees and graphs of a million nodes would otherwise make the collector rescan everything it
    holds again and again (half of the time of parsing a 1 MB program).  Nothing made here
    forms cycles, so reference counting frees it all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parser():
    state = _STATE.get("parser")
    if state is None:
        from lark import Lark
        grammar = grammar_text()
        builder_class = type("Builder", (_Builder,), {op: _operator(op) for op in operator_names(grammar)})
        builder = builder_class()
        lark = Lark(grammar, parser="lalr", start="program", maybe_placeholders=True,
                    keep_all_tokens=True, transformer=builder, cache=_cache_file(grammar))
        words = {t.name: t.pattern.value for t in lark.terminals if t.pattern.type == "str"}
        state = _STATE["parser"] = (_Driver(lark), builder, words)
    return state


def parse(text: str) -> A.Program:
    """Parse program text into a ``Program``; raise ``GradcliError`` ("syntax" or "name").

    The error gives line, column and the source, and says in words what was expected.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() takes program text (str), not {type(text).__name__}")
    program = _cached(text)
    if program is not None:
        return program
    program = _parse(text)
    _store(text, program)
    return program


def _parse(text: str) -> A.Program:
    with _LOCK, paused_gc():
        driver, builder, words = _parser()
        builder.events = []
        try:
            statements = driver.parse(text)
            events = builder.events
        except GradcliError as err:
            raise err.locate(text, err.span or (0, 0)) from None
        except _Failure as failure:
            if failure.token is not None:
                raise _unexpected_token(failure, text, words) from None
            raise _unexpected_character(failure, text, words) from None
        except RecursionError:
            raise GradcliError("syntax", "the program is nested too deeply").locate(text, (0, 0)) from None
        finally:
            builder.events = []
    if not statements:
        raise GradcliError("syntax", "the program is empty: write an expression such as x * y",
                           line=1, column=1, source=text, span=(0, 0))
    inputs, assigned = _names(events, text)
    return A.Program(tuple(statements), text, inputs, assigned, (0, len(text)))


# ------------------------------------------------------------------------------------------
# programs parsed before: a shell loop runs the same short program many times, and importing
# lark and loading its tables costs more than the rest of a small command together.  Short
# programs' trees are kept as JSON (never pickle: the folder could be written by someone else)
# next to lark's cache, keyed by a hash of the text, the grammar and this version of gradcli.

_CACHED_CHARS = 400


def _program_file(text):
    if len(text) > _CACHED_CHARS or os.environ.get("GRADCLI_NO_PROGRAM_CACHE"):
        return None
    folder = _STATE.get("program_dir")
    if folder is None:
        from .. import __version__
        grammar = grammar_text()
        digest = hashlib.sha256(f"{grammar}|{__version__}|{sys.version}".encode()).hexdigest()[:12]
        cache = _cache_file_folder()
        folder = _STATE["program_dir"] = (cache / f"programs-{digest}") if cache else False
    if not folder:
        return None
    return folder / (hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".json")


def _cached(text):
    path = _program_file(text)
    if path is None:
        return None
    try:
        data = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        import json
        record = json.loads(data)
        if record["text"] != text:
            return None
        statements = tuple(_decode(s) for s in record["statements"])
        return A.Program(statements, text, tuple(record["inputs"]), tuple(record["assigned"]), (0, len(text)))
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        return None


def _store(text, program):
    path = _program_file(text)
    if path is None:
        return
    try:
        import json
        record = {"text": text, "inputs": list(program.inputs), "assigned": list(program.assigned),
                  "statements": [_encode(s) for s in program.statements]}
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(record), encoding="utf-8")
        os.replace(partial, path)
    except (OSError, RecursionError, TypeError, ValueError):
        pass


def _encode(node):
    if node is None:
        return None
    kind = type(node).__name__
    span = list(node.span)
    if kind == "Const":
        return ["Const", node.value, span]
    if kind == "Name":
        return ["Name", node.id, span]
    if kind == "Call":
        return ["Call", node.func, [_encode(a) for a in node.args], [[k, _encode(v)] for k, v in node.kwargs], span]
    if kind == "Slice":
        return ["Slice", _encode(node.start), _encode(node.stop), _encode(node.step), span]
    if kind == "Index":
        return ["Index", _encode(node.value), [_encode(i) for i in node.items], span]
    if kind == "Attr":
        return ["Attr", _encode(node.value), node.name, span]
    if kind == "Array":
        return ["Array", [_encode(e) for e in node.elements], span]
    if kind == "Assign":
        return ["Assign", node.name, _encode(node.value), span]
    raise TypeError(kind)


def _decode(item):
    if item is None:
        return None
    kind, *rest = item
    span = tuple(rest[-1])
    if kind == "Const":
        if not isinstance(rest[0], (int, float, bool)):
            raise TypeError("bad constant")
        return A.Const(rest[0], span)
    if kind == "Name":
        return A.Name(str(rest[0]), span)
    if kind == "Call":
        return A.Call(str(rest[0]), tuple(_decode(a) for a in rest[1]),
                      tuple((str(k), _decode(v)) for k, v in rest[2]), span)
    if kind == "Slice":
        return A.Slice(_decode(rest[0]), _decode(rest[1]), _decode(rest[2]), span)
    if kind == "Index":
        return A.Index(_decode(rest[0]), tuple(_decode(i) for i in rest[1]), span)
    if kind == "Attr":
        return A.Attr(_decode(rest[0]), str(rest[1]), span)
    if kind == "Array":
        return A.Array(tuple(_decode(e) for e in rest[0]), span)
    if kind == "Assign":
        return A.Assign(str(rest[0]), _decode(rest[1]), span)
    raise TypeError(kind)


def _names(events, text):
    """Inputs (read before assigned) and assigned names, from the names seen in source order."""
    inputs, assigned, bound = {}, {}, set()
    for is_use, name, span in events:
        if is_use:
            if name not in bound and name not in A.CONSTANT_NAMES:
                inputs.setdefault(name, span)
        else:
            if name in inputs:
                line, column = position(text, inputs[name][0])
                raise GradcliError(
                    "name", f"cannot assign to '{name}': it is an input of the program (read at line "
                    f"{line}, column {column} before this assignment); give the result a new name",
                    span=span).locate(text, span)
            bound.add(name)
            assigned.setdefault(name, None)
    return tuple(inputs), tuple(assigned)


# ------------------------------------------------------------------------------------------
# syntax errors in words

_OPERATOR_WORDS = {"+", "-", "*", "/", "@", "<", "<=", ">", ">=", "==", "!=", "_POW"}
_CLOSERS = ("]", ")", ",", ":")
_COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}


def _follows_comparison(stack, words):
    return len(stack) >= 2 and words.get(getattr(stack[-2], "type", None)) in _COMPARISONS


def _expected(names, words, stack=()) -> str:
    shown = {words.get(n, n) for n in names}
    # closers only where a bracket is open: the innermost open one is on the parser's stack
    opened = [t for t in stack if getattr(t, "type", None) in ("LPAR", "LSQB")]
    keep = {"LPAR": {")", ","}, "LSQB": {"]", ",", ":"}}.get(opened[-1].type if opened else None, set())
    shown -= set(_CLOSERS) - keep
    parts = []
    operand = bool(shown & {"NAME", "NUMBER"})
    if operand:
        parts.append("an operand")
    elif shown & _OPERATOR_WORDS:
        parts.append("an operator")
    parts += [f"'{p}'" for p in _CLOSERS if p in shown]
    if not operand and shown & {"_SEP", "$END"}:
        parts.append("the end of the statement")
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _last_token_text(text, end):
    match = re.search(r"([A-Za-z_]\w*|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|\*\*|[<>=!]=|\S)\Z",
                      text[max(0, end - 64):end])
    return match.group(1) if match else ""


def _after(stack, text) -> tuple[str, int]:
    """(' after ...' words, offset just past the previous token) from the parser's stack."""
    last = stack[-1] if stack else None
    if isinstance(last, list):           # arguments / elements already reduced
        last = next((x for x in reversed(last) if x is not None), None)
    if isinstance(last, _Kwarg):
        last = last.value
    if last is None:
        return " at the start of the program", 0
    end = _end(last)
    if not isinstance(last, A.Node) and last.type == "_SEP":
        return " at the start of a statement", end
    shown = last.value if not isinstance(last, A.Node) else _last_token_text(text, end)
    return f" after '{shown}'", end


def _found(token) -> str:
    if token.type == "$END":
        return "the end of the program"
    if token.type == "_SEP" and token.value == "\n":
        return "the end of the line"
    return f"'{token.value}'"


def _unexpected_token(err, text, words) -> GradcliError:
    after, offset = _after(err.value_stack, text)
    token = err.token
    start = offset if token.type == "$END" else token.start_pos
    end = start + max(1, len(token.value)) if token.type != "$END" else start
    message = f"expected {_expected(err.expected, words, err.value_stack)}{after}, found {_found(token)}"
    if words.get(token.type) in _COMPARISONS and _follows_comparison(err.value_stack, words):
        message = f"comparisons do not chain: found a second comparison '{token.value}' (use parentheses)"
    if token.type == "$END" and not text[offset:].strip():
        start = end = offset
    return GradcliError("syntax", message, span=(start, end)).locate(text, (start, end))


def _unexpected_character(err, text, words) -> GradcliError:
    char = text[err.pos]
    shown = char if char.isprintable() and not char.isspace() else repr(char)[1:-1]
    message = f"unexpected character {shown!r}" if char == "'" else f"unexpected character '{shown}'"
    if char in "'\"":
        message += " (the language has no strings)"
    elif char == "!":
        message += " (did you mean '!='?)"
    after, _ = _after(err.value_stack, text)
    if err.expected:
        message += f": expected {_expected(err.expected, words, err.value_stack)}{after}"
    pos = err.pos
    return GradcliError("syntax", message, span=(pos, pos + 1)).locate(text, (pos, pos + 1))
