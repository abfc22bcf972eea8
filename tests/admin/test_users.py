"""admin.users.* over REST: success, validation, not found, conflict, limits, authorisation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import Unauthenticated
from mailroom.store import domains as domains_store
from mailroom.store.schema import addresses, aliases
from tests.conftest import Actor, problem

pytestmark = pytest.mark.anyio

MakeUser = Callable[..., Awaitable[Actor]]
MakeDomain = Callable[..., Awaitable[dict[str, Any]]]

PASSWORD = "Zq-unique-Pa55phrase-7731"
GIB = 1024**3
USER_FIELDS = {
    "email",
    "domain",
    "display_name",
    "quota_bytes",
    "quota_bytes_used",
    "enabled",
    "enable_imap",
    "enable_pop",
    "enable_smtp",
    "global_admin",
    "forward_enabled",
    "forward_destinations",
    "forward_keep",
    "reply_enabled",
    "reply_subject",
    "reply_body",
    "reply_start",
    "reply_end",
    "spam_enabled",
    "spam_mark_as_read",
    "spam_threshold",
    "change_pw_next_login",
    "allow_spoofing",
    "created_at",
    "updated_at",
    "auth_source",
}


async def users_total(client: httpx.AsyncClient, admin: Actor) -> int:
    r = await client.get("/api/v1/users", headers=admin.headers)
    assert r.status_code == 200
    total: int = r.json()["total"]
    return total


async def add_alias(mailroom: Mailroom, address: str, domain: str) -> None:
    """An alias through admin.aliases.create, or straight into the tables while that API does not exist.

    The aliases API is written by someone else, in parallel with this one.
    """
    if mailroom.registry.get("admin.aliases.create") is not None:
        params = {"alias": {"address": address, "destinations": ["bob@example.org"]}}
        await mailroom.registry.call("admin.aliases.create", params)
        return
    now = mailroom.runtime.clock.now()
    async with mailroom.runtime.db.write() as tx:
        await tx.execute(insert(addresses).values(address=address, kind="alias", domain=domain))
        await tx.execute(
            insert(aliases).values(
                address=address,
                domain=domain,
                destinations=["bob@example.org"],
                created_at=now,
                updated_at=now,
            )
        )


# -- success -----------------------------------------------------------------------------


async def test_create_get_list_update_delete(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain
) -> None:
    await make_domain("bücher.example")
    r = await client.post(
        "/api/v1/users",
        json={
            "email": "Alice@Bücher.Example",
            "password": PASSWORD,
            "display_name": "Alice Liddell",
            "forward_enabled": True,
            "forward_destinations": ["Alice@Elsewhere.example", "alice@elsewhere.example", "b@c.example"],
            "reply_start": "2026-07-01",
            "reply_end": "2026-07-14",
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == USER_FIELDS
    assert body["email"] == "alice@xn--bcher-kva.example"
    assert body["domain"] == "xn--bcher-kva.example"
    assert body["display_name"] == "Alice Liddell"
    assert body["quota_bytes"] == GIB  # the domain has no cap: 1 GiB
    assert body["quota_bytes_used"] == 0
    assert body["forward_destinations"] == ["alice@elsewhere.example", "b@c.example"]
    assert (body["reply_start"], body["reply_end"]) == ("2026-07-01", "2026-07-14")
    assert body["spam_threshold"] == 5.0
    assert [body[f] for f in ("enabled", "enable_imap", "enable_pop", "enable_smtp")] == [True] * 4
    assert [body[f] for f in ("global_admin", "allow_spoofing", "change_pw_next_login")] == [False] * 3
    assert body["created_at"] == body["updated_at"] == "2026-01-01T12:00:00Z"

    r = await client.get("/api/v1/users/alice@bücher.example", headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == body

    await client.post(
        "/api/v1/users", json={"email": "aaron@bücher.example", "password": PASSWORD}, headers=admin.headers
    )
    r = await client.get("/api/v1/users", headers=admin.headers)
    assert r.json()["total"] == 2
    assert [u["email"] for u in r.json()["items"]] == [
        "aaron@xn--bcher-kva.example",
        "alice@xn--bcher-kva.example",
    ]
    r = await client.get("/api/v1/users", params={"offset": 1, "limit": 1}, headers=admin.headers)
    assert [u["email"] for u in r.json()["items"]] == ["alice@xn--bcher-kva.example"]
    assert r.json()["total"] == 2

    r = await client.patch(
        "/api/v1/users/alice@xn--bcher-kva.example",
        json={"quota_bytes": 5000, "spam_threshold": 7.5, "reply_end": None, "enable_pop": False},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["quota_bytes"], changed["spam_threshold"], changed["reply_end"]) == (5000, 7.5, None)
    assert changed["enable_pop"] is False
    assert changed["display_name"] == "Alice Liddell"  # absent fields stay
    assert changed["reply_start"] == "2026-07-01"

    r = await client.delete("/api/v1/users/alice@xn--bcher-kva.example", headers=admin.headers)
    assert r.status_code == 204
    assert r.content == b""
    r = await client.get("/api/v1/users/alice@xn--bcher-kva.example", headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert await users_total(client, admin) == 1


async def test_list_filters_by_domain(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    await make_user("zed@one.example")
    await make_user("amy@two.example")
    await make_user("bob@one.example")
    r = await client.get("/api/v1/users", params={"domain": "ONE.example"}, headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["total"] == 2
    assert [u["email"] for u in r.json()["items"]] == ["bob@one.example", "zed@one.example"]
    r = await client.get("/api/v1/users", params={"domain": "missing.example"}, headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == "domain missing.example not found"


async def test_quota_defaults_to_the_domain_cap(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain
) -> None:
    await make_domain("example.org", max_quota_bytes=2 * GIB)
    r = await client.post(
        "/api/v1/users", json={"email": "a@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.json()["quota_bytes"] == 2 * GIB
    r = await client.post(
        "/api/v1/users",
        json={"email": "b@example.org", "password": PASSWORD, "quota_bytes": 0},
        headers=admin.headers,
    )
    assert r.status_code == 201
    assert r.json()["quota_bytes"] == 0


# -- validation --------------------------------------------------------------------------


A = {"email": "a@example.org", "password": PASSWORD}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"password": PASSWORD}, "user.email"),
        ({"email": "no-at-sign.example.org", "password": PASSWORD}, "user.email"),
        ({"email": "a..b@example.org", "password": PASSWORD}, "user.email"),
        ({"email": "a@example.org"}, "user.password"),
        (A | {"password": "short"}, "user.password"),
        (A | {"password": "x" * 1025}, "user.password"),
        (A | {"password": 12345678}, "user.password"),
        (A | {"surprise": 1}, "user.surprise"),
        (A | {"password_hash": "$argon2id$x"}, "user.password_hash"),
        (A | {"quota_bytes_used": 5}, "user.quota_bytes_used"),
        (A | {"quota_bytes": -1}, "user.quota_bytes"),
        (A | {"spam_threshold": 100.5}, "user.spam_threshold"),
        (A | {"spam_threshold": -1}, "user.spam_threshold"),
        (A | {"display_name": "A\r\nBcc: x@y.z"}, "user.display_name"),
        (A | {"reply_subject": "x" * 256}, "user.reply_subject"),
        (A | {"forward_destinations": ["nope"]}, "user.forward_destinations.0"),
        (A | {"forward_enabled": True}, "user.forward_destinations"),
        (
            A | {"forward_enabled": True, "forward_destinations": ["A@example.org"]},
            "user.forward_destinations",
        ),
        (A | {"reply_start": "2026-02-02", "reply_end": "2026-02-01"}, "user.reply_end"),
        (A | {"reply_start": "yesterday"}, "user.reply_start"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain, body: dict[str, Any], loc: str
) -> None:
    await make_domain("example.org")
    r = await client.post("/api/v1/users", json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "invalid_params"
    assert loc in [e["loc"] for e in problem["errors"]]
    assert await users_total(client, admin) == 0  # nothing changed


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"enabled": None}, "changes.enabled"),
        ({"password": None}, "changes.password"),
        ({"password": "short"}, "changes.password"),
        ({"quota_bytes": "lots"}, "changes.quota_bytes"),
        ({"spam_threshold": 101}, "changes.spam_threshold"),
        ({"email": "new@example.org"}, "changes.email"),
        ({"quota_bytes_used": 0}, "changes.quota_bytes_used"),
        ({"forward_enabled": True}, "changes.forward_destinations"),  # the stored list is empty
        ({"forward_destinations": []}, "changes.forward_destinations"),  # forwarding is on
        ({"reply_end": "2026-03-01"}, "changes.reply_end"),  # before the stored start
        ({"display_name": "two\nlines"}, "changes.display_name"),
    ],
)
async def test_update_validation(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, changes: dict[str, Any], loc: str
) -> None:
    await make_user(
        "alice@example.org",
        forward_enabled=True,
        forward_destinations=["x@elsewhere.example"],
        reply_start="2026-03-02",
    )
    before = (await client.get("/api/v1/users/alice@example.org", headers=admin.headers)).json()
    if "forward_enabled" in changes:
        await client.patch(
            "/api/v1/users/alice@example.org",
            json={"forward_enabled": False, "forward_destinations": []},
            headers=admin.headers,
        )
        before = (await client.get("/api/v1/users/alice@example.org", headers=admin.headers)).json()
    r = await client.patch("/api/v1/users/alice@example.org", json=changes, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]]
    after = (await client.get("/api/v1/users/alice@example.org", headers=admin.headers)).json()
    assert after == before  # nothing changed


async def test_empty_update_changes_nothing(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, clock: FakeClock
) -> None:
    await make_user("alice@example.org")
    before = (await client.get("/api/v1/users/alice@example.org", headers=admin.headers)).json()
    clock.advance(60)
    r = await client.patch("/api/v1/users/alice@example.org", json={}, headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == before
    r = await client.patch(
        "/api/v1/users/alice@example.org", json={"display_name": "A"}, headers=admin.headers
    )
    assert r.json()["updated_at"] == "2026-01-01T12:01:00Z"
    assert r.json()["created_at"] == before["created_at"]


# -- not found and conflicts ----------------------------------------------------------------


async def test_a_missing_domain_is_named_not_the_address(
    client: httpx.AsyncClient, admin: Actor, make_user: Any
) -> None:
    """A user or an alias in a domain that does not exist: "domain other.test not found", for
    an admin as for a manager of another domain (who cannot tell missing from not theirs)."""
    manager = await make_user("mgr@example.org", manages=("example.org",))
    await make_user("someone@theirs.test")  # a domain that exists, but not the manager's
    for actor in (admin, manager):
        for domain in ("other.test", "theirs.test") if actor is manager else ("other.test",):
            r = await client.post(
                "/api/v1/users", json={"email": f"x@{domain}", "password": PASSWORD}, headers=actor.headers
            )
            assert problem(r, 404, "not_found")["detail"] == f"domain {domain} not found"
            r = await client.post(
                "/api/v1/aliases",
                json={"address": f"x@{domain}", "destinations": ["mgr@example.org"]},
                headers=actor.headers,
            )
            assert problem(r, 404, "not_found")["detail"] == f"domain {domain} not found"


async def test_not_found(client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain) -> None:
    await make_domain("example.org")
    r = await client.post(
        "/api/v1/users", json={"email": "a@missing.example", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 404
    assert r.json()["detail"] == "domain missing.example not found"  # as the access policy says it
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(
            method,
            "/api/v1/users/nobody@example.org",
            headers=admin.headers,
            json={} if method == "PATCH" else None,
        )
        assert r.status_code == 404, method
        assert r.json()["code"] == "not_found"
        assert r.json()["detail"] == "user nobody@example.org not found"


async def test_alternative_and_relayed_domains_hold_no_mailboxes(
    client: httpx.AsyncClient, admin: Actor, mailroom: Mailroom
) -> None:
    # Only the domain_names claim matters here; the alternatives/relays APIs are someone else's.
    async with mailroom.runtime.db.write() as tx:
        await domains_store.claim_name(tx, "alt.example", "alternative")
        await domains_store.claim_name(tx, "relay.example", "relay")
    for name, words in (("alt.example", "alternative"), ("relay.example", "relayed")):
        r = await client.post(
            "/api/v1/users", json={"email": f"a@{name}", "password": PASSWORD}, headers=admin.headers
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == "user.email"
        assert words in r.json()["errors"][0]["message"]
    assert await users_total(client, admin) == 0


async def test_address_is_unique_across_users_and_aliases(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom
) -> None:
    await make_user("alice@example.org")
    r = await client.post(
        "/api/v1/users", json={"email": "ALICE@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"
    assert r.json()["detail"] == "alice@example.org is already a user"

    await add_alias(mailroom, "sales@example.org", "example.org")
    r = await client.post(
        "/api/v1/users", json={"email": "sales@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 409
    assert r.json()["detail"] == "sales@example.org is already an alias"
    assert await users_total(client, admin) == 1


# -- limits ------------------------------------------------------------------------------


async def test_max_users(client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain) -> None:
    await make_domain("example.org", max_users=1)
    r = await client.post(
        "/api/v1/users", json={"email": "a@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 201
    r = await client.post(
        "/api/v1/users", json={"email": "b@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 422
    assert r.json()["code"] == "limit_exceeded"
    assert r.json()["detail"] == "example.org already has 1 users, the most its max_users allows"
    assert r.json()["data"] == {"limit": "max_users", "max": 1, "used": 1}
    assert await users_total(client, admin) == 1
    # Freeing a place lets the next one in.
    assert (await client.delete("/api/v1/users/a@example.org", headers=admin.headers)).status_code == 204
    r = await client.post(
        "/api/v1/users", json={"email": "b@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 201


async def test_max_quota_bytes(client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain) -> None:
    await make_domain("example.org", max_quota_bytes=1000)
    r = await client.post(
        "/api/v1/users",
        json={"email": "a@example.org", "password": PASSWORD, "quota_bytes": 1001},
        headers=admin.headers,
    )
    assert r.status_code == 422
    assert r.json()["code"] == "limit_exceeded"
    assert r.json()["data"] == {"limit": "max_quota_bytes", "max": 1000, "requested": 1001}
    assert await users_total(client, admin) == 0
    r = await client.post(
        "/api/v1/users",
        json={"email": "a@example.org", "password": PASSWORD, "quota_bytes": 1000},
        headers=admin.headers,
    )
    assert r.status_code == 201
    r = await client.patch("/api/v1/users/a@example.org", json={"quota_bytes": 2000}, headers=admin.headers)
    assert r.status_code == 422
    assert r.json()["code"] == "limit_exceeded"
    r = await client.get("/api/v1/users/a@example.org", headers=admin.headers)
    assert r.json()["quota_bytes"] == 1000
    r = await client.patch("/api/v1/users/a@example.org", json={"quota_bytes": 10}, headers=admin.headers)
    assert r.json()["quota_bytes"] == 10


# -- passwords ---------------------------------------------------------------------------


async def test_password_change_works_with_login(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom
) -> None:
    alice = await make_user("alice@example.org", password="old password 1", change_pw_next_login=True)
    auth = mailroom.authenticator
    assert (
        await auth.password("alice@example.org", "old password 1", "127.0.0.1")
    ).email == "alice@example.org"

    # The user themselves: the old password stops working, the new one works, the flag clears.
    r = await client.patch(
        "/api/v1/users/alice@example.org", json={"password": "new password 2"}, headers=alice.headers
    )
    assert r.status_code == 200
    assert r.json()["change_pw_next_login"] is False
    principal = await auth.password("Alice@Example.org", "new password 2", "127.0.0.1")
    assert principal.email == "alice@example.org"
    with pytest.raises(Unauthenticated):
        await auth.password("alice@example.org", "old password 1", "127.0.0.1")

    # An admin resetting it keeps the flag they set, and a stored flag stays set.
    r = await client.patch(
        "/api/v1/users/alice@example.org",
        json={"password": "temporary 3", "change_pw_next_login": True},
        headers=admin.headers,
    )
    assert r.json()["change_pw_next_login"] is True
    await auth.password("alice@example.org", "temporary 3", "127.0.0.1")
    with pytest.raises(Unauthenticated):
        await auth.password("alice@example.org", "new password 2", "127.0.0.1")
    r = await client.patch(
        "/api/v1/users/alice@example.org", json={"password": "temporary 4"}, headers=admin.headers
    )
    assert r.json()["change_pw_next_login"] is True
    await auth.password("alice@example.org", "temporary 4", "127.0.0.1")


async def test_password_never_appears_in_responses(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain
) -> None:
    await make_domain("example.org")
    texts = []
    r = await client.post(
        "/api/v1/users", json={"email": "a@example.org", "password": PASSWORD}, headers=admin.headers
    )
    texts.append(r.text)
    texts.append((await client.get("/api/v1/users/a@example.org", headers=admin.headers)).text)
    texts.append((await client.get("/api/v1/users", headers=admin.headers)).text)
    r = await client.patch(
        "/api/v1/users/a@example.org", json={"password": PASSWORD + "-2"}, headers=admin.headers
    )
    texts.append(r.text)
    # Refusals must not echo it either.
    r = await client.post(
        "/api/v1/users", json={"email": "a@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 409
    texts.append(r.text)
    r = await client.post(
        "/api/v1/users", json={"email": "b@example.org", "password": "Qx7-sh"}, headers=admin.headers
    )
    assert r.status_code == 422
    texts.append(r.text)
    r = await client.post("/api/v1/users", json={"email": "bad", "password": PASSWORD}, headers=admin.headers)
    assert r.status_code == 422
    texts.append(r.text)
    for text in texts:
        assert PASSWORD not in text
        assert "Qx7-sh" not in text
        assert "$argon2" not in text
        assert "password_hash" not in text


# -- self-service and field permissions --------------------------------------------------------


async def test_self_service_fields(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user("alice@example.org")
    r = await client.patch(
        "/api/v1/users/alice@example.org",
        json={
            "display_name": "Alice",
            "forward_enabled": True,
            "forward_destinations": ["alice@elsewhere.example"],
            "forward_keep": False,
            "reply_enabled": True,
            "reply_subject": "Away",
            "reply_body": "Back on Monday.",
            "reply_start": "2026-01-02",
            "reply_end": "2026-01-09",
            "spam_enabled": False,
            "spam_mark_as_read": True,
            "spam_threshold": 8,
        },
        headers=alice.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["display_name"] == "Alice"
    assert body["forward_destinations"] == ["alice@elsewhere.example"]
    assert (body["reply_subject"], body["reply_end"], body["spam_threshold"]) == ("Away", "2026-01-09", 8.0)

    for field, value in [
        ("quota_bytes", 1),
        ("enabled", False),
        ("enable_imap", False),
        ("enable_pop", False),
        ("enable_smtp", False),
        ("allow_spoofing", True),
        ("change_pw_next_login", True),
    ]:
        r = await client.patch("/api/v1/users/alice@example.org", json={field: value}, headers=alice.headers)
        assert r.status_code == 403, field
        assert r.json()["code"] == "forbidden"
        assert r.json()["data"]["fields"] == [field]
        assert field in r.json()["detail"]

    r = await client.patch(
        "/api/v1/users/alice@example.org",
        json={"display_name": "Mallory", "quota_bytes": 1, "allow_spoofing": True},
        headers=alice.headers,
    )
    assert r.status_code == 403
    assert r.json()["data"]["fields"] == ["allow_spoofing", "quota_bytes"]
    r = await client.patch(
        "/api/v1/users/alice@example.org", json={"global_admin": True}, headers=alice.headers
    )
    assert r.status_code == 403
    assert r.json()["data"]["fields"] == ["global_admin"]
    r = await client.get("/api/v1/users/alice@example.org", headers=alice.headers)
    assert r.json() == body  # nothing changed by the refused calls


async def test_only_global_admins_grant_global_admin(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser
) -> None:
    manager = await make_user("mgr@example.org", manages=("example.org",))
    await make_user("bob@example.org")
    r = await client.patch(
        "/api/v1/users/bob@example.org", json={"global_admin": True}, headers=manager.headers
    )
    assert r.status_code == 403
    r = await client.post(
        "/api/v1/users",
        json={"email": "eve@example.org", "password": PASSWORD, "global_admin": True},
        headers=manager.headers,
    )
    assert r.status_code == 403
    assert (await client.get("/api/v1/users/eve@example.org", headers=admin.headers)).status_code == 404
    # The manager may change the other fields.
    r = await client.patch(
        "/api/v1/users/bob@example.org", json={"quota_bytes": 7, "enabled": False}, headers=manager.headers
    )
    assert r.status_code == 200
    assert (r.json()["quota_bytes"], r.json()["enabled"]) == (7, False)

    r = await client.patch(
        "/api/v1/users/bob@example.org", json={"global_admin": True}, headers=admin.headers
    )
    assert r.status_code == 200
    assert r.json()["global_admin"] is True


async def test_managers_cannot_take_over_global_admins(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser, mailroom: Mailroom
) -> None:
    manager = await make_user("mgr@example.org", manages=("example.org",))
    boss = await make_user("boss@example.org", admin=True)
    r = await client.patch(
        "/api/v1/users/boss@example.org", json={"password": "taken over!"}, headers=manager.headers
    )
    assert r.status_code == 403
    assert (await client.delete("/api/v1/users/boss@example.org", headers=manager.headers)).status_code == 403
    principal = await mailroom.authenticator.password("boss@example.org", boss.password or "", "127.0.0.1")
    assert principal.is_admin
    # The global admin themselves, and other admins, still may.
    r = await client.patch(
        "/api/v1/users/boss@example.org", json={"display_name": "Boss"}, headers=boss.headers
    )
    assert r.status_code == 200
    assert (await client.delete("/api/v1/users/boss@example.org", headers=admin.headers)).status_code == 204


# -- delete ------------------------------------------------------------------------------


async def test_delete_cascades_keys_and_manager_roles(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser
) -> None:
    alice = await make_user("alice@example.org", manages=("example.org", "other.example"))
    assert (await client.get("/api/v1/users/alice@example.org", headers=alice.headers)).status_code == 200
    r = await client.get("/api/v1/domains/other.example/managers", headers=admin.headers)
    assert [m["email"] for m in r.json()["items"]] == ["alice@example.org"]

    assert (await client.delete("/api/v1/users/alice@example.org", headers=admin.headers)).status_code == 204
    r = await client.get("/api/v1/domains", headers=alice.headers)
    assert r.status_code == 401  # the key died with its owner
    assert r.json()["code"] == "unauthenticated"
    r = await client.get("/api/v1/apikeys", headers=admin.headers)
    assert [k["name"] for k in r.json()["items"]] == ["test-admin"]
    r = await client.get("/api/v1/domains/other.example/managers", headers=admin.headers)
    assert r.json() == {"items": [], "total": 0, "offset": 0, "limit": 50}

    # The address is free again, and the new mailbox inherits nothing.
    r = await client.post(
        "/api/v1/users", json={"email": "alice@example.org", "password": PASSWORD}, headers=admin.headers
    )
    assert r.status_code == 201
    r = await client.get("/api/v1/domains/example.org/managers", headers=admin.headers)
    assert r.json()["total"] == 0


# -- authorisation -----------------------------------------------------------------------


async def test_anonymous_is_refused(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("alice@one.example")
    for method, url, body in [
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/users/alice@one.example", None),
        ("POST", "/api/v1/users", {"email": "x@one.example", "password": PASSWORD}),
        ("PATCH", "/api/v1/users/alice@one.example", {"display_name": "x"}),
        ("DELETE", "/api/v1/users/alice@one.example", None),
    ]:
        r = await client.request(method, url, json=body)
        assert r.status_code == 401, (method, url)
        assert r.json()["code"] == "unauthenticated"


async def test_plain_user(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    alice = await make_user("alice@one.example")
    await make_user("bob@one.example")
    h = alice.headers
    assert (await client.get("/api/v1/users", headers=h)).status_code == 403
    assert (await client.get("/api/v1/users", params={"domain": "one.example"}, headers=h)).status_code == 403
    assert (await client.get("/api/v1/users/alice@one.example", headers=h)).status_code == 200
    # Another user of the same domain looks missing.
    hidden = await client.get("/api/v1/users/bob@one.example", headers=h)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "user bob@one.example not found"
    r = await client.patch("/api/v1/users/bob@one.example", json={"display_name": "x"}, headers=h)
    assert r.status_code == 404
    r = await client.post("/api/v1/users", json={"email": "new@one.example", "password": PASSWORD}, headers=h)
    assert r.status_code == 403
    assert (await client.delete("/api/v1/users/bob@one.example", headers=h)).status_code == 403
    assert (await client.delete("/api/v1/users/alice@one.example", headers=h)).status_code == 403
    assert await users_total(client, admin) == 2
    r = await client.get("/api/v1/users/bob@one.example", headers=admin.headers)
    assert r.json()["display_name"] == ""


async def test_manager_of_another_domain_sees_nothing(
    client: httpx.AsyncClient, admin: Actor, make_user: MakeUser
) -> None:
    await make_user("alice@one.example")
    other = await make_user("mgr@two.example", manages=("two.example",))
    h = other.headers

    r = await client.get("/api/v1/users", headers=h)
    assert [u["email"] for u in r.json()["items"]] == ["mgr@two.example"]
    hidden = await client.get("/api/v1/users", params={"domain": "one.example"}, headers=h)
    missing = await client.get("/api/v1/users", params={"domain": "none.example"}, headers=h)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == "domain one.example not found"
    assert missing.json()["detail"] == "domain none.example not found"

    # Every call on alice answers exactly as it does once alice is really gone.
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/api/v1/users/alice@one.example", None),
        ("PATCH", "/api/v1/users/alice@one.example", {"display_name": "x"}),
        ("DELETE", "/api/v1/users/alice@one.example", None),
        ("POST", "/api/v1/users", {"email": "alice@one.example", "password": PASSWORD}),
    ]
    while_there = [(await client.request(m, u, json=b, headers=h)) for m, u, b in calls]
    assert [r.status_code for r in while_there] == [404, 404, 404, 404]
    assert (await client.get("/api/v1/users/alice@one.example", headers=admin.headers)).json()[
        "display_name"
    ] == ""
    assert (await client.delete("/api/v1/users/alice@one.example", headers=admin.headers)).status_code == 204
    assert (await client.delete("/api/v1/domains/one.example", headers=admin.headers)).status_code == 204
    once_gone = [(await client.request(m, u, json=b, headers=h)) for m, u, b in calls]
    assert [r.json() for r in while_there] == [r.json() for r in once_gone]


async def test_manager_of_the_domain(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    await make_user("alice@one.example")
    await make_user("carol@two.example")
    manager = await make_user("mgr@one.example", manages=("one.example",))
    h = manager.headers
    r = await client.get("/api/v1/users", headers=h)
    assert [u["email"] for u in r.json()["items"]] == ["alice@one.example", "mgr@one.example"]
    assert r.json()["total"] == 2
    r = await client.get("/api/v1/users", params={"domain": "one.example"}, headers=h)
    assert r.json()["total"] == 2
    assert (await client.get("/api/v1/users/alice@one.example", headers=h)).status_code == 200
    r = await client.post("/api/v1/users", json={"email": "dan@one.example", "password": PASSWORD}, headers=h)
    assert r.status_code == 201
    r = await client.patch("/api/v1/users/dan@one.example", json={"enabled": False}, headers=h)
    assert r.json()["enabled"] is False
    assert (await client.delete("/api/v1/users/dan@one.example", headers=h)).status_code == 204
    assert (await client.get("/api/v1/users/dan@one.example", headers=admin.headers)).status_code == 404
    # Admins see every domain.
    r = await client.get("/api/v1/users", headers=admin.headers)
    assert [u["email"] for u in r.json()["items"]] == [
        "alice@one.example",
        "carol@two.example",
        "mgr@one.example",
    ]
