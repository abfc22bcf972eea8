"""The ``jmap`` API object and the declaration of JMAP methods.

A JMAP method (``Mailbox/get``) is a registry method named ``jmap.Mailbox.get``: the JMAP
front-end turns each method call of a request into one ``runner.invoke`` of it, so every
call is validated, authenticated, authorised, rate-limited and accounted like a REST or RPC
call. :func:`method` declares one and records which capability a request must be ``using``
to reach it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mailroom.registry import Api, UserSelf

F = TypeVar("F", bound=Callable[..., Any])

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"
WEBSOCKET = "urn:ietf:params:jmap:websocket"

#: ``Type/verb`` as RFC 8620 spells method names.
JMAP_NAME = re.compile(r"^([A-Z][A-Za-z]{0,63})/([a-z][A-Za-z]{0,63})$")
#: Verbs that change something (the runner's idempotency, audit and key-cache filters).
_MUTATING_VERBS = frozenset({"set", "copy", "import"})

api = Api(
    "jmap",
    title="JMAP",
    description="The JMAP methods (RFC 8620, 8621), served at the JMAP API endpoint; see docs/jmap.md.",
)


@dataclass(frozen=True, slots=True)
class JmapMethod:
    """What the front-end needs to know of a JMAP method beyond its registry spec."""

    name: str  # "Mailbox/get"
    registry_name: str  # "jmap.Mailbox.get"
    capability: str


#: Every declared JMAP method by its JMAP name.
METHODS: dict[str, JmapMethod] = {}


def registry_name(jmap_name: str) -> str | None:
    """``Mailbox/get`` → ``jmap.Mailbox.get``; None for a name that is not ``Type/verb``."""
    m = JMAP_NAME.match(jmap_name)
    return f"jmap.{m.group(1)}.{m.group(2)}" if m else None


def method(name: str, *, capability: str, mutating: bool | None = None) -> Callable[[F], F]:
    """Declare the JMAP method ``name`` (``Mailbox/get``) on the ``jmap`` API.

    The function's parameters are the method's arguments, with their JMAP names
    (``accountId``, ``ids``, ``ifInState``); unknown arguments are ``invalidArguments``.
    It returns the response arguments (a pydantic model, dumped by alias).
    """
    target = registry_name(name)
    if target is None:
        raise ValueError(f"JMAP method name {name!r} is not Type/verb")
    verb = name.partition("/")[2]
    if mutating is None:
        mutating = verb in _MUTATING_VERBS

    def decorate(func: F) -> F:
        if name in METHODS:
            raise ValueError(f"JMAP method {name} declared twice")
        api.method(target, access=UserSelf(), mutating=mutating)(func)
        METHODS[name] = JmapMethod(name=name, registry_name=target, capability=capability)
        return func

    return decorate
