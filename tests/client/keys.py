"""OpenPGP test keys, made with PGPy when the tests run (never stored in the repository)."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import pgpy
from pgpy.constants import EllipticCurveOID, HashAlgorithm, KeyFlags, PubKeyAlgorithm


def make_key(
    email: str, name: str = "Test User", *, rsa: bool = False, expires: timedelta | None = None
) -> pgpy.PGPKey:
    if rsa:
        key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
    else:
        key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519)
    uid = pgpy.PGPUID.new(name, email=email)
    key.add_uid(
        uid, usage={KeyFlags.Sign, KeyFlags.Certify}, hashes=[HashAlgorithm.SHA256], key_expiration=expires
    )
    return key


@cache
def public(email: str, name: str = "Test User", rsa: bool = False) -> tuple[str, str]:
    """An armored public key for ``email`` and its fingerprint (made once per test run)."""
    key = make_key(email, name, rsa=rsa)
    return str(key.pubkey), str(key.fingerprint).replace(" ", "")
