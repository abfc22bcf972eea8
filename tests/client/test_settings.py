"""mail.settings.* over REST: defaults, replace, merge, validation, the admin fields behind them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.client.conftest import SessionUser, error_locs, problem
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

DEFAULTS: dict[str, Any] = {
    "display_name": "",
    "signature": "",
    "language": "en",
    "timezone": "UTC",
    "page_size": 50,
    "reply": {"enabled": False, "subject": "", "body": "", "start": None, "end": None},
    "forward": {"enabled": False, "destinations": [], "keep": True},
    "spam": {"enabled": True, "threshold": 5.0, "mark_as_read": False},
    "notifications": {"new_mail": True, "sound": False, "desktop": True},
    "theme": "system",
    "pop3": {"deletion": "archive"},
}

FULL: dict[str, Any] = {
    "display_name": "Alice Liddell",
    "signature": "-- \nAlice",
    "language": "pt-BR",
    "timezone": "Europe/Berlin",
    "page_size": 100,
    "reply": {
        "enabled": True,
        "subject": "Away",
        "body": "Back on Monday.",
        "start": "2026-12-01",
        "end": "2026-12-24",
    },
    "forward": {"enabled": True, "destinations": ["archive@elsewhere.example"], "keep": False},
    "spam": {"enabled": True, "threshold": 3.5, "mark_as_read": True},
    "notifications": {"new_mail": False, "sound": True, "desktop": False},
    "theme": "dark",
    "pop3": {"deletion": "delete"},
}


async def test_defaults(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    r = await client.get("/api/v1/me/settings", headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == DEFAULTS


async def test_replace_and_the_admin_view(
    client: httpx.AsyncClient, session_user: SessionUser, admin: Actor
) -> None:
    alice = await session_user()
    r = await client.put("/api/v1/me/settings", json=FULL, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json() == FULL
    assert (await client.get("/api/v1/me/settings", headers=alice.headers)).json() == FULL
    user = (await client.get("/api/v1/users/alice@example.org", headers=admin.headers)).json()
    assert user["display_name"] == "Alice Liddell"
    assert (user["reply_enabled"], user["reply_subject"], user["reply_body"]) == (
        True,
        "Away",
        "Back on Monday.",
    )
    assert (user["reply_start"], user["reply_end"]) == ("2026-12-01", "2026-12-24")
    assert (user["forward_enabled"], user["forward_destinations"], user["forward_keep"]) == (
        True,
        ["archive@elsewhere.example"],
        False,
    )
    assert (user["spam_threshold"], user["spam_mark_as_read"]) == (3.5, True)
    # PUT replaces: what is left out goes back to its default.
    r = await client.put("/api/v1/me/settings", json={"theme": "light"}, headers=alice.headers)
    assert r.json() == DEFAULTS | {"theme": "light"}
    user = (await client.get("/api/v1/users/alice@example.org", headers=admin.headers)).json()
    assert user["forward_enabled"] is False
    assert user["reply_enabled"] is False


async def test_admin_changes_show_in_settings(
    client: httpx.AsyncClient, session_user: SessionUser, admin: Actor
) -> None:
    alice = await session_user()
    r = await client.patch(
        "/api/v1/users/alice@example.org",
        json={"spam_threshold": 9.0, "reply_enabled": True, "reply_subject": "Gone"},
        headers=admin.headers,
    )
    assert r.status_code == 200
    got = (await client.get("/api/v1/me/settings", headers=alice.headers)).json()
    assert got["spam"]["threshold"] == 9.0
    assert got["reply"]["enabled"] is True
    assert got["reply"]["subject"] == "Gone"


async def test_patch_merges(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    assert (await client.put("/api/v1/me/settings", json=FULL, headers=alice.headers)).status_code == 200
    r = await client.patch(
        "/api/v1/me/settings",
        json={"theme": "light", "reply": {"subject": "Out", "end": None}, "notifications": {"sound": False}},
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    expected = FULL | {
        "theme": "light",
        "reply": FULL["reply"] | {"subject": "Out", "end": None},
        "notifications": FULL["notifications"] | {"sound": False},
    }
    assert r.json() == expected
    assert (await client.get("/api/v1/me/settings", headers=alice.headers)).json() == expected
    r = await client.patch("/api/v1/me/settings", json={}, headers=alice.headers)
    assert r.json() == expected


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"unknown": 1}, "unknown"),
        ({"reply": {"enabled": True, "colour": "red"}}, "reply.colour"),
        ({"page_size": "50"}, "page_size"),
        ({"page_size": 5}, "page_size"),
        ({"page_size": 50.5}, "page_size"),
        ({"theme": "purple"}, "theme"),
        ({"pop3": {"deletion": "shred"}}, "pop3.deletion"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"language": "english!"}, "language"),
        ({"display_name": "two\nlines"}, "display_name"),
        ({"signature": 42}, "signature"),
        ({"spam": {"threshold": "5"}}, "spam.threshold"),
        ({"spam": {"threshold": 500}}, "spam.threshold"),
        ({"spam": {"mark_as_read": "yes"}}, "spam.mark_as_read"),
        ({"notifications": {"sound": 1}}, "notifications.sound"),
        ({"forward": {"destinations": ["not an address"]}}, "forward.destinations.0"),
        ({"reply": {"start": "someday"}}, "reply.start"),
        ({"forward": {"enabled": True}}, "forward.destinations"),
        ({"forward": {"enabled": True, "destinations": ["alice@example.org"]}}, "forward.destinations"),
        ({"reply": {"start": "2026-12-02", "end": "2026-12-01"}}, "reply.end"),
    ],
)
async def test_validation(
    client: httpx.AsyncClient, session_user: SessionUser, body: dict[str, Any], loc: str
) -> None:
    alice = await session_user()
    r = await client.put("/api/v1/me/settings", json=body, headers=alice.headers)
    assert error_locs(r) == {f"settings.{loc}"}
    r = await client.patch("/api/v1/me/settings", json=body, headers=alice.headers)
    assert error_locs(r) == {f"changes.{loc}"}
    # Nothing was saved.
    assert (await client.get("/api/v1/me/settings", headers=alice.headers)).json() == DEFAULTS


async def test_patch_refuses_null(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    r = await client.patch("/api/v1/me/settings", json={"theme": None, "reply": None}, headers=alice.headers)
    assert error_locs(r) == {"changes.theme", "changes.reply"}
    r = await client.patch("/api/v1/me/settings", json={"forward": {"keep": None}}, headers=alice.headers)
    assert error_locs(r) == {"changes.forward.keep"}


async def test_settings_are_per_user(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    assert (await client.put("/api/v1/me/settings", json=FULL, headers=alice.headers)).status_code == 200
    assert (await client.get("/api/v1/me/settings", headers=bob.headers)).json() == DEFAULTS
    r = await client.patch("/api/v1/me/settings", json={"theme": "light"}, headers=bob.headers)
    assert r.status_code == 200
    assert (await client.get("/api/v1/me/settings", headers=alice.headers)).json() == FULL


async def test_settings_need_a_user(client: httpx.AsyncClient, admin: Actor) -> None:
    problem(await client.get("/api/v1/me/settings"), 401, "unauthenticated")
    problem(await client.get("/api/v1/me/settings", headers=admin.headers), 403, "forbidden")
