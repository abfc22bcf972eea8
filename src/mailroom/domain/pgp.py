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
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

MAX_KEY_CHARS = 100_000
_FINGERPRINT = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})$")
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
        algorithm=str(key.key_algorithm.name),
        user_ids=user_ids,
        emails=list(dict.fromkeys(emails)),
        created_at=_utc(key.created),
        expires_at=None if expires is None else _utc(expires),
        armored=str(key),
    )
