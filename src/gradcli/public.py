"""The public names: one registration per name, declaring how it is exposed.

``@public(doc=..., ...)`` (or ``register(name, fn, ...)``) registers a function once; every
table below is derived from the registrations, as they are made:

- ``FUNCTIONS`` / ``DOCS``: the language's functions and their one-line docs (the README's
  function list and ``gradcli functions`` are generated from them); ``language=False`` keeps a
  name out of the language (it is still ``gradcli.NAME``: ``API``);
- ``method``: also a Tensor method (True: the same function with the tensor first; a string:
  under another name; a function: a different signature, as ``Tensor.where``);
- ``symbol``, ``precedence``, ``fold``: the operator that spells it in the language
  (``a + b``), how tightly it binds (the grammar's tiers, 1 = comparisons ... 5 = power) and
  the Python operator that folds it when all operands are numbers: ``BINARY``, ``UNARY``,
  ``FOLD``, which the AST printer and the interpreter read;
- ``constructor``: builds a tensor from sizes and takes ``dtype=``/``device=`` (``CONSTRUCTORS``);
- ``takes_list``: its first argument is a list of tensors, ``stack([x, y])`` (``LIST_FUNCTIONS``).

The op table (``gradcli.ops``) registers each simple primitive from its row; the PyTorch-style
functions (``gradcli.functions``) and the constructors (``gradcli.constructors``) register
themselves where they are defined.
"""

from __future__ import annotations

from .tensor import Tensor

FUNCTIONS: dict = {}  # language name -> callable
DOCS: dict = {}  # language name -> one-line doc
API: dict = {}  # every public name (gradcli.NAME) -> callable
METHODS: dict = {}  # Tensor method name -> the function behind it
BINARY: dict = {}  # op name -> (symbol, precedence), infix
UNARY: dict = {}  # op name -> symbol, prefix
FOLD: dict = {}  # op name -> Python operator on numbers
CONSTRUCTORS: set = set()
LIST_FUNCTIONS: set = set()
_TABLES = (FUNCTIONS, DOCS, API, BINARY, UNARY, FOLD)


def register(
    name,
    fn,
    doc=None,
    *,
    language=True,
    method=False,
    symbol=None,
    precedence=None,
    fold=None,
    constructor=False,
    takes_list=False,
):
    """Make ``fn`` public as ``name`` (see the module docstring); returns ``fn``."""
    if name in API:
        raise ValueError(f"'{name}' is registered twice")
    API[name] = fn
    if language:
        FUNCTIONS[name] = fn
        DOCS[name] = doc or fn.__doc__ or ""
    if symbol is not None:
        if precedence is None:
            UNARY[name] = symbol
        else:
            BINARY[name] = (symbol, precedence)
        if fold is not None:
            FOLD[name] = fold
    if constructor:
        CONSTRUCTORS.add(name)
    if takes_list:
        LIST_FUNCTIONS.add(name)
    if method:
        if callable(method):
            attach(name, method)
        else:
            for alias in (name,) if method is True else (method,) if isinstance(method, str) else method:
                attach(alias, _as_method(fn, alias))
    return fn


def public(name=None, doc=None, **exposure):
    """Decorator form of ``register``: ``@public(doc="...", method=True)`` over a function."""

    def decorate(fn):
        return register(name or fn.__name__, fn, doc, **exposure)

    return decorate


def attach(name, method):
    """``Tensor.<name>``: a method, property or operator of the Tensor class."""
    METHODS[name] = method
    setattr(Tensor, name, method)


def unregister(name):
    """Remove ``name`` from every table (for tests that register a name of their own)."""
    for table in _TABLES:
        table.pop(name, None)
    CONSTRUCTORS.discard(name)
    LIST_FUNCTIONS.discard(name)
    if name in METHODS:
        del METHODS[name]
        delattr(Tensor, name)


_FUNCTION = type(lambda: None)


def _as_method(f, name):
    if f.__class__ is _FUNCTION and f.__name__ == name:
        return f  # a plain function binds as a method itself: no call in between

    def method(self, *args, **kwargs):
        return f(self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f.__doc__
    return method
