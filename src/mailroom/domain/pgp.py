"""OpenPGP public keys: parsing, fingerprints, user ids and expiry (with PGPy, BSD-3-Clause).

Only armored *public* keys are accepted; a private key is refused so that it is never stored
by mistake. The fingerprint is computed from the key, never taken from the client: a
fingerprint the client also sends must match it. The key is stored re-armored by PGPy,
which drops anything around the armor block.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

MAX_KEY_CHARS = 100_000
_FINGERPRINT = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})$")
_BARE_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+>?")
_HEX_SEP = "[0-9A-Fa-f][ :]{0,2}"
FINGERPRINT_PATTERN = f"^({_HEX_SEP}){{39}}[0-9A-Fa-f]([ :]{{0,2}}({_HEX_SEP}){{23}}[0-9A-Fa-f])?$"


def normalize_fingerprint(value: str) -> str:
    """Uppercase hex without spaces or colons: 40 digits (v4 keys) or 64 (v5/v6)."""
    text = re.sub(r"[\s:]", "", value).upper().removeprefix("0X")
    if not _FINGERPRINT.match(text):
        raise ValueError("a fingerprint is 40 (or 64) hexadecimal digits")
    return text


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Fingerprint = Annotated[
    str,
    Field(
        min_length=40,
        max_length=100,
        examples=["A4E2 3862 5A7E 00F7 4EC5  8300 163D 0737 B96B 4EBB"],
        # Published, not enforced (normalize_fingerprint is the rule): 40 or 64 hex digits,
        # spaces or colons between them allowed.
        json_schema_extra={"pattern": FINGERPRINT_PATTERN},
    ),
    AfterValidator(normalize_fingerprint),
]
ArmoredKey = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----).",
    ),
]


@dataclass(frozen=True, slots=True)
class ParsedKey:
    fingerprint: str
    algorithm: str
    user_ids: list[str]
    emails: list[str]
    created_at: datetime
    expires_at: datetime | None
    armored: str

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


#: PGPy's names of public-key algorithms (RFC 4880 §9.1) → the names people use.
_ALGORITHM_NAMES = {
    "RSAEncryptOrSign": "RSA",
    "RSAEncrypt": "RSA",
    "RSASign": "RSA",
    "ElGamal": "ElGamal",
    "FormerlyElGamalEncryptOrSign": "ElGamal",
    "DSA": "DSA",
    "ECDH": "ECDH",
    "ECDSA": "ECDSA",
    "EdDSA": "EdDSA",
    "DiffieHellman": "DH",
}
#: EdDSA and ECDH keys are known by their curve's name.
_CURVE_NAMES = {"Ed25519": "Ed25519", "Curve25519": "X25519"}


def algorithm_name(algorithm: str, curve: str | None = None) -> str:
    """``RSA``, ``Ed25519``, ``ECDSA``, ... for PGPy's enum name (``RSAEncryptOrSign``) and,
    for EdDSA and ECDH keys, their curve; also turns names stored before this into these."""
    if algorithm in ("EdDSA", "ECDH") and curve in _CURVE_NAMES:
        return _CURVE_NAMES[curve]
    return _ALGORITHM_NAMES.get(algorithm, algorithm)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_public_key(text: str) -> ParsedKey:
    """Parse one armored public key; ``ValueError`` says what is wrong with it."""
    if "PRIVATE KEY BLOCK" in text:
        raise ValueError("this is a private key: submit only the public key")
    import pgpy  # slow import (about 0.2 s); only the key methods need it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PGPy warns about unsupported packets it skips
            key, _ = pgpy.PGPKey.from_blob(text)
    except Exception:  # PGPy raises many kinds on malformed input; none may escape as a 500
        raise ValueError("not an ASCII-armored OpenPGP public key") from None
    if not key.is_public:
        raise ValueError("this is a private key: submit only the public key")
    user_ids: list[str] = []
    emails: list[str] = []
    for uid in key.userids:
        if not uid.email and _BARE_ADDRESS.fullmatch(str(uid.name or "")):
            # gpg --quick-gen-key alice@example.org makes a user id that is only the address.
            emails.append(str(uid.name).strip("<>").lower())
        if uid.email:
            emails.append(str(uid.email).lower())
        name = str(uid.name or "")
        text_uid = f"{name} <{uid.email}>" if uid.email and name else str(uid.email or name)
        if uid.comment:
            text_uid = f"{name} ({uid.comment}) <{uid.email}>" if uid.email else f"{name} ({uid.comment})"
        user_ids.append(text_uid)
    if not user_ids:
        raise ValueError("the key has no user id")
    expires = key.expires_at
    return ParsedKey(
        fingerprint=normalize_fingerprint(str(key.fingerprint)),
        algorithm=algorithm_name(key.key_algorithm.name, getattr(key.key_size, "name", None)),
        user_ids=user_ids,
        emails=list(dict.fromkeys(emails)),
        created_at=_utc(key.created),
        expires_at=None if expires is None else _utc(expires),
        armored=str(key),
    )


def uid_address(name: str, email: str) -> str | None:
    """The address of a user id (its ``<address>``, or a name that is only an address)."""
    if email:
        return email.lower()
    if _BARE_ADDRESS.fullmatch(name):
        return name.strip("<>").lower()
    return None


def without_addresses(armored: str, addresses: set[str]) -> ParsedKey:
    """The key (already validated) without its user ids naming one of ``addresses``
    (lowercase): a key server must not give out a claim to an address nobody confirmed."""
    import pgpy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key, _ = pgpy.PGPKey.from_blob(armored)
        for uid in list(key.userids):
            if uid_address(str(uid.name or ""), str(uid.email or "")) in addresses:
                key.del_uid(str(uid.email or uid.name))
    return parse_public_key(str(key))


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What a key server's index shows of a key: RFC 4880 algorithm number and key size."""

    algorithm_id: int
    bits: int


@lru_cache(maxsize=1024)
def key_facts(armored: str) -> KeyFacts:
    """The algorithm number and size of a stored (already validated) armored key.

    Memoised: a key server lists the same keys again and again, and parsing one with PGPy
    costs milliseconds; the stored text of a key never changes."""
    import pgpy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key, _ = pgpy.PGPKey.from_blob(armored)
    size = key.key_size  # an int for RSA/DSA, the curve (with its key_size) for ECC
    bits = size if isinstance(size, int) else int(getattr(size, "key_size", 0) or 0)
    return KeyFacts(int(key.key_algorithm.value), bits)
