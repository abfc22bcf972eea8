"""JMAP over HTTP: the Session resource and the API endpoint (RFC 8620 §2, §3).

- ``GET /.well-known/jmap`` and ``GET <jmap_path>/session``: the Session.
- ``POST <jmap_path>/api``: a Request object in, a Response object out.

Authentication: ``Authorization: Basic`` (address and password or app password, through the
login guard) or ``Bearer`` (a session token or an API key acting as its owner), as over REST.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mailroom.auth.principal import Principal
from mailroom.errors import Forbidden, MailroomError, PayloadTooLarge, Unauthenticated
from mailroom.frontends.http_auth import authenticate, client_ip
from mailroom.frontends.http_body import read_body
from mailroom.frontends.jmap._core import Processor, session_state
from mailroom.frontends.jmap._problems import RequestProblem, error_response
from mailroom.frontends.rest.problems import unexpected_error_response
from mailroom.registry import CallInfo, Download, Upload
from mailroom.services.jmap.protocol import MethodError

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

JSON = "application/json"
WELL_KNOWN = "/.well-known/jmap"
#: A blob never changes (its id is its digest): a client may keep it.
CACHE_BLOB = "private, immutable, max-age=31536000"


def json_response(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, media_type=JSON, headers={"Cache-Control": "no-store"}
    )


class Slots:
    """At most ``limit`` things at once per account in this worker (maxConcurrentRequests,
    maxConcurrentUpload)."""

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.name = name
        self._busy: dict[int, int] = {}

    @contextlib.asynccontextmanager
    async def take(self, user_id: int) -> AsyncIterator[None]:
        held = self._busy.get(user_id, 0)
        if held >= self.limit:
            raise RequestProblem("limit", f"at most {self.limit} at once ({self.name})", limit=self.name)
        self._busy[user_id] = held + 1
        try:
            yield
        finally:
            left = self._busy[user_id] - 1
            if left:
                self._busy[user_id] = left
            else:
                del self._busy[user_id]


async def mailbox_principal(mailroom: Mailroom, request: Request) -> Principal:
    """The caller, who must stand for a mailbox (JMAP's accounts are mailboxes)."""
    principal = await authenticate(mailroom, request)
    if not principal.is_authenticated:
        raise Unauthenticated("send Authorization: Basic (address and password) or Bearer (token or key)")
    if principal.user_id is None:
        raise Forbidden("JMAP accounts are mailboxes: authenticate as a user or a key acting as one")
    return principal


class JmapHttp:
    def __init__(self, mailroom: Mailroom) -> None:
        self.mailroom = mailroom
        self.settings = mailroom.settings
        self.processor = Processor(mailroom)
        self.requests = Slots(self.settings.jmap_max_concurrent_requests, "maxConcurrentRequests")
        self.uploads = Slots(self.settings.jmap_max_concurrent_upload, "maxConcurrentUpload")
        self.base = self.settings.jmap_path.rstrip("/")

    def urls(self, request: Request) -> dict[str, str]:
        root = (self.settings.public_url or str(request.base_url)).rstrip("/")
        ws_root = "ws" + root.removeprefix("http") if root.startswith("http") else root
        b = self.base
        return {
            "apiUrl": f"{root}{b}/api",
            "downloadUrl": f"{root}{b}/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}",
            "uploadUrl": f"{root}{b}/upload/{{accountId}}/",
            "eventSourceUrl": (
                f"{root}{b}/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"
            ),
            "websocketUrl": f"{ws_root}{b}/ws",
        }

    async def session(self, request: Request) -> Response:
        try:
            principal = await mailbox_principal(self.mailroom, request)
            info = CallInfo(protocol="jmap", client_ip=principal.client_ip or client_ip(request))
            data = await self.mailroom.runner.invoke("jmap.session.get", {}, principal, info)
        except MailroomError as exc:
            return error_response(exc)
        urls = self.urls(request)
        ws = urls.pop("websocketUrl")
        data["capabilities"]["urn:ietf:params:jmap:websocket"]["url"] = ws
        data.update(urls)
        data["state"] = session_state(self.mailroom, principal)
        return json_response(data)

    async def api(self, request: Request) -> Response:
        try:
            principal = await mailbox_principal(self.mailroom, request)
        except MailroomError as exc:
            return error_response(exc)
        assert principal.user_id is not None
        media = (request.headers.get("content-type") or JSON).split(";", 1)[0].strip().lower()
        try:
            if media != JSON:
                raise RequestProblem("notJSON", f"send the request as {JSON}, not {media}")
            try:
                raw = await read_body(request, self.settings.jmap_max_size_request)
            except PayloadTooLarge:
                raise RequestProblem(
                    "limit",
                    f"the request is larger than {self.settings.jmap_max_size_request} bytes",
                    limit="maxSizeRequest",
                ) from None
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise RequestProblem("notJSON", f"the body is not JSON: {exc.msg}") from None
            async with self.requests.take(principal.user_id):
                result = await self.processor.process(
                    payload, principal, client_ip=client_ip(request), headers=request.headers
                )
        except RequestProblem as problem:
            return problem.response()
        except MailroomError as exc:
            return error_response(exc)
        return json_response(result)

    @property
    def api_path(self) -> str:
        return f"{self.base}/api"

    async def serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST <jmap_path>/api`` as a plain ASGI app: the web app sends it here without
        Starlette's routing and exception middleware (about a tenth of a request's CPU),
        as it does the REST API's methods; a bug is a 500 problem, as there."""
        try:
            response = await self.api(Request(scope, receive))
        except Exception as exc:
            response = unexpected_error_response(exc, instance=scope["path"])
        await response(scope, receive, send)

    def _info(self, request: Request, principal: Principal) -> CallInfo:
        return CallInfo(
            protocol="jmap",
            client_ip=principal.client_ip or client_ip(request),
            headers=request.headers,
            request_id=request.headers.get("x-request-id"),
        )

    async def upload(self, request: Request) -> Response:
        """``POST <jmap_path>/upload/{accountId}/``: the body is the blob (RFC 8620 §6.1)."""
        try:
            principal = await mailbox_principal(self.mailroom, request)
            assert principal.user_id is not None
            limit = self.settings.upload_max_bytes
            async with self.uploads.take(principal.user_id):
                try:
                    content = await read_body(request, limit)
                except PayloadTooLarge:
                    raise RequestProblem(
                        "limit", f"a blob is at most {limit} bytes", status=413, limit="maxSizeUpload"
                    ) from None
                media = request.headers.get("content-type") or "application/octet-stream"
                file = Upload.model_construct(content=content, filename=None, content_type=media)
                params = {"accountId": request.path_params["account"], "file": file}
                result = await self.mailroom.runner.invoke(
                    "jmap.blob.upload", params, principal, self._info(request, principal)
                )
        except RequestProblem as problem:
            return problem.response()
        except MethodError as exc:
            return error_response(exc, 404 if exc.type == "accountNotFound" else None)
        except MailroomError as exc:
            return error_response(exc)
        return json_response(result, status=201)

    async def download(self, request: Request) -> Response:
        """``GET <jmap_path>/download/{accountId}/{blobId}/{name}?accept={type}``."""
        try:
            principal = await mailbox_principal(self.mailroom, request)
            params = {
                "accountId": request.path_params["account"],
                "blobId": request.path_params["blob"],
                "name": request.path_params["name"],
                "type": request.query_params.get("accept") or None,
            }
            result = await self.mailroom.runner.invoke(
                "jmap.blob.download", params, principal, self._info(request, principal)
            )
        except MethodError as exc:
            return error_response(exc, 404 if exc.type == "accountNotFound" else None)
        except MailroomError as exc:
            return error_response(exc)
        assert isinstance(result, Download)
        name = result.filename or "blob"
        disposition = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
        return Response(
            result.content,
            media_type=result.content_type,
            headers={
                "Content-Disposition": disposition,
                "Cache-Control": "private, immutable, max-age=31536000",
            },
        )
