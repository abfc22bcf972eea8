"""JSON-RPC 2.0 over HTTP: ``POST /rpc/json``; the OpenRPC document at ``GET /rpc/openrpc.json``.

The whole specification: parameters by name (object) or by position (array, in the
method's declaration order), notifications (no ``id``: no reply, whatever happens),
batches (answered in order, without entries for notifications; an empty batch is one
Invalid Request; a batch of only notifications gets no body at all). A well-formed POST
always gets HTTP 200, or 204 when there is nothing to return.

Method names are the registry's; ``rpc.*`` is reserved by the specification, and
``rpc.discover`` answers the OpenRPC document. Errors come from the one mapper in
:mod:`mailroom.frontends.rpc.errors`.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailroom.errors import FieldError, InvalidParams, MailroomError, MethodNotFound
from mailroom.frontends.http_body import too_deep
from mailroom.frontends.rpc.detect import Credentials, RpcEndpoint, RpcProtocol
from mailroom.frontends.rpc.errors import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ProtocolError,
    jsonrpc_error,
    unexpected,
)
from mailroom.frontends.rpc.openrpc import build_document
from mailroom.registry import Download

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

JSON = "application/json"
MEDIA_TYPES = (JSON, "application/json-rpc", "application/jsonrequest")
WWW_AUTHENTICATE = 'Bearer realm="mailroom", Basic realm="mailroom"'


def sniff(first: bytes) -> bool:
    """A JSON-RPC body is a JSON object or array."""
    return first[:1] in (b"{", b"[")


def download_result(result: Download) -> dict[str, Any]:
    return {
        "content_base64": base64.b64encode(result.content).decode("ascii"),
        "content_type": result.content_type,
        "filename": result.filename,
    }


def _valid_id(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, (int, float)) and not isinstance(value, bool))
    )


class JsonRpcEndpoint(RpcEndpoint):
    protocol = "jsonrpc"

    def __init__(self, mailroom: Mailroom, media_types: tuple[str, ...]) -> None:
        super().__init__(mailroom, media_types)
        self._document: dict[str, Any] | None = None

    # -- HTTP ---------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [Route("/rpc/openrpc.json", self.openrpc_endpoint, methods=["GET"], name="openrpc")]

    async def openrpc_endpoint(self, request: Request) -> Response:
        return Response(orjson.dumps(self.document(request)), media_type=JSON)

    def document(self, request: Request) -> dict[str, Any]:
        if self._document is None:
            from mailroom import __version__

            self._document = build_document(
                self.registry, protocol=self.protocol, title="mailroom JSON-RPC API", version=__version__
            )
        base = self.settings.public_url or str(request.base_url)
        return {**self._document, "servers": [{"name": "mailroom", "url": base.rstrip("/") + "/rpc/json"}]}

    async def handle(self, request: Request, body: bytes | None) -> Response:
        credentials = self.credentials(request)
        try:
            raw = await self.read(request, body)
        except MailroomError as exc:
            return self._reply(self._error(None, exc), credentials)
        try:
            payload = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))  # a BOM may be ignored (RFC 8259)
        except orjson.JSONDecodeError as exc:
            error = ProtocolError(PARSE_ERROR, f"the body is not valid JSON: {exc.msg}")
            return self._reply(self._error(None, error), credentials)
        if too_deep(payload, self.settings.rpc_max_depth):
            error = ProtocolError(
                INVALID_REQUEST, f"values are nested deeper than {self.settings.rpc_max_depth} levels"
            )
            return self._reply(self._error(None, error), credentials)
        if isinstance(payload, list):
            return await self._batch(payload, request, credentials)
        return self._reply(await self._one(payload, request, credentials), credentials)

    async def _batch(self, items: list[Any], request: Request, credentials: Credentials) -> Response:
        if not items:
            return self._reply(
                self._error(None, ProtocolError(INVALID_REQUEST, "the batch is empty")), credentials
            )
        limit = self.settings.jsonrpc_max_batch
        if len(items) > limit:
            error = ProtocolError(
                INVALID_REQUEST,
                f"a batch holds at most {limit} calls; this one has {len(items)}",
                limit=limit,
            )
            return self._reply(self._error(None, error), credentials)
        replies = []
        # In order, one after another: a batch may create something and then read it.
        for item in items:
            reply = await self._one(item, request, credentials)
            if reply is not None:
                replies.append(reply)
        return self._reply(replies or None, credentials)

    def _reply(
        self, content: dict[str, Any] | list[dict[str, Any]] | None, credentials: Credentials
    ) -> Response:
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if credentials.refused else None
        if content is None:
            return Response(status_code=204, headers=headers)
        try:
            rendered = orjson.dumps(content)
        except TypeError as exc:  # a result JSON cannot carry (an integer beyond 64 bits)
            error = unexpected(exc, "JSON-RPC serialisation")
            if isinstance(content, list):
                rendered = orjson.dumps([self._safe(r, error) for r in content])
            else:
                rendered = orjson.dumps(self._error(content.get("id"), error))
        return Response(rendered, media_type=JSON, headers=headers)

    def _safe(self, reply: dict[str, Any], error: MailroomError) -> dict[str, Any]:
        try:
            orjson.dumps(reply)
        except TypeError:
            return self._error(reply.get("id"), error)
        return reply

    # -- one call -----------------------------------------------------------------------
    @staticmethod
    def _error(request_id: Any, exc: MailroomError) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "error": jsonrpc_error(exc), "id": request_id}

    async def _one(self, item: Any, request: Request, credentials: Credentials) -> dict[str, Any] | None:
        if not isinstance(item, dict):
            return self._error(None, ProtocolError(INVALID_REQUEST, "a request is a JSON object"))
        request_id = item.get("id")
        if not _valid_id(request_id):
            return self._error(None, ProtocolError(INVALID_REQUEST, '"id" is a string, a number or null'))
        if item.get("jsonrpc") != "2.0":
            return self._error(request_id, ProtocolError(INVALID_REQUEST, '"jsonrpc" must be exactly "2.0"'))
        method = item.get("method")
        if not isinstance(method, str) or not method:
            return self._error(request_id, ProtocolError(INVALID_REQUEST, '"method" must be a string'))
        params = item.get("params")
        if "params" in item and not isinstance(params, (list, dict)):
            return self._error(
                request_id, ProtocolError(INVALID_REQUEST, '"params" is an array or an object')
            )
        notification = "id" not in item
        try:
            result = await self._dispatch(method, params, request, credentials)
        except MailroomError as exc:
            return None if notification else self._error(request_id, exc)
        except Exception as exc:
            error = unexpected(exc, f"JSON-RPC call {method}")
            return None if notification else self._error(request_id, error)
        if notification:
            return None
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    async def _dispatch(self, method: str, params: Any, request: Request, credentials: Credentials) -> Any:
        principal = await credentials.principal()
        if method.startswith("rpc."):
            if method == "rpc.discover":
                if params:
                    raise InvalidParams(
                        [FieldError("params", "rpc.discover takes no parameters", "too_many")]
                    )
                return self.document(request)
            raise MethodNotFound(f"unknown method {method!r}", method=method)
        result = await self.runner.invoke(method, params, principal, self.call_info(request, principal))
        if isinstance(result, Download):
            return download_result(result)
        return result


def _build(mailroom: Mailroom, media_types: tuple[str, ...]) -> RpcEndpoint:
    return JsonRpcEndpoint(mailroom, media_types)


PROTOCOL = RpcProtocol(
    name="jsonrpc", path="/rpc/json", media_types=MEDIA_TYPES, sniff=sniff, endpoint=_build
)

__all__ = ["MEDIA_TYPES", "PROTOCOL", "JsonRpcEndpoint", "sniff"]
