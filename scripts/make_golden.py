"""Write tests/golden/ops.json: torch's answers for every sweep case and autograd scenario.

    python scripts/make_golden.py        (needs torch; run again when cases or scenarios change)

The inputs are stored with the answers, so the golden tests (tests/test_torch_parity.py) need
neither torch nor the random generator that made them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from cases import evaluate  # noqa: E402
from test_torch_parity import SCENARIOS, TORCH_CASES, _normalize  # noqa: E402


def main() -> int:
    torch.set_default_dtype(torch.float64)
    cases = {}
    for case in TORCH_CASES:
        result = evaluate(torch, case, expr=case.torch_expr)
        result["expr"] = case.torch_expr
        cases[case.id] = result
    scenarios = {name: _normalize(name, fn(torch)) for name, fn in sorted(SCENARIOS.items())}
    data = {
        "torch": torch.__version__.split("+")[0],
        "note": "written by scripts/make_golden.py",
        "cases": cases,
        "scenarios": scenarios,
    }
    out = ROOT / "tests" / "golden" / "ops.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=False)
    out.write_text(text + "\n")
    print(f"{out}: {len(cases)} cases, {len(scenarios)} scenarios, {len(text)} bytes", file=sys.stderr)
    compat()
    return 0


def compat():
    """tests/golden/compat.json: torch's observations for tests/test_pytorch_compat.py (issue 10)."""
    import test_pytorch_compat as C

    scenarios = {name: C.observe(name, torch) for name in sorted(C.SCENARIOS)}
    data = {
        "torch": torch.__version__.split("+")[0],
        "note": "written by scripts/make_golden.py",
        "scenarios": scenarios,
    }
    out = ROOT / "tests" / "golden" / "compat.json"
    text = json.dumps(data, indent=0, sort_keys=True, allow_nan=False)
    out.write_text(text + "\n")
    print(f"{out}: {len(scenarios)} scenarios, {len(text)} bytes", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
