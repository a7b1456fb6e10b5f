"""Start-up stays lean: a plain command line imports neither numpy.random nor hashlib.

Each costs milliseconds of every start (``python -X importtime -m gradcli eval "x*2" x=3``);
they are imported when a program draws random numbers or a seed is set, and when the parse
tables are rebuilt.  The seeding semantics are checked in the same fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RUN = (
    "import sys, runpy\n"
    "import numpy\n"
    "eager = 'numpy.random' in sys.modules\n"
    "sys.argv = ['gradcli'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('gradcli', run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code\n"
    "else:\n    code = 0\n"
    "print('EAGER' if eager else '', code, 'numpy.random' in sys.modules, 'hashlib' in sys.modules,\n"
    "      file=sys.stderr)\n"
)


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, timeout=120)
    *_, last = r.stderr.strip().splitlines()
    if last.startswith("EAGER"):
        pytest.skip("this numpy imports numpy.random with numpy itself")
    code, has_random, has_hashlib = last.split()
    return r.stdout, int(code), has_random == "True", has_hashlib == "True"


@pytest.mark.parametrize("args", [["eval", "x*2", "x=3"], ["grad", "w*x+b", "w=2", "x=3", "b=1", "--json"]])
def test_a_plain_command_does_not_import_numpy_random_or_hashlib(args):
    out, code, has_random, has_hashlib = _run(*args)
    assert code == 0, out
    assert not has_random
    assert not has_hashlib


def test_random_numbers_import_numpy_random_and_stay_seeded():
    first, code, has_random, _ = _run("eval", "rand(3)", "--seed", "7", "--json")
    assert code == 0 and has_random
    again, *_ = _run("eval", "rand(3)", "--seed", "7", "--json")
    assert first == again


def test_unseeded_generator_is_made_on_first_use():
    code = (
        "import sys, gradcli\n"
        "a = gradcli.rand(4); b = gradcli.rand(4)\n"
        "assert 'numpy.random' in sys.modules\n"
        "gradcli.manual_seed(3); c = gradcli.randn(2)\n"
        "import numpy as np\n"
        "assert np.array_equal(c.numpy(), np.random.default_rng(3).standard_normal(2))\n"
        "assert not np.array_equal(a.numpy(), b.numpy())\n"
        "print('ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr


def test_the_anomaly_rerun_leaves_the_generator_unmade_and_replays_one_made_in_the_first_run(monkeypatch):
    """Without --detect-anomaly a non-finite answer reruns the command to name where it came from
    (gradcli.anomaly); the rerun must draw the same numbers, and saving the state for it must not
    make the generator (that would import numpy.random on every start)."""
    import gradcli as G
    from gradcli import anomaly, constructors

    monkeypatch.setattr(constructors, "_random", constructors._Random())
    saved = anomaly._rng_state()
    assert saved is None and constructors._random._generator is None
    first = G.rand(3).tolist()  # the first run makes it
    anomaly._set_rng_state(saved)
    assert G.rand(3).tolist() == first  # the rerun draws the same numbers
