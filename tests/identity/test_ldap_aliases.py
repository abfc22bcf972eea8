"""Aliases made from the directory follow it (auth/provisioning.py), against a real slapd.

An address the directory lists for a user becomes an alias at their login, marked as the
directory's; once the directory no longer lists it, the next login removes it, and only such
aliases: an administrator's alias to the same user, and a directory-made one an administrator
changed since, stay. Each addition and removal is in the audit log.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.settings import Settings
from mailroom.store.schema import aliases
from tests.conftest import started
from tests.identity import test_ldap
from tests.identity.test_ldap import ALICE_PASSWORD
from tests.ldap_server import PEOPLE, Slapd

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# The directory of tests/identity/test_ldap.py: alice lists ali@example.org,
# alice@elsewhere.test (not a mail domain here) and Liddell@Example.org.
slapd = test_ldap.slapd
settings_overrides = test_ldap.settings_overrides
domain = test_ldap.domain

ALICE_DN = f"uid=alice,{PEOPLE}"


async def stored_aliases(app: Mailroom) -> dict[str, tuple[list[str], str | None]]:
    async with app.runtime.db.read() as tx:
        rows = await tx.all(select(aliases.c.address, aliases.c.destinations, aliases.c.directory_user))
    return {r["address"]: (r["destinations"], r["directory_user"]) for r in rows}


async def login(app: Mailroom) -> None:
    principal = await app.authenticator.basic("alice@example.org", ALICE_PASSWORD, "127.0.0.1", "imap")
    assert principal.email == "alice@example.org"


def set_aliases(server: Slapd, values: list[str]) -> None:
    lines = [
        f"dn: {ALICE_DN}",
        "changetype: modify",
        "replace: mailAlias",
        *(f"mailAlias: {v}" for v in values),
    ]
    server.modify("\n".join(lines) + "\n")


async def audit_targets(app: Mailroom) -> list[tuple[str, dict[str, Any]]]:
    page = await app.registry.call("admin.audit.list", {"method": "auth.ldap.provision"})
    return [(e["target"], e["changes"]) for e in page["items"]]


async def test_directory_aliases_follow_the_directory(mailroom: Mailroom, slapd: Slapd, domain: None) -> None:
    call = mailroom.registry.call
    await login(mailroom)
    assert await stored_aliases(mailroom) == {
        "ali@example.org": (["alice@example.org"], "alice@example.org"),
        "liddell@example.org": (["alice@example.org"], "alice@example.org"),
    }
    # An administrator's own alias to alice, and one the directory made that they change.
    await call(
        "admin.aliases.create",
        {"alias": {"address": "boss@example.org", "destinations": ["alice@example.org"]}},
    )
    await call("admin.aliases.update", {"address": "liddell@example.org", "changes": {"comment": "keep"}})

    set_aliases(slapd, ["ali2@example.org"])  # ali@ and Liddell@ no longer listed
    await login(mailroom)
    after = await stored_aliases(mailroom)
    assert after == {
        "ali2@example.org": (["alice@example.org"], "alice@example.org"),
        "boss@example.org": (["alice@example.org"], None),
        "liddell@example.org": (["alice@example.org"], None),  # the administrator's now
    }
    # The address is free again: an administrator can give it to someone else.
    await call(
        "admin.aliases.create", {"alias": {"address": "ali@example.org", "destinations": ["x@y.example"]}}
    )

    entries = await audit_targets(mailroom)
    assert (
        "ali@example.org",
        {"alias": {"removed": "ali@example.org", "destination": "alice@example.org"}},
    ) in (entries)
    assert (
        "ali2@example.org",
        {"alias": {"added": "ali2@example.org", "destination": "alice@example.org"}},
    ) in (entries)
    assert not any(target == "liddell@example.org" and "removed" in c["alias"] for target, c in entries)

    # No alias attribute at all: the directory lists none, so the ones it made go.
    slapd.modify(f"dn: {ALICE_DN}\nchangetype: modify\ndelete: mailAlias\n")
    await login(mailroom)
    assert set(await stored_aliases(mailroom)) == {
        "boss@example.org",
        "liddell@example.org",
        "ali@example.org",
    }


async def test_an_unchanged_directory_removes_nothing(mailroom: Mailroom, slapd: Slapd, domain: None) -> None:
    await login(mailroom)
    first = await stored_aliases(mailroom)
    for _ in range(3):
        await login(mailroom)
    assert await stored_aliases(mailroom) == first
    assert len(await audit_targets(mailroom)) == 2  # the two additions, nothing since


async def test_without_an_alias_attribute_nothing_is_removed(
    mailroom: Mailroom, slapd: Slapd, domain: None, settings: Settings
) -> None:
    await login(mailroom)  # made with the attribute configured
    async with started(settings.model_copy(update={"ldap_alias_attribute": None})) as other:
        await login(other)
        assert set(await stored_aliases(other)) == {"ali@example.org", "liddell@example.org"}
