"""Open mail and push connections, and cutting them when their access ends (``doveadm kick``).

Every long-lived connection that authenticated as a mailbox (an IMAP, POP3 or SMTP
submission session, a push stream, a JMAP WebSocket) registers here with its user, its
protocol and the credential it logged in with, and a ``close`` callback that ends it the way
its protocol says (IMAP ``* BYE``, POP3 ``-ERR``, SMTP ``421``, a WebSocket close). A
:class:`Revocation` says which connections lost their access: all of a user's, those of one
domain, those of some protocols (``enable_imap`` turned off), or those made with some
credentials (one app password, the password, one session token). The broker carries a
revocation to every worker (:meth:`Broker.revoke`): in this process at once, and through
Redis to the others when it is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger("mailroom.events")

#: ``close(reason)``: end the connection; called on the event loop, must not block (a
#: closer that needs to write schedules that itself).
Closer = Callable[[str], None]

#: The protocol names a connection registers under.
PROTOCOLS = frozenset({"imap", "pop3", "smtp", "push", "jmap"})


@dataclass(eq=False, slots=True)
class OpenSession:
    """One registered connection (compared by identity)."""

    user_id: int
    email: str
    protocol: str
    #: How it authenticated: ``password``, ``app:<id>``, ``session:<id>``, ``key:<id>``,
    #: ``proxy`` (a trusted proxy vouched), ``other``. Never a secret.
    credential: str
    close: Closer
    closed: bool = False


@dataclass(frozen=True, slots=True)
class Revocation:
    """Which open connections lost their access, and the reason they are told (no secret).

    A connection is cut when it belongs to ``user_id`` (or any user of ``domain``), speaks
    one of ``protocols`` (None: any), was made with one of ``credentials`` (None: any; an
    entry is a credential, ``app:abc``, or a kind of them, ``session``), and is not in
    ``keep``.
    """

    reason: str
    user_id: int | None = None
    domain: str | None = None
    protocols: frozenset[str] | None = None
    credentials: frozenset[str] | None = None
    keep: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.user_id is None and self.domain is None:
            raise ValueError("a revocation names a user or a domain")

    def matches(self, session: OpenSession) -> bool:
        if self.user_id is not None and session.user_id != self.user_id:
            return False
        if self.domain is not None and session.email.rpartition("@")[2] != self.domain:
            return False
        if self.protocols is not None and session.protocol not in self.protocols:
            return False
        credential = session.credential
        if credential in self.keep:
            return False
        if self.credentials is None:
            return True
        return credential in self.credentials or credential.partition(":")[0] in self.credentials

    def encode(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "user_id": self.user_id,
            "domain": self.domain,
            "protocols": sorted(self.protocols) if self.protocols is not None else None,
            "credentials": sorted(self.credentials) if self.credentials is not None else None,
            "keep": sorted(self.keep),
        }

    @classmethod
    def decode(cls, value: dict[str, Any]) -> Revocation:
        def strings(key: str) -> frozenset[str] | None:
            items = value.get(key)
            return None if items is None else frozenset(str(i) for i in items)

        user_id = value.get("user_id")
        domain = value.get("domain")
        return cls(
            reason=str(value["reason"])[:200],
            user_id=int(user_id) if user_id is not None else None,
            domain=str(domain) if domain is not None else None,
            protocols=strings("protocols"),
            credentials=strings("credentials"),
            keep=strings("keep") or frozenset(),
        )

    def dumps(self) -> bytes:
        return orjson.dumps(self.encode())


class OpenSessions:
    """This process's registered connections, by user."""

    def __init__(self) -> None:
        self._by_user: dict[int, set[OpenSession]] = {}

    def open(self, user_id: int, email: str, protocol: str, credential: str, close: Closer) -> OpenSession:
        """Register a connection; :meth:`end` it when it closes by itself."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}")
        session = OpenSession(user_id, email.lower(), protocol, credential, close)
        self._by_user.setdefault(user_id, set()).add(session)
        return session

    def end(self, session: OpenSession | None) -> None:
        if session is None:
            return
        session.closed = True
        held = self._by_user.get(session.user_id)
        if held is not None:
            held.discard(session)
            if not held:
                del self._by_user[session.user_id]

    def count(self, user_id: int | None = None) -> int:
        if user_id is not None:
            return len(self._by_user.get(user_id, ()))
        return sum(len(s) for s in self._by_user.values())

    def revoke(self, revocation: Revocation) -> int:
        """Close the matching connections of this process; how many."""
        if revocation.user_id is not None:
            candidates = list(self._by_user.get(revocation.user_id, ()))
        else:
            candidates = [s for held in self._by_user.values() for s in held]
        cut = 0
        for session in candidates:
            if session.closed or not revocation.matches(session):
                continue
            self.end(session)
            try:
                session.close(revocation.reason)
            except Exception:  # one connection's closer must not spare the others
                log.exception("could not close a %s connection of user %s", session.protocol, session.user_id)
            cut += 1
        return cut
