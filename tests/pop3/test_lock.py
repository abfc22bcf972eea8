"""The maildrop lock behind ``[IN-USE]`` (``mail.pop3.open`` / ``renew`` / ``close``): one
session per user, released at the end, and lapsing on its own when its session vanished."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mailroom.auth.principal import INTERNAL
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import Forbidden, Unauthenticated
from mailroom.frontends.pop3 import start_pop3
from mailroom.frontends.pop3._session import Pop3Session
from tests.conftest import Actor
from tests.mailhelpers import create_user

pytestmark = pytest.mark.anyio

A, B = "a" * 32, "b" * 32


async def pop3(mailroom: Mailroom, method: str, **params: Any) -> Any:
    return await mailroom.registry.call(f"mail.pop3.{method}", params, principal=INTERNAL)


async def test_one_session_at_a_time_and_a_vanished_one_lapses(mailroom: Mailroom, clock: FakeClock) -> None:
    user_id = await create_user(mailroom, "alice@example.org")
    other = await create_user(mailroom, "bob@example.org")
    assert (await pop3(mailroom, "open", user_id=user_id, session=A))["locked"] is True
    assert (await pop3(mailroom, "open", user_id=user_id, session=B))["locked"] is False
    assert (await pop3(mailroom, "open", user_id=other, session=B))["locked"] is True  # per user
    # Renewed while it runs: still held after more than the idle timeout since it began.
    clock.advance(seconds=mailroom.settings.pop3_idle_timeout_seconds)
    assert await pop3(mailroom, "renew", user_id=user_id, session=A) is True
    clock.advance(seconds=mailroom.settings.pop3_idle_timeout_seconds)
    assert (await pop3(mailroom, "open", user_id=user_id, session=B))["locked"] is False
    # A session that vanished (no renewal) loses it once the idle timeout and the margin pass.
    clock.advance(seconds=mailroom.settings.pop3_idle_timeout_seconds + 61)
    assert (await pop3(mailroom, "open", user_id=user_id, session=B))["locked"] is True
    assert await pop3(mailroom, "renew", user_id=user_id, session=A) is False
    # Closing a session that does not hold the lock leaves the holder's alone.
    await pop3(mailroom, "close", user_id=user_id, session=A, deleted=[])
    assert (await pop3(mailroom, "open", user_id=user_id, session=A))["locked"] is False
    await pop3(mailroom, "close", user_id=user_id, session=B, deleted=[])
    assert (await pop3(mailroom, "open", user_id=user_id, session=A))["locked"] is True


async def test_only_the_process_itself_may_call_them(mailroom: Mailroom, make_user: Any) -> None:
    alice: Actor = await make_user("alice@example.org")
    for method, params in (
        ("login", {"user": "alice@example.org", "password": alice.password}),
        ("open", {"user_id": 1, "session": A}),
        ("message", {"user_id": 1, "id": 1}),
        ("close", {"user_id": 1, "session": A, "deleted": []}),
    ):
        with pytest.raises((Forbidden, Unauthenticated)):
            await mailroom.registry.call(f"mail.pop3.{method}", params, principal=alice.principal)


async def test_closing_the_listeners_lets_a_session_release_its_lock(
    mailroom: Mailroom, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shutdown cancels the sessions; one already releasing its lock finishes that first
    (cut short inside its database call, it left the maildrop locked and, on PostgreSQL,
    a connection being opened unclosed)."""
    alice: Actor = await make_user("alice@example.org")
    releasing, go_on = asyncio.Event(), asyncio.Event()
    invoke = Pop3Session._invoke

    async def held(self: Pop3Session, name: str, params: dict[str, Any]) -> Any:
        if name == "mail.pop3.close":
            releasing.set()
            await go_on.wait()
        return await invoke(self, name, params)

    monkeypatch.setattr(Pop3Session, "_invoke", held)
    running = await start_pop3(mailroom, pop3=("127.0.0.1", 0))
    try:
        reader, writer = await asyncio.open_connection(*running.address("pop3"))
        assert (await reader.readline()).startswith(b"+OK")
        writer.write(b"USER alice@example.org\r\n")
        assert (await reader.readline()).startswith(b"+OK")
        writer.write(f"PASS {alice.password}\r\n".encode())
        assert (await reader.readline()).startswith(b"+OK maildrop locked")
        writer.close()  # gone without QUIT: the session releases the lock
        await asyncio.wait_for(releasing.wait(), 30)  # hang guard
        closing = asyncio.ensure_future(running.close())
        await asyncio.sleep(0.05)
        go_on.set()
        await asyncio.wait_for(closing, 30)  # hang guard
    finally:
        go_on.set()
        await running.close()
    user_id = alice.principal.user_id
    assert (await pop3(mailroom, "open", user_id=user_id, session=B))["locked"] is True
