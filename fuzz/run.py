"""Fuzz gradcli's real entry point with N random command lines (default 10^5).

    python fuzz/run.py [N] [--seed S] [--out fuzz/findings.jsonl] [--timeout SECONDS]

Each input is a command line from ``harness.generate`` (programs, token soups, values, files,
option combinations), run in this process through ``gradcli.cli.main``.  A finding is any run
that is not "a result, or a gradcli error with exit 1 or 2": a crash (an exception escaping
main), exit 70, a traceback, a hang, output on stdout with an error.  Findings are written one
JSON line each (with the command line, to replay it); the summary counts inputs, exit codes,
findings and distinct findings.  Memory is capped (RLIMIT_AS) so a runaway allocation is a
MemoryError, not a machine in trouble.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import generate, make_files, run, signature, verdict  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="findings as JSON lines (default: stdout summary only)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds before a run counts as a hang")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address-space cap (RLIMIT_AS)")
    parser.add_argument("--max-elements", default="20000", help="GRADCLI_MAX_ELEMENTS for the runs (speed)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this long (the summary counts what ran)"
    )
    parser.add_argument("--summary", default=None, help="also write the summary here, every 1000 inputs")
    args = parser.parse_args(argv)

    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.environ["GRADCLI_MAX_ELEMENTS"] = args.max_elements
    os.environ.pop("GRADCLI_DEBUG", None)
    os.environ["NO_COLOR"] = "1"
    rng = random.Random(args.seed)
    files = make_files(Path(tempfile.mkdtemp(prefix="gradcli-fuzz-")))
    codes = collections.Counter()
    distinct: dict = {}
    findings = 0
    out = open(args.out, "w", encoding="utf-8") if args.out else None
    start = time.monotonic()
    done = 0
    for i in range(args.count):
        if args.seconds is not None and time.monotonic() - start > args.seconds:
            break
        case = generate(rng, files)
        outcome = run(case, timeout=args.timeout)
        codes[outcome.code if not (outcome.crash or outcome.hang) else "crash" if outcome.crash else "hang"] += 1
        problem = verdict(outcome)
        if problem:
            findings += 1
            key = signature(problem)
            first = key not in distinct
            distinct.setdefault(key, 0)
            distinct[key] += 1
            if out and first:
                out.write(
                    json.dumps(
                        {
                            "problem": problem,
                            "argv": case.argv,
                            "stdin": case.stdin.decode("utf-8", "replace"),
                            "shell": case.shell(),
                            "stderr": outcome.stderr[-2000:],
                            "crash": outcome.crash,
                        }
                    )
                    + "\n"
                )
                out.flush()
        done = i + 1
        if args.summary and done % 1000 == 0:
            Path(args.summary).write_text(
                json.dumps(_summary(done, args.seed, start, codes, findings, distinct), indent=1)
            )
        if (i + 1) % 5000 == 0:
            rate = (i + 1) / (time.monotonic() - start)
            print(
                f"{i + 1:,} inputs, {findings} findings ({len(distinct)} distinct), {rate:.0f}/s",
                file=sys.stderr,
                flush=True,
            )
    summary = _summary(done, args.seed, start, codes, findings, distinct)
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 1 if findings else 0


def _summary(done, seed, start, codes, findings, distinct):
    return {
        "inputs": done,
        "seed": seed,
        "seconds": round(time.monotonic() - start, 1),
        "exit_codes": {str(k): v for k, v in sorted(codes.items(), key=lambda kv: str(kv[0]))},
        "findings": findings,
        "distinct_findings": len(distinct),
        "exit_70": codes.get(70, 0),
        "by_signature": distinct,
    }


if __name__ == "__main__":
    sys.exit(main())
