"""gradcli's benchmarks against its peers (PyTorch, jax, HIPS autograd) and a numpy floor.

    python -m bench [--quick | --smoke] [--only W2,W5] [--peers torch,jax] [--json FILE] [--markdown FILE]

One module per workload (``w1_startup`` ... ``w8_each``), each with ``ID``, ``TITLE`` and
``run(cfg, report)``; ``bench.run_all`` runs them in-process and returns their reports.
"""

from __future__ import annotations

from importlib import import_module

MODULES = (
    "w1_startup",
    "w2_pernode",
    "w3_dense",
    "w4_elementwise",
    "w5_hessian",
    "w6_cli_hessian",
    "w7_parse",
    "w8_each",
)


def workloads():
    """{ID: module} in order."""
    out = {}
    for name in MODULES:
        mod = import_module(f"{__name__}.{name}")
        out[mod.ID] = mod
    return out


def run_all(cfg, only=None):
    from .runner import run_workloads

    return run_workloads(cfg, only)
