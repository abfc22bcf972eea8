"""Users and managers in-process (the ``call`` fixture) and their schemas, rules and store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from mailroom.bootstrap import Mailroom
from mailroom.domain.users import User, UserCreate, UserUpdate, rule_errors
from mailroom.errors import Conflict, Forbidden, InvalidParams, LimitExceeded, NotFound
from mailroom.store import accounts
from mailroom.store import users as users_store
from mailroom.store.schema import addresses, api_keys, managers
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]
MakeUser = Callable[..., Awaitable[Actor]]
MakeDomain = Callable[..., Awaitable[dict[str, Any]]]

PASSWORD = "in-process secret 4242"


# -- schemas and rules (no database) -----------------------------------------------------------


def test_rule_errors() -> None:
    ok = {"forward_enabled": True, "forward_destinations": ["b@example.org"]}
    assert rule_errors("a@example.org", ok, "user.") == []
    assert rule_errors("a@example.org", {"forward_enabled": False, "forward_destinations": []}, "user.") == []
    [err] = rule_errors("a@example.org", {"forward_enabled": True, "forward_destinations": []}, "changes.")
    assert err.loc == "changes.forward_destinations"
    [err] = rule_errors("a@example.org", {"forward_destinations": ["a@example.org"]}, "user.")
    assert err.message == "a mailbox cannot forward to itself"
    dates = {"reply_start": date(2026, 5, 2), "reply_end": date(2026, 5, 1)}
    assert [e.loc for e in rule_errors("a@example.org", dates, "user.")] == ["user.reply_end"]
    assert rule_errors("a@example.org", dates | {"reply_end": date(2026, 5, 2)}, "user.") == []
    assert rule_errors("a@example.org", dates | {"reply_start": None}, "user.") == []


def test_user_create_normalises_and_hides_the_password() -> None:
    user = UserCreate.model_validate(
        {
            "email": " Bob@Example.ORG ",
            "password": PASSWORD,
            "forward_destinations": ["X@y.example", "x@Y.example"],
        }
    )
    assert user.email == "bob@example.org"
    assert user.forward_destinations == ["x@y.example"]
    assert user.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(user)
    assert PASSWORD not in str(user.model_dump())
    with pytest.raises(ValidationError) as info:
        UserCreate.model_validate({"email": "bob@example.org", "password": "1234567"})
    assert info.value.errors()[0]["msg"] == "Value error, must be at least 8 characters"
    # Exactly the bounds pass.
    UserCreate.model_validate({"email": "bob@example.org", "password": "x" * 8})
    UserCreate.model_validate({"email": "bob@example.org", "password": "x" * 1024})


def test_user_update_tells_absent_from_null() -> None:
    assert UserUpdate.model_validate({}).model_dump(exclude_unset=True) == {}
    assert UserUpdate.model_validate({"reply_end": None}).model_dump(exclude_unset=True) == {
        "reply_end": None
    }
    with pytest.raises(ValidationError) as info:
        UserUpdate.model_validate({"quota_bytes": None, "spam_enabled": None})
    assert [e["loc"] for e in info.value.errors()] == [("quota_bytes",), ("spam_enabled",)]


def test_published_schemas() -> None:
    update = UserUpdate.model_json_schema()["properties"]
    assert update["enabled"] == {"title": "Enabled", "type": "boolean"}  # no null offered
    assert update["quota_bytes"]["type"] == "integer"
    assert {"type": "null"} in update["reply_end"]["anyOf"]  # the dates may be cleared
    create = UserCreate.model_json_schema()
    assert create["properties"]["password"]["writeOnly"] is True
    assert create["properties"]["password"]["minLength"] == 8
    assert create["additionalProperties"] is False
    assert sorted(create["required"]) == ["email", "password"]
    out = User.model_json_schema()["properties"]
    assert not [name for name in out if "password" in name]


# -- in-process calls ------------------------------------------------------------------------


async def test_create_in_process_returns_json_data(call: Call, make_domain: MakeDomain) -> None:
    await make_domain("example.org")
    user = await call(
        "admin.users.create",
        {"user": {"email": "bob@example.org", "password": PASSWORD, "reply_start": "2026-02-01"}},
    )
    assert user["email"] == "bob@example.org"
    assert user["reply_start"] == "2026-02-01"
    assert user["created_at"] == "2026-01-01T12:00:00Z"
    assert "password" not in user
    assert "password_hash" not in user
    assert "id" not in user
    got = await call("admin.users.get", {"email": "BOB@example.org"})
    assert got == user


async def test_password_is_stored_as_argon2id(
    call: Call, make_domain: MakeDomain, mailroom: Mailroom
) -> None:
    await make_domain("example.org")
    await call("admin.users.create", {"user": {"email": "bob@example.org", "password": PASSWORD}})
    async with mailroom.runtime.db.read() as tx:
        row = await accounts.user_for_auth(tx, email="bob@example.org")
        public = await users_store.get(tx, "bob@example.org")
        items, total = await users_store.page(tx, domains=None, offset=0, limit=10)
    assert row is not None
    assert public is not None
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert mailroom.runtime.passwords.verify(row.password_hash, PASSWORD).ok
    assert not hasattr(public, "password_hash")
    assert total == 1
    assert "password_hash" not in items[0].model_dump()


async def test_the_password_is_not_logged(
    call: Call, make_domain: MakeDomain, caplog: pytest.LogCaptureFixture
) -> None:
    await make_domain("example.org")
    with caplog.at_level(logging.DEBUG):
        await call("admin.users.create", {"user": {"email": "bob@example.org", "password": PASSWORD}})
        await call(
            "admin.users.update", {"email": "bob@example.org", "changes": {"password": PASSWORD + "!"}}
        )
        with pytest.raises(Conflict):
            await call("admin.users.create", {"user": {"email": "bob@example.org", "password": PASSWORD}})
        with pytest.raises(InvalidParams) as info:
            await call("admin.users.create", {"user": {"email": "bob", "password": PASSWORD}})
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(info.value.as_dict())


async def test_nan_threshold_is_refused(call: Call, make_domain: MakeDomain) -> None:
    # JSON cannot carry NaN, but in-process and XML-RPC callers can.
    await make_domain("example.org")
    with pytest.raises(InvalidParams) as info:
        await call(
            "admin.users.create",
            {"user": {"email": "bob@example.org", "password": PASSWORD, "spam_threshold": float("nan")}},
        )
    assert [e.loc for e in info.value.errors] == ["user.spam_threshold"]


async def test_delete_cascades_in_the_database(
    call: Call, make_user: MakeUser, mailroom: Mailroom, admin: Actor
) -> None:
    """SQLite enforces the foreign keys (PRAGMA foreign_keys=ON): keys and manager rows go."""
    alice = await make_user("alice@one.example", manages=("one.example", "two.example"))
    await call("admin.apikeys.create", {"key": {"name": "second", "owner": "alice@one.example"}})
    assert alice.principal.user_id is not None

    async def counts() -> tuple[int, int, int]:
        async with mailroom.runtime.db.read() as tx:
            keys = await tx.scalar(
                select(func.count())
                .select_from(api_keys)
                .where(api_keys.c.owner_id == alice.principal.user_id)
            )
            roles = await tx.scalar(
                select(func.count())
                .select_from(managers)
                .where(managers.c.user_id == alice.principal.user_id)
            )
            claims = await tx.scalar(
                select(func.count()).select_from(addresses).where(addresses.c.address == "alice@one.example")
            )
        return int(keys), int(roles), int(claims)

    assert await counts() == (2, 2, 1)
    await call("admin.users.delete", {"email": "alice@one.example"})
    assert await counts() == (0, 0, 0)
    with pytest.raises(NotFound):
        await call("admin.users.delete", {"email": "alice@one.example"})


async def test_concurrent_creates_respect_max_users(call: Call, make_domain: MakeDomain) -> None:
    """Hashing happens outside the write transaction; the limit is checked inside it."""
    await make_domain("example.org", max_users=1)
    results = await asyncio.gather(
        *(
            call("admin.users.create", {"user": {"email": f"u{i}@example.org", "password": PASSWORD}})
            for i in range(4)
        ),
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, dict)]) == 1
    assert len([r for r in results if isinstance(r, LimitExceeded)]) == 3
    page = await call("admin.users.list", {"domain": "example.org"})
    assert page["total"] == 1


async def test_concurrent_creates_of_one_address(call: Call, make_domain: MakeDomain) -> None:
    await make_domain("example.org")
    results = await asyncio.gather(
        *(
            call("admin.users.create", {"user": {"email": "same@example.org", "password": PASSWORD}})
            for _ in range(3)
        ),
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, dict)]) == 1
    assert len([r for r in results if isinstance(r, Conflict)]) == 2


async def test_principals_in_process(call: Call, make_user: MakeUser) -> None:
    """The same policies apply to in-process calls made as someone."""
    manager = await make_user("mgr@one.example", manages=("one.example",))
    user = await make_user("bob@one.example")
    await make_user("carol@two.example")
    created = await call(
        "admin.users.create", {"user": {"email": "dan@one.example", "password": PASSWORD}}, as_=manager
    )
    assert created["domain"] == "one.example"
    with pytest.raises(NotFound):
        await call(
            "admin.users.create", {"user": {"email": "dan@two.example", "password": PASSWORD}}, as_=manager
        )
    with pytest.raises(NotFound):
        await call("admin.users.get", {"email": "carol@two.example"}, as_=manager)
    with pytest.raises(Forbidden):
        await call("admin.users.list", {}, as_=user)
    with pytest.raises(Forbidden):
        await call(
            "admin.managers.create",
            {"domain": "one.example", "manager": {"email": "bob@one.example"}},
            as_=manager,
        )
    listed = await call("admin.managers.list", {"domain": "one.example"}, as_=manager)
    assert [m["email"] for m in listed["items"]] == ["mgr@one.example"]
    mine = await call(
        "admin.users.update", {"email": "bob@one.example", "changes": {"display_name": "B"}}, as_=user
    )
    assert mine["display_name"] == "B"


async def test_declared_contracts(mailroom: Mailroom) -> None:
    describe = mailroom.registry.describe
    expected = {
        "admin.users.list": ("GET", "/users", "manager of domain"),
        "admin.users.get": ("GET", "/users/{email}", "owner of email"),
        "admin.users.create": ("POST", "/users", "manager of user.email"),
        "admin.users.update": ("PATCH", "/users/{email}", "owner of email"),
        "admin.users.delete": ("DELETE", "/users/{email}", "manager of email"),
        "admin.managers.list": ("GET", "/domains/{domain}/managers", "manager of domain"),
        "admin.managers.create": ("POST", "/domains/{domain}/managers", "admin"),
        "admin.managers.delete": ("DELETE", "/domains/{domain}/managers/{email}", "admin"),
    }
    for name, (verb, path, access) in expected.items():
        info = describe(name)
        assert (info["http"]["method"], info["http"]["path"], info["access"]) == (verb, path, access), name
        assert info["description"], name  # docstrings become OpenAPI descriptions and CLI help
