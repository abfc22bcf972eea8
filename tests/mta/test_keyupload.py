"""Key uploads (HKP ``POST /pks/add``) with Debian's gpg: keys for our addresses wait for the
owner's confirmation by a mailed link; keys for external addresses are user-sourced, shown with
votes, and served by the trust model (docs/keyserver.md)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import shutil
import subprocess
import tempfile
import xmlrpc.client
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.frontends.keyserver import MAX_UPLOAD_BYTES, upload_keytext
from mailroom.services.housekeeping import sweep
from mailroom.services.mail.keyserver import wkd_hash
from mailroom.web import build_app
from tests.conftest import Actor, problem
from tests.mta.test_keyserver import gpg, needs_gpg, new_key
from tests.rpc.conftest import fault_code, jsonrpc, serve, xmlrpc_call

pytestmark = pytest.mark.anyio

_LINK = re.compile(r"https?://\S+/pks/confirm/(mkc_[A-Za-z0-9_-]+)")


@pytest.fixture
def home() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))  # short: gpg-agent's socket path
    made.chmod(0o700)
    try:
        yield made
    finally:
        subprocess.run(["gpgconf", "--homedir", str(made), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def other_home() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    made.chmod(0o700)
    try:
        yield made
    finally:
        subprocess.run(["gpgconf", "--homedir", str(made), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
async def keyserver(mailroom: Mailroom) -> AsyncIterator[str]:
    async with serve(build_app(mailroom)) as url:
        yield url.replace("http://", "hkp://")


async def run_gpg(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(gpg, home, *args)


async def found_by_gpg(home: Path, keyserver: str, fingerprint: str, address: str) -> tuple[bool, bool]:
    """(--recv-keys FPR imported it, --search-keys ADDRESS listed it)."""
    got = await run_gpg(home, "--keyserver", keyserver, "--recv-keys", fingerprint)
    found = await run_gpg(home, "--keyserver", keyserver, "--with-colons", "--search-keys", address)
    return got.returncode == 0 and "processed: 1" in got.stderr, fingerprint in found.stdout


async def mails_of(client: httpx.AsyncClient, who: Actor) -> list[str]:
    """Every message in the mailbox, raw."""
    listed = (await client.get("/api/v1/threads", headers=who.headers)).json()
    out: list[str] = []
    for thread in listed["threads"]:
        detail = (await client.get(f"/api/v1/threads/{thread['thread_id']}", headers=who.headers)).json()
        for summary in detail["emails"]:
            raw = await client.get(f"/api/v1/emails/{summary['email_id']}/raw", headers=who.headers)
            assert raw.status_code == 200, raw.text
            out.append(raw.text)
    return out


async def confirmation_tokens(client: httpx.AsyncClient, who: Actor) -> list[str]:
    texts = [
        str(part.get_content())
        for raw in await mails_of(client, who)
        for part in email.message_from_string(raw, policy=email.policy.default).walk()
        if part.get_content_type() == "text/plain"
    ]
    return [m.group(1) for text in texts for m in [_LINK.search(text)] if m]


async def upload(client: httpx.AsyncClient, armored: str) -> httpx.Response:
    """What gpg --send-keys posts: keytext, form-encoded."""
    body = "keytext=" + quote(armored, safe="")
    return await client.post(
        "/pks/add", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )


@needs_gpg
async def test_gpg_send_keys_for_our_address_waits_for_the_owners_confirmation(
    make_user: Any,
    client: httpx.AsyncClient,
    keyserver: str,
    home: Path,
    other_home: Path,
) -> None:
    alice: Actor = await make_user("alice@example.org")
    fingerprint, _ = await asyncio.to_thread(new_key, home, "alice@example.org")
    sent = await run_gpg(home, "--keyserver", keyserver, "--send-keys", fingerprint)
    assert sent.returncode == 0, sent.stderr
    # Not published before the owner confirms: gpg finds nothing, nor do HKP and WKD.
    assert await found_by_gpg(other_home, keyserver, fingerprint, "alice@example.org") == (False, False)
    index = await client.get(
        "/pks/lookup", params={"op": "index", "options": "mr", "search": "alice@example.org"}
    )
    assert index.status_code == 404
    wkd = await client.get(f"/.well-known/openpgpkey/example.org/hu/{wkd_hash('alice')}")
    assert wkd.status_code == 404
    # One mail with the link, in the owner's mailbox.
    mails = await mails_of(client, alice)
    assert len(mails) == 1
    assert "Subject: Confirm your OpenPGP key for alice@example.org" in mails[0]
    assert "Auto-Submitted: auto-generated" in mails[0]
    (token,) = await confirmation_tokens(client, alice)
    # Opening the link (what a link scanner or a prefetching client does) changes nothing.
    for _ in range(2):
        page = await client.get(f"/pks/confirm/{token}")
        assert page.status_code == 200
        assert fingerprint in page.text
        assert '<form method="post">' in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
    assert await found_by_gpg(other_home, keyserver, fingerprint, "alice@example.org") == (False, False)
    # The button publishes it, once.
    done = await client.post(f"/pks/confirm/{token}")
    assert done.status_code == 200, done.text
    assert "now published" in done.text
    assert (await client.post(f"/pks/confirm/{token}")).status_code == 404
    assert (await client.get(f"/pks/confirm/{token}")).status_code == 404
    assert await found_by_gpg(other_home, keyserver, fingerprint, "alice@example.org") == (True, True)
    assert (
        await client.get(f"/.well-known/openpgpkey/example.org/hu/{wkd_hash('alice')}")
    ).status_code == 200
    # The owner's key, in their own list and in the directory, as owner-sourced.
    mine = (await client.get("/api/v1/me/keys", headers=alice.headers)).json()
    assert [(k["fingerprint"], k["source"]) for k in mine] == [(fingerprint, "owner")]
    # Uploading it again mails nothing more: it is published already.
    again = await run_gpg(home, "--keyserver", keyserver, "--send-keys", fingerprint)
    assert again.returncode == 0, again.stderr
    assert len(await mails_of(client, alice)) == 1


@needs_gpg
async def test_gpg_send_keys_for_an_external_address_is_user_sourced_and_voted_on(
    make_user: Any,
    client: httpx.AsyncClient,
    keyserver: str,
    home: Path,
    other_home: Path,
) -> None:
    alice: Actor = await make_user("alice@example.org")
    bob: Actor = await make_user("bob@example.org")
    fingerprint, _ = await asyncio.to_thread(new_key, home, "Carol <carol@elsewhere.test>")
    sent = await run_gpg(home, "--keyserver", keyserver, "--send-keys", fingerprint)
    assert sent.returncode == 0, sent.stderr
    assert await found_by_gpg(other_home, keyserver, fingerprint, "carol@elsewhere.test") == (True, True)
    listed = (
        await client.get("/api/v1/keys", params={"email": "carol@elsewhere.test"}, headers=alice.headers)
    ).json()
    assert [
        (k["fingerprint"], k["source"], k["votes_authentic"], k["votes_not_authentic"], k["served"])
        for k in listed
    ] == [(fingerprint, "user", 0, 0, True)]
    # Votes over REST, JSON-RPC and XML-RPC alike; more "not authentic" than "authentic" hides it.
    r = await client.put(f"/api/v1/keys/{fingerprint}/vote", json={"authentic": False}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["votes_not_authentic"], r.json()["my_vote"], r.json()["served"]) == (1, False, False)
    index = await client.get(
        "/pks/lookup", params={"op": "index", "options": "mr", "search": "carol@elsewhere.test"}
    )
    assert index.status_code == 404
    assert (
        await client.get("/pks/lookup", params={"op": "get", "search": "0x" + fingerprint})
    ).status_code == 404
    reply = await jsonrpc(
        client,
        "mail.keys.vote",
        {"fingerprint": fingerprint, "vote": {"authentic": True}},
        headers=bob.headers,
    )
    assert reply["result"]["votes_authentic"] == 1, reply
    assert reply["result"]["served"] is True  # 1 for, 1 against: not voted down
    assert await found_by_gpg(other_home, keyserver, fingerprint, "carol@elsewhere.test") == (True, True)
    changed = await xmlrpc_call(
        client,
        "mail.keys.vote",
        {"fingerprint": fingerprint, "vote": {"authentic": True}},
        headers=alice.headers,
    )
    assert (changed["votes_authentic"], changed["votes_not_authentic"], changed["my_vote"]) == (2, 0, True)
    seen_by_bob = (
        await client.get("/api/v1/keys", params={"fingerprint": fingerprint}, headers=bob.headers)
    ).json()
    assert [(k["source"], k["votes_authentic"], k["my_vote"]) for k in seen_by_bob] == [("user", 2, True)]
    # A vote withdrawn.
    assert (await client.delete(f"/api/v1/keys/{fingerprint}/vote", headers=bob.headers)).status_code == 204
    problem(await client.delete(f"/api/v1/keys/{fingerprint}/vote", headers=bob.headers), 404, "not_found")


async def test_votes_validation_and_authorisation(
    make_user: Any, client: httpx.AsyncClient, admin: Actor
) -> None:
    from tests.client.keys import public

    alice: Actor = await make_user("alice@example.org")
    external, fingerprint = public("dave@elsewhere.test")
    assert (await upload(client, external)).status_code == 200
    owned, owned_fingerprint = public("alice@example.org")
    assert (
        await client.post("/api/v1/me/keys", json={"public_key": owned}, headers=alice.headers)
    ).status_code == 201
    url = f"/api/v1/keys/{fingerprint}/vote"
    problem(await client.put(url, json={"authentic": True}), 401, "unauthenticated")
    problem(await client.put(url, json={"authentic": True}, headers=admin.headers), 403, "forbidden")
    problem(await client.put(url, json={"authentic": "maybe"}, headers=alice.headers), 422, "invalid_params")
    problem(await client.put(url, json={}, headers=alice.headers), 422, "invalid_params")
    problem(
        await client.put("/api/v1/keys/nothex/vote", json={"authentic": True}, headers=alice.headers),
        422,
        "invalid_params",
    )
    problem(
        await client.put(f"/api/v1/keys/{'A' * 40}/vote", json={"authentic": True}, headers=alice.headers),
        404,
        "not_found",
    )
    # The owner's published key takes no votes.
    problem(
        await client.put(
            f"/api/v1/keys/{owned_fingerprint}/vote", json={"authentic": False}, headers=alice.headers
        ),
        409,
        "conflict",
    )
    reply = await jsonrpc(client, "mail.keys.vote", {"fingerprint": fingerprint, "vote": {"authentic": True}})
    assert reply["error"]["data"]["code"] == "unauthenticated", reply
    with pytest.raises(xmlrpc.client.Fault) as fault:
        await xmlrpc_call(client, "mail.keys.vote", {"fingerprint": fingerprint}, headers=alice.headers)
    assert fault_code(fault.value) == "invalid_params"


async def test_the_owners_key_wins_for_their_address(
    make_user: Any, client: httpx.AsyncClient, mailroom: Mailroom
) -> None:
    """A user-sourced key for an address whose domain becomes ours is no longer served; once
    the owner publishes theirs, only theirs is."""
    from tests.client.keys import public

    uploaded, uploaded_fp = public("erin@later.test", "Someone")
    assert (await upload(client, uploaded)).status_code == 200
    search = {"op": "get", "options": "mr", "search": "erin@later.test"}
    assert (await client.get("/pks/lookup", params=search)).status_code == 200
    erin: Actor = await make_user("erin@later.test")
    assert (await client.get("/pks/lookup", params=search)).status_code == 404
    own, own_fp = public("erin@later.test", "Erin")
    assert (
        await client.post("/api/v1/me/keys", json={"public_key": own}, headers=erin.headers)
    ).status_code == 201
    served = await client.get("/pks/lookup", params={**search, "op": "index"})
    assert served.status_code == 200
    assert own_fp in served.text
    assert uploaded_fp not in served.text
    directory = (
        await client.get("/api/v1/keys", params={"email": "erin@later.test"}, headers=erin.headers)
    ).json()
    assert [(k["fingerprint"], k["source"], k["served"]) for k in directory] == [
        (own_fp, "owner", True),
        (uploaded_fp, "user", False),
    ]


async def test_uploads_refused_with_a_clear_4xx(make_user: Any, client: httpx.AsyncClient) -> None:
    from tests.client.keys import make_key

    secret = make_key("alice@elsewhere.test")
    r = await upload(client, str(secret))
    assert r.status_code == 422
    assert "private key" in r.text
    r = await upload(
        client, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----"
    )
    assert r.status_code == 422
    assert "not an ASCII-armored OpenPGP public key" in r.text
    assert (await upload(client, "x" * 100_001)).status_code == 422
    big = await client.post(
        "/pks/add",
        content=b"keytext=" + b"A" * MAX_UPLOAD_BYTES,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
    for body in (b"", b"key=abc", b"keytext=", b"\xff\xfe", b"keytext=a&keytext=b"):
        assert (await client.post("/pks/add", content=body)).status_code == 400, body


async def test_uploads_are_rate_limited_per_network(client: httpx.AsyncClient, mailroom: Mailroom) -> None:
    limit = int(mailroom.settings.keyserver_upload_limit.split("/")[0])
    for _ in range(limit):
        assert (await upload(client, "garbage")).status_code == 422
    refused = await upload(client, "garbage")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


async def test_one_live_link_per_key_and_address_and_links_expire(
    make_user: Any, client: httpx.AsyncClient, clock: FakeClock, mailroom: Mailroom
) -> None:
    from tests.client.keys import public

    alice: Actor = await make_user("alice@example.org")
    armored, fingerprint = public("alice@example.org", "Alice Two")
    first = await upload(client, armored)
    assert first.status_code == 200
    assert (await upload(client, armored)).status_code == 200
    (token,) = await confirmation_tokens(client, alice)  # the second upload mailed nothing
    # An address of ours without a mailbox: the same answer, no mail to anyone.
    nobody, _ = public("nobody@example.org")
    assert (await upload(client, nobody)).text.replace("nobody", "alice").split("\n")[1:] == first.text.split(
        "\n"
    )[1:]
    clock.advance(49 * 3600)  # keyserver_confirm_hours = 48
    assert (await sweep(mailroom.runtime)).key_confirmations == 1  # housekeeping forgets it
    assert (await client.get(f"/pks/confirm/{token}")).status_code == 404
    assert (await client.post(f"/pks/confirm/{token}")).status_code == 404
    assert (await client.get("/pks/lookup", params={"search": "0x" + fingerprint})).status_code == 404
    # Expired, a new upload sends a new link, which works.
    assert (await upload(client, armored)).status_code == 200
    tokens = await confirmation_tokens(client, alice)
    assert len(tokens) == 2
    (new,) = set(tokens) - {token}
    assert (await client.post(f"/pks/confirm/{new}")).status_code == 200
    assert (await client.get("/pks/lookup", params={"search": "0x" + fingerprint})).status_code == 200
    assert (await client.get("/pks/confirm/mkc_nothing")).status_code == 404


@given(body=st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_the_upload_parser_never_fails(body: bytes) -> None:
    keytext = upload_keytext(body)
    assert keytext is None or (isinstance(keytext, str) and keytext.strip())


@given(text=st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_the_upload_parser_reads_what_gpg_posts(text: str) -> None:
    body = ("keytext=" + quote(text, safe="")).encode()
    assert upload_keytext(body) == (text if text.strip() else None)


@given(body=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: ("keytext=" + quote(t)).encode()))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_pks_add_answers_4xx_to_anything(client: httpx.AsyncClient, body: bytes) -> None:
    r = await client.post(
        "/pks/add", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code in (400, 413, 422, 429), r.text


def two_uid_key(first: str, second: str) -> tuple[str, str]:
    import pgpy
    from pgpy.constants import HashAlgorithm, KeyFlags

    from tests.client.keys import make_key

    key = make_key(first, "First")
    key.add_uid(pgpy.PGPUID.new("Second", email=second), usage={KeyFlags.Sign}, hashes=[HashAlgorithm.SHA256])
    return str(key.pubkey), str(key.fingerprint).replace(" ", "")


async def test_unconfirmed_user_ids_of_our_addresses_are_never_served(
    make_user: Any, client: httpx.AsyncClient
) -> None:
    alice: Actor = await make_user("alice@example.org")
    bob: Actor = await make_user("bob@example.org")
    armored, fingerprint = two_uid_key("carol@elsewhere.test", "alice@example.org")
    r = await upload(client, armored)
    assert r.status_code == 200
    assert "carol@elsewhere.test" in r.text
    # Listed for Carol's external address at once, but without Alice's user id.
    index = await client.get(
        "/pks/lookup", params={"op": "index", "options": "mr", "search": "0x" + fingerprint}
    )
    assert index.status_code == 200
    assert "carol@elsewhere.test" in index.text
    assert "alice@example.org" not in index.text
    (token,) = await confirmation_tokens(client, alice)
    assert (await client.post(f"/pks/confirm/{token}")).status_code == 200
    index = await client.get(
        "/pks/lookup", params={"op": "index", "options": "mr", "search": "alice@example.org"}
    )
    assert index.status_code == 200
    assert "alice@example.org" in index.text
    assert "carol@elsewhere.test" in index.text
    # The owner's own publication strips other local addresses too (Bob never confirmed).
    both, both_fingerprint = two_uid_key("bob@example.org", "alice@example.org")
    r = await client.post("/api/v1/me/keys", json={"public_key": both}, headers=bob.headers)
    assert r.status_code == 201, r.text
    assert r.json()["user_ids"] == ["First <bob@example.org>"]
    got = await client.get(
        "/pks/lookup", params={"op": "index", "options": "mr", "search": "0x" + both_fingerprint}
    )
    assert "alice@example.org" not in got.text


async def test_an_address_gets_at_most_five_live_links(make_user: Any, client: httpx.AsyncClient) -> None:
    from tests.client.keys import make_key

    alice: Actor = await make_user("alice@example.org")
    for n in range(7):
        assert (
            await upload(client, str(make_key("alice@example.org", f"Key {n}").pubkey))
        ).status_code == 200
    tokens = await confirmation_tokens(client, alice)
    assert len(tokens) == 5
    assert (await client.post(f"/pks/confirm/{tokens[0]}")).status_code == 200  # one used: room for one more
    assert (await upload(client, str(make_key("alice@example.org", "Key 8").pubkey))).status_code == 200
    assert len(await confirmation_tokens(client, alice)) == 6
