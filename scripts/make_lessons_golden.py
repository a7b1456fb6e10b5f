"""Write tests/golden/lessons.json: torch's answer to every lesson of tests/test_lessons.py.

python scripts/make_lessons_golden.py        (needs torch; run again when the lessons change)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from test_lessons import LESSONS  # noqa: E402


def main() -> int:
    lessons = {name: fn(torch) for name, (_, fn) in LESSONS.items()}
    data = {
        "torch": torch.__version__.split("+")[0],
        "note": "written by scripts/make_lessons_golden.py",
        "lessons": lessons,
    }
    out = ROOT / "tests" / "golden" / "lessons.json"
    text = json.dumps(data, indent=1, sort_keys=True, allow_nan=False)
    out.write_text(text + "\n", encoding="utf-8")
    print(f"{out}: {len(lessons)} lessons", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
