"""W7 parse: the language front end (absorbs the former ``bench_parse.py``).

- a typical one-line program, ``h = tanh(W @ x + b); y = sum(h ^ 2)``, parsed by
  ``gradcli.language.parse``: median µs, target < 1 ms.  Floor: Python's own ``ast.parse``.
- a 1 MB program ``x+x+...+x`` (500,000 terms): parse + evaluate, target < 10 s (--quick: 100 KB,
  the time scaled by 10 — an estimate that assumes linear cost); also evaluated with
  ``requires_grad`` and differentiated. Python's own parser cannot take this program (it hits
  its recursion limit), so there is no floor for it.
- in fresh processes: ``import gradcli.language.parser``, building the parser from the tables
  shipped with the package (target < 20 ms) and the first parse.
- a machine calibration: a 10^7-step Python loop (0.4-0.6 s on a current laptop).
"""

from __future__ import annotations

import ast
import statistics
import sys
import time

import numpy as np

from .common import Config, Report, fmt_time, run_process

ID = "W7"
TITLE = "parse: one line, a 1 MB program, parser start-up"

LINE = "h = tanh(W @ x + b); y = sum(h ^ 2)"
PY_LINE = "h = np.tanh(W @ x + b); y = np.sum(h ** 2)"

STARTUP = """
import time
t1 = time.perf_counter()
from gradcli.language import parser
t2 = time.perf_counter()
parser._parser()
t3 = time.perf_counter()
parser.parse("h = tanh(W @ x + b); y = sum(h ^ 2)")
t4 = time.perf_counter()
print(t2 - t1, t3 - t2, t4 - t3)
"""


def calibrate(steps: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(steps):
        total += i
    return time.perf_counter() - start


def run(cfg: Config, rep: Report) -> None:
    import gradcli as G
    from gradcli.language import parse
    from gradcli.language import run as run_program

    steps = cfg.pick(10**7, 10**7, 10**5)
    cal = calibrate(steps)
    rep.say(f"machine calibration: Python loop of {steps:,} steps: {fmt_time(cal)}")
    rep.extra["calibration_loop_s"] = cal

    # correctness: the one-liner evaluates as numpy does
    rng = np.random.default_rng(7)
    Wn, xn, bn = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(4)
    out = run_program(parse(LINE), {"W": G.tensor(Wn), "x": G.tensor(xn), "b": G.tensor(bn)}).output
    rep.check("one-liner value", out.data, np.sum(np.tanh(Wn @ xn + bn) ** 2))

    # the one-liner, against Python's own parser
    def gradcli_parse():
        start = time.perf_counter()
        parse(LINE)
        return time.perf_counter() - start

    def ast_parse():
        start = time.perf_counter()
        ast.parse(PY_LINE)
        return time.perf_counter() - start

    gradcli_parse(), ast_parse()  # warm-up: the parser is built once per process
    reps = cfg.pick(2000, 500, 10)
    times = {"gradcli parse": [], "floor: Python ast.parse": []}
    for _ in range(reps):
        times["gradcli parse"].append(gradcli_parse())
        times["floor: Python ast.parse"].append(ast_parse())
    med = rep.table(f"one-line program parse ({LINE!r}), {reps} alternating repeats", times)
    rep.ratio("gradcli parse / ast.parse", med["gradcli parse"], med["floor: Python ast.parse"])
    rep.target("one-line parse", med["gradcli parse"], 1e-3, unit="s")

    # the 1 MB program
    terms = cfg.pick(500_000, 50_000, 500)
    scale = 500_000 / terms
    text = "+".join(["x"] * terms)
    rep.say(
        f"big program: {len(text):,} characters ({terms:,} terms)"
        + (f"; times scaled by {scale:g} to 1 MB (assumes linear cost)" if scale != 1 else "")
    )
    program = parse(text)
    value = run_program(program, {"x": G.tensor(1.0)}).output.item()
    rep.check("big program value", value, float(terms))
    if not ast_fails(text):
        rep.note("Python's ast.parse took the big program")

    timings = {"parse": [], "evaluate": [], "parse + evaluate": []}
    for _ in range(cfg.pick(3, 3, 1)):
        start = time.perf_counter()
        p = parse(text)
        mid = time.perf_counter()
        run_program(p, {"x": G.tensor(1.0)})
        end = time.perf_counter()
        del p
        timings["parse"].append(mid - start)
        timings["evaluate"].append(end - mid)
        timings["parse + evaluate"].append(end - start)
    big = rep.table(f"big program, {len(text):,} characters", timings)

    grad_times = {"evaluate (requires_grad) + backward": []}
    for _ in range(cfg.pick(1, 1, 1)):
        start = time.perf_counter()
        x = G.tensor(1.0, requires_grad=True)
        out = run_program(program, {"x": x}).output
        out.backward()
        grad_times["evaluate (requires_grad) + backward"].append(time.perf_counter() - start)
    rep.check("big program d/dx", x.grad.item(), float(terms))
    rep.table("big program with gradient", grad_times)
    del out, x
    rep.target(
        "1 MB program parse + evaluate" + (" (scaled estimate)" if scale != 1 else ""),
        big["parse + evaluate"] * scale,
        10.0,
        unit="s",
    )

    # start-up pieces, in fresh processes (the tables ship with the package: nothing on disk)
    rows = [
        [float(v) for v in run_process([sys.executable, "-c", STARTUP]).stdout.split()]
        for _ in range(cfg.pick(7, 3, 1))
    ]
    import_language, build, first_parse = (statistics.median(c) for c in zip(*rows))
    rep.say(
        f"fresh process: import gradcli.language.parser {fmt_time(import_language)}, parser build from "
        f"the shipped tables {fmt_time(build)}, first parse {fmt_time(first_parse)}"
    )
    rep.extra["startup"] = {"import_language_s": import_language, "build_s": build, "first_parse_s": first_parse}
    rep.target("parser build from the shipped tables (start-up cost)", build, 0.020, unit="s")


def ast_fails(text: str) -> bool:
    try:
        ast.parse(text)
    except (RecursionError, SyntaxError, MemoryError):
        return True
    return False
