"""The benchmarks run: every workload executes at smoke sizes and its numbers agree with the
numpy floor. No timing is asserted (the bench prints PASS / MISS; it never fails on speed).

Runs ``python -m bench --smoke`` in a subprocess from the repository root: once with every peer
that is installed (torch in CI), once with none (as on a machine without torch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"]


def smoke(tmp_path, *args):
    out_file = tmp_path / "bench.json"
    env = dict(os.environ, GRADCLI_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out_file), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "FAILURE" not in proc.stdout
    return json.loads(out_file.read_text()), proc.stdout


def contestants(workload):
    return {row["name"] for table in workload["tables"] for row in table["rows"]}


def _torch_installed():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# workloads whose targets are ratios to torch: without torch they have none to print
AGAINST_TORCH = {"W2", "W5", "W6"}


def test_every_workload_runs_and_agrees_with_the_floor(tmp_path):
    data, out = smoke(tmp_path)
    torch_here = _torch_installed()
    assert [w["id"] for w in data["workloads"]] == ALL
    for w in data["workloads"]:
        assert w["failures"] == [], (w["id"], w["failures"])
        assert w["tables"], w["id"]
        for table in w["tables"]:
            for row in table["rows"]:
                assert row["median_s"] > 0 and row["rounds"] >= 1
        assert w["targets"] or (w["id"] in AGAINST_TORCH and not torch_here), w["id"]
        assert all(t["ok"] is None for t in w["targets"])  # smoke sizes are not judged
    by_id = {w["id"]: w for w in data["workloads"]}
    for wid in ("W2", "W3", "W4", "W5"):
        assert "gradcli" in " ".join(contestants(by_id[wid]))
        assert any(name.startswith("floor") for name in contestants(by_id[wid]))
    env = data["environment"]
    assert env["os.cpu_count"] and env["numpy"]
    assert "threads" in out and "versions" in out
    try:
        import torch  # noqa: F401
    except ImportError:
        assert env["torch"] is None
    else:  # torch installed: it ran
        assert env["torch"] and env["torch_threads"] >= 1
        assert "torch" in contestants(by_id["W2"])
        assert "torch script" in contestants(by_id["W6"])
        assert any(r["label"].startswith("gradcli / torch") for r in by_id["W5"]["ratios"])


def test_without_peers(tmp_path):
    data, _ = smoke(tmp_path, "--peers", "none", "--only", "W2,W3,W4,W5,W6")
    assert [w["id"] for w in data["workloads"]] == ["W2", "W3", "W4", "W5", "W6"]
    for w in data["workloads"]:
        assert w["failures"] == []
        names = contestants(w)
        assert not any(p in name for name in names for p in ("torch", "jax", "autograd")), names
        assert any("excluded" in note for note in w["notes"])


@pytest.mark.parametrize("args", [["--only", "W9"], ["--peers", "tensorflow"]])
def test_bad_arguments(args):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
