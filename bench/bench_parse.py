"""Former stand-alone parse bench; now workload W7 of ``python -m bench``.

python bench/bench_parse.py        # the same as: python -m bench --only W7
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.runner import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["--only", "W7", *sys.argv[1:]]))
