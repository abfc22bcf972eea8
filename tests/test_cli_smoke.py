"""The installed ``mailroom`` command, as ``scripts/run`` uses it: a real process on loopback.

The first ``mailroom serve`` on an empty data folder migrates it and prints one admin API key
(the only thing on standard output); the key works over HTTP; a second start prints nothing
and the key still works.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import stop_group

pytestmark = pytest.mark.slow

MAILROOM = Path(sys.executable).with_name("mailroom")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    """This environment without MAILROOM_* settings: the command must work with none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    return env | {
        "MAILROOM_POP3_PORT": "0",
        "MAILROOM_POP3S_PORT": "0",
        "MAILROOM_IMAP_PORT": "0",
        "MAILROOM_IMAPS_PORT": "0",
    }  # may be another server's


@contextlib.contextmanager
def serving(data_dir: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    # Mail listeners off: the default ports may belong to another server on this host.
    command = [
        str(MAILROOM), "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1",
        "--smtp-port", "0", "--lmtp-port", "0", "--submission-port", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"mailroom serve exited with {proc.returncode}:\n{err}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/api/v1/domains", timeout=1)
                break
            if time.monotonic() > deadline:
                pytest.fail("mailroom serve did not answer within 30 s")
            time.sleep(0.1)
        yield proc
    finally:
        stop_group(proc, timeout=15)


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    return out, err


def test_help_lists_serve() -> None:
    result = subprocess.run(
        [str(MAILROOM), "--help"], capture_output=True, text=True, env=_environment(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout


def test_first_start_prints_one_admin_key_that_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    with serving(data_dir, port) as proc:
        assert httpx.get(f"{base}/api/v1/domains").status_code == 401
        out, err = _stop(proc)
    lines = out.split()
    assert len(lines) == 1, f"standard output should hold the key alone: {out!r}\n{err}"
    key = lines[0]
    assert key.startswith("mr_")
    assert (data_dir / "mailroom.db").exists()

    with serving(data_dir, port) as proc:
        r = httpx.get(f"{base}/api/v1/domains", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []
        out, _ = _stop(proc)
    assert out == "", "a later start must not print a key again"
