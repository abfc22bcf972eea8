"""Issuing and checking high-entropy secrets: API keys, session tokens, invite tokens.

A secret looks like ``<prefix>_<lookup id>_<random>``, for example ``mrk_Xb3kQ9aZ_4f...``.  The
prefix says what kind of secret it is (so a leaked one is recognisable, and secret scanners can
match it); the lookup id is stored in clear in an indexed column, so the server finds the one row
to check without scanning; the random part carries the secret's strength.

Only the SHA-256 hex digest of the whole secret is stored.  A slow password hash such as argon2
would add nothing here: it exists to make guessing low-entropy human passwords expensive, but the
random part alone is 256 bits, far beyond any brute force, so a fast digest is just as safe and
keeps every authenticated request cheap.

Lookup ids are 8 random alphanumerics (about 47 bits), which makes collisions rare but possible
over many millions of secrets: the store should keep them in a unique index and issue a new secret
on conflict.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

__all__ = [
    "LOOKUP_ID_LENGTH",
    "IssuedSecret",
    "digest",
    "digests_equal",
    "looks_issued",
    "matches",
    "new_secret",
    "parse_secret",
]

LOOKUP_ID_LENGTH = 8
_RANDOM_BYTES = 32  # 256 bits; token_urlsafe renders them as 43 characters.
_MIN_RANDOM_CHARS = 32
_MAX_RANDOM_CHARS = 256  # Far above what we issue; bounds the work done on junk input.

_LOOKUP_ALPHABET = string.ascii_letters + string.digits
# Prefixes cannot contain "_", which separates the parts, and stay short and readable.
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,15}")
_LOOKUP_ID = re.compile(rf"[A-Za-z0-9]{{{LOOKUP_ID_LENGTH}}}")
_RANDOM = re.compile(rf"[A-Za-z0-9_-]{{{_MIN_RANDOM_CHARS},{_MAX_RANDOM_CHARS}}}")


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A newly issued secret: show ``secret`` to its owner once; store the other two fields.

    Attributes:
        secret: The full secret, ``<prefix>_<lookup_id>_<random>``.
        lookup_id: The part the server indexes to find the stored row.
        digest: SHA-256 hex digest of ``secret``, the only thing stored about it.
    """

    secret: str
    lookup_id: str
    digest: str

    def __repr__(self) -> str:
        # Keep the secret out of logs and tracebacks.
        return f"IssuedSecret(secret='***', lookup_id={self.lookup_id!r}, digest={self.digest!r})"


def new_secret(prefix: str, lookup_id: str | None = None) -> IssuedSecret:
    """Issue a new secret of the given kind.

    Args:
        prefix: What kind of secret this is, e.g. ``"mrk"`` for API keys; a lowercase letter
            followed by up to 15 lowercase letters or digits.
        lookup_id: Keep this lookup id (a renewed session keeps its id); default: a new one.

    Raises:
        ValueError: The prefix or lookup id does not have that shape (a programming error,
            not user input).
    """
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"secret prefix must match {_PREFIX.pattern}, got {prefix!r}")
    if lookup_id is None:
        lookup_id = "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(LOOKUP_ID_LENGTH))
    elif _LOOKUP_ID.fullmatch(lookup_id) is None:
        raise ValueError(f"lookup id must match {_LOOKUP_ID.pattern}")
    secret = f"{prefix}_{lookup_id}_{secrets.token_urlsafe(_RANDOM_BYTES)}"
    return IssuedSecret(secret=secret, lookup_id=lookup_id, digest=digest(secret))


_ISSUED = re.compile(rf"[a-z][a-z0-9]{{0,15}}_[A-Za-z0-9]{{{LOOKUP_ID_LENGTH}}}_")


def looks_issued(secret: str) -> bool:
    """Whether ``secret`` has the shape of a secret mailroom issues (any prefix): such a
    token is never handed to another issuer's validation (OpenID Connect)."""
    return _ISSUED.match(secret) is not None


def parse_secret(secret: str, prefix: str) -> str | None:
    """Return the lookup id of a presented secret, or None when it is not a ``prefix`` secret.

    Only the shape is checked; :func:`matches` decides whether the secret is genuine.  Never
    raises, whatever the client sent.
    """
    head = f"{prefix}_"
    if not secret.startswith(head):
        return None
    rest = secret[len(head) :]
    # Fixed-width split: the random part may itself contain "_" (token_urlsafe's alphabet).
    lookup_id, separator, random_part = (
        rest[:LOOKUP_ID_LENGTH],
        rest[LOOKUP_ID_LENGTH : LOOKUP_ID_LENGTH + 1],
        rest[LOOKUP_ID_LENGTH + 1 :],
    )
    if separator != "_" or _LOOKUP_ID.fullmatch(lookup_id) is None or _RANDOM.fullmatch(random_part) is None:
        return None
    return lookup_id


def digest(secret: str) -> str:
    """SHA-256 hex digest of a secret, as stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Whether a presented secret has the stored digest, compared in constant time."""
    return digests_equal(digest(secret), stored_digest)


def digests_equal(presented_digest: str, stored_digest: str) -> bool:
    """Whether two hex digests are equal, compared in constant time."""
    # Compare bytes: compare_digest raises TypeError on non-ASCII str, and this must not raise.
    return hmac.compare_digest(
        presented_digest.encode("ascii"), stored_digest.encode("utf-8", "surrogatepass")
    )
