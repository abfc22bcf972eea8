"""Request-level errors (RFC 8620 §3.6.1): problem details with the JMAP error types."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from mailroom.errors import MailroomError, RateLimited, Unauthenticated

PROBLEM = "application/problem+json"
JMAP_ERROR = "urn:ietf:params:jmap:error:"
WWW_AUTHENTICATE = 'Basic realm="mailroom", Bearer realm="mailroom"'


class RequestProblem(Exception):
    """A request JMAP refuses as a whole: ``unknownCapability``, ``notJSON``, ``notRequest``
    or ``limit`` (``limit`` names the limit)."""

    def __init__(self, kind: str, detail: str, status: int = 400, **fields: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return {"type": JMAP_ERROR + self.kind, "status": self.status, "detail": self.detail, **self.fields}

    def response(self) -> Response:
        return Response(orjson.dumps(self.body()), status_code=self.status, media_type=PROBLEM)


def error_response(exc: MailroomError, status: int | None = None) -> Response:
    """Any other refusal of a whole request (authentication, rate limits): problem JSON with
    mailroom's own type, as the REST API sends it."""
    body: dict[str, Any] = {
        "type": f"urn:mailroom:problem:{exc.code}",
        "title": exc.title,
        "status": status or exc.status,
        "detail": exc.message,
    }
    headers: dict[str, str] = dict(exc.headers)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(orjson.dumps(body), status_code=status or exc.status, media_type=PROBLEM, headers=headers)
