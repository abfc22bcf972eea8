"""The baseline for bench/admin_api.py: a raw ASGI hello world, no framework.

Served exactly like mailroom (uvicorn, httptools, uvloop, 2 workers), it measures what the
server, the event loop and the machine cost, so mailroom's figures can be read as a ratio
of it:

    uvicorn bare_asgi:app --app-dir bench --workers 2 --loop uvloop --http httptools
"""

from __future__ import annotations

from typing import Any

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
