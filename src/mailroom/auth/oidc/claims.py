"""What a token's claims say, under the settings: which address, admin or not, which domains
managed, which scopes.

A refusal here is a :class:`~mailroom.errors.Forbidden` (403) that says why: the token was
valid, but it does not stand for a mailbox that may log in this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailroom.domain.names import normalize_address, normalize_domain
from mailroom.errors import Forbidden
from mailroom.settings import Settings


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    """The mailbox a token stands for and what the provider says of its roles.

    ``is_admin`` and ``managed_domains`` are None when the settings leave them to mailroom
    (no ``oidc_admin_group`` / ``oidc_manager_claim``).
    """

    email: str
    subject: str
    is_admin: bool | None
    managed_domains: frozenset[str] | None
    #: Method-name globs from the token's ``mailroom:`` scopes; None: every method.
    scopes: tuple[str, ...] | None


def _strings(value: Any) -> list[str]:
    """A claim that is a list of strings, or one string (space- or comma-separated)."""
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def email_of(claims: Mapping[str, Any], settings: Settings) -> str | None:
    value = claims.get(settings.oidc_email_claim)
    return value if isinstance(value, str) and value else None


def identity_of(claims: Mapping[str, Any], settings: Settings, *, with_scopes: bool) -> OidcIdentity:
    """The identity in ``claims`` (an ID token's or access token's, with userinfo merged).

    ``with_scopes``: an access token's ``scope`` claim limits the methods it may call."""
    raw = email_of(claims, settings)
    if raw is None:
        raise Forbidden(f"the identity provider gave no address (claim {settings.oidc_email_claim!r})")
    if claims.get("email_verified") is False and settings.oidc_email_claim == "email":
        raise Forbidden("the identity provider has not verified this address")
    try:
        email = normalize_address(raw)
    except ValueError:
        raise Forbidden("the identity provider's address is not a valid mail address") from None
    domain = email.rpartition("@")[2]
    allowed = settings.oidc_allowed_domains
    if allowed and domain not in allowed:
        raise Forbidden(f"the domain {domain} may not log in with OpenID Connect")
    is_admin: bool | None = None
    if settings.oidc_admin_group:
        is_admin = settings.oidc_admin_group in _strings(claims.get(settings.oidc_groups_claim))
    managed: frozenset[str] | None = None
    if settings.oidc_manager_claim:
        names = set()
        for name in _strings(claims.get(settings.oidc_manager_claim)):
            try:
                names.add(normalize_domain(name))
            except ValueError:
                continue
        managed = frozenset(names)
    scopes: tuple[str, ...] | None = None
    if with_scopes:
        prefix = settings.oidc_scope_prefix
        granted = [s[len(prefix) :] for s in _strings(claims.get("scope")) if prefix and s.startswith(prefix)]
        scopes = tuple(g for g in granted if g) or None
    subject = claims.get("sub")
    return OidcIdentity(
        email=email,
        subject=subject if isinstance(subject, str) else "",
        is_admin=is_admin,
        managed_domains=managed,
        scopes=scopes,
    )
