"""Rate limits shared through a real Redis server: counters, and two uvicorn workers under load.

Needs ``MAILROOM_TEST_REDIS_URL`` (``scripts/services start`` exports it; CI always has it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from mailroom.accounting.counters import open_counters
from mailroom.accounting.guard import LoginGuard
from mailroom.clock import FakeClock
from mailroom.errors import RateLimited
from mailroom.settings import Settings

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        not os.environ.get("MAILROOM_TEST_REDIS_URL"), reason="MAILROOM_TEST_REDIS_URL is not set"
    ),
]

REDIS_URL = os.environ.get("MAILROOM_TEST_REDIS_URL", "")


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        data_dir=tmp_path,
        mode="test",
        redis_url=REDIS_URL,
        redis_key_prefix=f"test-{uuid.uuid4().hex[:12]}",
        **values,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_redis_counters_slide_and_are_isolated_by_prefix(tmp_path: Path) -> None:
    from limits import parse

    item = parse("3/minute")
    one = open_counters(_settings(tmp_path), FakeClock())
    two = open_counters(_settings(tmp_path), FakeClock())
    try:
        assert one.backend == "redis"
        assert [await one.limiter.hit(item, "p", "x") for _ in range(4)] == [True, True, True, False]
        assert await two.limiter.hit(item, "p", "x")  # another prefix: another deployment
        stats = await one.limiter.get_window_stats(item, "p", "x")
        assert stats.remaining == 0
        assert 0 < stats.reset_time - time.time() <= 60
    finally:
        await one.close()
        await two.close()


@pytest.mark.anyio
async def test_login_guard_on_redis(tmp_path: Path) -> None:
    counters = open_counters(_settings(tmp_path), FakeClock())
    guard = LoginGuard(
        counters, per_network="2/hour", per_account="50/day", exemption_seconds=60, secret=b"s"
    )
    try:
        await guard.failed("a@x.test", "192.0.2.1", "one")
        await guard.failed("b@x.test", "192.0.2.2", "two")
        with pytest.raises(RateLimited) as locked:
            await guard.check("c@x.test", "192.0.2.3")
        assert 3590 <= locked.value.retry_after <= 3600
        await guard.check("c@x.test", "198.51.100.3")  # another network
    finally:
        await counters.close()


@pytest.mark.anyio
async def test_known_accounts_on_redis(tmp_path: Path) -> None:
    """A success raises the network limit for that account only, and never lifts the account's."""
    counters = open_counters(_settings(tmp_path), FakeClock())
    guard = LoginGuard(
        counters,
        per_network="2/hour",
        per_known_network="10/hour",
        per_account="3/day",
        exemption_seconds=60,
        secret=b"s",
    )
    try:
        await guard.succeeded("a@x.test", "192.0.2.1")
        await guard.failed("b@x.test", "192.0.2.2", "one")
        await guard.failed("c@x.test", "192.0.2.3", "two")
        with pytest.raises(RateLimited):
            await guard.check("b@x.test", "192.0.2.4")  # not known there: the plain limit
        await guard.check("a@x.test", "192.0.2.5")  # known: the raised one
        for password in ("p1", "p2", "p3"):
            await guard.failed("a@x.test", "192.0.2.5", password)
        with pytest.raises(RateLimited) as locked:  # its own account limit, from there too
            await guard.check("a@x.test", "192.0.2.5")
        assert locked.value.retry_after > 3600
    finally:
        await counters.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(t) for t in text)
    return out


@pytest.mark.slow
def test_two_workers_share_one_limit_under_load(tmp_path: Path, sqlite_template: Path) -> None:
    """A 100/minute rule, 300 requests from 50 concurrent clients, 2 workers: exactly 100 pass."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "mailroom.db")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MAILROOM_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        MAILROOM_DATA_DIR=str(data),
        MAILROOM_DATABASE_URL=f"sqlite:///{data / 'mailroom.db'}",
        MAILROOM_MODE="test",
        MAILROOM_SECRET_KEY="load-test-secret-key-not-for-production",
        MAILROOM_REDIS_URL=REDIS_URL,
        MAILROOM_REDIS_KEY_PREFIX=f"load-{uuid.uuid4().hex[:12]}",
        MAILROOM_RATE_LIMITS=json.dumps([{"limit": "100/minute", "methods": "*", "per": "principal"}]),
        MAILROOM_SMTP_PORT="0",
        MAILROOM_LMTP_PORT="0",
        MAILROOM_SUBMISSION_PORT="0",
        MAILROOM_POP3_PORT="0",
        MAILROOM_POP3S_PORT="0",
        MAILROOM_IMAP_PORT="0",
        MAILROOM_IMAPS_PORT="0",
    )
    command = [
        sys.executable, "-m", "uvicorn", "mailroom.asgi:create_app", "--factory",
        "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and server.poll() is None:
            try:
                # Not a registry method: readiness checks spend nothing of the limit.
                ready = httpx.get(f"{base}/api/v1/openapi.json", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and len(_children(server.pid)) >= 2:
                break
            time.sleep(0.2)
        assert ready, log.read_text()
        time.sleep(1.0)  # let the second worker finish its start-up too
        statuses = asyncio.run(_load(base, clients=50, requests=300))
        assert statuses.count(200) == 100, (statuses, log.read_text())
        assert statuses.count(429) == 200, (statuses, log.read_text())
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _load(base: str, *, clients: int, requests: int) -> list[int]:
    per_client = requests // clients
    statuses: list[int] = []

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            for _ in range(per_client):
                statuses.append((await c.get("/health")).status_code)

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return statuses
