"""The ASGI lifespan starts the submission listener and the queue worker, and stops them."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from typing import Any

import pytest

from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from mailroom.settings import Settings
from tests.lifespan import started_worker
from tests.mailhelpers import message
from tests.outbound.conftest import Sink

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def settings_overrides(settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        **settings_overrides,
        "smtp_port": 0,
        "lmtp_port": 0,
        "imap_port": 0,
        "imaps_port": 0,
        "submission_port": free_port(),
        "pop3_port": 0,
        "pop3s_port": 0,
        "queue_poll_seconds": 0.05,
    }


async def test_worker_lifespan_runs_submission_and_the_queue(settings: Settings, sink: Sink) -> None:
    async with started_worker(settings) as app:

        def greeting() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", settings.submission_port, timeout=10) as client:
                return client.ehlo("client.test")

        code, features = await asyncio.to_thread(greeting)
        assert code == 250
        assert b"STARTTLS" in features

        # The worker is running: a queued message leaves without anyone calling run_once.
        assert app.app is not None
        runtime = app.app.state.mailroom.runtime
        worker = runtime.outbound_queue
        assert isinstance(worker, OutboundQueue)
        assert worker.running
        await submit(
            runtime,
            message(sender="x@example.org", to="bob@remote.example"),
            mail_from="x@example.org",
            recipients=["bob@remote.example"],
            source="api",
            sender_user_id=None,
        )
        for _ in range(200):
            if sink.messages:
                break
            await asyncio.sleep(0.05)
        assert [m.rcpt_tos for m in sink.messages] == [["bob@remote.example"]]
    assert not worker.running

    def refused() -> bool:
        try:
            smtplib.SMTP("127.0.0.1", settings.submission_port, timeout=5).close()
        except OSError:
            return True
        return False

    assert await asyncio.to_thread(refused)
