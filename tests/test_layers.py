"""The layers only look down (issue 9): graph types, then the Tensor, then the engine and the
custom Function, then the op table, then the public functions; what a lower layer needs from a
higher one it gets by registration, never by importing it (at module level or inside a function).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "gradcli"

# module -> the gradcli modules it may import (anywhere in its text)
ALLOWED = {
    "autograd/grad_mode.py": set(),
    "autograd/graph.py": set(),
    "backend.py": {"errors"},
    "tensor.py": {"backend", "autograd.graph"},
    "public.py": {"tensor"},
    "threads.py": set(),
    "kernels.py": set(),
    "autograd/engine.py": {"backend", "tensor", "autograd.grad_mode", "autograd.graph"},
    "autograd/function.py": {"tensor", "autograd.grad_mode", "autograd.graph"},
    "constructors.py": {"backend", "public", "tensor"},
    "ops.py": {
        "backend",
        "kernels",
        "threads",
        "autograd.engine",
        "autograd.grad_mode",
        "autograd.graph",
        "constructors",
        "public",
        "tensor",
    },
    "functions.py": {"backend", "constructors", "ops", "public", "tensor"},
}


def _imports(path):
    """The gradcli modules ``path`` imports, as dotted names relative to the package."""
    package = path.relative_to(SRC).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").startswith("gradcli"):
                    found.add(node.module.removeprefix("gradcli").lstrip("."))
                continue
            base = list(package[: len(package) - (node.level - 1)]) if node.level > 1 else list(package)
            module = ".".join(base + ([node.module] if node.module else []))
            if node.module and not (SRC / module.replace(".", "/")).is_dir():
                found.add(module)
            else:  # from a package: the names are its submodules
                found.update(".".join([p for p in module.split(".") if p] + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("gradcli.") for a in node.names if a.name.startswith("gradcli"))
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below(module):
    imported = _imports(SRC / module)
    assert imported <= ALLOWED[module], f"{module} imports {sorted(imported - ALLOWED[module])}"


def test_the_engine_runs_without_the_op_table_until_it_registers():
    """Importing the graph types, the Tensor and the engine does not import the op table."""
    # the package's __init__ imports everything: load the submodules without it
    code = (
        "import importlib.util, sys, types; pkg = types.ModuleType('gradcli'); "
        f"pkg.__path__ = [{str(SRC)!r}]; sys.modules['gradcli'] = pkg; "
        "sub = types.ModuleType('gradcli.autograd'); "
        f"sub.__path__ = [{str(SRC / 'autograd')!r}]; sys.modules['gradcli.autograd'] = sub; "
        "import gradcli.autograd.engine; print('gradcli.ops' in sys.modules, 'gradcli.functions' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
