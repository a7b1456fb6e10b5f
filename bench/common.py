"""Shared machinery of the benchmarks: configuration, peers, timing, checks and the report.

Timing rules (every workload follows them):

- ``time.perf_counter``; each contestant runs once (or more) un-timed first (warm-up: imports,
  caches, jit compilation, page faults);
- contestants alternate round by round (A B C A B C ...), so a slow phase of the machine hits
  them all alike; the number reported is the median of the rounds;
- ``gc.collect()`` before every timed call, the collector left enabled during it (what a user's
  program sees: the cost of a contestant's garbage is part of its time); what was alive before
  the race (the peers' modules, the inputs) is frozen with ``gc.freeze()`` so that collections
  do not walk it, for every contestant alike;
- before any timing, every contestant's numbers are compared with the hand-written numpy floor
  (``np.allclose``); a mismatch is a loud FAILURE and makes the run exit 1.

Targets are printed with PASS / MISS; nothing here asserts a time.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("torch", "jax", "autograd")


# ------------------------------------------------------------------------------------------
# configuration


@dataclass
class Config:
    mode: str = "full"  # "full" | "quick" | "smoke"
    peers: tuple = PEERS  # peers allowed to run (installed ones only do)
    verbose: bool = False

    def pick(self, full, quick, smoke):
        return {"full": full, "quick": quick, "smoke": smoke}[self.mode]


# ------------------------------------------------------------------------------------------
# peers: imported on first use, skipped with a note when missing

_PEER_CACHE: dict = {}


def peer(name: str, cfg: Config):
    """The peer's module (``torch``, ``jax``, ``autograd``), or None when absent or excluded."""
    if name not in cfg.peers:
        return None
    if name in _PEER_CACHE:
        return _PEER_CACHE[name][0]
    module, why = None, ""
    try:
        if name == "torch":
            import torch

            module = torch
        elif name == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)  # float64, as gradcli and the floor
            jax.config.update("jax_platforms", "cpu")
            module = jax
        elif name == "autograd":
            import autograd
            import autograd.numpy  # noqa: F401

            module = autograd
    except Exception as exc:  # noqa: BLE001 - a broken install is as good as a missing one
        why = f"{type(exc).__name__}: {exc}"
    _PEER_CACHE[name] = (module, why)
    return module


def peer_note(name: str, cfg: Config) -> str:
    if name not in cfg.peers:
        return f"{name}: excluded (--peers)"
    mod, why = _PEER_CACHE.get(name, (None, "not tried"))
    if mod is not None:
        return ""
    return f"{name}: not installed, skipped" + (f" ({why})" if why and "No module named" not in why else "")


def peer_available(name: str) -> bool:
    """Whether a peer can be imported by a fresh interpreter (for the whole-process workloads)."""
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ------------------------------------------------------------------------------------------
# timing


def time_call(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def race(
    contestants, rounds: int, warmup: int = 1, max_rounds: dict | None = None, warmups: dict | None = None
) -> dict:
    """Times ``contestants`` ([(name, fn)]) alternately; returns {name: [seconds per round]}.

    ``max_rounds`` caps the rounds of an expensive contestant (it takes part in the first ones);
    ``warmups`` overrides ``warmup`` per contestant (0 where the correctness run warmed it).
    Objects alive at the start are frozen (``gc.freeze``) for the race, so neither the
    ``gc.collect()`` before each call nor the collections inside it walk the peers' modules.
    """
    max_rounds = max_rounds or {}
    warmups = warmups or {}
    for name, fn in contestants:
        for _ in range(warmups.get(name, warmup)):
            fn()
    times = {name: [] for name, _ in contestants}
    gc.collect()
    gc.freeze()
    try:
        for r in range(rounds):
            for name, fn in contestants:
                if r < max_rounds.get(name, rounds):
                    times[name].append(time_call(fn))
    finally:
        gc.unfreeze()
    return times


def run_process(cmd, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))[:200]} exited {out.returncode}: {out.stderr.strip()[-2000:]}")
    return out


def peak_memory(fn) -> int:
    """Peak bytes allocated (numpy arrays included: numpy reports to tracemalloc) while ``fn`` runs."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def gradcli_command() -> list:
    """The installed console script beside this interpreter, else ``python -m gradcli``."""
    for folder in (Path(sys.executable).parent,):
        exe = folder / "gradcli"
        if exe.exists():
            return [str(exe)]
    found = shutil.which("gradcli")
    if found:
        return [found]
    return [sys.executable, "-m", "gradcli"]


# ------------------------------------------------------------------------------------------
# the report


def fmt_time(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


@dataclass
class Report:
    """What one workload printed and found: timings, ratios, targets, failures."""

    wid: str
    title: str
    tables: list = field(default_factory=list)  # [{"label", "rows": [{"name", "median", ...}]}]
    ratios: list = field(default_factory=list)  # [{"label", "value"}]
    targets: list = field(default_factory=list)  # [{"label", "value", "limit", "goal", "unit", "ok"}]
    notes: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    judge: bool = True  # False in smoke mode: tiny sizes prove nothing

    def say(self, text: str = "") -> None:
        print(f"  {text}" if text else "", flush=True)

    def note(self, text: str) -> None:
        if text:
            self.notes.append(text)
            self.say(f"note: {text}")

    def peer_notes(self, cfg: Config, names=PEERS) -> None:
        for name in names:
            peer(name, cfg)
            self.note(peer_note(name, cfg))

    def fail(self, text: str) -> None:
        self.failures.append(text)
        bar = "!" * 78
        print(f"\n{bar}\n!!! FAILURE [{self.wid}] {text}\n{bar}\n", flush=True)

    def check(self, label: str, got, want, rtol: float = 1e-6, atol: float = 1e-8) -> bool:
        """``np.allclose(got, want)``; a mismatch (or a shape difference) is a failure."""
        try:
            g = np.asarray(got, dtype=np.float64)
            w = np.asarray(want, dtype=np.float64)
            ok = g.shape == w.shape and bool(np.allclose(g, w, rtol=rtol, atol=atol))
        except Exception as exc:  # noqa: BLE001
            self.fail(f"{label}: cannot compare with the floor ({type(exc).__name__}: {exc})")
            return False
        if ok:
            return True
        if g.shape != w.shape:
            self.fail(f"{label}: shape {g.shape} but the numpy floor has {w.shape}")
        else:
            diff = np.abs(g - w)
            where = np.unravel_index(int(np.nanargmax(diff)), diff.shape) if diff.size else ()
            self.fail(
                f"{label}: differs from the numpy floor; max |diff| {np.nanmax(diff):.3g} at {where} "
                f"(got {g[where] if diff.size else g}, floor {w[where] if diff.size else w})"
            )
        return False

    def table(self, label: str, times: dict, per: float | None = None, per_unit: str = "") -> dict:
        """Prints median / min / rounds of each contestant; returns {name: median}."""
        medians = {}
        rows = []
        self.say(f"{label}:")
        for name, ts in times.items():
            if not ts:
                continue
            med = statistics.median(ts)
            medians[name] = med
            row = {"name": name, "median_s": med, "min_s": min(ts), "rounds": len(ts)}
            extra = ""
            if per:
                row[f"per_{per_unit}_s"] = med / per
                extra = f"   {med / per * 1e6:8.3f} µs/{per_unit}"
            rows.append(row)
            self.say(f"    {name:<34} median {fmt_time(med):>10}   min {fmt_time(min(ts)):>10}   n={len(ts)}{extra}")
        self.tables.append({"label": label, "rows": rows})
        return medians

    def ratio(self, label: str, num: float, den: float) -> float:
        value = num / den if den else float("nan")
        self.ratios.append({"label": label, "value": value})
        self.say(f"    ratio {label:<40} {value:8.2f}x")
        return value

    def target(
        self,
        label: str,
        value: float,
        limit: float,
        goal: float | None = None,
        unit: str = "x",
        higher_is_better: bool = False,
    ) -> bool:
        ok = (value >= limit) if higher_is_better else (value <= limit)
        sign = ">=" if higher_is_better else "<="
        goal_text = f", goal {sign} {goal:g}{unit}" if goal is not None else ""
        if unit == "x":
            shown = f"{value:.2f}x"
        elif unit == "s":
            shown = fmt_time(value)
        else:
            shown = f"{value:.3g}{unit}"
        verdict = "PASS" if ok else "MISS"
        if not self.judge:
            ok, verdict = None, "not judged (smoke)"
        elif ok and goal is not None and not ((value >= goal) if higher_is_better else (value <= goal)):
            verdict = "PASS (goal missed)"
        self.targets.append(
            {
                "label": label,
                "value": value,
                "limit": limit,
                "goal": goal,
                "unit": unit,
                "ok": ok,
                "verdict": verdict,
                "text": f"{sign} {limit:g}{unit}{goal_text}",
            }
        )
        self.say(f"  TARGET {label}: {shown}  (target {sign} {limit:g}{unit}{goal_text})  -> {verdict}")
        return ok

    def as_dict(self) -> dict:
        return {
            "id": self.wid,
            "title": self.title,
            "tables": self.tables,
            "ratios": self.ratios,
            "targets": self.targets,
            "notes": self.notes,
            "failures": self.failures,
            "extra": self.extra,
        }


# ------------------------------------------------------------------------------------------
# the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_threads():
    """(BLAS name, threads) for numpy, cheaply: threadpoolctl when installed, else OpenBLAS by ctypes."""
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                return info.get("internal_api"), info.get("num_threads")
    except Exception:  # noqa: BLE001
        pass
    try:
        import ctypes

        libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
        for lib in sorted(libs.glob("*openblas*")):
            handle = ctypes.CDLL(str(lib))
            for symbol in (
                "scipy_openblas_get_num_threads64_",
                "openblas_get_num_threads64_",
                "openblas_get_num_threads",
            ):
                fn = getattr(handle, symbol, None)
                if fn is not None:
                    return "openblas", int(fn())
    except Exception:  # noqa: BLE001
        pass
    try:
        config = np.show_config(mode="dicts")
        return config["Build Dependencies"]["blas"]["name"], None
    except Exception:  # noqa: BLE001
        return None, None


def _git(*args) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def environment(cfg: Config) -> dict:
    import lark

    import gradcli

    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": cfg.mode,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "os.cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "thread_env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GRADCLI_NUM_THREADS", "XLA_FLAGS")
        },
        "gradcli": gradcli.__version__,
        "gradcli_path": str(Path(gradcli.__file__).parent),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "src_dirty": bool(_git("status", "--porcelain", "--", "src")),
        "numpy": np.__version__,
        "lark": lark.__version__,
    }
    blas, threads = _blas_threads()
    env["numpy_blas"] = blas
    env["numpy_blas_threads"] = threads
    for name in PEERS:
        mod = peer(name, cfg)
        if mod is None:
            env[name] = None
            continue
        env[name] = getattr(mod, "__version__", "?")
        if name == "torch":
            env["torch_threads"] = mod.get_num_threads()
            env["torch_interop_threads"] = mod.get_num_interop_threads()
        if name == "autograd" and env[name] == "?":
            try:
                from importlib.metadata import version

                env[name] = version("autograd")
            except Exception:  # noqa: BLE001
                pass
    return env


def print_environment(env: dict) -> None:
    print("=" * 78)
    print(f"gradcli benchmarks ({env['mode']})  {env['date']}")
    print(
        f"machine : {env['cpu']}; os.cpu_count()={env['os.cpu_count']}, usable={env['usable_cpus']}; {env['platform']}"
    )
    print(
        f"threads : numpy BLAS {env['numpy_blas']} threads={env['numpy_blas_threads']}; "
        f"torch.get_num_threads()={env.get('torch_threads', '-')} "
        f"(interop {env.get('torch_interop_threads', '-')}); "
        + ", ".join(f"{k}={v}" for k, v in env["thread_env"].items())
    )
    print(
        f"versions: python {env['python']}, gradcli {env['gradcli']} (git {env['git_commit']}"
        f"{', src has uncommitted changes' if env['src_dirty'] else ''}), numpy {env['numpy']}, "
        f"lark {env['lark']}, torch {env['torch'] or 'absent'}, jax {env['jax'] or 'absent'}, "
        f"autograd {env['autograd'] or 'absent'}"
    )
    print("=" * 78, flush=True)


def dumps(data) -> str:
    def default(value):
        if isinstance(value, (np.floating, np.integer)):
            return value.item()
        return str(value)

    return json.dumps(data, indent=1, default=default)
