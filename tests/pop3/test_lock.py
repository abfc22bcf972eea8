"""The maildrop lock behind ``[IN-USE]`` (``mail.pop3.open`` / ``renew`` / ``close``): one
session per user, released at the end, and lapsing on its own when its session vanished."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.auth.principal import INTERNAL
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import Forbidden, Unauthenticated
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
