"""Run the installed ``gradcli`` console script, piped or on a pseudo-terminal (for tables).

Shared by tests/test_render.py, tests/test_check.py and tests/test_values.py.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def executable() -> list[str]:
    """The console script beside this Python (the installed entry point), else ``-m gradcli``."""
    beside = Path(sys.executable).with_name("gradcli")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("gradcli")
    return [found] if found else [sys.executable, "-m", "gradcli"]


def environment(extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run(*args, input=None, env=None, timeout=120):
    """The console script with stdout and stderr piped."""
    return subprocess.run(
        [*executable(), *args],
        capture_output=True,
        text=True,
        input=input,
        env=environment(env),
        cwd=ROOT,
        timeout=timeout,
    )


def on_terminal(*args, columns=80, env=None, timeout=120) -> tuple[int, str]:
    """The console script with stdout and stderr on a pseudo-terminal ``columns`` wide; returns
    the exit code and what the terminal showed (escape codes removed, ``\\r\\n`` as ``\\n``)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [*executable(), *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=environment({"TERM": "xterm", "NO_COLOR": "1", **(env or {})}),
        cwd=ROOT,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = proc.wait(timeout=timeout)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return code, ANSI.sub("", text)
