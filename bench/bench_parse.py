"""W7 parse timing: prints numbers, asserts nothing.

    PYTHONPATH=src python bench/bench_parse.py

- a typical one-line program parses in < 1 ms once the parser is built;
- building the parser from its cache adds < 20 ms to start-up (measured in fresh processes);
- a 1 MB program (``x+x+...+x``) parses and evaluates in < 10 s.

The first line calibrates: how long this machine's Python takes for a 10^7-step loop
(about 0.4-0.6 s on a current laptop), to read the other numbers against.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "src"))

STARTUP = """
import time
t0 = time.perf_counter()
import lark
t1 = time.perf_counter()
from gradcli.language import parser
t2 = time.perf_counter()
parser._parser()
t3 = time.perf_counter()
parser.parse("h = tanh(W @ x + b); y = sum(h ^ 2)")
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def calibrate() -> float:
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def startup(cache_dir: str, runs: int = 5):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), GRADCLI_CACHE_DIR=cache_dir)
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", STARTUP], env=env, capture_output=True, text=True, check=True)
        rows.append([float(v) for v in out.stdout.split()])
    return [statistics.median(col) for col in zip(*rows)]


def main() -> None:
    print(f"python loop 10^7 steps (machine calibration): {calibrate():.2f} s")

    with tempfile.TemporaryDirectory() as cold:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), GRADCLI_CACHE_DIR=cold)
        out = subprocess.run([sys.executable, "-c", STARTUP], env=env, capture_output=True, text=True, check=True)
        build_cold = float(out.stdout.split()[2])
        import_lark, import_language, build_cached, first_parse = startup(cold)
    print(f"import lark: {import_lark * 1e3:.1f} ms; import gradcli.language: {import_language * 1e3:.1f} ms")
    print(f"parser build without cache: {build_cold * 1e3:.1f} ms")
    print(f"parser build from cache (start-up cost): {build_cached * 1e3:.1f} ms  [target < 20 ms]")
    print(f"first parse in a fresh process: {first_parse * 1e3:.2f} ms")

    from gradcli.language import parse
    line = "h = tanh(W @ x + b); y = sum(h ^ 2)"
    parse(line)
    times = []
    for _ in range(2000):
        start = time.perf_counter()
        parse(line)
        times.append(time.perf_counter() - start)
    print(f"one-line program parse, median of 2000: {statistics.median(times) * 1e3:.3f} ms  [target < 1 ms]")

    text = "+".join(["x"] * 500_000)
    start = time.perf_counter()
    program = parse(text)
    parsed = time.perf_counter() - start
    print(f"1 MB program ({len(text):,} chars) parse: {parsed:.2f} s")
    try:
        import gradcli as G
        from gradcli.language import run
        G.tensor                            # noqa: B018 - the engine, not a bare namespace
    except (ImportError, AttributeError) as exc:  # the engine is not there yet
        print(f"1 MB program evaluate: skipped ({exc})")
        return
    start = time.perf_counter()
    out = run(program, {"x": G.tensor(1.0)}).output
    evaluated = time.perf_counter() - start
    print(f"1 MB program evaluate: {evaluated:.2f} s (value {out.item():g}); "
          f"parse + evaluate: {parsed + evaluated:.2f} s  [target < 10 s]")
    start = time.perf_counter()
    out = run(program, {"x": G.tensor(1.0, requires_grad=True)}).output
    print(f"1 MB program evaluate with requires_grad: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
