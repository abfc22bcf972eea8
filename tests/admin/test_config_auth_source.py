"""``auth_source`` in the configuration document: a directory (LDAP) user round-trips as one,
never with a password, and an import can move a user between the directory and local."""

from __future__ import annotations

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.domain.directory import NO_PASSWORD
from mailroom.errors import InvalidParams, Unauthenticated
from mailroom.store import config as config_store
from tests.admin import test_config
from tests.admin.test_config import PASSWORD, Call, export, import_

pytestmark = pytest.mark.anyio

#: The second, empty instance to import into.
other = test_config.other


async def stored_hash(app: Mailroom, email: str) -> str:
    async with app.runtime.db.read() as tx:
        [row] = [u for u in await config_store.all_users(tx) if u.email == email]
    return row.password_hash


async def populate(call: Call) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    await call("admin.users.create", {"user": {"email": "alice@example.org", "password": PASSWORD}})
    await call("admin.users.create", {"user": {"email": "carol@example.org", "password": PASSWORD}})
    await call("admin.users.update", {"email": "carol@example.org", "changes": {"auth_source": "ldap"}})


async def test_directory_users_round_trip(mailroom: Mailroom, other: Mailroom, call: Call) -> None:
    await populate(call)
    for flags in ({}, {"with_password_hashes": True}):
        doc = await export(mailroom, **flags)
        alice, carol = doc["users"]
        assert alice["auth_source"] == "local"
        assert carol["auth_source"] == "ldap"
        assert "password_hash" not in carol  # the stored mark is no hash: never exported
        assert ("password_hash" in alice) is bool(flags)
    first = await export(mailroom, with_password_hashes=True)
    result = await import_(other, first)
    created = {c["key"]: c["changes"] for c in result["changes"] if c["kind"] == "user"}
    assert created["carol@example.org"]["auth_source"] == {"old": None, "new": "ldap"}
    assert created["carol@example.org"]["password_hash"] == {"old": None, "new": "********"}
    assert await stored_hash(other, "carol@example.org") == NO_PASSWORD
    assert await export(other, with_password_hashes=True) == first
    assert (await import_(other, first))["changes"] == []
    # Without a directory, nobody logs in as carol; alice's copied hash works.
    with pytest.raises(Unauthenticated):
        await other.authenticator.password("carol@example.org", PASSWORD, None)
    assert (
        await other.authenticator.password("alice@example.org", PASSWORD, None)
    ).email == "alice@example.org"


async def test_a_directory_user_has_no_password_in_a_document(mailroom: Mailroom, call: Call) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    for extra, field in (
        ({"password": PASSWORD}, "password"),
        ({"password_hash": NO_PASSWORD}, "password_hash"),
    ):
        entry = {"email": "dan@example.org", "auth_source": "ldap", **extra}
        with pytest.raises(InvalidParams) as refused:
            await import_(mailroom, {"users": [entry]})
        assert [e.loc for e in refused.value.errors] == [f"document.users.0.{field}"]
    # Without one it is a new directory user.
    await import_(mailroom, {"users": [{"email": "dan@example.org", "auth_source": "ldap"}]})
    assert await stored_hash(mailroom, "dan@example.org") == NO_PASSWORD


async def test_an_import_moves_users_between_local_and_directory(mailroom: Mailroom, call: Call) -> None:
    await populate(call)
    # local → ldap: the stored password is forgotten.
    result = await import_(mailroom, {"users": [{"email": "alice@example.org", "auth_source": "ldap"}]})
    [change] = result["changes"]
    assert change["changes"] == {
        "auth_source": {"old": "local", "new": "ldap"},
        "password_hash": {"old": "********", "new": "********"},
    }
    assert await stored_hash(mailroom, "alice@example.org") == NO_PASSWORD
    # An entry that does not name auth_source leaves a directory user one (no password asked).
    assert (await import_(mailroom, {"users": [{"email": "carol@example.org", "display_name": "C"}]}))[
        "updated"
    ] == 1
    # ldap → local needs a password ...
    with pytest.raises(InvalidParams) as refused:
        await import_(mailroom, {"users": [{"email": "carol@example.org", "auth_source": "local"}]})
    assert [e.loc for e in refused.value.errors] == ["document.users.0.password"]
    # ... and with one, it is stored and works.
    await import_(
        mailroom, {"users": [{"email": "carol@example.org", "auth_source": "local", "password": PASSWORD}]}
    )
    assert (await mailroom.authenticator.password("carol@example.org", PASSWORD, None)).email == (
        "carol@example.org"
    )
