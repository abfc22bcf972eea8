"""Durability: SIGKILL the server while clients stream over LMTP; nothing acknowledged is lost.

The server is the real thing (uvicorn running ``mailroom.asgi:create_app``, LMTP started in
its lifespan) in a separate process, on the test's database and data folder. Two clients
stream messages (two recipients each); the server is killed with SIGKILL mid-stream; after a
restart every message the clients saw acknowledged (``250`` for a recipient) is present
exactly once for that recipient, and resending every message creates no duplicate.
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailroom.bootstrap import Mailroom
from mailroom.settings import Settings
from mailroom.store.mail_schema import emails
from mailroom.store.schema import users
from tests.mailhelpers import create_user, lmtp_send, message

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RECIPIENTS = ["alice@example.org", "carol@example.org"]
PER_CLIENT = 400
KILL_AFTER_ACKS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``uvicorn mailroom.asgi:create_app`` in its own process, configured by environment."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.lmtp_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        self.env.update(
            {
                "MAILROOM_DATA_DIR": str(settings.data_dir),
                "MAILROOM_DATABASE_URL": settings.effective_database_url,
                "MAILROOM_MODE": "test",
                "MAILROOM_SECRET_KEY": "test-secret-key-not-for-production",
                "MAILROOM_LMTP_PORT": str(self.lmtp_port),
                "MAILROOM_SMTP_PORT": "0",
                "MAILROOM_SUBMISSION_PORT": "0",
                "MAILROOM_POP3_PORT": "0",
                "MAILROOM_POP3S_PORT": "0",
                "MAILROOM_IMAP_PORT": "0",
                "MAILROOM_IMAPS_PORT": "0",
            }
        )
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "uvicorn", "mailroom.asgi:create_app", "--factory"]
        cmd += ["--host", "127.0.0.1", "--port", str(free_port()), "--log-level", "warning"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.lmtp_port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the server did not start:\n" + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    running = Server(settings, tmp_path / "server.log")
    try:
        yield running
    finally:
        running.stop()


def stream(
    port: int, client: int, acked: dict[tuple[str, str], int], lock: threading.Lock, stop: threading.Event
) -> None:
    """Send messages until the connection dies; record every recipient's 250."""
    try:
        conn = smtplib.LMTP("127.0.0.1", port, timeout=30)
        conn.ehlo("client.test")
        for i in range(PER_CLIENT):
            if stop.is_set():
                break
            mid = f"c{client}-{i}@crash.test"
            out = lmtp_send(
                port,
                "bob@example.net",
                RECIPIENTS,
                message(message_id=f"<{mid}>", pad_to=10_000),
                client=conn,
            )
            with lock:
                for rcpt, (code, _) in zip(RECIPIENTS, out.data, strict=True):
                    if code == 250:
                        acked[(mid, rcpt)] = acked.get((mid, rcpt), 0) + 1
    except (OSError, smtplib.SMTPException):
        return  # the server was killed under us: expected


async def copies(mailroom: Mailroom) -> dict[tuple[str, str], int]:
    async with mailroom.runtime.db.read() as tx:
        rows = await tx.all(
            select(emails.c.message_id, users.c.email, func.count().label("n"))
            .select_from(emails.join(users, users.c.id == emails.c.user_id))
            .group_by(emails.c.message_id, users.c.email)
        )
    return {(r["message_id"], r["email"]): int(r["n"]) for r in rows}


async def test_sigkill_mid_stream_loses_no_acknowledged_message(mailroom: Mailroom, server: Server) -> None:
    for rcpt in RECIPIENTS:
        await create_user(mailroom, rcpt)
    server.start()
    acked: dict[tuple[str, str], int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    clients = [
        threading.Thread(target=stream, args=(server.lmtp_port, n, acked, lock, stop)) for n in range(2)
    ]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= KILL_AFTER_ACKS:
                break
        await asyncio.sleep(0.01)
    server.kill()  # mid-stream: both clients are between commands or inside DATA
    stop.set()
    for t in clients:
        await asyncio.to_thread(t.join, 60)
    assert len(acked) >= KILL_AFTER_ACKS, "the clients never got going"
    assert len(acked) < 2 * PER_CLIENT * len(RECIPIENTS), "the kill came after the stream ended"

    server.start()
    stored = await copies(mailroom)
    lost = [key for key in acked if stored.get(key) != 1]
    assert lost == [], f"acknowledged but not present exactly once: {lost[:5]}"
    assert all(n == 1 for n in stored.values())

    # Resend everything the clients tried (acknowledged or not): nothing doubles.
    def resend() -> None:
        conn = smtplib.LMTP("127.0.0.1", server.lmtp_port, timeout=30)
        conn.ehlo("client.test")
        try:
            for client in range(2):
                for i in range(max(1, len(acked) // 2 + 5)):
                    raw = message(message_id=f"<c{client}-{i}@crash.test>", pad_to=10_000)
                    out = lmtp_send(server.lmtp_port, "bob@example.net", RECIPIENTS, raw, client=conn)
                    assert [c for c, _ in out.data] == [250, 250]
        finally:
            conn.quit()

    await asyncio.to_thread(resend)
    after = await copies(mailroom)
    assert all(n == 1 for n in after.values())
    assert set(acked) <= set(after)
