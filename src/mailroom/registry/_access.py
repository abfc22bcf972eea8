"""Declarative access policies, checked by the runner before a method runs.

A policy answers "may this principal call this method with these arguments?" from the
principal and the validated parameters alone. Checks that need the stored object (does this
thread belong to the caller?) stay in the services. A principal that fails a check on an
object it may not see gets the same ``NotFound`` the service would give for a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom.auth.principal import Principal
from mailroom.errors import Forbidden, NotFound, Unauthenticated


def _lookup(params: Any, path: str) -> Any:
    value = params
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if value is None:
            return None
    return value


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2].lower()


class Access:
    """Base policy. ``public`` policies let anonymous callers through."""

    public = False
    #: Short name shown in docs, OpenAPI (x-access) and the authorisation matrix.
    name = "authenticated"

    def check(self, principal: Principal, params: Any) -> None:
        if not principal.is_authenticated:
            raise Unauthenticated()

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class Public(Access):
    """Anyone, authenticated or not (signup, login, health)."""

    public = True
    name = "public"

    def check(self, principal: Principal, params: Any) -> None:
        return None


@dataclass(frozen=True)
class Authenticated(Access):
    """Any authenticated principal; the service scopes what they see."""

    name = "authenticated"


@dataclass(frozen=True)
class Admin(Access):
    """Global administrators only."""

    name = "admin"

    def check(self, principal: Principal, params: Any) -> None:
        super().check(principal, params)
        if not principal.is_admin:
            raise Forbidden("only global administrators may call this method")


@dataclass(frozen=True)
class Manager(Access):
    """Managers of the domain named by parameter ``param`` (a domain or an address), or admins.

    ``param=None`` means "any manager"; the service then limits results to their domains.
    """

    param: str | None = None
    kind: str = "domain"
    name = "manager"

    def check(self, principal: Principal, params: Any) -> None:
        super().check(principal, params)
        if principal.is_admin:
            return
        if not principal.managed_domains:
            raise Forbidden("only administrators and domain managers may call this method")
        if self.param is None:
            return
        value = _lookup(params, self.param)
        if value is None:
            return
        domain = _domain_of(str(value))
        if domain not in principal.managed_domains:
            # A domain is named as itself, also when the parameter is an address in it.
            raise NotFound.of(self.kind, domain if self.kind == "domain" else str(value))

    def describe(self) -> str:
        return "manager" if self.param is None else f"manager of {self.param}"


@dataclass(frozen=True)
class Owner(Access):
    """The user named by ``param`` themselves, a manager of their domain, or an admin."""

    param: str = "email"
    kind: str = "user"
    name = "owner"

    def check(self, principal: Principal, params: Any) -> None:
        super().check(principal, params)
        if principal.is_admin:
            return
        value = _lookup(params, self.param)
        if value is None:
            return
        address = str(value).lower()
        if principal.email == address or principal.can_manage(_domain_of(address)):
            return
        raise NotFound.of(self.kind, str(value))

    def describe(self) -> str:
        return f"owner of {self.param}"


@dataclass(frozen=True)
class UserSelf(Access):
    """A signed-in user acting on their own mailbox (the mail client API)."""

    name = "user"

    def check(self, principal: Principal, params: Any) -> None:
        super().check(principal, params)
        if principal.user_id is None:
            raise Forbidden("this method acts on a mailbox: authenticate as a user")


@dataclass(frozen=True)
class Internal(Access):
    """MTA lookups (Postfix socketmap, nginx auth_http) and the process itself."""

    name = "internal"

    def check(self, principal: Principal, params: Any) -> None:
        if principal.kind not in ("internal", "system"):
            if not principal.is_authenticated:
                raise Unauthenticated()
            raise Forbidden("this method is for the mail system's own lookups")
