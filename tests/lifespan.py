"""A worker's ASGI app run through its lifespan in-process, as uvicorn would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from mailroom.asgi import LazyApp
from mailroom.settings import Settings


@asynccontextmanager
async def started_worker(settings: Settings) -> AsyncIterator[LazyApp]:
    """The worker after ``lifespan.startup.complete``; shut down (and checked) at the end."""
    app = LazyApp(settings)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(event: dict[str, Any]) -> None:
        await outbox.put(event)

    lifespan = asyncio.create_task(app({"type": "lifespan"}, receive, send))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(outbox.get(), 30))["type"] == "lifespan.startup.complete"
    try:
        yield app
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await asyncio.wait_for(outbox.get(), 30))["type"] == "lifespan.shutdown.complete"
        await lifespan


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[int]:
    """``app`` served by uvicorn on a free loopback port (WebSocket included), in this event
    loop and without its lifespan; yields the port, stops the server at the end."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", ws="websockets-sansio"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)
