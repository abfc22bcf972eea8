"""Who is calling: the result of authentication, handed to the runner with every call."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

PrincipalKind = Literal["anonymous", "user", "apikey", "system", "internal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated (or anonymous) caller.

    ``kind`` says how they proved it: a user session or password (``user``), an API key
    (``apikey``, acting as its owner or, without an owner, as an admin), the process itself
    (``system``: CLI and in-process calls) or an MTA lookup (``internal``).
    """

    kind: PrincipalKind
    user_id: int | None = None
    email: str | None = None
    is_admin: bool = False
    managed_domains: frozenset[str] = field(default_factory=frozenset)
    key_id: str | None = None
    session_id: str | None = None
    scopes: tuple[str, ...] | None = None
    client_ip: str | None = None
    #: The app password a mail protocol login used (its id, never the secret).
    app_password_id: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def domain(self) -> str | None:
        return self.email.rpartition("@")[2] if self.email else None

    def can_manage(self, domain: str) -> bool:
        """Global admins manage every domain; managers only theirs."""
        return self.is_admin or domain in self.managed_domains

    @property
    def manages_any(self) -> bool:
        return self.is_admin or bool(self.managed_domains)

    def allows_method(self, name: str) -> bool:
        """API-key scopes are method-name globs; no scopes means every method."""
        if self.scopes is None:
            return True
        return any(fnmatchcase(name, pattern) for pattern in self.scopes)

    @property
    def credential(self) -> str:
        """What this principal logged in with, as an open connection registers it
        (``mailroom.events.OpenSessions``): ``key:<id>``, ``session:<id>``, ``app:<id>``,
        ``password``; ids only, never a secret."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        if self.session_id is not None:
            return f"session:{self.session_id}"
        if self.app_password_id is not None:
            return f"app:{self.app_password_id}"
        if self.kind == "user":
            return "password"
        return "other"

    @property
    def label(self) -> str:
        """A short, non-secret description for logs and audit entries."""
        if self.kind == "apikey":
            return f"key:{self.key_id}" + (f"({self.email})" if self.email else "")
        if self.email:
            return self.email
        return self.kind


ANONYMOUS = Principal(kind="anonymous")
SYSTEM = Principal(kind="system", is_admin=True)
INTERNAL = Principal(kind="internal")


def anonymous(client_ip: str | None) -> Principal:
    return Principal(kind="anonymous", client_ip=client_ip) if client_ip else ANONYMOUS
