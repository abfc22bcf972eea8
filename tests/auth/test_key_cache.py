"""The per-worker API-key cache (``auth_cache_seconds``): what it saves and what empties it.

A cached key still has its secret, expiry and network checked on every request; a change
that may alter what a key stands for (the key, its owner, their domains) takes effect at
once in the worker that made it; changes to other objects (aliases, mail) keep the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.conftest import Actor

from mailroom.bootstrap import KEY_CACHE_SAFE_OBJECTS, Mailroom
from mailroom.errors import Unauthenticated
from mailroom.store import apikeys

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Key ids read from the database for authentication."""
    seen: list[str] = []
    real = apikeys.get_for_auth

    async def counting(tx: Any, key_id: str) -> Any:
        seen.append(key_id)
        return await real(tx, key_id)

    monkeypatch.setattr(apikeys, "get_for_auth", counting)
    return seen


async def test_a_cached_key_is_read_once_and_its_principal_reused(
    mailroom: Mailroom, make_user: MakeUser, lookups: list[str]
) -> None:
    alice = await make_user("alice@example.org")
    assert alice.key is not None
    first = await mailroom.authenticator.bearer(alice.key, "192.0.2.1")
    again = await mailroom.authenticator.bearer(alice.key, "192.0.2.1")
    elsewhere = await mailroom.authenticator.bearer(alice.key, "192.0.2.2")
    assert len(lookups) == 1
    assert again is first
    assert (first.client_ip, elsewhere.client_ip) == ("192.0.2.1", "192.0.2.2")
    assert elsewhere.email == first.email == "alice@example.org"
    with pytest.raises(Unauthenticated):  # the secret is checked every time
        await mailroom.authenticator.bearer(alice.key[:-2] + "xx", "192.0.2.1")


async def test_changes_to_keys_and_users_take_effect_at_once(
    mailroom: Mailroom, make_user: MakeUser, call: Callable[..., Awaitable[Any]]
) -> None:
    alice = await make_user("alice@example.org")
    bob = await make_user("bob@example.org")
    assert alice.key is not None
    assert bob.key is not None
    await mailroom.authenticator.bearer(alice.key, None)
    await mailroom.authenticator.bearer(bob.key, None)

    await call("admin.users.update", {"email": "alice@example.org", "changes": {"enabled": False}})
    with pytest.raises(Unauthenticated):
        await mailroom.authenticator.bearer(alice.key, None)

    keys = await call("admin.apikeys.list", {})
    bobs = next(k for k in keys["items"] if k["name"] == "key-bob@example.org")
    await call("admin.apikeys.delete", {"id": bobs["id"]})
    with pytest.raises(Unauthenticated):
        await mailroom.authenticator.bearer(bob.key, None)


async def test_changes_to_other_objects_keep_the_cache(
    mailroom: Mailroom, make_user: MakeUser, call: Callable[..., Awaitable[Any]], lookups: list[str]
) -> None:
    alice = await make_user("alice@example.org")
    assert alice.key is not None
    await mailroom.authenticator.bearer(alice.key, None)
    await call(
        "admin.aliases.create",
        {"alias": {"address": "team@example.org", "destinations": ["alice@example.org"]}},
    )
    await mailroom.authenticator.bearer(alice.key, None)
    assert len(lookups) == 1
    await call("admin.managers.create", {"domain": "example.org", "manager": {"email": "alice@example.org"}})
    principal = await mailroom.authenticator.bearer(alice.key, None)
    assert len(lookups) == 2  # a manager's domains are part of the principal
    assert "example.org" in principal.managed_domains


async def test_the_cache_expires(mailroom: Mailroom, make_user: MakeUser, lookups: list[str]) -> None:
    alice = await make_user("alice@example.org")
    assert alice.key is not None
    mailroom.authenticator.cache_seconds = 0.5
    mailroom.authenticator.invalidate()
    before = len(lookups)
    await mailroom.authenticator.bearer(alice.key, None)
    await mailroom.authenticator.bearer(alice.key, None)
    assert len(lookups) == before + 1  # cached within the period
    await asyncio.sleep(0.6)
    await mailroom.authenticator.bearer(alice.key, None)
    assert len(lookups) == before + 2  # read again after it


async def test_every_object_kept_in_the_cache_exists_and_none_of_them_touches_principals(
    mailroom: Mailroom,
) -> None:
    objects = {spec.name.rpartition(".")[0] for spec in mailroom.registry.methods()}
    assert objects >= KEY_CACHE_SAFE_OBJECTS
    principal_objects = {"admin.apikeys", "admin.users", "admin.managers", "admin.domains", "admin.config"}
    assert not KEY_CACHE_SAFE_OBJECTS & principal_objects
