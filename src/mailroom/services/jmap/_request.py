"""What the method calls of one JMAP request share: created ids and implicit calls.

The front-end puts a :class:`JmapRequest` into ``ctx.call.extra["jmap"]`` for every call of
a request. A method called another way (in-process, JSON-RPC) gets a fresh one: it has no
earlier calls to refer to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailroom.registry import Context
from mailroom.services.jmap._errors import MethodError

EXTRA_KEY = "jmap"


@dataclass(slots=True)
class JmapRequest:
    """``createdIds`` (creation id → id, RFC 8620 §3.3) and calls a method asks to follow it."""

    created_ids: dict[str, str] = field(default_factory=dict)
    #: ``(method name, arguments)`` the front-end runs right after the current call, with
    #: the same call id (RFC 8621's ``onSuccessDestroyOriginal``, ``onSuccessUpdateEmail``).
    implicit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: The capabilities the request is ``using``.
    using: frozenset[str] = frozenset()


def request_of(ctx: Context) -> JmapRequest:
    """The JMAP request this call belongs to (a fresh one outside a JMAP request)."""
    found = ctx.call.extra.get(EXTRA_KEY)
    if isinstance(found, JmapRequest):
        return found
    made = JmapRequest()
    ctx.call.extra[EXTRA_KEY] = made
    return made


def created(ctx: Context, creation_id: str, object_id: str) -> None:
    """Record that ``creation_id`` of a /set ``create`` made ``object_id``."""
    request_of(ctx).created_ids[creation_id] = object_id


def resolve(ctx: Context, value: str) -> str | None:
    """An id as given (``"M12"``) or a creation reference (``"#new"``) resolved; None when the
    reference names nothing created in this request (RFC 8620 §5.3)."""
    if not value.startswith("#"):
        return value
    return request_of(ctx).created_ids.get(value[1:])


def resolve_or_fail(ctx: Context, value: str) -> str:
    """Like :func:`resolve`, but an unknown reference is ``invalidArguments``."""
    found = resolve(ctx, value)
    if found is None:
        raise MethodError("invalidArguments", f"{value} refers to no object created in this request")
    return found


def then_call(ctx: Context, name: str, arguments: dict[str, Any]) -> None:
    """Run JMAP method ``name`` right after this one, as RFC 8621 §4.7 and §7.5 describe
    (its response follows this one's, with the same call id)."""
    request_of(ctx).implicit.append((name, arguments))
