"""JMAP method-level errors (RFC 8620 §3.6.2 and the /get, /set, /changes, /query ones).

A service raises :class:`MethodError` with the RFC's ``type``; other domain errors are
mapped by the front-end (``invalid_params`` → ``invalidArguments``, ``forbidden`` →
``forbidden``, ``cannot_calculate_changes`` → ``cannotCalculateChanges`` ...).
"""

from __future__ import annotations

from typing import Any

from mailroom.errors import MailroomError

#: Method-level error types a service may raise (RFC 8620, RFC 8621).
METHOD_ERROR_TYPES = frozenset(
    {
        "serverUnavailable",
        "serverFail",
        "serverPartialFail",
        "unknownMethod",
        "invalidArguments",
        "invalidResultReference",
        "forbidden",
        "accountNotFound",
        "accountNotSupportedByMethod",
        "accountReadOnly",
        "requestTooLarge",
        "cannotCalculateChanges",
        "stateMismatch",
        "tooManyChanges",
        "anchorNotFound",
        "unsupportedSort",
        "unsupportedFilter",
        "fromAccountNotFound",
        "fromAccountNotSupportedByMethod",
    }
)


class MethodError(MailroomError):
    """A JMAP method error: ``type`` is the RFC's name, extra fields go into the response."""

    code = "jmap_method_error"
    status = 400
    title = "JMAP method error"

    def __init__(self, type: str, description: str | None = None, **fields: Any) -> None:
        if type not in METHOD_ERROR_TYPES:
            raise ValueError(f"not a JMAP method error type: {type}")
        super().__init__(description or type, type=type, **fields)
        self.type = type
        self.description = description
        self.fields = fields

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.description:
            out["description"] = self.description
        out.update(self.fields)
        return out


class AccountNotFound(MethodError):
    """``accountNotFound``: another mailbox's account answers as a missing one does, so its
    stable code is ``not_found`` on every protocol (JMAP says ``accountNotFound``)."""

    code = "not_found"
    status = 404

    def __init__(self, given: str) -> None:
        super().__init__("accountNotFound", f"no account {given}")
