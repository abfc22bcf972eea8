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

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mailroom.auth.principal import Principal
from mailroom.errors import Forbidden, MailroomError, PayloadTooLarge, Unauthenticated
from mailroom.frontends.http_auth import authenticate, client_ip
from mailroom.frontends.http_body import read_body
from mailroom.frontends.jmap._core import Processor, session_state
from mailroom.frontends.jmap._problems import RequestProblem, error_response
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

JSON = "application/json"
WELL_KNOWN = "/.well-known/jmap"


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
