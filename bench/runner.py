"""The runner: ``python -m bench [--quick | --smoke] [--only W2,W5] [--json FILE] [--markdown FILE]``.

Prints the machine, thread counts and versions, then each workload's medians, ratios and
targets (PASS / MISS). Exit 1 when any contestant's numbers differ from the numpy floor (or a
workload crashed); a MISS never changes the exit code.
"""

from __future__ import annotations

import argparse
import time
import traceback

from . import workloads
from .common import PEERS, Config, Report, dumps, environment, fmt_time, print_environment


def run_workloads(cfg: Config, only=None) -> tuple[dict, list]:
    table = workloads()
    wanted = [w.upper() for w in only] if only else list(table)
    unknown = [w for w in wanted if w not in table]
    if unknown:
        raise SystemExit(f"unknown workload(s): {', '.join(unknown)} (have {', '.join(table)})")
    env = environment(cfg)
    print_environment(env)
    reports = []
    for wid in wanted:
        mod = table[wid]
        rep = Report(wid, mod.TITLE, judge=cfg.mode != "smoke")
        print(f"\n--- {wid} {mod.TITLE}", flush=True)
        start = time.perf_counter()
        try:
            mod.run(cfg, rep)
        except Exception as exc:  # noqa: BLE001 - a crashed workload is a failure, the others still run
            traceback.print_exc()
            rep.fail(f"crashed: {type(exc).__name__}: {exc}")
        rep.extra["wall_s"] = time.perf_counter() - start
        print(f"  ({wid} took {fmt_time(rep.extra['wall_s'])})", flush=True)
        reports.append(rep)
    return env, reports


def _shown(t) -> str:
    if t["unit"] == "x":
        return f"{t['value']:.2f}x"
    if t["unit"] == "s":
        return fmt_time(t["value"])
    return f"{t['value']:,.0f}{t['unit']}"


def summary(reports) -> str:
    lines = ["", "=" * 78, "SUMMARY"]
    for rep in reports:
        for t in rep.targets:
            shown = _shown(t)
            lines.append(f"  {rep.wid}  {t['label']:<52} {shown:>10}  ({t['text']})  {t['verdict']}")
        for f in rep.failures:
            lines.append(f"  {rep.wid}  FAILURE: {f}")
    failures = sum(len(r.failures) for r in reports)
    misses = sum(1 for r in reports for t in r.targets if t["ok"] is False)
    passes = sum(1 for r in reports for t in r.targets if t["ok"] is True)
    lines.append(f"targets: {passes} PASS, {misses} MISS; correctness failures: {failures}")
    lines.append("=" * 78)
    return "\n".join(lines)


def markdown(env: dict, reports) -> str:
    """The results as Markdown (the body of BENCHMARKS.md)."""
    out = [
        f"Run: {env['date']}, `python -m bench{'' if env['mode'] == 'full' else ' --' + env['mode']}`, "
        f"gradcli git `{env['git_commit']}`{' (src with uncommitted changes)' if env['src_dirty'] else ''}.",
        "",
        f"- Machine: {env['cpu']}, `nproc` = {env['usable_cpus']} (os.cpu_count() = {env['os.cpu_count']}); "
        f"{env['platform']}",
        f"- Threads: numpy BLAS {env['numpy_blas']} with {env['numpy_blas_threads']} threads; "
        f"torch.get_num_threads() = {env.get('torch_threads', '-')}; "
        + ", ".join(f"{k}={v}" for k, v in env["thread_env"].items()),
        f"- Versions: Python {env['python']}, gradcli {env['gradcli']}, numpy {env['numpy']}, lark {env['lark']}, "
        f"torch {env['torch'] or 'absent'}, jax {env['jax'] or 'absent'}, HIPS autograd {env['autograd'] or 'absent'}",
        "",
    ]
    out += ["### Targets", "", "| | measure | value | target | verdict |", "| --- | --- | ---: | --- | --- |"]
    for rep in reports:
        for t in rep.targets:
            shown = _shown(t)
            verdict = f"**{t['verdict']}**" if t["ok"] is False else t["verdict"]
            out.append(f"| {rep.wid} | {t['label']} | {shown} | {t['text']} | {verdict} |")
    fails = [(r.wid, f) for r in reports for f in r.failures]
    out += [
        "",
        "Correctness (every contestant against the numpy floor): "
        + ("all agree." if not fails else "; ".join(f"**{w} FAILURE** {f}" for w, f in fails)),
        "",
    ]
    for rep in reports:
        out += [f"### {rep.wid} {rep.title}", ""]
        for tab in rep.tables:
            out += [f"{tab['label']}:", "", "| contestant | median | min | rounds |", "| --- | ---: | ---: | ---: |"]
            for row in tab["rows"]:
                per = [k for k in row if k.startswith("per_")]
                extra = f" ({row[per[0]] * 1e6:.3f} µs/{per[0][4:-2]})" if per else ""
                out.append(
                    f"| {row['name']} | {fmt_time(row['median_s'])}{extra} "
                    f"| {fmt_time(row['min_s'])} | {row['rounds']} |"
                )
            out.append("")
        if rep.ratios:
            out += (
                ["| ratio | |", "| --- | ---: |"] + [f"| {r['label']} | {r['value']:.2f}x |" for r in rep.ratios] + [""]
            )
        for key, value in rep.extra.items():
            if key.startswith("peak_memory"):
                out.append(
                    f"Peak memory ({key[len('peak_memory_bytes') :].strip('_') or 'tracemalloc'}): "
                    + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in value.items())
                )
            elif key == "growth":
                out += ["Cost growth with n (time ratio between sizes, exponent p of n):", ""]
                out += [f"- {k}: {'; '.join(v)}" for k, v in value.items()]
            elif key in ("heavy_modules_loaded",):
                out.append(f"Modules loaded by the JSON path (of rich, typer, lark, torch): {value}")
            elif key == "startup":
                out.append(
                    "Fresh process: " + ", ".join(f"{k[:-2].replace('_', ' ')} {fmt_time(v)}" for k, v in value.items())
                )
            elif key == "calibration_loop_s":
                out.append(f"Machine calibration (Python loop of 10^7 steps): {fmt_time(value)}")
        out += [f"Notes: {'; '.join(rep.notes)}" if rep.notes else "", ""]
    return "\n".join(line for line in out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (under two minutes)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: checks that everything runs")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W2,W5")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated peers to run when installed (default {','.join(PEERS)}; 'none' for none)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every number as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the results as Markdown (BENCHMARKS.md's body)")
    args = parser.parse_args(argv)
    peers = tuple(p.strip().lower() for p in args.peers.split(",") if p.strip() and p.strip().lower() != "none")
    bad = [p for p in peers if p not in PEERS]
    if bad:
        parser.error(f"unknown peer(s) {', '.join(bad)}; choose from {', '.join(PEERS)}")
    cfg = Config(mode="quick" if args.quick else "smoke" if args.smoke else "full", peers=peers)
    only = [w.strip() for w in args.only.split(",") if w.strip()] or None
    start = time.perf_counter()
    env, reports = run_workloads(cfg, only)
    print(summary(reports))
    print(f"total wall time {fmt_time(time.perf_counter() - start)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(dumps({"environment": env, "workloads": [r.as_dict() for r in reports]}))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(markdown(env, reports))
    failed = any(r.failures for r in reports)
    if failed:
        print("\nFAILED: some contestant's numbers differ from the numpy floor (or a workload crashed); see above.")
    return 1 if failed else 0
