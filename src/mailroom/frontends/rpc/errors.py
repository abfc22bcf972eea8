"""Domain errors → JSON-RPC error objects and XML-RPC faults: the RPC front-ends' one mapper.

Both protocols use the same numbers. The five codes the JSON-RPC 2.0 specification and the
XML-RPC fault-code interoperability specification share keep their meaning; every other
domain error is a *server error* in -32000..-32099 with a fixed number per stable code, so
a client can switch on the number or, better, on ``data.code`` (JSON-RPC) or the text
before the first colon of ``faultString`` (XML-RPC).

The remote provider (``mailroom.providers.remote``) reads ``data.code`` back into the same
exception classes.
"""

from __future__ import annotations

import logging
from typing import Any

from mailroom.errors import BadRequest, InternalError, InvalidParams, MailroomError

log = logging.getLogger("mailroom.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000

#: The specification's own messages for its own codes.
STANDARD_MESSAGES: dict[int, str] = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}

#: Stable code → RPC code. Never renumber one: clients switch on them. Server errors use
#: -32000 - <the HTTP status's last two digits> where that is unambiguous.
RPC_CODES: dict[str, int] = {
    "invalid_params": INVALID_PARAMS,
    "method_not_found": METHOD_NOT_FOUND,
    "internal_error": INTERNAL_ERROR,
    "bad_request": -32000,
    "unauthenticated": -32001,
    "otp_required": -32001,  # an unauthenticated login whose data.code says what to send
    "forbidden": -32003,
    "not_found": -32004,
    "conflict": -32009,
    "cannot_calculate_changes": -32010,
    "precondition_failed": -32012,
    "payload_too_large": -32013,
    "limit_exceeded": -32022,
    "rate_limited": -32029,
    "unavailable": -32053,
    # A forbidden of its own (403 is taken by ``forbidden``): a refused sender address.
    "sender_not_allowed": -32071,
}


class ProtocolError(BadRequest):
    """A request that is not valid JSON-RPC or XML-RPC (unparsable, wrongly shaped).

    It is a ``bad_request`` for the stable code, with the protocol's own number
    (-32700 parse error or -32600 invalid request).
    """

    def __init__(self, rpc_code: int, message: str, **data: Any) -> None:
        super().__init__(message, **data)
        self.rpc_code = rpc_code


def rpc_code(exc: MailroomError) -> int:
    if isinstance(exc, ProtocolError):
        return exc.rpc_code
    return RPC_CODES.get(exc.code, SERVER_ERROR)


def error_data(exc: MailroomError) -> dict[str, Any]:
    """``data`` of a JSON-RPC error: the stable code, the message, structured details."""
    data: dict[str, Any] = {k: v for k, v in exc.data.items() if not k.startswith("_")}
    data["code"] = exc.code
    data["detail"] = exc.message
    if isinstance(exc, InvalidParams):
        data["errors"] = [e.as_dict() for e in exc.errors]
    return data


def jsonrpc_error(exc: MailroomError) -> dict[str, Any]:
    """The JSON-RPC 2.0 error object for a domain error."""
    code = rpc_code(exc)
    return {"code": code, "message": STANDARD_MESSAGES.get(code, exc.message), "data": error_data(exc)}


def fault_string(exc: MailroomError) -> str:
    """``<stable code>: <message>``; field errors are listed when there are several."""
    text = f"{exc.code}: {exc.message}"
    if isinstance(exc, InvalidParams) and len(exc.errors) > 1:
        text += " [" + "; ".join(f"{e.loc}: {e.message}" for e in exc.errors) + "]"
    return text


def xmlrpc_fault(exc: MailroomError) -> tuple[int, str]:
    """``(faultCode, faultString)`` for a domain error."""
    return rpc_code(exc), fault_string(exc)


def unexpected(exc: BaseException, where: str) -> InternalError:
    """A foreign exception: logged with its traceback, answered without internals."""
    log.error("unexpected error in %s", where, exc_info=exc)
    return InternalError()
