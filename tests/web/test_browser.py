"""The web app in a real browser: Debian's Chromium driven by playwright-core (web/e2e/run.mjs).

A real ``mailroom serve`` on a free loopback port, on this run's database (SQLite in a temp
folder, or the PostgreSQL test database), with the first admin API key it prints. The
browser run logs in to the admin console, creates domains and users, checks that a manager
sees only their domain, logs two users in to the webmail, sends and reads mail (live, over
push), opens a hostile HTML message, searches, archives with the keyboard, measures the
first load, and fails on any console error, CSP violation or request to another origin.
Screenshots go to this test's temp folder (MAILROOM_WEB_SCREENSHOTS to keep them).

Skipped only outside CI when Chromium or Node.js is missing; in CI (CI=true) it must run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.client.keys import public
from tests.loopback_dns import loopback_dns
from tests.processes import stop_group

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
MAILROOM = Path(sys.executable).with_name("mailroom")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"


def _need(what: str, ok: bool) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing, and CI must run the browser tests (.ci/run installs it)")
    pytest.skip(f"{what} is missing (apt-get install chromium nodejs npm)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(data_dir: Path, database_url: str, port: int, dns_resolver: str) -> Iterator[str]:
    """``mailroom serve`` until the block ends; yields the admin key it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["MAILROOM_DATABASE_URL"] = database_url
    env["MAILROOM_POP3_PORT"] = env["MAILROOM_POP3S_PORT"] = "0"
    env["MAILROOM_IMAP_PORT"] = env["MAILROOM_IMAPS_PORT"] = "0"
    # No mail listener is needed (mail arrives through the API): none that could collide.
    env["MAILROOM_SMTP_PORT"] = env["MAILROOM_LMTP_PORT"] = "0"
    env["MAILROOM_SUBMISSION_PORT"] = "0"
    env["MAILROOM_DNS_RESOLVER"] = dns_resolver  # the live DNS check asks loopback only
    args = [str(MAILROOM), "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1"]
    # The log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = (data_dir.parent / "serve.log").open("w+")
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"mailroom serve exited with {proc.returncode}:\n{log.read()}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            if time.monotonic() > deadline:
                pytest.fail("mailroom serve did not answer within 60 s")
            time.sleep(0.1)
        assert proc.stdout is not None
        key = proc.stdout.readline().strip()
        assert key.startswith("mr_"), f"no admin key on standard output: {key!r}"
        yield key
    finally:
        stop_group(proc, timeout=15)
        assert proc.stdout is not None
        proc.stdout.close()
        log.close()


def _node_modules() -> None:
    """``npm ci`` in web/ when playwright-core is not installed there yet."""
    if (WEB / "node_modules" / "playwright-core").is_dir():
        return
    npm = shutil.which("npm")
    _need("npm", npm is not None)
    assert npm is not None
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True, capture_output=True)


def test_web_app_in_chromium(tmp_path: Path, database_url: str) -> None:
    _need(f"Chromium ({CHROMIUM})", Path(CHROMIUM).is_file())
    node = shutil.which("node")
    _need("Node.js", node is not None)
    assert node is not None
    _node_modules()
    shots = Path(os.environ.get("MAILROOM_WEB_SCREENSHOTS") or tmp_path / "screenshots")
    port = _free_port()
    with loopback_dns() as dns, serving(tmp_path / "data", database_url, port, dns.address) as key:
        # What the domain's DNS check finds: its MX as it should be, nothing else.
        dns.zone[("example.org.", "MX")] = ["10 mail.example.org."]
        env = {
            **os.environ,
            "MAILROOM_URL": f"http://127.0.0.1:{port}",
            "MAILROOM_ADMIN_KEY": key,
            "SCREENSHOTS": str(shots),
            "CHROMIUM": CHROMIUM,
            # An OpenPGP key bob publishes and alice finds for her contact (made now, never stored).
            "BOB_PUBLIC_KEY": public("bob@example.org", "Bob")[0],
        }
        result = subprocess.run(
            [node, "e2e/run.mjs"], cwd=WEB, env=env, capture_output=True, text=True, timeout=600
        )
    print(result.stdout)
    assert result.returncode == 0, f"browser tests failed:\n{result.stdout}\n{result.stderr}"
    assert "ok no console errors, CSP violations or other-origin requests" in result.stdout
    assert (shots / "webmail-thread.png").is_file()
