"""Password hashing for logins, and verification of hashes imported from other mail servers.

Mailroom stores every password as an argon2id PHC string (``$argon2id$v=19$...``).  So that a
Dovecot or Mailu deployment can be migrated without anyone knowing its users' passwords,
:meth:`PasswordHasher.verify` also accepts the formats those servers store, with or without the
Dovecot ``{SCHEME}`` prefix where the value alone is unambiguous:

=====================  =================================================================
scheme                 stored value
=====================  =================================================================
ARGON2ID, ARGON2I      ``{ARGON2ID}`` / ``{ARGON2I}`` + PHC string, or the bare PHC string
SHA512-CRYPT           ``{SHA512-CRYPT}$6$...``, ``{CRYPT}$6$...`` or bare ``$6$...``
SHA256-CRYPT           ``{SHA256-CRYPT}$5$...``, ``{CRYPT}$5$...`` or bare ``$5$...``
MD5-CRYPT              ``{MD5-CRYPT}$1$...`` (Dovecot's alias ``{MD5}``), ``{CRYPT}$1$...``, bare
BLF-CRYPT              ``{BLF-CRYPT}$2y$...`` (also ``$2a$``/``$2b$``), ``{CRYPT}$2...``, bare
SSHA512, SSHA256,      ``{SSHA512}<base64(digest + salt)>`` as ``doveadm pw`` makes them;
SSHA                   the prefix is required because bare base64 could be anything
PBKDF2                 Dovecot's ``{PBKDF2}$1$<salt>$<rounds>$<hex sha1>``; prefix required
PBKDF2-SHA256/512/1    passlib's ``$pbkdf2-sha256$...``, ``$pbkdf2-sha512$...``, ``$pbkdf2$...``
=====================  =================================================================

Refused (``verify`` answers not ok, never raises):

* Plaintext schemes (``{PLAIN}``, ``{CLEARTEXT}``, ``{CLEAR}``, ``{PLAIN-TRUNC}``): mailroom must
  never hold a password in the clear, so such values have to be reset rather than imported.
* Anything else: unknown schemes, DES crypt, unsalted digests, malformed values, and values whose
  work factor is far beyond what any real server generates (see ``_MAX_ROUNDS`` and friends),
  because checking them would let whoever wrote the value pin a CPU or exhaust memory on every
  login attempt.

The checks cost tens to hundreds of milliseconds of CPU (argon2id: 64 MiB, 3 passes) and would
stall every other session of an asyncio worker if run on its event loop.  The ``*_async``
methods run them in the hasher's own thread pool (argon2, bcrypt and hashlib release the GIL
while they work), at most ``concurrency`` at a time; further checks wait their turn, so a burst
of logins neither blocks the loop nor allocates more than ``concurrency`` × 64 MiB.

argon2id hashes (``$argon2id$v=19$``) are verified by libsodium (PyNaCl's bundled build, as
Dovecot does), which computes the same function with the same parameters as argon2-cffi but
with AVX2 code where the CPU has it: ~125 ms of CPU per default check instead of ~210 ms
(docs/performance.md). Hashing stays with argon2-cffi (libsodium makes single-lane hashes only);
anything libsodium does not take (argon2i, other versions) is verified by argon2-cffi.

bcrypt only ever looks at the first 72 bytes of the UTF-8 password.  Imported bcrypt hashes are
checked the way Dovecot's ``crypt()`` checks them, by truncating to 72 bytes, so a longer password
still logs in, and so does any password sharing its first 72 bytes.  The argon2id hash that
replaces it on that login has no such limit.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import argon2
import bcrypt
from argon2.exceptions import VerificationError
from nacl import exceptions as nacl_exceptions
from nacl.bindings import crypto_pwhash_str_verify
from passlib.hash import (
    md5_crypt,
    pbkdf2_sha1,
    pbkdf2_sha256,
    pbkdf2_sha512,
    sha256_crypt,
    sha512_crypt,
)

__all__ = ["PasswordHasher", "Verification", "scheme_of"]

_PROFILE = argon2.profiles.RFC_9106_LOW_MEMORY

# Work-factor ceilings for stored values.  They sit well above what Dovecot, Mailu or passlib
# generate (SHA-crypt 5000-656000 rounds, PBKDF2 up to ~1.3M, bcrypt cost 10-14, RFC 9106's
# 2 GiB argon2 profile) so no genuine import is refused.
_MAX_ROUNDS = 5_000_000
_MAX_BCRYPT_COST = 16
_MAX_ARGON2_MEMORY_KIB = 2 * 1024 * 1024
_MAX_ARGON2_TIME_COST = 32
_MAX_ARGON2_PARALLELISM = 64
#: The argon2id strings libsodium verifies (version 1.3, at most its 127 characters); others
#: go to argon2-cffi.
_SODIUM_PREFIX = "$argon2id$v=19$"
_SODIUM_MAX_LEN = 128

_BCRYPT_MAX_BYTES = 72

_SCHEME_PREFIX = re.compile(r"\{([A-Za-z0-9._-]+)\}")
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_DOVECOT_PBKDF2 = re.compile(r"\$1\$([^$]+)\$(\d{1,10})\$([0-9a-fA-F]{40})")

_PLAINTEXT_SCHEMES = frozenset({"PLAIN", "CLEAR", "CLEARTEXT", "PLAIN-TRUNC"})
_ARGON2_SCHEMES = frozenset({"ARGON2ID", "ARGON2I", "ARGON2D"})
# Schemes whose value carries no recognisable marker, so only the prefix says what they are.
_PREFIX_ONLY_SCHEMES = frozenset({"SSHA", "SSHA256", "SSHA512", "PBKDF2"})
_CRYPT_SCHEMES = frozenset({"SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT", "BLF-CRYPT"})

_UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class Verification:
    """Outcome of checking a password against a stored hash.

    Attributes:
        ok: The password matches the stored hash.
        needs_rehash: The password matches, but the stored value is not a bare argon2id hash with
            the hasher's current parameters; the caller should store ``hash(password)`` instead.
            Always False when ``ok`` is False.
    """

    ok: bool
    needs_rehash: bool


_REJECTED = Verification(ok=False, needs_rehash=False)


class _Stored(NamedTuple):
    scheme: str
    body: str
    prefixed: bool


def _crypt_scheme(value: str) -> str | None:
    """Name the crypt(3) family a value belongs to, from its ``$id$`` marker."""
    if value.startswith("$6$"):
        return "SHA512-CRYPT"
    if value.startswith("$5$"):
        return "SHA256-CRYPT"
    if value.startswith("$1$"):
        return "MD5-CRYPT"
    if value.startswith(("$2a$", "$2b$", "$2y$")):
        return "BLF-CRYPT"
    return None


def _phc_scheme(value: str) -> str | None:
    """Name the argon2 or passlib PBKDF2 scheme of a PHC-style string."""
    for marker, scheme in (
        ("$argon2id$", "ARGON2ID"),
        ("$argon2i$", "ARGON2I"),
        ("$argon2d$", "ARGON2D"),
        ("$pbkdf2-sha256$", "PBKDF2-SHA256"),
        ("$pbkdf2-sha512$", "PBKDF2-SHA512"),
        ("$pbkdf2$", "PBKDF2-SHA1"),
    ):
        if value.startswith(marker):
            return scheme
    return None


def _identify(stored: str) -> _Stored | None:
    """Split a stored value into the scheme that would check it and the part that scheme reads."""
    match = _SCHEME_PREFIX.match(stored)
    if match is None:
        scheme = _crypt_scheme(stored) or _phc_scheme(stored)
        return None if scheme is None else _Stored(scheme, stored, prefixed=False)

    declared = match.group(1).upper()
    body = stored[match.end() :]
    if declared in _PLAINTEXT_SCHEMES:
        return _Stored("PLAIN", body, prefixed=True)
    if declared == "CRYPT":
        found = _crypt_scheme(body)
    elif declared in {"ARGON2I", "ARGON2ID"}:
        # Dovecot hands both prefixes to libsodium, which picks the variant from the PHC string.
        found = _phc_scheme(body)
        found = found if found in {"ARGON2I", "ARGON2ID"} else None
    elif declared == "MD5":
        # Dovecot's {MD5} is MD5-CRYPT (LDAP's {MD5} is a bare digest, which we do not accept).
        found = "MD5-CRYPT" if body.startswith("$1$") else None
    elif declared in _CRYPT_SCHEMES or declared in _PREFIX_ONLY_SCHEMES:
        found = declared
    else:
        found = None
    return None if found is None else _Stored(found, body, prefixed=True)


def scheme_of(stored: str) -> str:
    """Name the scheme of a stored password hash, for exports and diagnostics.

    Returns a normalised name such as ``"ARGON2ID"``, ``"SHA512-CRYPT"``, ``"BLF-CRYPT"``,
    ``"SSHA512"``, ``"PBKDF2"`` (Dovecot's) or ``"PBKDF2-SHA256"`` (passlib's); ``"PLAIN"`` for
    the refused plaintext schemes; ``"UNKNOWN"`` for anything else.  ``{CRYPT}`` values are named
    by the algorithm they actually use.  The answer never contains any part of the hash, and it
    does not promise the value is well formed: :meth:`PasswordHasher.verify` decides that.
    """
    found = _identify(stored)
    return _UNKNOWN if found is None else found.scheme


def _check_passlib(handler: Any, body: str, password: str) -> bool:
    """Check a value with a passlib handler, refusing excessive round counts first."""
    parsed = handler.from_string(body)  # ValueError when malformed, including a wrong $id$.
    if getattr(parsed, "rounds", 0) > _MAX_ROUNDS:
        return False
    return bool(handler.verify(password, body))


def _check_bcrypt(body: str, password: str) -> bool:
    match = _BCRYPT.fullmatch(body)
    if match is None or int(match.group(1)) > _MAX_BCRYPT_COST:
        return False
    # bcrypt 5 raises on passwords over 72 bytes instead of truncating; truncate as crypt() does.
    secret = password.encode("utf-8")[:_BCRYPT_MAX_BYTES]
    return bcrypt.checkpw(secret, body.encode("ascii"))


def _check_salted_digest(algorithm: str, body: str, password: str) -> bool:
    """Check Dovecot's ``base64(digest(password + salt) + salt)``."""
    raw = base64.b64decode(body, validate=True)  # binascii.Error is a ValueError.
    size = hashlib.new(algorithm).digest_size
    if len(raw) <= size:
        return False
    expected, salt = raw[:size], raw[size:]
    actual = hashlib.new(algorithm, password.encode("utf-8") + salt).digest()
    return hmac.compare_digest(actual, expected)


def _check_dovecot_pbkdf2(body: str, password: str) -> bool:
    """Check Dovecot's ``$1$<salt>$<rounds>$<hex>``: PBKDF2-HMAC-SHA1, salt used as text."""
    match = _DOVECOT_PBKDF2.fullmatch(body)
    if match is None:
        return False
    salt, rounds, expected = match.group(1), int(match.group(2)), bytes.fromhex(match.group(3))
    if not 1 <= rounds <= _MAX_ROUNDS:
        return False
    actual = hashlib.pbkdf2_hmac("sha1", password.encode("utf-8"), salt.encode("utf-8"), rounds)
    return hmac.compare_digest(actual, expected)


_CHECKS: dict[str, Callable[[str, str], bool]] = {
    "SHA512-CRYPT": partial(_check_passlib, sha512_crypt),
    "SHA256-CRYPT": partial(_check_passlib, sha256_crypt),
    "MD5-CRYPT": partial(_check_passlib, md5_crypt),
    "BLF-CRYPT": _check_bcrypt,
    "SSHA": partial(_check_salted_digest, "sha1"),
    "SSHA256": partial(_check_salted_digest, "sha256"),
    "SSHA512": partial(_check_salted_digest, "sha512"),
    "PBKDF2": _check_dovecot_pbkdf2,
    "PBKDF2-SHA1": partial(_check_passlib, pbkdf2_sha1),
    "PBKDF2-SHA256": partial(_check_passlib, pbkdf2_sha256),
    "PBKDF2-SHA512": partial(_check_passlib, pbkdf2_sha512),
}


class PasswordHasher:
    """Hashes passwords with argon2id and checks them against stored or imported hashes.

    Build one per process and share it: construction computes the hash used by
    :meth:`dummy_verify`.
    """

    def __init__(
        self,
        *,
        time_cost: int = _PROFILE.time_cost,
        memory_cost: int = _PROFILE.memory_cost,
        parallelism: int = _PROFILE.parallelism,
        concurrency: int = 1,
    ) -> None:
        """Create a hasher.

        Args:
            time_cost: argon2 passes over memory.
            memory_cost: argon2 memory in KiB.
            parallelism: argon2 lanes.
            concurrency: most checks and hashes the ``*_async`` methods run at once (threads).

        The defaults are RFC 9106's second recommended ("low memory") profile, as shipped by
        argon2-cffi.
        """
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=_PROFILE.hash_len,
            salt_len=_PROFILE.salt_len,
            type=argon2.Type.ID,
        )
        # Our own parameters are always acceptable, even if configured above the import ceilings.
        self._max_memory_kib = max(memory_cost, _MAX_ARGON2_MEMORY_KIB)
        self._max_time_cost = max(time_cost, _MAX_ARGON2_TIME_COST)
        self._max_parallelism = max(parallelism, _MAX_ARGON2_PARALLELISM)
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(32))
        # Threads are started on first use, up to ``concurrency``; queued work waits its turn.
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="password")

    async def verify_async(self, stored: str, password: str) -> Verification:
        """:meth:`verify` in the hasher's bounded thread pool, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.verify, stored, password)

    async def hash_async(self, password: str) -> str:
        """:meth:`hash` in the hasher's bounded thread pool, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.hash, password)

    async def dummy_verify_async(self, password: str) -> None:
        """:meth:`dummy_verify` in the hasher's bounded thread pool, off the event loop."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self.dummy_verify, password)

    def hash(self, password: str) -> str:
        """Hash a password for storage; returns an argon2id PHC string (``$argon2id$v=19$...``)."""
        return self._argon2.hash(password)

    def verify(self, stored: str, password: str) -> Verification:
        """Check a password against a stored hash in any accepted format (see the module docs).

        Never raises for a bad stored value: unknown, malformed, plaintext and over-expensive
        values all give ``Verification(ok=False, needs_rehash=False)``.
        """
        found = _identify(stored)
        if found is None or found.scheme == "PLAIN":
            return _REJECTED
        try:
            if found.scheme in _ARGON2_SCHEMES:
                return self._verify_argon2(found, password)
            check = _CHECKS[found.scheme]
            ok = check(found.body, password)
        except ValueError:
            # Malformed values (passlib, base64, hex) and unencodable passwords end up here.
            return _REJECTED
        # Anything that is not argon2id is an import: replace it on the first good login.
        return Verification(ok=True, needs_rehash=True) if ok else _REJECTED

    def dummy_verify(self, password: str) -> None:
        """Spend as long as a real :meth:`verify` against a current argon2id hash, and discard it.

        Call it when the login name is unknown, so that response time does not reveal which
        names exist.
        """
        self.verify(self._dummy_hash, password)

    def _verify_argon2(self, found: _Stored, password: str) -> Verification:
        params = argon2.extract_parameters(found.body)  # InvalidHashError is a ValueError.
        if (
            params.memory_cost > self._max_memory_kib
            or params.time_cost > self._max_time_cost
            or params.parallelism > self._max_parallelism
        ):
            return _REJECTED
        if found.body.startswith(_SODIUM_PREFIX) and len(found.body) < _SODIUM_MAX_LEN:
            try:
                crypto_pwhash_str_verify(found.body.encode("ascii"), password.encode("utf-8"))
            except nacl_exceptions.InvalidkeyError:
                return _REJECTED
        else:
            try:
                self._argon2.verify(found.body, password)
            except VerificationError:
                return _REJECTED
        # A prefixed value is a Dovecot import; re-hashing gives every row the same bare format.
        needs_rehash = found.prefixed or self._argon2.check_needs_rehash(found.body)
        return Verification(ok=True, needs_rehash=needs_rehash)
