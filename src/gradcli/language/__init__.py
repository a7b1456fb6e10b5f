"""The expression language (SPEC §2): ``parse`` text into an AST, ``run`` it on tensors."""
from .ast import (Array, Assign, Attr, Call, Const, Index, Name, Node, Program, Slice,  # noqa: F401
                  to_source)
from .parser import parse  # noqa: F401


def __getattr__(name):
    # the interpreter imports the engine; keep `import gradcli.language` light for the parser alone
    if name in ("run", "Evaluation", "interpreter"):
        from . import interpreter
        return interpreter if name == "interpreter" else getattr(interpreter, name)
    raise AttributeError(f"module 'gradcli.language' has no attribute {name!r}")
