"""SSE with the web app's session cookie: it counts only with its X-CSRF-Token header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import orjson
import pytest

from tests.conftest import Actor
from tests.mailhelpers import message
from tests.push.conftest import SSE, Deliver

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery staple"


async def test_sse_with_the_session_cookie_and_its_csrf_header(
    server: str, make_user: Callable[..., Awaitable[Actor]], deliver: Deliver
) -> None:
    await make_user("alice@example.org", password=PASSWORD)
    sse = {"Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=10) as client:
        login = await client.post(
            "/web/session", json={"username": "alice@example.org", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        # The cookie alone (what another site's page would send) opens nothing.
        alone = await client.get("/api/v1/events", headers=sse)
        assert (alone.status_code, alone.json()["code"]) == (401, "unauthenticated")
        wrong = await client.get("/api/v1/events", headers={**sse, "X-CSRF-Token": "0" * 64})
        assert (wrong.status_code, wrong.json()["code"]) == (403, "forbidden")
        async with client.stream("GET", "/api/v1/events", headers={**sse, "X-CSRF-Token": csrf}) as response:
            assert response.status_code == 200
            stream = SSE(response)
            await deliver(message(subject="by cookie"), "alice@example.org")
            event = await stream.next()
            assert event["event"] == "email.received"
            assert orjson.loads(event["data"])["data"]["subject"] == "by cookie"
