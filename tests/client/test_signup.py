"""mail.signup.create, admin.invites.* and admin.waitlist.* over REST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mailroom.clock import FakeClock
from tests.client.conftest import PASSWORD, error_locs, login, problem
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

MakeDomain = Callable[..., Awaitable[dict[str, Any]]]
MakeUser = Callable[..., Awaitable[Actor]]


async def invite(client: httpx.AsyncClient, actor: Actor, domain: str = "example.org", **fields: Any) -> str:
    r = await client.post("/api/v1/invites", json={"domain": domain, **fields}, headers=actor.headers)
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


async def signup(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/signup", json={"password": PASSWORD, **body})


@pytest.fixture
async def open_domain(make_domain: MakeDomain) -> str:
    await make_domain("example.org", signup_enabled=True)
    return "example.org"


async def test_signup_with_invite_creates_the_account(
    client: httpx.AsyncClient, admin: Actor, open_domain: str
) -> None:
    token = await invite(client, admin)
    r = await signup(client, username="John.Smith", reg_token=token)
    assert r.status_code == 201, r.text
    assert r.json() == {
        "status": "created",
        "username": "John.Smith",
        "email": "john.smith@example.org",
        "position": None,
    }
    user = (await client.get("/api/v1/users/john.smith@example.org", headers=admin.headers)).json()
    assert user["enabled"] is True
    # Login with the name as signed up, without dots, in other case, or as an address.
    for name in ("John.Smith", "johnsmith", "JOHNSMITH", "john.smith@example.org", "johnsmith@example.org"):
        r = await login(client, name)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["email"] == "john.smith@example.org"


async def test_signup_without_invite_joins_the_waitlist(
    client: httpx.AsyncClient, admin: Actor, open_domain: str
) -> None:
    r = await signup(client, username="first")
    assert r.status_code == 202, r.text
    assert r.json() == {
        "status": "waitlisted",
        "username": "first",
        "email": "first@example.org",
        "position": 1,
    }
    r = await signup(client, username="second", domain="example.org")
    assert r.status_code == 202
    assert r.json()["position"] == 2
    # Waiting people cannot log in yet.
    problem(await login(client, "first"), 401, "unauthenticated")
    listed = (await client.get("/api/v1/waitlist", headers=admin.headers)).json()
    assert listed["total"] == 2
    assert [(e["username"], e["position"], e["domain"]) for e in listed["items"]] == [
        ("first", 1, "example.org"),
        ("second", 2, "example.org"),
    ]
    assert all("password_hash" not in e for e in listed["items"])
    first_id = listed["items"][0]["id"]
    r = await client.post(f"/api/v1/waitlist/{first_id}/admit", headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "first@example.org"
    assert (await login(client, "first")).status_code == 200  # with the password given at sign-up
    listed = (await client.get("/api/v1/waitlist", headers=admin.headers)).json()
    assert [(e["username"], e["position"]) for e in listed["items"]] == [("second", 1)]
    problem(await client.post(f"/api/v1/waitlist/{first_id}/admit", headers=admin.headers), 404, "not_found")
    second_id = listed["items"][0]["id"]
    assert (await client.delete(f"/api/v1/waitlist/{second_id}", headers=admin.headers)).status_code == 204
    assert (await client.get("/api/v1/waitlist", headers=admin.headers)).json()["total"] == 0


@pytest.mark.parametrize(
    "username",
    [
        "a",
        "x" * 33,
        ".john",
        "john.",
        "jo..hn",
        "jo hn",
        "jöhn",
        "john-smith",
        "john@x",
        "",
        "Post.Master",
        "ADMIN",
    ],
)
async def test_username_rules(client: httpx.AsyncClient, open_domain: str, username: str) -> None:
    assert error_locs(await signup(client, username=username)) == {"username"}


async def test_signup_validation(client: httpx.AsyncClient, open_domain: str) -> None:
    assert error_locs(await signup(client, username="john", password="short")) == {"password"}
    r = await client.post("/api/v1/signup", json={"username": "john"})
    assert error_locs(r) == {"password"}
    assert error_locs(await signup(client, username="john", extra=True)) == {"extra"}
    assert error_locs(await signup(client, username="john", domain="not a domain")) == {"domain"}


async def test_uniqueness_ignores_dots_and_case(
    client: httpx.AsyncClient, admin: Actor, open_domain: str, make_user: MakeUser
) -> None:
    token = await invite(client, admin, max_uses=10)
    assert (await signup(client, username="john.smith", reg_token=token)).status_code == 201
    for name in ("johnsmith", "JohnSmith", "j.o.h.n.s.m.i.t.h"):
        body = problem(await signup(client, username=name, reg_token=token), 409, "conflict")
        assert "taken" in body["detail"]
        problem(await signup(client, username=name), 409, "conflict")  # nor on the waitlist
    # Users and aliases made by administrators count too.
    await make_user("mary.jones@example.org")
    problem(await signup(client, username="MaryJones", reg_token=token), 409, "conflict")
    r = await client.post(
        "/api/v1/aliases",
        json={"address": "sales.team@example.org", "destinations": ["mary.jones@example.org"]},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    problem(await signup(client, username="salesteam", reg_token=token), 409, "conflict")
    # A name waiting on the list is taken too.
    assert (await signup(client, username="waiting.one")).status_code == 202
    problem(await signup(client, username="waitingone", reg_token=token), 409, "conflict")


async def test_signup_only_where_enabled(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain
) -> None:
    await make_domain("closed.example")
    assert error_locs(await signup(client, username="john")) == {"domain"}  # nowhere open
    assert error_locs(await signup(client, username="john", domain="closed.example")) == {"domain"}
    assert error_locs(await signup(client, username="john", domain="missing.example")) == {"domain"}
    token = await invite(client, admin, domain="closed.example")
    r = await signup(client, username="john", domain="closed.example", reg_token=token)
    assert error_locs(r) == {"domain"}


async def test_default_domain_is_the_first_open_one(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain
) -> None:
    await make_domain("zzz.example", signup_enabled=True)
    await make_domain("aaa.example", signup_enabled=True)
    r = await signup(client, username="john")
    assert r.json()["email"] == "john@aaa.example"


@pytest.mark.parametrize("settings_overrides", [{"default_domain": "zzz.example"}])
async def test_default_domain_setting(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain, make_user: MakeUser
) -> None:
    await make_domain("zzz.example", signup_enabled=True)
    await make_domain("aaa.example", signup_enabled=True)
    token = await invite(client, admin, domain="zzz.example")
    r = await signup(client, username="john", reg_token=token)
    assert r.json()["email"] == "john@zzz.example"
    assert (await login(client, "john")).json()["email"] == "john@zzz.example"
    # Users made by administrators log in with their bare local part too.
    await make_user("plain@zzz.example", password=PASSWORD)
    assert (await login(client, "plain")).json()["email"] == "plain@zzz.example"


async def test_invalid_invites(
    client: httpx.AsyncClient, admin: Actor, open_domain: str, make_domain: MakeDomain, clock: FakeClock
) -> None:
    await make_domain("other.example", signup_enabled=True)
    once = await invite(client, admin)
    assert (await signup(client, username="first", reg_token=once)).status_code == 201
    used_up = await signup(client, username="second", reg_token=once)
    assert error_locs(used_up) == {"reg_token"}
    other = await invite(client, admin, domain="other.example")
    assert error_locs(await signup(client, username="third", reg_token=other)) == {"reg_token"}
    for bad in ("nonsense", once[:-2] + "zz", "mi_AAAAAAAA_" + "a" * 43):
        assert error_locs(await signup(client, username="fourth", reg_token=bad)) == {"reg_token"}
    expiring = await invite(client, admin, expires_at=(clock.now() + timedelta(hours=1)).isoformat())
    clock.advance(3601)
    assert error_locs(await signup(client, username="fifth", reg_token=expiring)) == {"reg_token"}
    # A refused sign-up leaves nothing behind: not on the waitlist either.
    assert (await client.get("/api/v1/waitlist", headers=admin.headers)).json()["total"] == 0


async def test_multi_use_invite_counts(client: httpx.AsyncClient, admin: Actor, open_domain: str) -> None:
    token = await invite(client, admin, max_uses=2, comment="beta")
    for name in ("one", "two"):
        assert (await signup(client, username=name, reg_token=token)).status_code == 201
    assert error_locs(await signup(client, username="three", reg_token=token)) == {"reg_token"}
    listed = (await client.get("/api/v1/invites", headers=admin.headers)).json()
    [item] = listed["items"]
    assert (item["uses"], item["max_uses"], item["comment"], item["domain"]) == (2, 2, "beta", "example.org")
    assert "token" not in item
    assert "digest" not in item


async def test_failed_account_creation_does_not_use_the_invite(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain
) -> None:
    await make_domain("example.org", signup_enabled=True, max_users=0)
    token = await invite(client, admin)
    problem(await signup(client, username="john", reg_token=token), 422, "limit_exceeded")
    [item] = (await client.get("/api/v1/invites", headers=admin.headers)).json()["items"]
    assert item["uses"] == 0


async def test_invite_admin_methods(client: httpx.AsyncClient, admin: Actor, open_domain: str) -> None:
    r = await client.post(
        "/api/v1/invites", json={"domain": "example.org", "max_uses": 0}, headers=admin.headers
    )
    assert error_locs(r) == {"invite.max_uses"}
    r = await client.post(
        "/api/v1/invites",
        json={"domain": "example.org", "expires_at": "2000-01-01T00:00:00Z"},
        headers=admin.headers,
    )
    assert error_locs(r) == {"invite.expires_at"}
    r = await client.post("/api/v1/invites", json={"domain": "missing.example"}, headers=admin.headers)
    problem(r, 404, "not_found")
    r = await client.post("/api/v1/invites", json={"domain": "example.org"}, headers=admin.headers)
    created = r.json()
    assert created["token"].startswith("mi_")
    assert created["max_uses"] == 1
    assert created["uses"] == 0
    assert (await client.delete(f"/api/v1/invites/{created['id']}", headers=admin.headers)).status_code == 204
    problem(await client.delete(f"/api/v1/invites/{created['id']}", headers=admin.headers), 404, "not_found")
    assert error_locs(await signup(client, username="late", reg_token=created["token"])) == {"reg_token"}


async def test_managers_see_only_their_domains(
    client: httpx.AsyncClient, admin: Actor, make_domain: MakeDomain, make_user: MakeUser
) -> None:
    await make_domain("a.example", signup_enabled=True)
    await make_domain("b.example", signup_enabled=True)
    manager = await make_user("boss@a.example", manages=("a.example",))
    user = await make_user("plain@a.example")
    b_invite = (
        await client.post("/api/v1/invites", json={"domain": "b.example"}, headers=admin.headers)
    ).json()
    r = await client.post("/api/v1/invites", json={"domain": "b.example"}, headers=manager.headers)
    problem(r, 404, "not_found")
    assert (
        await client.post("/api/v1/invites", json={"domain": "a.example"}, headers=manager.headers)
    ).status_code == 201
    listed = (await client.get("/api/v1/invites", headers=manager.headers)).json()
    assert [i["domain"] for i in listed["items"]] == ["a.example"]
    problem(
        await client.delete(f"/api/v1/invites/{b_invite['id']}", headers=manager.headers), 404, "not_found"
    )
    assert (await signup(client, username="waitb", domain="b.example")).status_code == 202
    assert (await signup(client, username="waita", domain="a.example")).status_code == 202
    listed = (await client.get("/api/v1/waitlist", headers=manager.headers)).json()
    assert [e["username"] for e in listed["items"]] == ["waita"]
    b_entry = (await client.get("/api/v1/waitlist?domain=b.example", headers=admin.headers)).json()["items"][
        0
    ]
    problem(
        await client.post(f"/api/v1/waitlist/{b_entry['id']}/admit", headers=manager.headers),
        404,
        "not_found",
    )
    problem(
        await client.delete(f"/api/v1/waitlist/{b_entry['id']}", headers=manager.headers), 404, "not_found"
    )
    problem(await client.get("/api/v1/waitlist?domain=b.example", headers=manager.headers), 404, "not_found")
    # Plain users may not use the admin methods at all.
    problem(await client.get("/api/v1/invites", headers=user.headers), 403, "forbidden")
    problem(await client.get("/api/v1/waitlist", headers=user.headers), 403, "forbidden")
    r = await client.post("/api/v1/invites", json={"domain": "a.example"}, headers=user.headers)
    problem(r, 403, "forbidden")


async def test_admit_conflicts_when_the_name_was_taken(
    client: httpx.AsyncClient, admin: Actor, open_domain: str, make_user: MakeUser
) -> None:
    assert (await signup(client, username="jane.doe")).status_code == 202
    await make_user("janedoe@example.org")
    entry = (await client.get("/api/v1/waitlist", headers=admin.headers)).json()["items"][0]
    problem(
        await client.post(f"/api/v1/waitlist/{entry['id']}/admit", headers=admin.headers), 409, "conflict"
    )
    # Still waiting: the refused admission changed nothing.
    assert (await client.get("/api/v1/waitlist", headers=admin.headers)).json()["total"] == 1


async def test_an_exact_address_wins_over_the_signed_up_name(
    client: httpx.AsyncClient, admin: Actor, open_domain: str, make_user: MakeUser
) -> None:
    token = await invite(client, admin)
    assert (await signup(client, username="john.smith", reg_token=token)).status_code == 201
    # An administrator may still create johnsmith@ (the admin API does not fold names).
    await make_user("johnsmith@example.org", password="Other-passphrase-123")
    r = await login(client, "johnsmith@example.org", "Other-passphrase-123")
    assert r.json()["email"] == "johnsmith@example.org"
    assert (await login(client, "john.smith")).json()["email"] == "john.smith@example.org"
    assert (await login(client, "johnsmith", "Other-passphrase-123")).json()[
        "email"
    ] == "johnsmith@example.org"


async def test_admin_list_validation(client: httpx.AsyncClient, admin: Actor, open_domain: str) -> None:
    assert error_locs(await client.get("/api/v1/invites?domain=not+a+domain", headers=admin.headers)) == {
        "domain"
    }
    assert error_locs(await client.get("/api/v1/waitlist?limit=0", headers=admin.headers)) == {"limit"}
    assert error_locs(await client.post("/api/v1/waitlist/abc/admit", headers=admin.headers)) == {"id"}
    r = await client.get("/api/v1/invites?domain=missing.example", headers=admin.headers)
    assert r.json()["items"] == []


async def test_mail_to_any_spelling_of_a_signed_up_name_reaches_the_account(
    client: httpx.AsyncClient, admin: Actor, open_domain: str, mailroom: Any
) -> None:
    from mailroom.delivery.resolve import resolve

    token = await invite(client, admin)
    assert (await signup(client, username="John.Smith", reg_token=token)).status_code == 201
    async with mailroom.runtime.db.read() as tx:
        for rcpt in ("john.smith@example.org", "johnsmith@example.org", "J.O.H.N.Smith@example.org"):
            resolution = await resolve(tx, rcpt)
            assert [t.email for t in resolution.local] == ["john.smith@example.org"], rcpt
        assert not (await resolve(tx, "johnsmithx@example.org")).local
