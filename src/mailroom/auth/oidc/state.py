"""The pending web login a browser carries from the redirect to the callback.

The state, nonce and PKCE verifier of a login started at ``/web/oidc/login`` are sealed
(AES-256-GCM, under a key derived from ``secret_key``) into a short-lived HttpOnly cookie
rather than kept in a worker's memory: the callback may reach another worker or host. The
callback accepts the provider's answer only when its ``state`` matches the cookie's (so a
login started in another browser, or forged by another site, is refused), and the ID token
only when its nonce matches. The cookie is spent by the callback, whatever its outcome.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: A login must come back within this many seconds.
LOGIN_TTL_SECONDS = 600


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    #: Where the app goes after the login: ``/`` (webmail) or ``/admin``.
    next_path: str
    created: float


class LoginStateBox:
    """Seals and opens :class:`PendingLogin` values (the cookie's content)."""

    def __init__(self, secret_key: str) -> None:
        key = hmac.new(secret_key.encode(), b"mailroom oidc login state v1", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "LoginStateBox(***)"

    def seal(self, pending: PendingLogin) -> str:
        body = orjson.dumps(
            [pending.state, pending.nonce, pending.code_verifier, pending.next_path, pending.created]
        )
        nonce = secrets.token_bytes(12)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, body, b"oidc")).decode().rstrip("=")

    def open(self, sealed: str, now: float) -> PendingLogin | None:
        """The pending login, or None when the value is not ours, was altered or is too old."""
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
            state, nonce, verifier, next_path, created = orjson.loads(
                self._aead.decrypt(raw[:12], raw[12:], b"oidc")
            )
        except (InvalidTag, ValueError, TypeError):
            return None
        if not isinstance(created, (int, float)) or not 0 <= now - created <= LOGIN_TTL_SECONDS:
            return None
        return PendingLogin(str(state), str(nonce), str(verifier), str(next_path), float(created))


def states_match(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())
