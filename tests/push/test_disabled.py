"""``disabled_protocols = ["push"]`` removes the events endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Actor, problem

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"disabled_protocols": ["push"]}


async def test_no_events_endpoint_when_push_is_disabled(client: httpx.AsyncClient, make_user: Any) -> None:
    alice: Actor = await make_user("alice@example.org")
    r = await client.get("/api/v1/events", headers={"Accept": "text/event-stream", **alice.headers})
    problem(r, 404, "not_found")
