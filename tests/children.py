"""Child processes started by tests: ``spawn(script, *args)`` runs a worker script with this
interpreter; any child a test leaves running is killed after it (``reap``, called by an
autouse fixture in conftest.py)."""

from __future__ import annotations

import subprocess
import sys

RUNNING: list[subprocess.Popen[str]] = []


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    """Start ``python script args...`` with its output captured as text."""
    process = subprocess.Popen(
        [sys.executable, script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    RUNNING.append(process)
    return process


def reap() -> None:
    """Kill and collect every child still running."""
    while RUNNING:
        process = RUNNING.pop()
        if process.poll() is None:
            process.kill()
        process.communicate()
