"""Push: ``GET /api/v1/events`` as a WebSocket or as Server-Sent Events (docs/push.md).

One path, two protocols, chosen by the request: a WebSocket upgrade, or a plain GET with
``Accept: text/event-stream``. Either way the caller is a mailbox (a session token or a key
acting as its owner) and receives only its own mailbox's events.

* SSE: ``Authorization: Bearer`` (or ``?token=``: ``EventSource`` cannot set headers; or the
  web app's session cookie with its ``X-CSRF-Token`` header, see :mod:`.http_auth`);
  ``Last-Event-ID`` (or ``?last_event_id=``) replays what was missed; a comment line every
  ``push_heartbeat_seconds`` keeps proxies from closing an idle stream; a stream ends after
  ``push_sse_max_seconds`` (``EventSource`` reconnects by itself, losing nothing).
* WebSocket: ``?token=`` or a first text message ``{"token": "...", "last_event_id": "..."}``
  (browsers cannot set headers on a WebSocket); ``?last_event_id=`` works too. Refused
  credentials close with 4401 (4403: not a mailbox), a client too slow to read with 1013,
  one connection too many for the mailbox (:data:`MAX_CONNECTIONS_PER_USER`) with 4429.
  The server sends ``{"type": "ping"}`` when idle and answers a client's ping with a pong.

A token is checked again at every heartbeat, so a revoked or expired session stops getting
events within one heartbeat; a disabled user, a signed-out session or a deleted key
(``mailroom.events.Revocation``) ends the stream at once, on every worker (WebSocket: 4401).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from mailroom.auth.principal import Principal
from mailroom.errors import BadRequest, Forbidden, MailroomError, RateLimited, Unauthenticated
from mailroom.events import AccessRevoked, Event, SubscriberOverflow, Subscription
from mailroom.frontends.http_auth import authenticate, client_ip, cookie_token

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.push")

EVENTS_PATH = "/api/v1/events"
#: The API-key scope (method-name glob) that covers push.
SCOPE = "mail.events.subscribe"
#: How long a WebSocket client has to send its token message.
AUTH_TIMEOUT_SECONDS = 10.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013
CLOSE_TOO_MANY = 4429
#: Connections one mailbox may hold open on one worker process (tabs, devices, and a cap
#: on what one account can make a worker hold).
MAX_CONNECTIONS_PER_USER = 32


def check_principal(principal: Principal) -> int:
    """The mailbox whose events ``principal`` may receive."""
    if not principal.is_authenticated:
        raise Unauthenticated()
    if principal.user_id is None:
        raise Forbidden("push events belong to a mailbox: authenticate as a user")
    if not principal.allows_method(SCOPE):
        raise Forbidden(f"this API key's scopes do not include {SCOPE}")
    return principal.user_id


class _Listener:
    """What both protocols share: who listens, their subscription, their token's recheck."""

    def __init__(self, mailroom: Mailroom, principal: Principal, token: str | None, ip: str | None) -> None:
        self.mailroom = mailroom
        self.user_id = check_principal(principal)
        self.email = principal.email or ""
        self.credential = principal.credential
        self.token = token
        self.ip = ip
        self.heartbeat = mailroom.settings.push_heartbeat_seconds

    async def still_valid(self) -> bool:
        """The token still authenticates the same mailbox (not revoked, not expired)."""
        if self.token is None:
            return True
        try:
            principal = await self.mailroom.authenticator.bearer(self.token, self.ip)
        except MailroomError:
            return False
        return principal.user_id == self.user_id

    async def subscribe(self, last_event_id: str | None) -> Subscription:
        events = self.mailroom.runtime.events
        if events.subscribers(self.user_id) >= MAX_CONNECTIONS_PER_USER:
            raise RateLimited(
                f"this mailbox has {MAX_CONNECTIONS_PER_USER} push connections open already",
                retry_after=30,
            )
        return await events.subscribe(
            self.user_id, last_event_id or None, session=(self.email, "push", self.credential)
        )


async def _next(sub: Subscription, idle: float) -> Event | None:
    """The next event, or None after ``idle`` seconds without one."""
    try:
        return await asyncio.wait_for(anext(sub), idle)
    except TimeoutError:
        return None


# -- Server-Sent Events ---------------------------------------------------------------------


def sse_frame(event: Event) -> bytes:
    data = orjson.dumps(event.wire())
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event.id.encode(), event.type.encode(), data)


async def _sse_principal(mailroom: Mailroom, request: Request) -> tuple[Principal, str | None]:
    token = request.query_params.get("token")
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        bearer = value.strip() if scheme.lower() == "bearer" else None
        return await authenticate(mailroom, request), bearer
    if token:
        return await mailroom.authenticator.bearer(token, client_ip(request)), token
    cookie = cookie_token(request.headers.get("cookie"))
    if cookie is not None:  # the web app's session cookie, with its CSRF header
        principal = await authenticate(mailroom, request)
        if principal.is_authenticated:
            return principal, cookie
    raise Unauthenticated("send Authorization: Bearer <token> or a token query parameter")


def sse_endpoint(mailroom: Mailroom) -> Any:
    async def events(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if "text/event-stream" not in accept.lower():
            raise BadRequest(
                "GET /api/v1/events is a push channel: open it as a WebSocket or send "
                "Accept: text/event-stream",
                accept=accept,
            )
        principal, token = await _sse_principal(mailroom, request)
        listener = _Listener(mailroom, principal, token, client_ip(request))
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        sub = await listener.subscribe(last)
        return StreamingResponse(
            _sse_stream(listener, sub),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return events


async def _sse_stream(listener: _Listener, sub: Subscription) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    # The server waits for open responses when it shuts down (WebSockets it closes itself):
    # a stream that ends now and then keeps that wait bounded; the client reconnects.
    ends_at = loop.time() + listener.mailroom.settings.push_sse_max_seconds
    try:
        # ``retry``: how long EventSource waits before reconnecting (with Last-Event-ID).
        yield b"retry: 3000\n: subscribed\n\n"
        while True:
            if loop.time() >= ends_at:
                yield b": stream time is up; reconnect with Last-Event-ID\n\n"
                return
            try:
                event = await _next(sub, min(listener.heartbeat, max(ends_at - loop.time(), 0.01)))
            except AccessRevoked as revoked:
                yield b": access ended: %s\n\n" % revoked.reason.encode()
                return
            except StopAsyncIteration:
                return
            except SubscriberOverflow:
                log.info("push: dropped a slow SSE client of user %s", listener.user_id)
                yield b": dropped: too many events waited; reconnect with Last-Event-ID\n\n"
                return
            if event is None:
                if not await listener.still_valid():
                    yield b": credentials no longer valid\n\n"
                    return
                yield b": heartbeat\n\n"
                continue
            yield sse_frame(event)
    finally:
        await sub.aclose()


# -- WebSocket ------------------------------------------------------------------------------


async def _ws_credentials(websocket: WebSocket) -> tuple[str, str | None]:
    """(token, last event id) from the query string or the first message."""
    token = websocket.query_params.get("token")
    last = websocket.query_params.get("last_event_id")
    if token:
        return token, last
    try:
        text = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError:
        raise Unauthenticated('send {"token": ...} first, or a token query parameter') from None
    except KeyError:  # a binary frame
        raise Unauthenticated("the first message must be JSON text with a token") from None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise Unauthenticated("the first message must be JSON text with a token") from None
    if not isinstance(message, dict) or not isinstance(message.get("token"), str):
        raise Unauthenticated("the first message must be JSON text with a token")
    given = message.get("last_event_id")
    return message["token"], given if isinstance(given, str) else last


def ws_endpoint(mailroom: Mailroom) -> Any:
    async def events(websocket: WebSocket) -> None:
        await websocket.accept()
        ip = client_ip(websocket)
        try:
            token, last = await _ws_credentials(websocket)
            principal = await mailroom.authenticator.bearer(token, ip)
            listener = _Listener(mailroom, principal, token, ip)
        except WebSocketDisconnect:
            return
        except MailroomError as exc:
            refusal = CLOSE_FORBIDDEN if isinstance(exc, Forbidden) else CLOSE_UNAUTHENTICATED
            await websocket.close(code=refusal, reason=exc.message[:120])
            return
        try:
            sub = await listener.subscribe(last)
        except RateLimited as exc:
            await websocket.close(code=CLOSE_TOO_MANY, reason=exc.message[:120])
            return
        reader = asyncio.create_task(_ws_read(websocket, sub))
        try:
            await websocket.send_text(orjson.dumps({"type": "subscribed"}).decode())
            code = await _ws_write(websocket, listener, sub)
        except (WebSocketDisconnect, RuntimeError, OSError):
            code = None  # the client went away
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await sub.aclose()
        if code is not None and websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await websocket.close(code=code[0], reason=code[1])

    return events


async def _ws_write(websocket: WebSocket, listener: _Listener, sub: Subscription) -> tuple[int, str] | None:
    """Send events until the client leaves (None) or must be closed ((code, reason))."""
    while True:
        try:
            event = await _next(sub, listener.heartbeat)
        except AccessRevoked as revoked:
            return CLOSE_UNAUTHENTICATED, f"access ended: {revoked.reason}"[:120]
        except StopAsyncIteration:
            return None
        except SubscriberOverflow:
            log.info("push: dropped a slow WebSocket client of user %s", listener.user_id)
            return CLOSE_TRY_AGAIN, "too many events waited; reconnect with last_event_id"
        if event is None:
            if not await listener.still_valid():
                return CLOSE_UNAUTHENTICATED, "credentials no longer valid"
            await websocket.send_text('{"type":"ping"}')
            continue
        await websocket.send_text(orjson.dumps(event.wire()).decode())


async def _ws_read(websocket: WebSocket, sub: Subscription) -> None:
    """Answer pings; when the client leaves, end the subscription (and so the writer)."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text and '"ping"' in text:
                with contextlib.suppress(orjson.JSONDecodeError):
                    if orjson.loads(text) == {"type": "ping"}:
                        await websocket.send_text('{"type":"pong"}')
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    finally:
        await sub.aclose()


def push_routes(mailroom: Mailroom) -> list[BaseRoute]:
    """The events path, for both protocols (unless ``push`` is a disabled protocol)."""
    if "push" in mailroom.settings.disabled_protocols:
        return []
    return [
        WebSocketRoute(EVENTS_PATH, ws_endpoint(mailroom)),
        Route(EVENTS_PATH, sse_endpoint(mailroom), methods=["GET"]),
    ]
