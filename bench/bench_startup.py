"""Former stand-alone start-up bench; now workload W1 of ``python -m bench``.

python bench/bench_startup.py      # the same as: python -m bench --only W1
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.runner import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--only", "W1", *sys.argv[1:]]))
