"""mail.keys.* over REST: publishing, listing, withdrawing and looking up OpenPGP keys."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from mailroom.clock import FakeClock
from mailroom.domain.pgp import algorithm_name
from tests.client.conftest import SessionUser, error_locs, problem
from tests.client.keys import make_key, public
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


async def publish(client: httpx.AsyncClient, actor: Actor, armored: str) -> httpx.Response:
    return await client.post("/api/v1/me/keys", json={"public_key": armored}, headers=actor.headers)


async def test_publish_list_lookup_delete(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    armored, fingerprint = public("alice@example.org", "Alice", rsa=True)
    r = await publish(client, alice, armored)
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["fingerprint"] == fingerprint
    assert key["email"] == "alice@example.org"
    assert key["user_ids"] == ["Alice <alice@example.org>"]
    assert key["algorithm"] == "RSA"  # not PGPy's enum name (RSAEncryptOrSign)
    assert key["expires_at"] is None
    assert key["armored"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert [
        k["fingerprint"] for k in (await client.get("/api/v1/me/keys", headers=alice.headers)).json()
    ] == [fingerprint]
    # Anyone signed in finds it, by address or by fingerprint (spaced and lowercase too).
    by_email = (
        await client.get("/api/v1/keys", params={"email": "Alice@Example.org"}, headers=bob.headers)
    ).json()
    assert [k["fingerprint"] for k in by_email] == [fingerprint]
    spaced = " ".join(fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()
    by_fp = (await client.get("/api/v1/keys", params={"fingerprint": spaced}, headers=bob.headers)).json()
    assert by_fp == by_email
    # Withdrawn, it is gone from both.
    assert (await client.delete(f"/api/v1/me/keys/{fingerprint}", headers=alice.headers)).status_code == 204
    assert (
        await client.get("/api/v1/keys", params={"fingerprint": fingerprint}, headers=bob.headers)
    ).json() == []
    assert (await client.get("/api/v1/me/keys", headers=alice.headers)).json() == []
    problem(await client.delete(f"/api/v1/me/keys/{fingerprint}", headers=alice.headers), 404, "not_found")


async def test_publish_validation(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    others, _ = public("mallory@example.net")
    r = await publish(client, alice, others)
    body = problem(r, 422, "invalid_params")
    assert "alice@example.org" in body["errors"][0]["message"]
    secret = make_key("alice@example.org")
    body = problem(await publish(client, alice, str(secret)), 422, "invalid_params")
    assert "private key" in body["errors"][0]["message"]
    for junk in (
        "not a key",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----",
    ):
        assert error_locs(await publish(client, alice, junk)) == {"public_key"}
    assert error_locs(await client.post("/api/v1/me/keys", json={}, headers=alice.headers)) == {"public_key"}
    r = await client.post("/api/v1/me/keys", json={"public_key": "x" * 100_001}, headers=alice.headers)
    assert error_locs(r) == {"public_key"}
    assert error_locs(await client.delete("/api/v1/me/keys/nothex", headers=alice.headers)) == {"fingerprint"}


async def test_expired_keys(client: httpx.AsyncClient, session_user: SessionUser, clock: FakeClock) -> None:
    key = make_key("alice@example.org", expires=timedelta(days=1))
    clock.set(key.created + timedelta(hours=1))
    alice = await session_user("alice@example.org", mobile=True)
    bob = await session_user("bob@example.org", mobile=True)
    assert (await publish(client, alice, str(key.pubkey))).status_code == 201
    found = await client.get("/api/v1/keys", params={"email": "alice@example.org"}, headers=bob.headers)
    assert len(found.json()) == 1
    clock.advance(86400)
    found = await client.get("/api/v1/keys", params={"email": "alice@example.org"}, headers=bob.headers)
    assert found.json() == []  # expired keys are not offered for an address
    other = make_key("alice@example.org", expires=timedelta(hours=1))
    assert error_locs(await publish(client, alice, str(other.pubkey))) == {"public_key"}


async def test_publishing_twice_conflicts(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    armored, _ = public("alice@example.org")
    assert (await publish(client, alice, armored)).status_code == 201
    problem(await publish(client, alice, armored), 409, "conflict")


async def test_lookup_validation(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user()
    assert error_locs(await client.get("/api/v1/keys", headers=alice.headers)) == {"email"}
    r = await client.get(
        "/api/v1/keys", params={"email": "a@example.org", "fingerprint": "A" * 40}, headers=alice.headers
    )
    assert error_locs(r) == {"email"}
    assert error_locs(await client.get("/api/v1/keys?fingerprint=xyz", headers=alice.headers)) == {
        "fingerprint"
    }
    assert error_locs(await client.get("/api/v1/keys?email=nope", headers=alice.headers)) == {"email"}
    problem(await client.get("/api/v1/keys?email=a@example.org"), 401, "unauthenticated")


async def test_keys_are_isolated(client: httpx.AsyncClient, session_user: SessionUser) -> None:
    alice = await session_user("alice@example.org")
    bob = await session_user("bob@example.org")
    armored, fingerprint = public("alice@example.org")
    assert (await publish(client, alice, armored)).status_code == 201
    assert (await client.get("/api/v1/me/keys", headers=bob.headers)).json() == []
    problem(await client.delete(f"/api/v1/me/keys/{fingerprint}", headers=bob.headers), 404, "not_found")
    # Bob cannot publish Alice's key as his (no user id names him), nor take it over.
    assert error_locs(await publish(client, bob, armored)) == {"public_key"}
    assert len((await client.get("/api/v1/me/keys", headers=alice.headers)).json()) == 1


async def test_algorithms_have_their_common_names(
    client: httpx.AsyncClient, session_user: SessionUser
) -> None:
    """Ed25519 and RSA, not PGPy's enum names (EdDSA, RSAEncryptOrSign), also for rows stored
    with those names."""
    alice = await session_user("alice@example.org")
    armored, _ = public("alice@example.org", "Alice")
    r = await publish(client, alice, armored)
    assert r.status_code == 201, r.text
    assert r.json()["algorithm"] == "Ed25519"
    stored = {"RSAEncryptOrSign": "RSA", "RSASign": "RSA", "EdDSA": "EdDSA", "ECDSA": "ECDSA", "DSA": "DSA"}
    for old, shown in stored.items():
        assert algorithm_name(old) == shown
