"""Start-up: ``gradcli grad "w*x+b" w=2 x=3 b=1 --json`` against ``python -c "import numpy"``.

    python bench/bench_startup.py [--runs 15]

Prints the median wall time of each and their ratio (goal: at most 1.5x), and whether the JSON
path imported rich.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

GRAD = [sys.executable, "-m", "gradcli", "grad", "w*x+b", "w=2", "x=3", "b=1", "--json"]
NUMPY = [sys.executable, "-c", "import numpy"]
RICH = [sys.executable, "-c", "import sys, runpy; sys.argv = ['gradcli'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('gradcli', run_name='__main__')\nexcept SystemExit: pass\n"
        "print('rich' in sys.modules, file=sys.stderr)", "grad", "w*x+b", "w=2", "x=3", "b=1", "--json"]


def median_time(cmd, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    median_time(GRAD, 2)                       # warm the parser cache and .pyc files
    grad = median_time(GRAD, runs)
    numpy = median_time(NUMPY, runs)
    rich = subprocess.run(RICH, capture_output=True, text=True).stderr.strip().splitlines()[-1:]
    print(f"gradcli grad --json : {grad * 1000:7.1f} ms")
    print(f"import numpy        : {numpy * 1000:7.1f} ms")
    print(f"ratio               : {grad / numpy:7.2f}x (goal <= 1.5x)")
    print(f"rich imported       : {rich[0] if rich else '?'}")


if __name__ == "__main__":
    main()
