"""The request a registry endpoint reads: unpacked once from the ASGI scope."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope


class ApiRequest:
    """What a registry endpoint reads of an HTTP request, unpacked once from the ASGI scope.

    Headers become one dict (names are lower-case in ASGI; a repeated header keeps its
    last value), the query string is parsed only when there is one, the body is read from
    ``receive`` as it comes. Starlette's ``Request`` looks each header up by a scan of the
    raw list and builds an address object for the client: small costs, but on every call.
    """

    __slots__ = ("_query", "client_ip", "headers", "path_params", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        self.client_ip: str | None = client[0] if client else None
        self.path_params: dict[str, str] = scope.get("path_params") or {}
        self._query: QueryParams | None = None

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    yield body
                if not message.get("more_body", False):
                    return
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
