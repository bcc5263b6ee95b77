"""Consumer processes a local test starts: append each to STARTED, and none outlives its
test (conftest.py kills and reaps what is still running after every test)."""

from __future__ import annotations

import subprocess

STARTED: list[subprocess.Popen[str]] = []


def reap() -> None:
    while STARTED:
        p = STARTED.pop()
        if p.poll() is None:
            p.kill()
        p.communicate()
