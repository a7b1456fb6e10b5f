"""An LALR(1) driver over the shipped tables (``_tables.py``, made from the grammar by lark).

One regular expression splits the text into tokens; the loop shifts and reduces with the action
table and calls the tree builder at each reduction.  Chains of single-child reductions
(``sum: product``, ``product: unary``, ...) that every operand passes through collapse into one
memoised step.  Iterative: a 10,000-deep nesting is no deeper for Python than ``x``.

Newlines inside ``( )`` and ``[ ]`` continue the statement, as in Python: the tokenizer drops
them there (the grammar sees no newline).
"""

from __future__ import annotations

import re


class Token:
    """A token for the callbacks: type (terminal name), text, and its character offsets."""

    __slots__ = ("type", "value", "start_pos", "end_pos")

    def __init__(self, type_, value, start, end):
        self.type, self.value, self.start_pos, self.end_pos = type_, value, start, end

    def __str__(self):
        return self.value

    def __repr__(self):
        return f"Token({self.type!r}, {self.value!r})"


class Failure(Exception):
    """Where the driver stopped: the expected terminals, the values on the stack and the token
    (or character offset) it could not take."""

    def __init__(self, expected, value_stack, token=None, pos=None):
        super().__init__()
        self.expected, self.value_stack, self.token, self.pos = expected, value_stack, token, pos


def _callback(rule, builder):
    """The function a reduction by ``rule`` calls: lark's shaping of the children (placeholders,
    inlined ``_rule`` children, ``?rule`` with one child) around the builder's method."""
    name = rule["callback"]
    if name is None:
        return None  # pass-through: no callback at all
    method = getattr(builder, name, None)
    if method is None:
        if not name.startswith("_"):
            raise LookupError(f"the grammar's rule '{name}' has no callback in the tree builder")
        method = list  # an inlined rule: its parent splices the list
    include, append, expand1 = rule["include"], rule["append"], rule["expand1"]
    if (
        not append
        and not expand1
        and len(include) == rule["size"]
        and not any(inline or nones for _, inline, nones in include)
    ):
        return method

    def build(children):
        shaped = []
        for i, inline, nones in include:
            if nones:
                shaped += [None] * nones
            if inline:
                shaped += children[i]
            else:
                shaped.append(children[i])
        if append:
            shaped += [None] * append
        if expand1 and len(shaped) == 1:
            return shaped[0]
        return method(shaped)

    return build


class Driver:
    """Parses text with the tables, building the tree with ``builder``'s callbacks."""

    def __init__(self, tables, builder):
        self.start, self.end = tables["start"], tables["end"]
        self.words = tables["words"]
        rules = [(r["size"], r["origin"], _callback(r, builder)) for r in tables["rules"]]
        # state -> {symbol: (True, state) | (False, (size, origin, callback))}
        self.actions = {
            state: {symbol: (True, arg) if arg >= 0 else (False, rules[-1 - arg]) for symbol, arg in row.items()}
            for state, row in tables["actions"].items()
        }
        self.ignore = frozenset(tables["ignore"])
        self.scanner = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in tables["terminals"]))
        # the same alternation without groups, for findall
        self.plain = re.compile(re.sub(r"(?<!\\)\((?!\?)", "(?:", re.sub(r"\(\?P<\w+>", "(?:", self.scanner.pattern)))
        self.kinds: dict = {}  # token text -> terminal name
        self.chains: dict = {}
        by_word = {text: kind for kind, text in self.words.items()}
        self.opening = {by_word["("], by_word["["]}
        self.closing = {by_word[")"], by_word["]"]}

    def _chain(self, below, top, kind):
        """The state after every pass-through reduction from ``top`` on lookahead ``kind``."""
        actions = self.actions
        while True:
            step = actions[top].get(kind)
            if step is None or step[0] or step[1][2] is not None:
                return top
            top = actions[below][step[1][1]][1]

    def tokens(self, text):
        """The tokens, then ``$END``; a ``$GAP`` token where no terminal matches (a generator)."""
        tokens = self._scan(text)
        return self._bracketed_newlines(tokens) if "\n" in text else tokens

    def _scan(self, text):
        """``findall`` splits the whole text at C speed; when the pieces cover it exactly (the
        usual case), positions are running sums.  Otherwise ``finditer`` finds where the gap is."""
        if len(self.kinds) > 50_000:  # names and numbers seen so far: keep it bounded
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

    def _bracketed_newlines(self, tokens):
        """Drop the newline separators inside brackets (a ';' there stays an error)."""
        depth, opening, closing = 0, self.opening, self.closing
        for token in tokens:
            kind = token.type
            if kind in opening:
                depth += 1
            elif kind in closing:
                depth = max(0, depth - 1)
            elif depth and kind == "_SEP" and token.value == "\n":
                continue
            yield token

    def parse(self, text):
        actions, chains = self.actions, self.chains
        states, values = [self.start], []
        for token in self.tokens(text):
            kind = token.type
            while True:
                top = states[-1]
                step = actions[top].get(kind)
                if step is None:
                    if kind == "$GAP":
                        raise Failure(self.expected(top), values, pos=token.start_pos)
                    raise Failure(self.expected(top), values, token=token)
                shift, arg = step
                if shift:
                    states.append(arg)
                    values.append(token)
                    break
                size, origin, callback = arg
                if callback is None:  # pass-through: collapse the whole chain
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

    def expected(self, state):
        return {s for s in self.actions[state] if s.isupper() or s == "$END"}
