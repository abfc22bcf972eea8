"""The upload limit is its own: larger than max_body_bytes (JSON bodies) is fine below it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Actor, problem

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_body_bytes": 2048, "upload_max_bytes": 8192}


async def test_uploads_may_exceed_the_json_body_limit(client: httpx.AsyncClient, make_user: Any) -> None:
    alice: Actor = await make_user("alice@example.org")
    content = bytes(range(256)) * 20  # 5,120 bytes
    r = await client.post("/api/v1/uploads", files={"file": ("big.bin", content)}, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(content)
    raw = await client.post(
        "/api/v1/uploads",
        content=content,
        headers={**alice.headers, "Content-Type": "application/octet-stream"},
    )
    assert raw.status_code == 201, raw.text
    assert raw.json()["size"] == len(content)
    # JSON bodies keep their own limit.
    r = await client.post(
        "/api/v1/labels",
        content=b"{" + b" " * 3000 + b"}",
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    problem(r, 413, "payload_too_large")
