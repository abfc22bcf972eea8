"""admin.config.export / admin.config.import: round trips, diffs, dry runs, prune, errors, access."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from passlib.hash import sha512_crypt

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import Conflict, InvalidParams
from mailroom.services.admin import config as config_service
from mailroom.settings import Settings
from tests.conftest import FAST_ARGON2, Actor, started

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]
MakeUser = Callable[..., Awaitable[Actor]]

PASSWORD = "Xy-config-import-Pa55"


async def populate(call: Call) -> None:
    """One of everything, through the admin API, with non-default values."""
    await call(
        "admin.domains.create", {"domain": {"name": "example.org", "comment": "main", "max_users": 10}}
    )
    await call("admin.domains.create", {"domain": {"name": "b.example", "max_quota_bytes": 2 * 1024**3}})
    await call("admin.dkim.generate", {"domain": "example.org", "selector": "s2026", "bits": 1024})
    await call("admin.alternatives.create", {"domain": "example.org", "alternative": {"name": "example.net"}})
    await call(
        "admin.relays.create", {"relay": {"name": "partner.example", "smarthost": "mx.partner.example:25"}}
    )
    await call(
        "admin.users.create",
        {
            "user": {
                "email": "alice@example.org",
                "password": PASSWORD,
                "display_name": "Alice",
                "forward_enabled": True,
                "forward_destinations": ["alice@elsewhere.example"],
                "reply_enabled": True,
                "reply_subject": "Away",
                "reply_body": "Back on Monday.\nAlice",
                "reply_start": "2026-07-01",
                "reply_end": "2026-07-14",
                "spam_threshold": 7.5,
            }
        },
    )
    await call(
        "admin.users.create", {"user": {"email": "bob@b.example", "password": PASSWORD, "enable_pop": False}}
    )
    await call(
        "admin.aliases.create",
        {"alias": {"address": "info@example.org", "destinations": ["alice@example.org"]}},
    )
    await call(
        "admin.aliases.create",
        {
            "alias": {
                "address": "*@b.example",
                "destinations": ["bob@b.example"],
                "wildcard": True,
                "comment": "all",
            }
        },
    )
    await call("admin.managers.create", {"domain": "b.example", "manager": {"email": "alice@example.org"}})


@pytest.fixture
async def other(tmp_path: Path, sqlite_template: Path, clock: FakeClock) -> AsyncIterator[Mailroom]:
    """A second, empty instance (always SQLite: a PostgreSQL run then also crosses databases)."""
    path = tmp_path / "other" / "mailroom.db"
    path.parent.mkdir()
    shutil.copy(sqlite_template, path)
    settings = Settings(
        data_dir=tmp_path / "other",
        database_url=f"sqlite:///{path}",
        mode="test",
        secret_key="test-secret-key-not-for-production",
        **FAST_ARGON2,
    )
    async with started(settings, clock) as app:
        yield app


async def export(app: Mailroom, **flags: bool) -> dict[str, Any]:
    result: dict[str, Any] = await app.registry.call("admin.config.export", flags)
    return result


async def import_(app: Mailroom, document: dict[str, Any], **flags: bool) -> dict[str, Any]:
    result: dict[str, Any] = await app.registry.call("admin.config.import", {"document": document, **flags})
    return result


# -- export ------------------------------------------------------------------------------


async def test_export_is_sorted_and_complete_without_secrets(mailroom: Mailroom, call: Call) -> None:
    await populate(call)
    doc = await export(mailroom)
    assert doc["version"] == 1
    assert [d["name"] for d in doc["domains"]] == ["b.example", "example.org"]
    assert doc["domains"][1] == {
        "name": "example.org",
        "comment": "main",
        "max_users": 10,
        "max_aliases": None,
        "max_quota_bytes": None,
        "signup_enabled": False,
        "dkim_selector": "s2026",
    }
    assert doc["alternatives"] == [{"name": "example.net", "domain": "example.org", "comment": ""}]
    assert doc["relays"] == [{"name": "partner.example", "smarthost": "mx.partner.example:25", "comment": ""}]
    assert [u["email"] for u in doc["users"]] == ["alice@example.org", "bob@b.example"]
    alice = doc["users"][0]
    assert alice["reply_start"] == "2026-07-01"
    assert alice["forward_destinations"] == ["alice@elsewhere.example"]
    assert alice["quota_bytes"] == 1024**3
    assert "password" not in alice
    assert "password_hash" not in alice
    assert "quota_bytes_used" not in alice
    assert "created_at" not in alice
    assert [a["address"] for a in doc["aliases"]] == ["*@b.example", "info@example.org"]
    assert doc["managers"] == [{"domain": "b.example", "email": "alice@example.org"}]
    assert all("dkim_private_key" not in d for d in doc["domains"])


async def test_secrets_only_when_asked(mailroom: Mailroom, call: Call) -> None:
    await populate(call)
    hashes = await export(mailroom, with_password_hashes=True)
    assert all(u["password_hash"].startswith("$argon2id$") for u in hashes["users"])
    assert all("dkim_private_key" not in d for d in hashes["domains"])
    keys = await export(mailroom, include_secrets=True)
    assert keys["domains"][1]["dkim_private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert "dkim_private_key" not in keys["domains"][0]  # b.example has no key
    assert all("password_hash" not in u for u in keys["users"])


async def test_round_trip_into_an_empty_instance(mailroom: Mailroom, other: Mailroom, call: Call) -> None:
    await populate(call)
    first = await export(mailroom, with_password_hashes=True, include_secrets=True)
    result = await import_(other, first)
    assert result["dry_run"] is False
    assert (result["created"], result["updated"], result["deleted"]) == (9, 0, 0)
    assert [(c["action"], c["kind"]) for c in result["changes"]][:3] == [
        ("create", "domain"),
        ("create", "domain"),
        ("create", "relay"),
    ]
    second = await export(other, with_password_hashes=True, include_secrets=True)
    assert second == first
    # The copied hash logs in with the original password; the key signs like the original.
    principal = await other.authenticator.password("alice@example.org", PASSWORD, "127.0.0.1")
    assert principal.email == "alice@example.org"
    dns = await other.registry.call("admin.dkim.get", {"domain": "example.org"})
    original = await mailroom.registry.call("admin.dkim.get", {"domain": "example.org"})
    assert dns["public_key"] == original["public_key"]
    assert dns["selector"] == "s2026"


async def test_import_twice_is_a_no_op(mailroom: Mailroom, other: Mailroom, call: Call) -> None:
    await populate(call)
    doc = await export(mailroom, with_password_hashes=True, include_secrets=True)
    await import_(other, doc)
    again = await import_(other, doc)
    assert again == {"dry_run": False, "changes": [], "created": 0, "updated": 0, "deleted": 0}


async def test_dry_run_reports_and_changes_nothing(mailroom: Mailroom, other: Mailroom, call: Call) -> None:
    await populate(call)
    doc = await export(mailroom, with_password_hashes=True)
    before = await export(other, with_password_hashes=True, include_secrets=True)
    planned = await import_(other, doc, dry_run=True)
    assert planned["dry_run"] is True
    assert planned["created"] == 9
    assert await export(other, with_password_hashes=True, include_secrets=True) == before
    done = await import_(other, doc)
    assert done["changes"] == planned["changes"]
    assert done["dry_run"] is False


async def test_create_diff_masks_secrets(mailroom: Mailroom, call: Call) -> None:
    await populate(call)
    doc = await export(mailroom, with_password_hashes=True, include_secrets=True)
    result = await import_(
        mailroom, {"users": [doc["users"][0] | {"email": "carol@example.org"}]}, dry_run=True
    )
    (change,) = result["changes"]
    assert change["action"] == "create"
    assert change["kind"] == "user"
    assert change["key"] == "carol@example.org"
    assert change["changes"]["password_hash"] == {"old": None, "new": "********"}
    assert change["changes"]["display_name"] == {"old": None, "new": "Alice"}
    assert doc["users"][0]["password_hash"] not in str(result)


# -- updates, partial documents, prune ------------------------------------------------------


async def test_partial_entries_change_only_what_they_name(mailroom: Mailroom, call: Call) -> None:
    await populate(call)
    result = await import_(
        mailroom,
        {
            "domains": [{"name": "example.org", "max_users": 20}],
            "users": [{"email": "alice@example.org", "display_name": "Alice Liddell"}],
            "relays": [{"name": "partner.example", "smarthost": "Relay.Partner.Example"}],
        },
    )
    assert [(c["action"], c["kind"], c["key"], c["changes"]) for c in result["changes"]] == [
        ("update", "domain", "example.org", {"max_users": {"old": 10, "new": 20}}),
        ("update", "relay", "partner.example",
         {"smarthost": {"old": "mx.partner.example:25", "new": "relay.partner.example"}}),
        ("update", "user", "alice@example.org", {"display_name": {"old": "Alice", "new": "Alice Liddell"}}),
    ]  # fmt: skip
    doc = await export(mailroom)
    assert doc["domains"][1]["comment"] == "main"  # not in the entry: kept
    assert doc["users"][0]["reply_subject"] == "Away"
    assert len(doc["users"]) == 2  # nothing deleted without prune


async def test_prune_deletes_what_the_document_lacks(mailroom: Mailroom, call: Call) -> None:
    await populate(call)
    keep = {
        "domains": [{"name": "example.org", "dkim_selector": None}],
        "users": [{"email": "alice@example.org"}],
    }
    planned = await import_(mailroom, keep, prune=True, dry_run=True)
    deletions = [(c["kind"], c["key"]) for c in planned["changes"] if c["action"] == "delete"]
    assert deletions == [
        ("manager", "b.example/alice@example.org"),
        ("alias", "*@b.example"),
        ("alias", "info@example.org"),
        ("user", "bob@b.example"),
        ("alternative", "example.net"),
        ("relay", "partner.example"),
        ("domain", "b.example"),
    ]
    dkim = [c for c in planned["changes"] if c["action"] == "update"]
    assert dkim == [
        {
            "action": "update",
            "kind": "domain",
            "key": "example.org",
            "changes": {
                "dkim_selector": {"old": "s2026", "new": None},
                "dkim_private_key": {"old": "********", "new": None},
            },
        }
    ]
    await import_(mailroom, keep, prune=True)
    doc = await export(mailroom)
    assert [d["name"] for d in doc["domains"]] == ["example.org"]
    assert doc["domains"][0]["dkim_selector"] is None
    assert [u["email"] for u in doc["users"]] == ["alice@example.org"]
    assert doc["aliases"] == doc["alternatives"] == doc["relays"] == doc["managers"] == []


async def test_without_prune_a_null_selector_keeps_the_key(mailroom: Mailroom, call: Call) -> None:
    await populate(call)
    result = await import_(mailroom, {"domains": [{"name": "example.org", "dkim_selector": None}]})
    assert result["changes"] == []
    result = await import_(mailroom, {"domains": [{"name": "example.org", "dkim_selector": "s2027"}]})
    assert result["changes"][0]["changes"] == {"dkim_selector": {"old": "s2026", "new": "s2027"}}
    assert (await call("admin.dkim.get", {"domain": "example.org"}))["selector"] == "s2027"


async def test_prune_replaces_a_name_of_another_kind(mailroom: Mailroom, call: Call) -> None:
    await call("admin.relays.create", {"relay": {"name": "x.example"}})
    doc = {"domains": [{"name": "x.example"}]}
    with pytest.raises(InvalidParams) as err:
        await import_(mailroom, doc)
    assert [(e.loc, e.message) for e in err.value.errors] == [
        ("document.domains.0.name", "x.example is already a relayed domain (import with prune to replace it)")
    ]
    result = await import_(mailroom, doc, prune=True)
    assert [(c["action"], c["kind"]) for c in result["changes"]] == [
        ("delete", "relay"),
        ("create", "domain"),
    ]


# -- passwords --------------------------------------------------------------------------


async def test_plain_passwords_are_hashed_and_compared(mailroom: Mailroom, call: Call) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    doc = {"users": [{"email": "dave@example.org", "password": PASSWORD}]}
    await import_(mailroom, doc)
    stored = (await export(mailroom, with_password_hashes=True))["users"][0]["password_hash"]
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert (
        await mailroom.authenticator.password("dave@example.org", PASSWORD, None)
    ).email == "dave@example.org"
    # The same password again is no change; another one is.
    assert (await import_(mailroom, doc))["changes"] == []
    changed = await import_(
        mailroom, {"users": [{"email": "dave@example.org", "password": "another-Pa55word"}]}
    )
    assert changed["changes"][0]["changes"] == {"password_hash": {"old": "********", "new": "********"}}
    assert (await export(mailroom, with_password_hashes=True))["users"][0]["password_hash"] != stored


async def test_imported_crypt_hashes_are_stored_as_given(mailroom: Mailroom, call: Call) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    crypt = "{SHA512-CRYPT}" + sha512_crypt.using(rounds=5000).hash(PASSWORD)
    await import_(mailroom, {"users": [{"email": "erin@example.org", "password_hash": crypt}]})
    assert (await export(mailroom, with_password_hashes=True))["users"][0]["password_hash"] == crypt
    assert (
        await mailroom.authenticator.password("erin@example.org", PASSWORD, None)
    ).email == "erin@example.org"


async def test_new_user_quota_defaults_to_the_domain_cap(mailroom: Mailroom, call: Call) -> None:
    result = await import_(
        mailroom,
        {
            "domains": [{"name": "example.org", "max_quota_bytes": 5000}],
            "users": [{"email": "fay@example.org", "password": PASSWORD}],
        },
    )
    assert result["changes"][1]["changes"]["quota_bytes"] == {"old": None, "new": 5000}


# -- bad documents ------------------------------------------------------------------------


A = {"domains": [{"name": "a.example"}]}


def in_a(**lists: list[dict[str, Any]]) -> dict[str, Any]:
    """A document with domain a.example and ``lists``."""
    return A | lists


def user(**fields: Any) -> dict[str, Any]:
    return {"email": "x@a.example", "password": PASSWORD} | fields


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"users": [user(email="not an address")]}, ["document.users.0.email"]),
        ({"domains": [{"name": "a.example"}, {"name": "A.Example"}]}, ["document.domains.1.name"]),
        (in_a(relays=[{"name": "a.example"}]), ["document.relays.0.name"]),
        ({"users": [user(email="x@nowhere.example")]}, ["document.users.0.email"]),
        (in_a(users=[{"email": "x@a.example"}]), ["document.users.0.password"]),
        (
            in_a(users=[{"email": "x@a.example", "password_hash": "{PLAIN}secret"}]),
            ["document.users.0.password_hash"],
        ),
        (
            in_a(users=[{"email": "x@a.example", "password_hash": "hunter2"}]),
            ["document.users.0.password_hash"],
        ),
        (in_a(users=[user(password_hash="$6$x")]), ["document.users.0.password"]),
        (
            {
                "domains": [{"name": "a.example", "max_users": 1}],
                "users": [user(), user(email="y@a.example")],
            },
            ["document.domains.0.max_users"],
        ),
        (
            {"domains": [{"name": "a.example", "max_quota_bytes": 10}], "users": [user(quota_bytes=11)]},
            ["document.users.0.quota_bytes"],
        ),
        (in_a(users=[user(forward_enabled=True)]), ["document.users.0.forward_destinations"]),
        (
            in_a(aliases=[{"address": "*@a.example", "destinations": ["b@c.example"]}]),
            ["document.aliases.0.address"],
        ),
        (
            in_a(managers=[{"domain": "a.example", "email": "nobody@a.example"}]),
            ["document.managers.0.email"],
        ),
        (
            {"domains": [{"name": "a.example", "dkim_private_key": "not a key"}]},
            ["document.domains.0.dkim_private_key"],
        ),
        ({"version": 2}, ["document.version"]),
        ({"surprise": []}, ["document.surprise"]),
    ],
)
async def test_bad_documents_are_refused_with_paths(
    client: httpx.AsyncClient, admin: Actor, document: dict[str, Any], expected: list[str]
) -> None:
    r = await client.post("/api/v1/config", json={"document": document}, headers=admin.headers)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "invalid_params"
    assert [e["loc"] for e in problem["errors"]] == expected
    exported = await client.get("/api/v1/config", headers=admin.headers)
    assert exported.json()["domains"] == []  # nothing written


async def test_every_problem_is_reported_at_once(mailroom: Mailroom) -> None:
    with pytest.raises(InvalidParams) as err:
        await import_(
            mailroom,
            {
                "alternatives": [{"name": "alt.example", "domain": "missing.example"}],
                "users": [{"email": "a@missing.example", "password": PASSWORD}],
                "aliases": [{"address": "b@missing.example", "destinations": ["a@missing.example"]}],
            },
        )
    assert [e.loc for e in err.value.errors] == [
        "document.alternatives.0.domain",
        "document.users.0.email",
        "document.aliases.0.address",
    ]
    assert err.value.errors[0].message == "there is no domain missing.example in the document or the database"


async def test_a_failure_midway_leaves_nothing(
    mailroom: Mailroom, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    before = await export(mailroom, with_password_hashes=True, include_secrets=True)
    real_apply = config_service._apply
    applied: list[str] = []

    async def failing(tx: Any, step: Any, now: Any) -> None:
        if step.change.kind == "alias":
            raise Conflict("simulated failure")
        applied.append(step.change.key)
        await real_apply(tx, step, now)

    monkeypatch.setattr(config_service, "_apply", failing)
    with pytest.raises(Conflict):
        await import_(
            mailroom,
            {
                "domains": [{"name": "example.org", "comment": "changed"}, {"name": "new.example"}],
                "users": [{"email": "gus@example.org", "password": PASSWORD}],
                "aliases": [{"address": "x@example.org", "destinations": ["gus@example.org"]}],
            },
        )
    assert applied == ["example.org", "new.example", "gus@example.org"]
    assert await export(mailroom, with_password_hashes=True, include_secrets=True) == before


# -- access -----------------------------------------------------------------------------


async def test_only_admins(client: httpx.AsyncClient, admin: Actor, make_user: MakeUser) -> None:
    user = await make_user("hal@example.org")
    manager = await make_user("ida@example.org", manages=("example.org",))
    for method, url, body in (("GET", "/api/v1/config", None), ("POST", "/api/v1/config", {"document": {}})):
        anonymous = await client.request(method, url, json=body)
        assert anonymous.status_code == 401
        for actor in (user, manager):
            r = await client.request(method, url, json=body, headers=actor.headers)
            assert r.status_code == 403, (actor.name, method)
            assert r.json()["code"] == "forbidden"
    r = await client.get("/api/v1/config", params={"with_password_hashes": "true"}, headers=admin.headers)
    assert r.status_code == 200
    assert {u["email"] for u in r.json()["users"]} == {"hal@example.org", "ida@example.org"}
    assert all(u["password_hash"].startswith("$argon2id$") for u in r.json()["users"])
    r = await client.post(
        "/api/v1/config", json={"document": r.json(), "dry_run": True}, headers=admin.headers
    )
    assert r.status_code == 200
    assert r.json()["changes"] == []
