"""The expression language (SPEC §2): ``parse`` text into an AST, ``run`` it on tensors.

Importing this package does not import the engine: ``run`` imports it on first use.
"""

from .ast import Array, Assign, Attr, Call, Const, Index, Name, Node, Program, Slice, to_source  # noqa: F401
from .interpreter import Evaluation, run  # noqa: F401
from .parser import parse  # noqa: F401
