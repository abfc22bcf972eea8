"""The RPC protocols and ``POST /rpc``, which tells them apart.

Each protocol module in this package declares one :class:`RpcProtocol` as ``PROTOCOL``:
its name (the one ``CallInfo.protocol`` and the remote-access switches use), its own path,
the media types it accepts, a ``sniff(first_bytes)`` test, and the endpoint class that
serves it. Adding a protocol (JMAP, MCP, SOAP) means adding such a module; nothing here
changes.

``POST /rpc`` picks the protocol by ``Content-Type`` first and, when that names none of
them, by the first bytes of the body; a request no protocol recognises gets 415 with the
list of supported media types.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailroom.auth.principal import Principal
from mailroom.errors import MailroomError
from mailroom.frontends.http_auth import authenticate, client_ip
from mailroom.frontends.http_body import read_body
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

#: How many bytes of the body ``sniff`` functions see.
SNIFF_BYTES = 512
_BOM = b"\xef\xbb\xbf"


def media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def body_start(first: bytes) -> bytes:
    """The first bytes without a UTF-8 byte order mark and leading whitespace."""
    return first.removeprefix(_BOM).lstrip()


class RpcEndpoint:
    """What every RPC protocol's endpoint shares: body limits, credentials, call info."""

    protocol: ClassVar[str]

    def __init__(self, mailroom: Mailroom, media_types: tuple[str, ...]) -> None:
        self.mailroom = mailroom
        self.settings = mailroom.settings
        self.runner = mailroom.runner
        self.registry = mailroom.registry
        self.media_types = media_types

    async def dedicated(self, request: Request) -> Response:
        """The protocol's own path: its media types (or none at all) only."""
        media = media_type(request)
        if media and media not in self.media_types:
            return unsupported_media_type(self.media_types, media)
        return await self.handle(request, None)

    async def handle(self, request: Request, body: bytes | None) -> Response:
        """Answer one HTTP request; ``body`` is given when ``/rpc`` already read it."""
        raise NotImplementedError

    def routes(self) -> list[BaseRoute]:
        """Extra routes besides ``POST <path>`` (documents, discovery)."""
        return []

    async def read(self, request: Request, body: bytes | None) -> bytes:
        return body if body is not None else await read_body(request, self.settings.max_body_bytes)

    def credentials(self, request: Request) -> Credentials:
        return Credentials(self.mailroom, request)

    def call_info(self, request: Request, principal: Principal) -> CallInfo:
        return CallInfo(
            protocol=self.protocol,
            client_ip=principal.client_ip or client_ip(request),
            headers=request.headers,
            request_id=request.headers.get("x-request-id"),
        )


class Credentials:
    """The request's principal, worked out once and only when a call needs it.

    A password in Basic credentials costs an argon2 verification: a request that fails to
    parse never pays it. Bad credentials fail every call, public ones included, as over REST.
    """

    def __init__(self, mailroom: Mailroom, request: Request) -> None:
        self._mailroom = mailroom
        self._request = request
        self._principal: Principal | None = None
        self._error: MailroomError | None = None
        self.refused = False

    async def principal(self) -> Principal:
        if self._principal is None and self._error is None:
            try:
                self._principal = await authenticate(self._mailroom, self._request)
            except MailroomError as exc:
                self._error = exc
                self.refused = True
        if self._error is not None:
            raise self._error
        assert self._principal is not None
        return self._principal


@dataclass(frozen=True, slots=True)
class RpcProtocol:
    """How to recognise and serve one RPC protocol."""

    name: str
    path: str
    media_types: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    endpoint: Callable[[Mailroom, tuple[str, ...]], RpcEndpoint]

    def build(self, mailroom: Mailroom) -> RpcEndpoint:
        return self.endpoint(mailroom, self.media_types)


def protocols() -> list[RpcProtocol]:
    """Every ``PROTOCOL`` declared by a public module of this package, by name."""
    from mailroom.frontends import rpc

    found: list[RpcProtocol] = []
    for module in pkgutil.iter_modules(rpc.__path__):
        if module.name.startswith("_"):
            continue
        declared = getattr(importlib.import_module(f"{rpc.__name__}.{module.name}"), "PROTOCOL", None)
        if isinstance(declared, RpcProtocol):
            found.append(declared)
    return sorted(found, key=lambda p: p.name)


def choose(available: list[RpcProtocol], media: str, first: bytes) -> RpcProtocol | None:
    """The protocol a request speaks: by media type, else by its first bytes."""
    for protocol in available:
        if media in protocol.media_types:
            return protocol
    start = body_start(first)
    for protocol in available:
        if protocol.sniff(start):
            return protocol
    return None


def unsupported_media_type(supported: tuple[str, ...] | list[str], media: str) -> Response:
    body = {
        "type": "urn:mailroom:problem:unsupported_media_type",
        "title": "Unsupported media type",
        "status": 415,
        "detail": f"{media or 'this request'} is not a protocol this endpoint speaks",
        "code": "unsupported_media_type",
        "supported": list(supported),
    }
    return Response(
        orjson.dumps(body),
        status_code=415,
        media_type="application/problem+json",
        headers={"Accept-Post": ", ".join(supported)},
    )


class Dispatcher:
    """``POST /rpc``: one entry point for every enabled RPC protocol."""

    def __init__(self, mailroom: Mailroom, enabled: list[tuple[RpcProtocol, RpcEndpoint]]) -> None:
        self.limit = mailroom.settings.max_body_bytes
        self.enabled = enabled
        self.endpoints = {p.name: e for p, e in enabled}
        self.supported = [m for p, _ in enabled for m in p.media_types]

    async def endpoint(self, request: Request) -> Response:
        available = [p for p, _ in self.enabled]
        media = media_type(request)
        by_type = choose(available, media, b"") if media else None
        if by_type is not None:
            return await self.endpoints[by_type.name].handle(request, None)
        body = await read_body(request, self.limit)
        protocol = choose(available, media, body[:SNIFF_BYTES])
        if protocol is None:
            return unsupported_media_type(self.supported, media)
        return await self.endpoints[protocol.name].handle(request, body)


def rpc_routes(mailroom: Mailroom) -> list[BaseRoute]:
    """``POST /rpc``, each enabled protocol's own path and its extra routes.

    A protocol named in ``settings.disabled_protocols`` is not mounted at all.
    """
    disabled = set(mailroom.settings.disabled_protocols)
    enabled = [(p, p.build(mailroom)) for p in protocols() if p.name not in disabled]
    routes: list[BaseRoute] = []
    for protocol, endpoint in enabled:
        routes.append(Route(protocol.path, endpoint.dedicated, methods=["POST"], name=protocol.name))
        routes.extend(endpoint.routes())
    if enabled:
        routes.append(Route("/rpc", Dispatcher(mailroom, enabled).endpoint, methods=["POST"], name="rpc"))
    return routes
