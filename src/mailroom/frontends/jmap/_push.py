"""JMAP push (RFC 8620 §7.3 EventSource; RFC 8887 WebSocket): ``StateChange`` objects made
from the mailbox's events (``mailroom.events``: in process memory, or Redis across workers).

Every event of a mailbox carries the account's state after the change; every JMAP type's
state is that one number, so a StateChange names each type the event may have changed
(``Mailbox``, ``Email``, ``Thread``; ``EmailDelivery`` for new mail; ``EmailSubmission``
for a delivery status) with the new state. The caller must stand for a mailbox and, with an
API key, have the push scope (``mail.events.subscribe``), as for ``/api/v1/events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from mailroom.auth.principal import Principal
from mailroom.errors import MailroomError, Unauthenticated
from mailroom.events import Event, SubscriberOverflow, Subscription
from mailroom.frontends.http_auth import authenticate, authenticate_header, client_ip
from mailroom.frontends.jmap._core import Processor
from mailroom.frontends.jmap._problems import RequestProblem, error_response
from mailroom.frontends.push import MAX_CONNECTIONS_PER_USER, check_principal
from mailroom.registry import CallInfo
from mailroom.services.jmap.protocol import account_id

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.jmap.push")

#: Which types an event may change.
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "email.received": ("Mailbox", "Email", "Thread", "EmailDelivery"),
    "thread.updated": ("Mailbox", "Email", "Thread"),
    "label.counts": ("Mailbox", "Email", "Thread"),
    "email.status": ("EmailSubmission",),
}
PUSH_TYPES = frozenset(t for types in EVENT_TYPES.values() for t in types)
MAX_PING_SECONDS = 3600
CLOSE_POLICY = 1008


async def _principal(mailroom: Mailroom, conn: HTTPConnection) -> tuple[Principal, str | None]:
    """The caller (``Authorization``, the web app's cookie, or ``?access_token=`` for clients
    that cannot set headers) and the bearer value to check again while connected."""
    header = conn.headers.get("authorization")
    token = conn.query_params.get("access_token")
    if not header and token:
        header = f"Bearer {token}"
    if header:
        principal = await authenticate_header(mailroom, header, client_ip(conn))
        scheme, _, value = header.partition(" ")
        bearer = value.strip() if scheme.lower() == "bearer" else None
    else:
        principal = await authenticate(mailroom, conn)
        bearer = None
    if not principal.is_authenticated:
        raise Unauthenticated("send Authorization: Basic or Bearer")
    check_principal(principal)
    return principal, bearer


async def _still_valid(mailroom: Mailroom, bearer: str | None, user_id: int, ip: str | None) -> bool:
    if bearer is None:
        return True
    try:
        principal = await mailroom.authenticator.bearer(bearer, ip)
    except MailroomError:
        return False
    return principal.user_id == user_id


async def _current_state(mailroom: Mailroom, principal: Principal) -> str | None:
    """The account's state (None when the call is refused, a rate limit say: the client
    then learns of the change at the next event)."""
    info = CallInfo(protocol="jmap", client_ip=principal.client_ip)
    try:
        result = await mailroom.runner.invoke("jmap.state.get", {}, principal, info)
    except MailroomError as exc:
        log.info("push: no state for a StateChange: %s", exc.code)
        return None
    return str(result["state"])


def state_change(
    event: Event, account: str, wanted: frozenset[str] | None, state: str
) -> dict[str, Any] | None:
    """The StateChange for ``event``, limited to ``wanted`` types (None: all); None when it
    names none of them. A type's own state in the event (``states``: an EmailSubmission
    cancel's) wins over ``state``."""
    types = [t for t in EVENT_TYPES.get(event.type, ()) if wanted is None or t in wanted]
    if not types:
        return None
    own = event.data.get("states")
    own = own if isinstance(own, dict) else {}
    return {"@type": "StateChange", "changed": {account: {t: str(own.get(t, state)) for t in types}}}


def _types(value: str | None) -> frozenset[str] | None:
    if value is None or value.strip() in ("", "*"):
        return None
    return frozenset(t.strip() for t in value.split(",") if t.strip())


async def _subscribe(
    mailroom: Mailroom, user_id: int, last: str | None, principal: Principal | None = None
) -> Subscription:
    """``principal``: the EventSource's caller, registered so that the end of its access
    ends the stream (a WebSocket registers itself, see :meth:`JmapWebSocket.endpoint`)."""
    events = mailroom.runtime.events
    if events.subscribers(user_id) >= MAX_CONNECTIONS_PER_USER:
        raise RequestProblem("limit", "too many push connections for this account", limit="pushConnections")
    session = None if principal is None else (principal.email or "", "push", principal.credential)
    return await events.subscribe(user_id, last or None, session=session)


async def _next(sub: Subscription, idle: float) -> Event | None:
    try:
        return await asyncio.wait_for(anext(sub), idle)
    except TimeoutError:
        return None


# -- EventSource --------------------------------------------------------------------------


class EventSource:
    """``GET <jmap_path>/eventsource/?types=&closeafter=&ping=`` (RFC 8620 §7.3)."""

    def __init__(self, mailroom: Mailroom) -> None:
        self.mailroom = mailroom

    async def endpoint(self, request: Request) -> Response:
        try:
            principal, bearer = await _principal(self.mailroom, request)
            assert principal.user_id is not None
            q = request.query_params
            wanted = _types(q.get("types"))
            closeafter = q.get("closeafter") or "no"
            if closeafter not in ("state", "no"):
                raise RequestProblem("notRequest", "closeafter is state or no")
            try:
                ping = int(q.get("ping") or 0)
            except ValueError:
                raise RequestProblem("notRequest", "ping is a number of seconds") from None
            if ping < 0:
                raise RequestProblem("notRequest", "ping is a number of seconds")
            ping = min(ping, MAX_PING_SECONDS)
            last = request.headers.get("last-event-id")
            sub = await _subscribe(self.mailroom, principal.user_id, last, principal)
        except RequestProblem as problem:
            return problem.response()
        except MailroomError as exc:
            return error_response(exc)
        stream = self._stream(principal, bearer, sub, wanted, closeafter == "state", ping, client_ip(request))
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(
        self,
        principal: Principal,
        bearer: str | None,
        sub: Subscription,
        wanted: frozenset[str] | None,
        close_after_state: bool,
        ping: int,
        ip: str | None,
    ) -> AsyncIterator[bytes]:
        assert principal.user_id is not None
        account = account_id(principal.user_id)
        settings = self.mailroom.settings
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + settings.push_sse_max_seconds
        idle = float(ping) if ping else settings.push_heartbeat_seconds
        try:
            yield b"retry: 3000\n\n"
            while loop.time() < ends_at:
                try:
                    event = await _next(sub, min(idle, max(ends_at - loop.time(), 0.01)))
                except (StopAsyncIteration, SubscriberOverflow):
                    return
                if event is None:
                    if not await _still_valid(self.mailroom, bearer, principal.user_id, ip):
                        return
                    if ping:
                        yield b"event: ping\ndata: %s\n\n" % orjson.dumps({"interval": ping})
                    else:
                        yield b": heartbeat\n\n"
                    continue
                state = event.data.get("state")
                if state is None:
                    state = await _current_state(self.mailroom, principal)
                change = state_change(event, account, wanted, str(state)) if state is not None else None
                if change is None:
                    continue
                yield b"event: state\nid: %s\ndata: %s\n\n" % (event.id.encode(), orjson.dumps(change))
                if close_after_state:
                    return
        finally:
            await sub.aclose()


# -- WebSocket (RFC 8887) -----------------------------------------------------------------


class JmapWebSocket:
    """``<jmap_path>/ws`` with the ``jmap`` subprotocol: requests, responses and push."""

    def __init__(self, mailroom: Mailroom, processor: Processor) -> None:
        self.mailroom = mailroom
        self.processor = processor

    async def endpoint(self, websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        if "jmap" not in offered:
            await websocket.close(code=CLOSE_POLICY, reason="use the jmap subprotocol")
            return
        try:
            principal, bearer = await _principal(self.mailroom, websocket)
        except MailroomError as exc:
            await websocket.close(code=CLOSE_POLICY, reason=exc.message[:120])
            return
        await websocket.accept(subprotocol="jmap")
        session = _Session(self, websocket, principal, bearer)
        # The end of the caller's access (mailroom.events.OpenSessions) closes the socket.
        assert principal.user_id is not None
        sessions = self.mailroom.runtime.events.sessions
        kicks: set[asyncio.Task[None]] = set()

        def kick(reason: str) -> None:
            async def close() -> None:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    await websocket.close(code=CLOSE_POLICY, reason=f"access ended: {reason}"[:120])

            task = asyncio.create_task(close())
            kicks.add(task)
            task.add_done_callback(kicks.discard)

        registered = sessions.open(
            principal.user_id, principal.email or "", "jmap", principal.credential, kick
        )
        try:
            await session.run()
        finally:
            sessions.end(registered)
            await session.stop_push()
            if websocket.application_state != WebSocketState.DISCONNECTED:
                # The client may be gone already: nothing to close then.
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    await websocket.close()


class _Session:
    def __init__(self, owner: JmapWebSocket, ws: WebSocket, principal: Principal, bearer: str | None) -> None:
        self.mailroom = owner.mailroom
        self.processor = owner.processor
        self.ws = ws
        self.principal = principal
        self.bearer = bearer
        assert principal.user_id is not None
        self.user_id = principal.user_id
        self.account = account_id(principal.user_id)
        self.send_lock = asyncio.Lock()
        self.push: asyncio.Task[None] | None = None
        self.ip = client_ip(ws)

    async def send(self, message: Mapping[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(orjson.dumps(message).decode())

    async def run(self) -> None:
        limit = self.mailroom.settings.jmap_max_size_request
        while True:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.refuse(None, RequestProblem("notJSON", "send JSON text frames"))
                continue
            if len(text) > limit:
                await self.refuse(
                    None,
                    RequestProblem("limit", f"a request is at most {limit} bytes", limit="maxSizeRequest"),
                )
                continue
            try:
                payload = orjson.loads(text)
            except orjson.JSONDecodeError:
                await self.refuse(None, RequestProblem("notJSON", "the message is not JSON"))
                continue
            try:
                await self.handle(payload)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return

    async def refuse(self, request_id: Any, problem: RequestProblem) -> None:
        body: dict[str, Any] = {"@type": "RequestError", **problem.body()}
        if isinstance(request_id, str):
            body["requestId"] = request_id
        await self.send(body)

    async def handle(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            await self.refuse(None, RequestProblem("notRequest", "a message is a JSON object with @type"))
            return
        kind = payload.get("@type")
        request_id = payload.get("id")
        if kind == "Request":
            request = {k: v for k, v in payload.items() if k not in ("@type", "id")}
            try:
                response = await self.processor.process(
                    request, self.principal, client_ip=self.ip, headers=self.ws.headers
                )
            except RequestProblem as problem:
                await self.refuse(request_id, problem)
                return
            except MailroomError as exc:
                await self.refuse(request_id, RequestProblem("limit", exc.message, status=exc.status))
                return
            out: dict[str, Any] = {"@type": "Response", **response}
            if isinstance(request_id, str):
                out["requestId"] = request_id
            await self.send(out)
        elif kind == "WebSocketPushEnable":
            types = payload.get("dataTypes")
            if types is not None and (
                not isinstance(types, list) or not all(isinstance(t, str) for t in types)
            ):
                await self.refuse(
                    request_id, RequestProblem("notRequest", "dataTypes is null or a list of types")
                )
                return
            push_state = payload.get("pushState")
            try:
                await self.start_push(None if types is None else frozenset(types), push_state)
            except RequestProblem as problem:
                await self.refuse(request_id, problem)
        elif kind == "WebSocketPushDisable":
            await self.stop_push()
        else:
            await self.refuse(request_id, RequestProblem("notRequest", f"unknown @type {kind!r}"))

    async def start_push(self, wanted: frozenset[str] | None, push_state: Any) -> None:
        await self.stop_push()
        sub = await _subscribe(self.mailroom, self.user_id, None)
        if isinstance(push_state, str):
            current = await _current_state(self.mailroom, self.principal)
            if current is not None and push_state != current:
                # Something changed while the client was away: tell it at once.
                types = [t for t in PUSH_TYPES if wanted is None or t in wanted]
                await self.send(
                    {
                        "@type": "StateChange",
                        "changed": {self.account: dict.fromkeys(sorted(types), current)},
                        "pushState": current,
                    }
                )
        self.push = asyncio.create_task(self._pump(sub, wanted))

    async def stop_push(self) -> None:
        task, self.push = self.push, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _pump(self, sub: Subscription, wanted: frozenset[str] | None) -> None:
        heartbeat = self.mailroom.settings.push_heartbeat_seconds
        try:
            while True:
                try:
                    event = await _next(sub, heartbeat)
                except (StopAsyncIteration, SubscriberOverflow):
                    return
                if event is None:
                    if not await _still_valid(self.mailroom, self.bearer, self.user_id, self.ip):
                        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                            await self.ws.close(code=CLOSE_POLICY, reason="credentials no longer valid")
                        return
                    continue
                state = event.data.get("state")
                if state is None:
                    state = await _current_state(self.mailroom, self.principal)
                if state is None:
                    continue
                change = state_change(event, self.account, wanted, str(state))
                if change is not None:
                    change["pushState"] = str(state)
                    await self.send(change)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            await sub.aclose()


def known_types() -> Iterable[str]:
    return sorted(PUSH_TYPES)
