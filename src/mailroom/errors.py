"""Domain errors: one hierarchy with stable codes, mapped once per protocol.

Services raise these; each front-end has a single mapper from ``MailroomError`` to its
wire format (HTTP problem+json, JSON-RPC error object, XML-RPC fault, SMTP reply). The
``code`` is part of the public contract: clients switch on it, so never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field, located by a path such as ``user.email``."""

    loc: str
    message: str
    type: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "message": self.message, "type": self.type}


class MailroomError(Exception):
    """Base of every error a client may see.

    ``status`` is the HTTP status the REST front-end uses; the RPC front-ends derive their
    own codes from ``code``. ``data`` holds structured, non-secret details.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request failed"

    def __init__(self, message: str | None = None, **data: Any) -> None:
        self.message = message or self.title
        self.data: dict[str, Any] = data
        #: Protocol hints with HTTP meaning (``Retry-After``, ``RateLimit``); other
        #: protocols carry the same facts in ``data``.
        self.headers: dict[str, str] = {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            out["data"] = self.data
        return out


class InvalidParams(MailroomError):
    """Input did not validate; ``errors`` says which field and why."""

    code = "invalid_params"
    status = 422
    title = "Invalid parameters"

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        self.errors = errors
        if message is None:
            first = errors[0] if errors else None
            message = f"{first.loc}: {first.message}" if first else self.title
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more)"
        super().__init__(message)

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out["errors"] = [e.as_dict() for e in self.errors]
        return out


class BadRequest(MailroomError):
    """The request as a whole is malformed (not one field)."""

    code = "bad_request"
    status = 400
    title = "Bad request"


class Unauthenticated(MailroomError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class OtpRequired(Unauthenticated):
    """The password was right, and the account has a second factor: send ``otp`` too."""

    code = "otp_required"
    title = "A one-time code is required"


class Forbidden(MailroomError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class SenderNotAllowed(Forbidden):
    """A sender address (envelope, From or Sender) the authenticated user may not send as.

    ``data``: ``field`` (``mail_from``, ``from`` or ``sender``) and ``address``. SMTP answers
    it with ``553 5.7.1``.
    """

    code = "sender_not_allowed"
    title = "Sender address not allowed"


class NotFound(MailroomError):
    code = "not_found"
    status = 404
    title = "Not found"

    @classmethod
    def of(cls, kind: str, key: object) -> NotFound:
        """The one message for a missing object, whether absent or not visible to the caller."""
        return cls(f"{kind} {key!s} not found", kind=kind)


class MethodNotFound(MailroomError):
    code = "method_not_found"
    status = 404
    title = "Unknown method"


class Conflict(MailroomError):
    code = "conflict"
    status = 409
    title = "Conflict"


class PreconditionFailed(MailroomError):
    """The object changed since the version the client named (``If-Match`` / ``if_version``)."""

    code = "precondition_failed"
    status = 412
    title = "Precondition failed"


class CannotCalculateChanges(MailroomError):
    """Changes since a state older than the change log keeps (JMAP ``cannotCalculateChanges``):
    the client must sync again from scratch."""

    code = "cannot_calculate_changes"
    status = 410
    title = "Cannot calculate changes"

    def __init__(self, since: int, oldest: int) -> None:
        super().__init__(
            f"changes since state {since} are no longer kept (oldest state: {oldest}); sync again",
            since=since,
            oldest=oldest,
        )


class LimitExceeded(MailroomError):
    """A configured limit (domain max users, quota cap, ...) would be exceeded."""

    code = "limit_exceeded"
    status = 422
    title = "Limit exceeded"


class PayloadTooLarge(MailroomError):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class RateLimited(MailroomError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int, **data: Any) -> None:
        super().__init__(message, retry_after=retry_after, **data)
        self.retry_after = retry_after


class Unavailable(MailroomError):
    code = "unavailable"
    status = 503
    title = "Service unavailable"


class InternalError(MailroomError):
    """An unexpected failure; the message never carries internals."""

    code = "internal_error"
    status = 500
    title = "Internal error"


#: Every error class, for documentation (OpenAPI/OpenRPC error lists).
ERRORS: tuple[type[MailroomError], ...] = (
    InvalidParams,
    BadRequest,
    Unauthenticated,
    OtpRequired,
    Forbidden,
    SenderNotAllowed,
    NotFound,
    MethodNotFound,
    Conflict,
    PreconditionFailed,
    CannotCalculateChanges,
    LimitExceeded,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    InternalError,
)
