"""Domain errors → JMAP method-level errors (RFC 8620 §3.6.2): the front-end's one mapper."""

from __future__ import annotations

from typing import Any

from mailroom.errors import MailroomError
from mailroom.services.jmap.protocol import MethodError

#: Stable code → JMAP method error type.
TYPES: dict[str, str] = {
    "invalid_params": "invalidArguments",
    "bad_request": "invalidArguments",
    "not_found": "invalidArguments",
    "conflict": "invalidArguments",
    "method_not_found": "unknownMethod",
    "unauthenticated": "forbidden",
    "forbidden": "forbidden",
    "sender_not_allowed": "forbidden",
    "cannot_calculate_changes": "cannotCalculateChanges",
    "precondition_failed": "stateMismatch",
    "payload_too_large": "requestTooLarge",
    "limit_exceeded": "requestTooLarge",
    "rate_limited": "serverUnavailable",
    "unavailable": "serverUnavailable",
    "internal_error": "serverFail",
}


def method_error(exc: MailroomError) -> dict[str, Any]:
    """The arguments of an ``error`` response for ``exc``."""
    if isinstance(exc, MethodError):
        return exc.wire()
    kind = TYPES.get(exc.code, "serverFail")
    out: dict[str, Any] = {"type": kind, "description": exc.message}
    if exc.code == "rate_limited" and "retry_after" in exc.data:
        out["retryAfter"] = exc.data["retry_after"]
    return out


def error(kind: str, description: str) -> dict[str, Any]:
    return {"type": kind, "description": description}
