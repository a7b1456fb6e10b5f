"""W8 streaming: ``gradcli grad "w*x+b" --each lines.jsonl`` (whole process), lines per second.

N lines of scalar w, x, b (10^5; quick 2*10^4) through one process, against one ``gradcli grad
... --json`` process per line (the rate a shell loop gets; a handful of processes timed). Also
``eval`` over the same lines and ``hessian "sum(x^4) + sum(sin(x)) * sum(x)"`` of a 10-element
x (per line: not elementwise, so no batching). Every output line is checked against numpy.
Targets: grad >= 2,000 lines/s (goal 20,000), and >= 200x the one-process-per-line rate.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import Config, Report, gradcli_command, race, run_process

ID = "W8"
TITLE = 'streaming: gradcli grad "w*x+b" --each lines.jsonl (whole process, lines/s)'

HESSIAN = "sum(x^4) + sum(sin(x)) * sum(x)"


def _hessian(x):
    c = np.cos(x)
    h = np.diag(12 * x**2 - np.sin(x) * np.sum(x)) + c[:, None] + c[None, :]
    return h


def _write(path, rows):
    with open(path, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def run(cfg: Config, rep: Report) -> None:
    n = cfg.pick(100_000, 20_000, 200)
    nh = cfg.pick(5_000, 1_000, 20)
    single = cfg.pick(8, 4, 1)
    rng = np.random.default_rng(8)
    w, x, b = rng.standard_normal((3, n))
    xs = rng.standard_normal((nh, 10))
    with tempfile.TemporaryDirectory() as tmp:
        lines, hlines = Path(tmp) / "lines.jsonl", Path(tmp) / "h.jsonl"
        _write(lines, ({"w": float(w[i]), "x": float(x[i]), "b": float(b[i])} for i in range(n)))
        _write(hlines, ({"x": xs[i].tolist()} for i in range(nh)))
        env = dict(os.environ, GRADCLI_CACHE_DIR=str(Path(tmp) / "cache"))
        base = gradcli_command()
        cmds = {
            "grad --each": base + ["grad", "w*x+b", "--each", str(lines)],
            "eval --each": base + ["eval", "w*x+b", "--each", str(lines)],
            "hessian --each (x: 10)": base + ["hessian", HESSIAN, "--each", str(hlines)],
        }
        rep.say(f"N = {n} lines (hessian {nh}); commands: " + "; ".join(" ".join(c[-4:]) for c in cmds.values()))

        # correctness first (also the warm-up)
        out = [json.loads(t) for t in run_process(cmds["grad --each"], env=env).stdout.splitlines()]
        rep.check("grad --each values", [o["value"] for o in out], w * x + b)
        rep.check(
            "grad --each grads", [[o["grads"][k] for k in "wxb"] for o in out], np.stack([x, w, np.ones(n)], axis=1)
        )
        out = [json.loads(t) for t in run_process(cmds["eval --each"], env=env).stdout.splitlines()]
        rep.check("eval --each values", [o["value"] for o in out], w * x + b)
        out = [json.loads(t) for t in run_process(cmds["hessian --each (x: 10)"], env=env).stdout.splitlines()]
        rep.check("hessian --each", [o["hessian"]["x"]["x"] for o in out], np.stack([_hessian(v) for v in xs]))

        contestants = [(label, (lambda c=c: run_process(c, env=env))) for label, c in cmds.items()]
        times = race(contestants, rounds=cfg.pick(3, 2, 1), warmup=0)
        med = rep.table("wall time of the whole process", times)

        one = base + ["grad", "w*x+b", f"w={float(w[0])!r}", f"x={float(x[0])!r}", f"b={float(b[0])!r}", "--json"]
        got = json.loads(run_process(one, env=env).stdout)
        rep.check("one process per line", [got["value"], got["grads"]["w"]], [w[0] * x[0] + b[0], x[0]])
        start = time.perf_counter()
        for i in range(single):
            run_process(
                base + ["grad", "w*x+b", f"w={float(w[i])!r}", f"x={float(x[i])!r}", f"b={float(b[i])!r}", "--json"],
                env=env,
            )
        per_process = (time.perf_counter() - start) / single

    rates = {
        "grad": n / med["grad --each"],
        "eval": n / med["eval --each"],
        "hessian (x: 10)": nh / med["hessian --each (x: 10)"],
        "one process per line": 1 / per_process,
    }
    for label, rate in rates.items():
        rep.say(f"    {label:<34} {rate:12,.0f} lines/s")
    rep.extra["lines_per_s"] = rates
    rep.ratio("grad --each / one process per line", rates["grad"], rates["one process per line"])
    rep.target("grad --each lines/s", rates["grad"], 2000, goal=20000, unit=" lines/s", higher_is_better=True)
    rep.target(
        "grad --each / one process per line", rates["grad"] / rates["one process per line"], 200, higher_is_better=True
    )
