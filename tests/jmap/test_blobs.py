"""Blobs: upload, download (name, type, Content-Disposition), Blob/copy, limits, isolation."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from tests.client_mail.conftest import message
from tests.conftest import Actor
from tests.jmap.client import CORE, JmapClient
from tests.jmap.conftest import Deliver

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"upload_max_bytes": 100_000}


async def upload(jmap: JmapClient, content: bytes, media: str = "text/plain") -> httpx.Response:
    return await jmap.http.post(
        f"/jmap/upload/{jmap.account_id}/", content=content, headers={**jmap.headers, "content-type": media}
    )


async def test_upload_and_download(jmap: JmapClient) -> None:
    content = "Grüße aus dem Urlaub\n".encode()
    r = await upload(jmap, content)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body == {
        "accountId": jmap.account_id,
        "blobId": "G" + hashlib.sha256(content).hexdigest(),
        "type": "text/plain",
        "size": len(content),
    }
    url = f"/jmap/download/{jmap.account_id}/{body['blobId']}/Gr%C3%BC%C3%9Fe.txt?accept=text/plain"
    r = await jmap.http.get(url, headers=jmap.headers)
    assert r.status_code == 200
    assert r.content == content
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt"
    r = await jmap.http.get(f"/jmap/download/{jmap.account_id}/{body['blobId']}/x.bin", headers=jmap.headers)
    assert r.headers["content-type"].startswith("text/plain")  # the uploaded type
    # The session's downloadUrl template works as given.
    s = await jmap.session()
    template = s["downloadUrl"]
    filled = (
        template.replace("{accountId}", jmap.account_id)
        .replace("{blobId}", body["blobId"])
        .replace("{name}", "a.txt")
        .replace("{type}", "application/octet-stream")
    )
    r = await jmap.http.get(filled, headers=jmap.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"


async def test_upload_limit_and_refusals(jmap: JmapClient, client: httpx.AsyncClient) -> None:
    r = await upload(jmap, b"x" * 100_001)
    assert r.status_code == 413
    assert r.json()["type"] == "urn:ietf:params:jmap:error:limit"
    assert r.json()["limit"] == "maxSizeUpload"
    r = await client.post(f"/jmap/upload/{jmap.account_id}/", content=b"abc")
    assert r.status_code == 401
    r = await jmap.http.post("/jmap/upload/u999999/", content=b"abc", headers=jmap.headers)
    assert r.status_code == 404


async def test_blobs_of_others_are_not_found(jmap: JmapClient, client: httpx.AsyncClient, bob: Actor) -> None:
    r = await upload(jmap, b"alice's secret")
    blob = r.json()["blobId"]
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    r = await client.get(f"/jmap/download/{bobs.account_id}/{blob}/x", headers=bob.headers)
    assert r.status_code == 404
    r = await client.get(f"/jmap/download/{jmap.account_id}/{blob}/x", headers=bob.headers)
    assert r.status_code == 404
    got = await bobs.call("Blob/copy", {"fromAccountId": bobs.account_id, "blobIds": [blob]}, [CORE])
    assert got["notCopied"][blob]["type"] == "notFound"


async def test_blob_copy(jmap: JmapClient, deliver: Deliver) -> None:
    blob = (await upload(jmap, b"hello")).json()["blobId"]
    raw = message()
    await deliver(raw, "alice@example.org")
    email_blob = "G" + hashlib.sha256(raw).hexdigest()
    got = await jmap.call(
        "Blob/copy", {"fromAccountId": jmap.account_id, "blobIds": [blob, email_blob, "Gnope"]}, [CORE]
    )
    assert got["copied"] == {blob: blob, email_blob: email_blob}
    assert got["notCopied"]["Gnope"]["type"] == "notFound"
    err = await jmap.error("Blob/copy", {"fromAccountId": "u999999", "blobIds": [blob]}, [CORE])
    assert err["type"] == "fromAccountNotFound"
