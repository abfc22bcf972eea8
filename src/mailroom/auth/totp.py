"""Time-based one-time passwords (RFC 6238) and recovery codes: the second factor of a login.

* The secret is 160 random bits (base32, what authenticator apps expect), shown once at set-up
  (as text, an ``otpauth://`` URI and a QR code) and stored encrypted with AES-256-GCM under a
  key derived from ``secret_key``: a copy of the database alone does not give the secrets
  away. It is never returned after set-up and never logged.
* A code is 6 digits over 30-second steps; the step before and after the current one are
  accepted too (clock drift). The step of the last accepted code is stored and only later
  steps are accepted, so a code is good once (no replay).
* Recovery codes are 80 random bits (16 base32 characters, grouped by 4), single use. They
  are stored as SHA-256 digests: at 80 bits a fast digest is as safe as a slow password hash
  (nobody brute-forces 2^80), and checking one costs nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
from datetime import datetime

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "RECOVERY_CODES",
    "SecretBox",
    "matching_step",
    "new_recovery_codes",
    "new_secret",
    "provisioning_uri",
    "qr_svg",
    "recovery_digest",
]

#: How many recovery codes a confirmation issues.
RECOVERY_CODES = 10
STEP_SECONDS = 30
DIGITS = 6
_CODE = re.compile(r"[0-9]{6}")
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY = re.compile(r"[a-z2-7]{16}")


class SecretBox:
    """Encrypts TOTP secrets for the database (AES-256-GCM; the user id is bound in as
    associated data, so a ciphertext copied to another user's row does not decrypt)."""

    _VERSION = "v1"

    def __init__(self, secret_key: str) -> None:
        key = hmac.new(secret_key.encode(), b"mailroom totp secret encryption v1", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(***)"

    def seal(self, user_id: int, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), str(user_id).encode())
        return f"{self._VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, user_id: int, stored: str) -> str | None:
        """The secret, or None when ``stored`` was not sealed for this user with this key
        (for example after ``secret_key`` changed: the user must set TOTP up again)."""
        version, _, body = stored.partition(":")
        if version != self._VERSION:
            return None
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            return self._aead.decrypt(raw[:12], raw[12:], str(user_id).encode()).decode()
        except (InvalidTag, ValueError):
            return None


def new_secret() -> str:
    """A new TOTP secret: 32 base32 characters (160 bits, RFC 4226's recommendation)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI authenticator apps read (from the QR code)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an SVG document for the set-up page."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, scale=4, border=2)
    return out.getvalue().decode()


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code ``code`` is (the current one or a neighbour), else None."""
    code = code.strip().replace(" ", "")
    if _CODE.fullmatch(code) is None:
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = totp.timecode(now)
    found = None
    for step in (current - 1, current, current + 1):  # no early exit: constant work
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected.encode(), code.encode()):
            found = step
    return found


def code_for(secret: str, now: datetime) -> str:
    """The current code (what an authenticator app shows); for tests and the CLI."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(now)


def looks_like_code(value: str) -> bool:
    return _CODE.fullmatch(value.strip().replace(" ", "")) is not None


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Fresh recovery codes, ``abcd-efgh-ijkl-mnop`` (80 bits each)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_digest(code: str) -> str | None:
    """The stored digest of a presented recovery code (dashes, spaces and case ignored), or
    None when it cannot be one."""
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    if _RECOVERY.fullmatch(normal) is None:
        return None
    return hashlib.sha256(normal.encode()).hexdigest()
