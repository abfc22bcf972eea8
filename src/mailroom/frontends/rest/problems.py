"""Domain errors → RFC 9457 ``application/problem+json``: the REST front-end's one mapper."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from mailroom.errors import InternalError, InvalidParams, MailroomError, RateLimited, Unauthenticated

PROBLEM = "application/problem+json"
log = logging.getLogger("mailroom.rest")


def problem_type(code: str) -> str:
    """A stable URI per error code (documented in docs/api.md)."""
    return f"urn:mailroom:problem:{code}"


def problem_body(exc: MailroomError, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(exc.code),
        "title": exc.title,
        "status": exc.status,
        "detail": exc.message,
        "code": exc.code,
    }
    if instance:
        body["instance"] = instance
    if isinstance(exc, InvalidParams):
        body["errors"] = [e.as_dict() for e in exc.errors]
    if exc.data:
        body["data"] = exc.data
    return body


def problem_response(exc: MailroomError, instance: str | None = None) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="mailroom", Basic realm="mailroom"'
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.code == "method_not_allowed":
        headers["Allow"] = ", ".join(exc.data.get("allowed", []))
    headers.update(exc.headers)
    return Response(
        orjson.dumps(problem_body(exc, instance)), status_code=exc.status, media_type=PROBLEM, headers=headers
    )


def unexpected_error_response(exc: Exception, instance: str | None = None) -> Response:
    if isinstance(exc, ClientDisconnect):  # the client left while sending its body: not a bug
        log.info("client disconnected before its request body ended at %s", instance)
    else:
        log.error("unexpected error at %s", instance, exc_info=exc)
    return problem_response(InternalError(), instance)
