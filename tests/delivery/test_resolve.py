"""Recipient resolution: the table of cases an MTA asks at RCPT time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.mailhelpers import create_user

from mailroom.bootstrap import Mailroom
from mailroom.delivery.resolve import MAX_DEPTH, Resolution, resolve, split_tag

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]


async def _alias(call: Call, address: str, *destinations: str, wildcard: bool = False) -> None:
    await call(
        "admin.aliases.create",
        {"alias": {"address": address, "destinations": list(destinations), "wildcard": wildcard}},
    )


@pytest.fixture
async def world(mailroom: Mailroom, call: Call) -> Mailroom:
    """Users, aliases, an alternative domain and a relayed domain to resolve against."""
    for name in ("alice", "bob", "gina", "hank"):
        await create_user(mailroom, f"{name}@example.org")
    await create_user(mailroom, "carol@example.org", enabled=False)
    await create_user(
        mailroom, "dave@example.org", forward_enabled=True, forward_destinations=["dave@elsewhere.net"]
    )
    await create_user(
        mailroom,
        "erin@example.org",
        forward_enabled=True,
        forward_destinations=["erin@elsewhere.net"],
        forward_keep=False,
    )
    await create_user(
        mailroom,
        "frank@example.org",
        forward_enabled=True,
        forward_destinations=["alice@example.org"],
        forward_keep=False,
    )
    for me, other in (("gina", "hank"), ("hank", "gina")):
        changes = {
            "forward_enabled": True,
            "forward_destinations": [f"{other}@example.org"],
            "forward_keep": False,
        }
        await call("admin.users.update", {"email": f"{me}@example.org", "changes": changes})
    await _alias(call, "sales@example.org", "alice@example.org", "bob@example.org", "partner@other.net")
    await _alias(call, "team@example.org", "sales@example.org", "bob@example.org")
    await _alias(call, "loop1@example.org", "loop2@example.org")
    await _alias(call, "loop2@example.org", "loop1@example.org")
    await _alias(call, "mixed@example.org", "loop1@example.org", "bob@example.org")
    await _alias(call, "ghost@example.org", "nobody@example.org")
    await _alias(call, "off@example.org", "carol@example.org")
    for i in range(MAX_DEPTH + 2):
        await _alias(call, f"chain{i}@example.org", f"chain{i + 1}@example.org")
    await _alias(call, f"chain{MAX_DEPTH + 2}@example.org", "alice@example.org")
    await _alias(call, "sales-*@example.org", "bob@example.org", wildcard=True)
    await _alias(call, "*@example.org", "alice@example.org", wildcard=True)
    await call("admin.domains.create", {"domain": {"name": "quiet.org"}})
    await call("admin.alternatives.create", {"domain": "example.org", "alternative": {"name": "example.com"}})
    await call("admin.relays.create", {"relay": {"name": "relayed.net", "smarthost": "mx.relayed.net:25"}})
    return mailroom


async def _resolve(
    mailroom: Mailroom, address: str, *, delimiters: str = "+", quota: bool = False
) -> Resolution:
    async with mailroom.runtime.db.read() as tx:
        return await resolve(tx, address, delimiters=delimiters, quota_check=quota)


def _locals(r: Resolution) -> list[tuple[str, str | None]]:
    return sorted((t.email, t.tag) for t in r.local)


def _externals(r: Resolution) -> list[tuple[str, str, str]]:
    return sorted((t.address, t.reason, t.via) for t in r.external)


async def test_a_user_resolves_to_their_mailbox(world: Mailroom) -> None:
    r = await _resolve(world, "Alice@Example.ORG")
    assert r.status == "accepted"
    assert r.code == 250
    assert _locals(r) == [("alice@example.org", None)]
    assert r.external == []


async def test_an_alias_expands_to_local_and_external_destinations(world: Mailroom) -> None:
    r = await _resolve(world, "sales@example.org")
    assert _locals(r) == [("alice@example.org", None), ("bob@example.org", None)]
    assert _externals(r) == [("partner@other.net", "alias", "sales@example.org")]


async def test_nested_aliases_deliver_once_per_mailbox(world: Mailroom) -> None:
    r = await _resolve(world, "team@example.org")
    assert _locals(r) == [("alice@example.org", None), ("bob@example.org", None)]


async def test_the_delimiter_tag_is_kept_and_ignored_for_lookup(world: Mailroom) -> None:
    r = await _resolve(world, "alice+news@example.org")
    assert _locals(r) == [("alice@example.org", "news")]
    tagged_alias = await _resolve(world, "sales+q3@example.org")
    assert _locals(tagged_alias) == [("alice@example.org", None), ("bob@example.org", None)]


async def test_the_delimiter_is_configurable(world: Mailroom) -> None:
    r = await _resolve(world, "alice-news@example.org", delimiters="+-")
    assert _locals(r) == [("alice@example.org", "news")]
    assert split_tag("alice+news", "") == ("alice+news", None)
    assert split_tag("+x", "+") == ("+x", None)


async def test_without_a_delimiter_the_tagged_address_falls_to_the_catch_all(world: Mailroom) -> None:
    r = await _resolve(world, "bob+x@example.org", delimiters="")
    # No extension handling: bob+x is not bob, so the catch-all (to alice) takes it.
    assert _locals(r) == [("alice@example.org", None)]


async def test_an_alternative_domain_maps_to_its_primary(world: Mailroom) -> None:
    assert _locals(await _resolve(world, "bob@example.com")) == [("bob@example.org", None)]
    assert _locals(await _resolve(world, "sales@example.com")) == [
        ("alice@example.org", None),
        ("bob@example.org", None),
    ]


async def test_the_most_specific_wildcard_wins_and_users_beat_wildcards(world: Mailroom) -> None:
    assert _locals(await _resolve(world, "sales-emea@example.org")) == [("bob@example.org", None)]
    assert _locals(await _resolve(world, "random@example.org")) == [("alice@example.org", None)]
    # A real user is never captured by the catch-all.
    assert _locals(await _resolve(world, "bob@example.org")) == [("bob@example.org", None)]


async def test_unknown_recipients_are_refused_with_5_1_1(world: Mailroom) -> None:
    r = await _resolve(world, "nobody@quiet.org")
    assert r.status == "unknown"
    assert r.reply.startswith("550 5.1.1 ")
    ghost = await _resolve(world, "ghost@example.org")
    # The alias points at an address nobody holds: that destination is resolved again, like
    # any address, and the domain's catch-all takes it.
    assert _locals(ghost) == [("alice@example.org", None)]


async def test_a_disabled_user_is_refused_with_5_2_1(world: Mailroom) -> None:
    r = await _resolve(world, "carol@example.org")
    assert r.status == "disabled"
    assert r.reply.startswith("550 5.2.1 ")
    via_alias = await _resolve(world, "off@example.org")
    assert via_alias.status == "disabled"


async def test_a_relayed_domain_is_accepted_and_passed_to_its_relay(world: Mailroom) -> None:
    r = await _resolve(world, "anyone@relayed.net")
    assert r.accepted
    assert r.local == []
    [target] = r.external
    assert (target.address, target.reason, target.relay) == (
        "anyone@relayed.net",
        "relay",
        "mx.relayed.net:25",
    )


async def test_a_foreign_domain_is_not_relayed(world: Mailroom) -> None:
    r = await _resolve(world, "someone@gmail.example")
    assert r.status == "not_local"
    assert r.reply.startswith("554 5.7.1 ")


async def test_malformed_addresses_are_refused(world: Mailroom) -> None:
    for address in ("no-at-sign", "a@@b.org", "@example.org", "x@-bad-.org"):
        r = await _resolve(world, address)
        assert r.status == "invalid", address
        assert r.reply.startswith("501 5.1.3 ")


async def test_alias_cycles_terminate_and_are_refused_as_loops(world: Mailroom) -> None:
    r = await _resolve(world, "loop1@example.org")
    assert r.status == "loop"
    assert r.reply.startswith("550 5.4.6 ")


async def test_a_cycle_beside_a_real_destination_still_delivers_once(world: Mailroom) -> None:
    r = await _resolve(world, "mixed@example.org")
    assert r.accepted
    assert _locals(r) == [("bob@example.org", None)]


async def test_alias_chains_deeper_than_the_limit_stop(world: Mailroom) -> None:
    r = await _resolve(world, "chain0@example.org")
    assert r.status == "loop"
    near_end = await _resolve(world, f"chain{MAX_DEPTH - 3}@example.org")
    assert _locals(near_end) == [("alice@example.org", None)]


async def test_forwarding_keeps_a_copy_only_with_forward_keep(world: Mailroom) -> None:
    keep = await _resolve(world, "dave@example.org")
    assert _locals(keep) == [("dave@example.org", None)]
    assert _externals(keep) == [("dave@elsewhere.net", "forward", "dave@example.org")]
    away = await _resolve(world, "erin@example.org")
    assert away.local == []
    assert _externals(away) == [("erin@elsewhere.net", "forward", "erin@example.org")]


async def test_forwarding_to_a_local_mailbox_follows_the_chain(world: Mailroom) -> None:
    r = await _resolve(world, "frank@example.org")
    assert _locals(r) == [("alice@example.org", None)]
    assert r.external == []


async def test_a_forwarding_cycle_without_copies_is_a_loop(world: Mailroom) -> None:
    r = await _resolve(world, "gina@example.org")
    assert r.status == "loop"


async def test_a_full_mailbox_is_a_temporary_failure_at_rcpt(world: Mailroom, call: Call) -> None:
    await call("admin.users.update", {"email": "bob@example.org", "changes": {"quota_bytes": 1000}})
    async with world.runtime.db.write() as tx:
        from sqlalchemy import update

        from mailroom.store.schema import users

        await tx.execute(
            update(users).where(users.c.email == "bob@example.org").values(quota_bytes_used=1000)
        )
    r = await _resolve(world, "bob@example.org", quota=True)
    assert r.status == "over_quota"
    assert r.reply.startswith("452 4.2.2 ")
    assert (await _resolve(world, "bob@example.org")).accepted  # at DATA, ingest checks sizes
    team = await _resolve(world, "team@example.org", quota=True)
    assert _locals(team) == [("alice@example.org", None)]  # the others still get it
