"""POST /api/v1/uploads: multipart, raw and JSON bodies, size limit, the domain's encryption
policy, expiry of unused uploads, and isolation between users."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.errors import NotFound
from mailroom.services.mail.uploads import expire_uploads, mark_used, uploaded_attachments
from mailroom.store import uploads as upload_store
from tests.conftest import Actor, problem

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgpy

pytestmark = pytest.mark.anyio
MakeUser = Callable[..., Awaitable[Actor]]
LIMIT = 4096


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"upload_max_bytes": LIMIT}


@pytest.fixture
async def alice(make_user: MakeUser) -> Actor:
    return await make_user("alice@example.org")


@pytest.fixture
async def bob(make_user: MakeUser) -> Actor:
    return await make_user("bob@example.org")


async def test_multipart_upload(client: httpx.AsyncClient, alice: Actor, clock: FakeClock) -> None:
    r = await client.post(
        "/api/v1/uploads",
        files={"file": ("report.pdf", b"%PDF-1.7 content", "application/pdf")},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["attachment_id"].startswith("up_")
    assert body["size"] == len(b"%PDF-1.7 content")
    assert body["expires_at"] == (clock.now() + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert (body["filename"], body["content_type"], body["encrypted"]) == (
        "report.pdf",
        "application/pdf",
        False,
    )
    got = await client.get(f"/api/v1/uploads/{body['attachment_id']}", headers=alice.headers)
    assert got.json() == body


async def test_raw_body_upload(client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom) -> None:
    r = await client.post(
        "/api/v1/uploads",
        content=b"col1,col2\n1,2\n",
        headers={
            **alice.headers,
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": "attachment; filename*=UTF-8''d%C3%A9penses.csv",
        },
    )
    assert r.status_code == 201, r.text
    assert (r.json()["filename"], r.json()["content_type"]) == ("dépenses.csv", "text/csv")
    # The name as a query parameter; no usable type: guessed from the name.
    r = await client.post(
        "/api/v1/uploads",
        params={"filename": "../../etc/photo.png"},
        content=b"\x89PNG\r\n\x1a\nxx",
        headers={**alice.headers, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    upload = r.json()
    assert (upload["filename"], upload["content_type"]) == ("photo.png", "image/png")
    [(content, media, name)] = await uploaded_attachments(
        mailroom.runtime, alice.principal.user_id or 0, [upload["attachment_id"]]
    )
    assert (content, media, name) == (b"\x89PNG\r\n\x1a\nxx", "image/png", "photo.png")


async def test_json_and_json_rpc_take_base64(client: httpx.AsyncClient, alice: Actor) -> None:
    file = {
        "content_base64": base64.b64encode(b"hello").decode(),
        "filename": "a.txt",
        "content_type": "text/plain",
    }
    r = await client.post("/api/v1/uploads", json=file, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 5
    r = await client.post(
        "/rpc/json",
        json={"jsonrpc": "2.0", "id": 1, "method": "mail.uploads.create", "params": {"file": file}},
        headers=alice.headers,
    )
    result = r.json()["result"]
    assert (result["size"], result["filename"]) == (5, "a.txt")


async def test_too_large_is_413(client: httpx.AsyncClient, alice: Actor) -> None:
    big = b"x" * (LIMIT + 1)
    r = await client.post(
        "/api/v1/uploads", content=big, headers={**alice.headers, "Content-Type": "application/octet-stream"}
    )
    problem(r, 413, "payload_too_large")
    r = await client.post("/api/v1/uploads", files={"file": ("big.bin", big)}, headers=alice.headers)
    problem(r, 413, "payload_too_large")
    exact = await client.post("/api/v1/uploads", files={"file": ("ok.bin", big[:-1])}, headers=alice.headers)
    assert exact.status_code == 201, exact.text


async def test_bad_requests(client: httpx.AsyncClient, alice: Actor, admin: Actor) -> None:
    r = await client.post(
        "/api/v1/uploads", content=b"", headers={**alice.headers, "Content-Type": "text/plain"}
    )
    problem(r, 400, "bad_request")
    r = await client.post("/api/v1/uploads", data={"note": "no file"}, files={}, headers=alice.headers)
    problem(r, 400, "bad_request")
    r = await client.post(
        "/api/v1/uploads",
        files=[("a", ("a.txt", b"a")), ("b", ("b.txt", b"b"))],
        headers=alice.headers,
    )
    problem(r, 400, "bad_request")
    r = await client.post("/api/v1/uploads", content=b"x", headers={"Content-Type": "text/plain"})
    problem(r, 401, "unauthenticated")
    r = await client.post(
        "/api/v1/uploads", content=b"x", headers={**admin.headers, "Content-Type": "text/plain"}
    )
    problem(r, 403, "forbidden")  # an admin key is no mailbox


def encrypted_file() -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bytes(pgpy.PGPMessage.new(b"secret", file=True).encrypt("passphrase"))


async def test_domain_policy_requires_encrypted_attachments(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, admin: Actor, make_user: MakeUser
) -> None:
    other = await make_user("carol@example.net")
    manager = await make_user("mgr@example.net", manages=("example.net",))
    policy = "/api/v1/domains/example.org/attachment-policy"
    # Only the domain's managers and admins may set it.
    problem(
        await client.put(policy, json={"require_encrypted": True}, headers=manager.headers), 404, "not_found"
    )
    r = await client.put(policy, json={"require_encrypted": True}, headers=admin.headers)
    assert r.json() == {"domain": "example.org", "require_encrypted": True}
    assert (await client.get(policy, headers=admin.headers)).json()["require_encrypted"] is True
    plain = {"file": ("notes.txt", b"plain text", "text/plain")}
    body = problem(
        await client.post("/api/v1/uploads", files=plain, headers=alice.headers), 422, "encryption_required"
    )
    assert "OpenPGP" in body["detail"]
    sealed = encrypted_file()
    for content in (sealed, pgpy.PGPMessage.from_blob(sealed).__str__().encode()):
        r = await client.post(
            "/api/v1/uploads", files={"file": ("notes.txt.gpg", content)}, headers=alice.headers
        )
        assert r.status_code == 201, r.text
        assert r.json()["encrypted"] is True
    # Another domain is not concerned; switching the policy off lets plain files through again.
    assert (await client.post("/api/v1/uploads", files=plain, headers=other.headers)).status_code == 201
    r = await client.put(
        "/api/v1/domains/example.net/attachment-policy",
        json={"require_encrypted": False},
        headers=manager.headers,
    )
    assert r.status_code == 200, r.text
    await client.put(policy, json={"require_encrypted": False}, headers=admin.headers)
    assert (await client.post("/api/v1/uploads", files=plain, headers=bob.headers)).status_code == 201
    problem(
        await client.put(
            "/api/v1/domains/nowhere.test/attachment-policy",
            json={"require_encrypted": True},
            headers=admin.headers,
        ),
        404,
        "not_found",
    )


async def test_unused_uploads_expire_and_their_blobs_go(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom, clock: FakeClock
) -> None:
    rt = mailroom.runtime
    ids = []
    for content in (b"unused one", b"used one"):
        r = await client.post("/api/v1/uploads", files={"file": ("f.bin", content)}, headers=alice.headers)
        ids.append(r.json()["attachment_id"])
    unused, used = ids
    user_id = alice.principal.user_id or 0
    await mark_used(rt, user_id, [used], email_id=12345)
    async with rt.db.read() as tx:
        found = {i: await upload_store.get(tx, user_id, i) for i in ids}
    sha_of = {i: row.blob_sha for i, row in found.items() if row is not None}
    clock.advance(hours=23)
    assert await expire_uploads(rt) == 0
    clock.advance(hours=1, seconds=1)
    assert await expire_uploads(rt) == 1
    problem(await client.get(f"/api/v1/uploads/{unused}", headers=alice.headers), 404, "not_found")
    assert not rt.blobs.path(sha_of[unused]).exists()
    kept = (await client.get(f"/api/v1/uploads/{used}", headers=alice.headers)).json()
    assert (kept["used_by_email"], kept["expires_at"]) == (12345, None)
    assert rt.blobs.path(sha_of[used]).exists()
    assert await expire_uploads(rt) == 0


async def test_same_content_twice_keeps_the_blob_while_one_remains(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, mailroom: Mailroom
) -> None:
    a = (await client.post("/api/v1/uploads", files={"file": ("a", b"same")}, headers=alice.headers)).json()
    b = (await client.post("/api/v1/uploads", files={"file": ("b", b"same")}, headers=bob.headers)).json()
    r = await client.delete(f"/api/v1/uploads/{a['attachment_id']}", headers=alice.headers)
    assert r.status_code == 204
    [(content, _, _)] = await uploaded_attachments(
        mailroom.runtime, bob.principal.user_id or 0, [b["attachment_id"]]
    )
    assert content == b"same"


async def test_other_users_cannot_use_an_attachment_id(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, mailroom: Mailroom
) -> None:
    r = await client.post("/api/v1/uploads", files={"file": ("a.txt", b"alice's")}, headers=alice.headers)
    upload_id = r.json()["attachment_id"]
    problem(await client.get(f"/api/v1/uploads/{upload_id}", headers=bob.headers), 404, "not_found")
    problem(await client.delete(f"/api/v1/uploads/{upload_id}", headers=bob.headers), 404, "not_found")
    with pytest.raises(NotFound):
        await uploaded_attachments(mailroom.runtime, bob.principal.user_id or 0, [upload_id])
    await mark_used(mailroom.runtime, bob.principal.user_id or 0, [upload_id], email_id=1)  # no effect
    still = (await client.get(f"/api/v1/uploads/{upload_id}", headers=alice.headers)).json()
    assert still["used_by_email"] is None
    problem(
        await client.get("/api/v1/uploads/up_not-a-real-one-at-all", headers=alice.headers), 404, "not_found"
    )


async def test_openapi_advertises_the_file_bodies(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/v1/openapi.json")).json()
    content = doc["paths"]["/uploads"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/octet-stream", "application/json"}
    assert content["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"


async def test_an_idempotency_key_makes_a_retry_safe(client: httpx.AsyncClient, alice: Actor) -> None:
    headers = {**alice.headers, "Idempotency-Key": "upload-1"}
    first = await client.post("/api/v1/uploads", files={"file": ("a.txt", b"one")}, headers=headers)
    again = await client.post("/api/v1/uploads", files={"file": ("a.txt", b"one")}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["attachment_id"] == first.json()["attachment_id"]  # one upload, not two
    other = await client.post("/api/v1/uploads", files={"file": ("a.txt", b"two")}, headers=headers)
    problem(other, 422, "invalid_params")  # the same key with another file


async def test_xml_rpc_sends_the_file_as_base64(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom
) -> None:
    import xmlrpc.client

    file = {"content_base64": xmlrpc.client.Binary(b"\x00\xffbinary"), "filename": "b.bin"}
    body = xmlrpc.client.dumps(({"file": file},), "mail.uploads.create", allow_none=True)
    r = await client.post("/rpc/xml", content=body, headers={"Content-Type": "text/xml", **alice.headers})
    (result,), _ = xmlrpc.client.loads(r.content, use_builtin_types=True)
    assert (result["size"], result["filename"]) == (8, "b.bin")
    [(content, _, _)] = await uploaded_attachments(
        mailroom.runtime, alice.principal.user_id or 0, [result["attachment_id"]]
    )
    assert content == b"\x00\xffbinary"
