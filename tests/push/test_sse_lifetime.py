"""An SSE stream ends after push_sse_max_seconds (so shutdowns never wait on it for long)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import Actor
from tests.push.conftest import SSE

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"push_heartbeat_seconds": 0.3, "push_sse_max_seconds": 1.0}


async def test_the_stream_ends_in_time(server: str, make_user: Any) -> None:
    alice: Actor = await make_user("alice@example.org")
    started = time.monotonic()
    async with (
        httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as client,
        client.stream(
            "GET", "/api/v1/events", headers={"Accept": "text/event-stream", **alice.headers}
        ) as response,
    ):
        sse = SSE(response)
        with pytest.raises(EOFError):
            await sse.next(wait=5)
    assert 0.9 <= time.monotonic() - started < 3
    assert sse.comments[-1].startswith("stream time is up")
