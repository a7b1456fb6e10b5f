"""Profile gradcli's side of a workload: ``python -m bench.profile W2 [--top 25] [--sort tottime]``.

W2 (per node), W3 (dense), W4 (elementwise, n=10^6), W5 (Hessian, --n 1000) run in-process under
cProfile, after one un-profiled warm-up; W1 / W6 (whole processes) print ``python -X importtime``'s
slowest imports of the command instead.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys

import numpy as np


def target(wid: str, n: int | None):
    import gradcli as G

    if wid == "W2":
        from .w2_pernode import gradcli_run

        return lambda: gradcli_run(5000)
    if wid == "W3":
        from .w3_dense import gradcli_fn

        rng = np.random.default_rng(3)
        W, x, b = (
            G.tensor(v, requires_grad=True)
            for v in (
                rng.standard_normal((1000, 1000)),
                rng.standard_normal((1000, 256)),
                rng.standard_normal((1000, 1)),
            )
        )
        run = gradcli_fn()
        return lambda: run(W, x, b)
    if wid == "W4":
        x = G.tensor(np.random.default_rng(4).standard_normal(n or 10**6), requires_grad=True)
        return lambda: G.autograd.grad((G.sin(x) * G.exp(-(x**2)) + G.log(1 + x * x)).sum(), (x,))
    if wid == "W5":
        from gradcli.autograd.functional import hessian

        n = n or 1000
        rng = np.random.default_rng(5)
        A, x = G.tensor(rng.standard_normal((n, n))), G.tensor(rng.standard_normal(n))
        return lambda: hessian(lambda v: (v**4).sum() + v @ A @ v + G.sin(v).sum(), x)
    raise SystemExit(f"no in-process profile for {wid}")


def importtime(argv) -> None:
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    err = subprocess.run(argv, env=env, capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = line[len("import time:") :].split("|")
            try:
                rows.append((int(parts[1]), int(parts[0]), parts[2].rstrip()))
            except ValueError:
                pass
    print("cumulative µs   self µs   module")
    for cum, self_, name in sorted(rows, reverse=True)[:30]:
        print(f"{cum:14d} {self_:9d}   {name}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("workload")
    parser.add_argument("--n", type=int)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    wid = args.workload.upper()
    if wid in ("W1", "W6"):
        from .common import gradcli_command

        cmd = [sys.executable, "-c", "import sys; from gradcli.cli import main; sys.argv[0] = 'gradcli'; main()"]
        tail = (
            ["grad", "w*x+b", "w=2", "x=3", "b=1", "--json"]
            if wid == "W1"
            else ["eval", "sum(x^4) + x @ A @ x + sum(sin(x))", "x=[1, 2]", "A=eye(2)", "--json"]
        )
        print(f"python -X importtime: {' '.join(gradcli_command() + tail)}")
        importtime(cmd + tail)
        return
    fn = target(wid, args.n)
    fn()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.repeat):
        fn()
    prof.disable()
    pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
