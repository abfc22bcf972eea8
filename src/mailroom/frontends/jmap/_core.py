"""One JMAP request, from parsed JSON to its response (RFC 8620 §3): shared by the HTTP API
endpoint and the WebSocket (RFC 8887).

Each method call goes through ``runner.invoke("jmap.<Type>.<verb>", arguments, principal,
CallInfo(protocol="jmap"))``: validation, authorisation, rate limits and accounting are the
registry's, as for every protocol.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mailroom.auth.principal import Principal
from mailroom.errors import MailroomError
from mailroom.frontends.http_body import too_deep
from mailroom.frontends.jmap._errors import error, method_error
from mailroom.frontends.jmap._problems import RequestProblem
from mailroom.frontends.jmap._refs import InvalidReference, resolve
from mailroom.registry import CallInfo
from mailroom.services.jmap.protocol import CORE, MAIL, METHODS, SUBMISSION, VACATION, WEBSOCKET, JmapRequest

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.jmap")

CAPABILITIES = frozenset({CORE, MAIL, SUBMISSION, VACATION, WEBSOCKET})
#: Arrays and objects nested deeper than this are not a request (filters nest; not this deep).
MAX_DEPTH = 64
#: Method calls that follow another one (implicit /set calls) count against the same limit.
MAX_IMPLICIT = 16


def session_state(mailroom: Mailroom, principal: Principal) -> str:
    """The Session's state: changes when what the Session says would change."""
    s = mailroom.settings
    text = (
        f"{principal.user_id}:{principal.email}:{s.upload_max_bytes}:{s.jmap_max_size_request}:"
        f"{s.jmap_max_concurrent_requests}:{s.jmap_max_concurrent_upload}:{s.jmap_max_calls_in_request}:"
        f"{s.jmap_max_objects_in_get}:{s.jmap_max_objects_in_set}:{s.jmap_path}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_request(payload: Any, max_calls: int) -> tuple[list[str], list[list[Any]], dict[str, str] | None]:
    """``(using, methodCalls, createdIds)`` of a Request object, or the request-level problem."""
    if too_deep(payload, MAX_DEPTH):
        raise RequestProblem("notRequest", f"values nest deeper than {MAX_DEPTH} levels")
    if not isinstance(payload, dict):
        raise RequestProblem("notRequest", "a request is a JSON object with using and methodCalls")
    # Other properties are ignored (as Fastmail does): they do not change what is asked.
    using = payload.get("using")
    calls = payload.get("methodCalls")
    created = payload.get("createdIds")
    if not isinstance(using, list) or not all(isinstance(u, str) for u in using):
        raise RequestProblem("notRequest", "using must be an array of capability strings")
    if not isinstance(calls, list):
        raise RequestProblem("notRequest", "methodCalls must be an array")
    for call in calls:
        if (
            not isinstance(call, list)
            or len(call) != 3
            or not isinstance(call[0], str)
            or not isinstance(call[1], dict)
            or not isinstance(call[2], str)
        ):
            raise RequestProblem("notRequest", "each method call is [name, arguments object, call id]")
    if created is not None and (
        not isinstance(created, dict) or not all(isinstance(v, str) for v in created.values())
    ):
        raise RequestProblem("notRequest", "createdIds must map creation ids to ids")
    missing = [u for u in using if u not in CAPABILITIES]
    if missing:
        raise RequestProblem("unknownCapability", f"unknown capabilities: {', '.join(missing[:10])}"[:500])
    if len(calls) > max_calls:
        raise RequestProblem(
            "limit", f"at most {max_calls} method calls in one request", limit="maxCallsInRequest"
        )
    return using, calls, created


class Processor:
    """Runs the method calls of requests for one principal."""

    def __init__(self, mailroom: Mailroom) -> None:
        self.mailroom = mailroom
        self.runner = mailroom.runner

    async def process(
        self,
        payload: Any,
        principal: Principal,
        *,
        client_ip: str | None,
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """The Response object for a Request object (RequestProblem for a refused one)."""
        using, calls, given_ids = check_request(payload, self.mailroom.settings.jmap_max_calls_in_request)
        request = JmapRequest(created_ids=dict(given_ids or {}), using=frozenset(using))
        responses: list[list[Any]] = []
        for name, args, call_id in calls:
            responses.append(
                [*await self._one(name, args, call_id, request, responses, principal, client_ip, headers)]
            )
            implicit_left = MAX_IMPLICIT
            while request.implicit and implicit_left:
                implicit_left -= 1
                follow_name, follow_args = request.implicit.pop(0)
                responses.append(
                    [
                        *await self._one(
                            follow_name, follow_args, call_id, request, [], principal, client_ip, headers
                        )
                    ]
                )
            request.implicit.clear()
        out: dict[str, Any] = {
            "methodResponses": responses,
            "sessionState": session_state(self.mailroom, principal),
        }
        if given_ids is not None:
            out["createdIds"] = request.created_ids
        return out

    async def _one(
        self,
        name: str,
        args: dict[str, Any],
        call_id: str,
        request: JmapRequest,
        responses: list[list[Any]],
        principal: Principal,
        client_ip: str | None,
        headers: Mapping[str, str],
    ) -> tuple[str, dict[str, Any], str]:
        if name == "Core/echo":
            # No business logic to run: the arguments come back as they are (RFC 8620 §4),
            # after result references, which §3.7 resolves before any method call runs.
            try:
                return name, resolve(args, responses), call_id
            except InvalidReference as exc:
                return "error", error(exc.kind, str(exc)), call_id
        spec = METHODS.get(name)
        if spec is None or spec.capability not in request.using:
            why = "is not a method" if spec is None else f"needs {spec.capability} in using"
            return "error", error("unknownMethod", f"{name} {why}"), call_id
        try:
            resolved = resolve(args, responses)
        except InvalidReference as exc:
            return "error", error(exc.kind, str(exc)), call_id
        info = CallInfo(
            protocol="jmap",
            client_ip=principal.client_ip or client_ip,
            headers=headers,
            request_id=headers.get("x-request-id"),
            extra={"jmap": request},
        )
        try:
            result = await self.runner.invoke(spec.registry_name, resolved, principal, info)
        except MailroomError as exc:
            return "error", method_error(exc), call_id
        except Exception:
            log.exception("JMAP method %s failed", name)
            return "error", error("serverFail", "the method failed unexpectedly"), call_id
        if not isinstance(result, dict):
            log.error("JMAP method %s returned %s, not an object", name, type(result).__name__)
            return "error", error("serverFail", "the method failed unexpectedly"), call_id
        return name, result, call_id
