"""W1 start-up: the whole process ``gradcli grad "w*x+b" w=2 x=3 b=1 --json``.

Against ``python -c "import numpy"`` (target <= 1.5x, goal 1.3x) and ``python -c "import torch"``
(and ``import jax`` / ``import autograd`` when installed). Nothing is cached on disk: the parse
tables ship with the package (``GRADCLI_CACHE_DIR`` is set to an empty folder only so that an older
gradcli that had caches would be measured from a clean state).
Also reports whether the JSON path imported rich, typer or lark.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from .common import Config, Report, gradcli_command, peer_available, race, run_process

ID = "W1"
TITLE = 'start-up: gradcli grad "w*x+b" w=2 x=3 b=1 --json (whole process)'

ARGS = ["grad", "w*x+b", "w=2", "x=3", "b=1", "--json"]
PROBE = (
    "import sys, runpy\nsys.argv = ['gradcli'] + sys.argv[1:]\ntry:\n"
    "    runpy.run_module('gradcli', run_name='__main__')\nexcept SystemExit: pass\n"
    "print(sorted(m for m in ('rich', 'typer', 'lark', 'torch') if m in sys.modules), file=sys.stderr)"
)


def _compile_gradcli(rep: Report) -> None:
    """Byte-compile gradcli as ``pip install`` does: an editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every start."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("gradcli")
    folder = os.path.dirname(spec.origin) if spec and spec.origin else None
    if folder and compileall.compile_dir(folder, quiet=1):
        rep.say(f"byte-compiled {folder} (as pip install does)")


def run(cfg: Config, rep: Report) -> None:
    _compile_gradcli(rep)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, GRADCLI_CACHE_DIR=cache)
        grad_cmd = gradcli_command() + ARGS
        rep.say(f"command: {' '.join(grad_cmd)}")

        # correctness first: the JSON answer against the floor (w*x+b at 2, 3, 1)
        out = json.loads(run_process(grad_cmd, env=env).stdout)
        rep.check("gradcli value", out["value"], 7.0)
        rep.check("gradcli grads", [out["grads"][k] for k in "wxb"], [3.0, 2.0, 1.0])

        def proc(cmd):
            return lambda: run_process(cmd, env=env)

        contestants = [
            ("gradcli grad --json", proc(grad_cmd)),
            ("python -c 'import numpy'", proc([sys.executable, "-c", "import numpy"])),
            ("python -c 'pass'", proc([sys.executable, "-c", "pass"])),
        ]
        expensive = {}
        for name in ("torch", "jax", "autograd"):
            if name not in cfg.peers:
                rep.note(f"{name}: excluded (--peers)")
            elif not peer_available(name):
                rep.note(f"{name}: not installed, skipped")
            else:
                label = f"python -c 'import {name}'"
                contestants.append((label, proc([sys.executable, "-c", f"import {name}"])))
                if name != "autograd":
                    expensive[label] = cfg.pick(5, 2, 1)
        rounds = cfg.pick(21, 7, 1)
        # the expensive imports are not warmed: the bench process has imported them already
        times = race(
            contestants,
            rounds=rounds,
            warmup=cfg.pick(2, 1, 0),
            max_rounds=expensive,
            warmups={label: 0 for label in expensive},
        )
        med = rep.table("wall time of the whole process", times)
        grad = med["gradcli grad --json"]
        vs_numpy = rep.ratio("gradcli / import numpy", grad, med["python -c 'import numpy'"])
        rep.ratio("gradcli / bare python", grad, med["python -c 'pass'"])
        for label in med:
            if label.startswith("python -c 'import ") and "numpy" not in label:
                rep.ratio("gradcli / " + label[len("python -c '") : -1], grad, med[label])
        rep.target("gradcli / import numpy", vs_numpy, 1.5, goal=1.3)

        probe = run_process([sys.executable, "-c", PROBE, *ARGS], env=env)
        loaded = probe.stderr.strip().splitlines()[-1:] or ["?"]
        rep.say(f"modules loaded by the JSON path (of rich, typer, lark, torch): {loaded[0]}")
        rep.extra["heavy_modules_loaded"] = loaded[0]
