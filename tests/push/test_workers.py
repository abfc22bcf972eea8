"""Across processes: two mailroom servers sharing one database and one Redis server.

A client connected to one server gets the events of mail delivered through the other, and
replay after a reconnection works whichever server it reconnects to. (Two single-worker
servers rather than one with ``--workers 2``: on one shared listening socket nobody chooses
which worker takes a connection, so the test could not be sure it crossed.)
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailroom import bootstrap
from mailroom.settings import Settings
from tests.mailhelpers import message
from tests.push.conftest import ws_next, ws_subscribed

REDIS_URL = os.environ.get("MAILROOM_TEST_REDIS_URL", "")
pytestmark = [
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="MAILROOM_TEST_REDIS_URL is not set"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(data: Path, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(
        MAILROOM_DATA_DIR=str(data),
        MAILROOM_DATABASE_URL=f"sqlite:///{data / 'mailroom.db'}",
        MAILROOM_MODE="test",
        MAILROOM_SECRET_KEY="push-test-secret-key-not-for-production",
        MAILROOM_REDIS_URL=REDIS_URL,
        MAILROOM_REDIS_KEY_PREFIX=prefix,
        MAILROOM_SMTP_PORT="0",
        MAILROOM_LMTP_PORT="0",
        MAILROOM_SUBMISSION_PORT="0",
        MAILROOM_POP3_PORT="0",
        MAILROOM_POP3S_PORT="0",
        MAILROOM_IMAP_PORT="0",
        MAILROOM_IMAPS_PORT="0",
        MAILROOM_PUSH_HEARTBEAT_SECONDS="1",
    )
    return env


@pytest.fixture
def prepared(tmp_path: Path, sqlite_template: Path) -> tuple[Path, str, str]:
    """A database with alice's mailbox and a key of hers; (data dir, key, redis prefix)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "mailroom.db")
    prefix = f"push-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'mailroom.db'}",
        mode="test",
        secret_key="push-test-secret-key-not-for-production",
        redis_url=REDIS_URL,
        redis_key_prefix=prefix,
    )

    async def setup() -> str:
        app = await bootstrap.start(settings, run_migrations=False)
        try:
            call = app.registry.call
            await call("admin.domains.create", {"domain": {"name": "example.org"}})
            await call(
                "admin.users.create", {"user": {"email": "alice@example.org", "password": "pw-123456789"}}
            )
            created = await call("admin.apikeys.create", {"key": {"name": "a", "owner": "alice@example.org"}})
            return str(created["key"])
        finally:
            await app.close()

    return data, asyncio.run(setup()), prefix


@pytest.fixture
def servers(
    tmp_path: Path, prepared: tuple[Path, str, str], request: pytest.FixtureRequest
) -> Iterator[list[str]]:
    """Two single-worker servers, or (indirect parameter ``workers=2``) one with two workers."""
    data, _, prefix = prepared
    workers = int(getattr(request, "param", 1))
    running: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    for n in range(2 if workers == 1 else 1):
        port = _free_port()
        log = tmp_path / f"server{n}.log"
        command = [
            sys.executable, "-m", "uvicorn", "mailroom.asgi:create_app", "--factory",
            "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
            # With several workers, "info" logs each worker's start-up: readiness below.
            "--log-level", "warning" if workers == 1 else "info", "--no-access-log",
            "--ws", "websockets-sansio",
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, env=_environment(data, prefix), cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
            )
        running.append((proc, f"127.0.0.1:{port}", log))
    try:
        for proc, host, log in running:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    ready = httpx.get(f"http://{host}/api/v1/openapi.json", timeout=2).status_code == 200
                except httpx.TransportError:
                    ready = False
                started = log.read_text(errors="replace").count("Application startup complete")
                if ready and (workers == 1 or started >= workers):
                    break
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield [host for _, host, _ in running]
    finally:
        for proc, _, _ in running:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _ in running:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _import(host: str, key: str, subject: str) -> int:
    raw = message(subject=subject, message_id=f"<{uuid.uuid4().hex}@example.net>")
    async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as client:
        r = await client.post(
            "/api/v1/users/alice@example.org/messages/import",
            json={"message": base64.b64encode(raw).decode()},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert r.status_code == 201, r.text
    return int(r.json()["email_id"])


def test_events_cross_servers_and_replay_anywhere(
    servers: list[str], prepared: tuple[Path, str, str]
) -> None:
    one, two = servers
    _, key, _ = prepared

    async def scenario() -> None:
        on_one = await ws_subscribed(one, key)
        on_two = await ws_subscribed(two, key)
        ids = [await _import(two, key, "through two"), await _import(one, key, "through one")]
        for ws in (on_one, on_two):
            got = [(await ws_next(ws, wait=10))["data"] for _ in range(2)]
            assert [(d["email_id"], d["subject"]) for d in got] == list(
                zip(ids, ["through two", "through one"], strict=True)
            )
            assert got[0]["thread"]["subject"] == "through two"  # enriched by the publisher
        await on_two.close()
        await on_one.close()
        # Away from server one: mail comes through it; reconnect to server two with the last id.
        ws = await ws_subscribed(one, key)
        first = await _import(one, key, "seen")
        seen = await ws_next(ws, wait=10)
        assert seen["data"]["email_id"] == first
        last = seen["id"]
        await ws.close()
        missed = [await _import(one, key, f"missed {n}") for n in range(3)]
        again = await ws_subscribed(two, key, query=f"last_event_id={last}")
        replayed = [(await ws_next(again, wait=10))["data"]["email_id"] for _ in range(3)]
        assert replayed == missed
        await again.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("servers", [2], indirect=True, ids=["workers=2"])
def test_two_workers_every_client_gets_every_event(
    servers: list[str], prepared: tuple[Path, str, str]
) -> None:
    """On one shared listening socket, six clients spread over the two workers (all on one: 1 in 32);
    each gets every event whichever worker stored the mail."""
    [host] = servers
    _, key, _ = prepared

    async def scenario() -> None:
        clients = [await ws_subscribed(host, key) for _ in range(6)]
        ids = [await _import(host, key, f"mail {n}") for n in range(4)]
        for ws in clients:
            got = sorted([(await ws_next(ws, wait=10))["data"]["email_id"] for _ in range(4)])
            assert got == sorted(ids)
            await ws.close()

    asyncio.run(scenario())
