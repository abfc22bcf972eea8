"""Child processes of the tests: servers started in a session (process group) of their own."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any


def stop_group(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM the process group of ``proc`` (a ``mailroom serve`` and its workers), SIGKILL it
    if it has not ended within ``timeout`` seconds; nothing if it already ended."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
