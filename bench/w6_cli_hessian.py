"""W6 CLI Hessian: the whole process ``gradcli hessian PROGRAM x=@x.npy A=@A.npy --wrt x --json``.

n = 300, x.npy and A.npy in a temporary folder. Against a Python script doing the same with
torch (import torch, load the arrays, ``torch.autograd.functional.hessian(vectorize=True)``,
print JSON), and the same with jax / HIPS autograd when installed; the floor is a numpy script
printing the analytic Hessian. ``--wrt x`` because the issue's command line, without it, asks
for every input's block, A's included (a 90,000 x 90,000 block). Every process's JSON Hessian is
checked against the analytic one. Target: gradcli <= 0.3x the torch script.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import Config, Report, gradcli_command, peer_available, race, run_process
from .w5_hessian import floor

ID = "W6"
TITLE = 'CLI Hessian: gradcli hessian "sum(x^4) + x @ A @ x + sum(sin(x))" n=300 (whole process)'

PROGRAM = "sum(x^4) + x @ A @ x + sum(sin(x))"

LOAD = "import json\nimport numpy as np\nx = np.load('x.npy'); A = np.load('A.npy')\n"
SCRIPTS = {
    "torch": LOAD
    + (
        "import torch\n"
        "xt, At = torch.from_numpy(x), torch.from_numpy(A)\n"
        "f = lambda v: (v ** 4).sum() + v @ At @ v + torch.sin(v).sum()\n"
        "H = torch.autograd.functional.hessian(f, xt, vectorize=True)\n"
        "print(json.dumps({'value': f(xt).item(), 'hessian': {'x': {'x': H.tolist()}}}))\n"
    ),
    "jax": LOAD
    + (
        "import jax\njax.config.update('jax_enable_x64', True)\nimport jax.numpy as jnp\n"
        "f = lambda v: jnp.sum(v ** 4) + v @ A @ v + jnp.sum(jnp.sin(v))\n"
        "H = jax.hessian(f)(jnp.asarray(x))\n"
        "print(json.dumps({'value': float(f(x)), 'hessian': {'x': {'x': np.asarray(H).tolist()}}}))\n"
    ),
    "autograd": LOAD
    + (
        "import autograd\nimport autograd.numpy as anp\n"
        "f = lambda v: anp.sum(v ** 4) + anp.dot(v, anp.dot(A, v)) + anp.sum(anp.sin(v))\n"
        "H = autograd.hessian(f)(x)\n"
        "print(json.dumps({'value': float(f(x)), 'hessian': {'x': {'x': H.tolist()}}}))\n"
    ),
    "floor": LOAD
    + (
        "H = A + A.T\nH[np.diag_indices_from(H)] += 12 * x * x - np.sin(x)\n"
        "value = float(np.sum(x ** 4) + x @ A @ x + np.sum(np.sin(x)))\n"
        "print(json.dumps({'value': value, 'hessian': {'x': {'x': H.tolist()}}}))\n"
    ),
}


def run(cfg: Config, rep: Report) -> None:
    n = cfg.pick(300, 300, 5)
    rng = np.random.default_rng(6)
    xn, An = rng.standard_normal(n), rng.standard_normal((n, n))
    want = floor(xn, An)
    want_value = float(np.sum(xn**4) + xn @ An @ xn + np.sum(np.sin(xn)))
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", xn)
        np.save(Path(tmp) / "A.npy", An)
        env = dict(os.environ, GRADCLI_CACHE_DIR=str(Path(tmp) / "cache"))
        cmd = gradcli_command() + ["hessian", PROGRAM, "x=@x.npy", "A=@A.npy", "--wrt", "x", "--json"]
        rep.say(f"n = {n}; command: {' '.join(cmd)}")
        runs = {"gradcli hessian --json": cmd}
        for name, text in SCRIPTS.items():
            if name != "floor":
                if name not in cfg.peers:
                    rep.note(f"{name}: excluded (--peers)")
                    continue
                if not peer_available(name):
                    rep.note(f"{name}: not installed, skipped")
                    continue
            path = Path(tmp) / f"{name}_hessian.py"
            path.write_text(text)
            label = "floor: numpy script (analytic)" if name == "floor" else f"{name} script"
            runs[label] = [sys.executable, str(path)]

        first = {}
        for label, argv in runs.items():  # correctness first (also the warm-up)
            start = time.perf_counter()
            out = json.loads(run_process(argv, cwd=tmp, env=env).stdout)
            first[label] = [time.perf_counter() - start]
            rep.check(f"{label} value", out["value"], want_value)
            rep.check(f"{label} hessian", out["hessian"]["x"]["x"], want)

        # the checked runs are the first round (a process has nothing to warm but the OS's file
        # cache, which the imports of this bench and W1 have filled); then more rounds, alternating
        contestants = [(label, (lambda argv=argv: run_process(argv, cwd=tmp, env=env))) for label, argv in runs.items()]
        slow = {"torch script": cfg.pick(4, 1, 0), "jax script": cfg.pick(4, 0, 0)}
        more = race(contestants, rounds=cfg.pick(8, 4, 0), warmup=0, max_rounds=slow)
        times = {label: first[label] + more[label] for label in runs}
    med = rep.table("wall time of the whole process", times)
    g = med["gradcli hessian --json"]
    for name in med:
        if name != "gradcli hessian --json" and not name.startswith("floor"):
            rep.ratio(f"gradcli / {name}", g, med[name])
    rep.ratio("gradcli / floor", g, med["floor: numpy script (analytic)"])
    if "torch script" in med:
        rep.target("gradcli / torch script", g / med["torch script"], 0.3)
    else:
        rep.note("no torch: the target is not judged")
