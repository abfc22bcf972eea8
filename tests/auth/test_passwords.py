"""Tests for mailroom.auth.passwords: argon2id hashing and verification of imported hashes."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import secrets
from collections.abc import Callable
from typing import Any

import argon2
import bcrypt
import pytest
from passlib.hash import (
    md5_crypt,
    pbkdf2_sha1,
    pbkdf2_sha256,
    pbkdf2_sha512,
    sha256_crypt,
    sha512_crypt,
)

from mailroom.auth import passwords
from mailroom.auth.passwords import PasswordHasher, Verification, scheme_of

CHEAP: dict[str, Any] = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
PASSWORD = "correct horse battery staple ✓"
WRONG = "correct horse battery staple ✗"

IMPORTED_OK = Verification(ok=True, needs_rehash=True)
CURRENT_OK = Verification(ok=True, needs_rehash=False)
REJECTED = Verification(ok=False, needs_rehash=False)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(**CHEAP)


# --- mailroom's own argon2id hashes ---------------------------------------------------------------


def test_hash_is_argon2id_phc_with_the_configured_parameters(hasher: PasswordHasher) -> None:
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert scheme_of(stored) == "ARGON2ID"


def test_hash_is_salted(hasher: PasswordHasher) -> None:
    assert hasher.hash(PASSWORD) != hasher.hash(PASSWORD)


def test_current_hash_verifies_without_rehash(hasher: PasswordHasher) -> None:
    stored = hasher.hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD) == CURRENT_OK
    assert hasher.verify(stored, WRONG) == REJECTED


def test_defaults_are_rfc_9106_low_memory() -> None:
    profile = argon2.profiles.RFC_9106_LOW_MEMORY
    stored = PasswordHasher().hash(PASSWORD)
    assert stored.startswith(
        f"$argon2id$v=19$m={profile.memory_cost},t={profile.time_cost},p={profile.parallelism}$"
    )


@pytest.mark.parametrize(
    "params",
    [
        {"time_cost": 2, "memory_cost": 1024, "parallelism": 1},
        {"time_cost": 1, "memory_cost": 2048, "parallelism": 1},
        {"time_cost": 1, "memory_cost": 1024, "parallelism": 2},
    ],
)
def test_argon2id_with_other_parameters_needs_rehash(hasher: PasswordHasher, params: dict[str, Any]) -> None:
    stored = PasswordHasher(**params).hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD) == IMPORTED_OK
    assert hasher.verify(stored, WRONG) == REJECTED


def test_argon2id_with_other_hash_length_needs_rehash(hasher: PasswordHasher) -> None:
    stored = argon2.PasswordHasher(**CHEAP, hash_len=16).hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD) == IMPORTED_OK


def test_argon2i_and_argon2d_need_rehash(hasher: PasswordHasher) -> None:
    for kind in (argon2.Type.I, argon2.Type.D):
        stored = argon2.PasswordHasher(**CHEAP, type=kind).hash(PASSWORD)
        assert hasher.verify(stored, PASSWORD) == IMPORTED_OK
        assert hasher.verify(stored, WRONG) == REJECTED


def test_dovecot_prefixed_current_argon2id_is_rewritten_bare(hasher: PasswordHasher) -> None:
    stored = "{ARGON2ID}" + hasher.hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD) == IMPORTED_OK
    assert scheme_of(stored) == "ARGON2ID"


def test_dummy_verify_runs_a_full_argon2_verify_with_current_parameters(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []
    real_verify = passwords.crypto_pwhash_str_verify

    def spy(stored: bytes, password: bytes) -> bool:
        seen.append(stored)
        return real_verify(stored, password)

    monkeypatch.setattr(passwords, "crypto_pwhash_str_verify", spy)
    hasher.dummy_verify(PASSWORD)
    assert len(seen) == 1
    assert seen[0].startswith(b"$argon2id$v=19$m=1024,t=1,p=1$")


@pytest.mark.parametrize(
    "params",
    [
        {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
        {"time_cost": 3, "memory_cost": 4096, "parallelism": 4},
        {"time_cost": 2, "memory_cost": 64, "parallelism": 8},
        {"time_cost": 1, "memory_cost": 1024, "parallelism": 2, "hash_len": 16, "salt_len": 8},
        {"time_cost": 1, "memory_cost": 1024, "parallelism": 1, "hash_len": 64, "salt_len": 32},
    ],
)
def test_argon2id_is_verified_by_libsodium_agreeing_with_argon2_cffi(
    params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """libsodium (Dovecot's argon2 too) checks argon2id; it must answer as argon2-cffi does,
    for every shape of hash argon2-cffi makes, right and wrong passwords alike."""
    calls: list[bytes] = []
    real_verify = passwords.crypto_pwhash_str_verify

    def spy(stored: bytes, password: bytes) -> bool:
        calls.append(stored)
        return real_verify(stored, password)

    monkeypatch.setattr(passwords, "crypto_pwhash_str_verify", spy)
    hasher = PasswordHasher(**{k: v for k, v in params.items() if k in CHEAP})
    stored = argon2.PasswordHasher(**params, type=argon2.Type.ID).hash(PASSWORD)
    reference = argon2.PasswordHasher()
    for candidate in (PASSWORD, WRONG, "", PASSWORD + "\x00", PASSWORD[:-1]):
        try:
            expected = reference.verify(stored, candidate)
        except argon2.exceptions.VerifyMismatchError:
            expected = False
        assert expected is (candidate == PASSWORD)
        assert hasher.verify(stored, candidate).ok is expected
    # Every check went through libsodium, but for strings longer than it takes (127 characters).
    assert len(calls) == (5 if len(stored) <= 127 else 0)
    assert hasher.verify("{ARGON2ID}" + stored, PASSWORD).ok


def test_argon2i_is_left_to_argon2_cffi(hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(stored: bytes, password: bytes) -> bool:
        raise AssertionError("libsodium is for argon2id only")

    monkeypatch.setattr(passwords, "crypto_pwhash_str_verify", refuse)
    stored = argon2.PasswordHasher(**CHEAP, type=argon2.Type.I).hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD) == IMPORTED_OK
    assert hasher.verify(stored, WRONG) == REJECTED


def test_verification_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        IMPORTED_OK.ok = False  # type: ignore[misc]


# --- imports generated in the test ----------------------------------------------------------------


def _salted(algorithm: str, password: str) -> str:
    """Dovecot's SSHA family: base64(digest(password + salt) + salt), as doveadm pw writes it."""
    salt = os.urandom(8)
    raw = hashlib.new(algorithm, password.encode() + salt).digest() + salt
    return base64.b64encode(raw).decode()


def _dovecot_pbkdf2(password: str) -> str:
    """Dovecot's PBKDF2: the salt is used as text; the digest is hex PBKDF2-HMAC-SHA1."""
    salt = secrets.token_hex(8)
    key = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), 1000)
    return f"$1${salt}$1000${key.hex()}"


def _bcrypt(password: str, prefix: bytes = b"2b") -> str:
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(4, prefix)).decode()


def _argon2(kind: argon2.Type) -> Callable[[str], str]:
    return argon2.PasswordHasher(**CHEAP, type=kind).hash


GENERATED: list[tuple[str, str, Callable[[str], str]]] = [
    # (expected scheme_of, scheme prefix, hash maker)
    ("SHA512-CRYPT", "{SHA512-CRYPT}", sha512_crypt.using(rounds=5000).hash),
    ("SHA512-CRYPT", "{SHA512-CRYPT}", sha512_crypt.using(rounds=10000).hash),
    ("SHA512-CRYPT", "{CRYPT}", sha512_crypt.using(rounds=5000).hash),
    ("SHA512-CRYPT", "", sha512_crypt.using(rounds=5000).hash),
    ("SHA256-CRYPT", "{SHA256-CRYPT}", sha256_crypt.using(rounds=5000).hash),
    ("SHA256-CRYPT", "{CRYPT}", sha256_crypt.using(rounds=5000).hash),
    ("SHA256-CRYPT", "", sha256_crypt.using(rounds=5000).hash),
    ("MD5-CRYPT", "{MD5-CRYPT}", md5_crypt.hash),
    ("MD5-CRYPT", "{MD5}", md5_crypt.hash),
    ("MD5-CRYPT", "{CRYPT}", md5_crypt.hash),
    ("MD5-CRYPT", "", md5_crypt.hash),
    ("BLF-CRYPT", "{BLF-CRYPT}", lambda pw: _bcrypt(pw).replace("$2b$", "$2y$", 1)),
    ("BLF-CRYPT", "{BLF-CRYPT}", lambda pw: _bcrypt(pw, b"2a")),
    ("BLF-CRYPT", "{CRYPT}", _bcrypt),
    ("BLF-CRYPT", "", _bcrypt),
    ("SSHA512", "{SSHA512}", lambda pw: _salted("sha512", pw)),
    ("SSHA256", "{SSHA256}", lambda pw: _salted("sha256", pw)),
    ("SSHA", "{SSHA}", lambda pw: _salted("sha1", pw)),
    ("PBKDF2", "{PBKDF2}", _dovecot_pbkdf2),
    ("PBKDF2-SHA256", "", pbkdf2_sha256.using(rounds=1000).hash),
    ("PBKDF2-SHA512", "", pbkdf2_sha512.using(rounds=1000).hash),
    ("PBKDF2-SHA1", "", pbkdf2_sha1.using(rounds=1000).hash),
    ("ARGON2I", "{ARGON2I}", _argon2(argon2.Type.I)),
    ("ARGON2ID", "{ARGON2ID}", _argon2(argon2.Type.ID)),
    ("ARGON2I", "", _argon2(argon2.Type.I)),
]


@pytest.mark.parametrize(
    ("scheme", "prefix", "make"),
    GENERATED,
    ids=[f"{prefix or 'bare'}-{scheme}-{i}" for i, (scheme, prefix, _) in enumerate(GENERATED)],
)
def test_generated_import_verifies_and_needs_rehash(
    hasher: PasswordHasher, scheme: str, prefix: str, make: Callable[[str], str]
) -> None:
    stored = prefix + make(PASSWORD)
    assert scheme_of(stored) == scheme
    assert hasher.verify(stored, PASSWORD) == IMPORTED_OK
    assert hasher.verify(stored, WRONG) == REJECTED
    assert hasher.verify(stored, "") == REJECTED


def test_scheme_prefix_is_case_insensitive(hasher: PasswordHasher) -> None:
    stored = "{sha512-crypt}" + sha512_crypt.using(rounds=5000).hash(PASSWORD)
    assert scheme_of(stored) == "SHA512-CRYPT"
    assert hasher.verify(stored, PASSWORD) == IMPORTED_OK


# --- fixed vectors from the formats' own documentation and test suites -----------------------------

FIXED: list[tuple[str, str, str]] = [
    # (stored, password, scheme)
    # Dovecot's own test vectors, src/auth/test-password-scheme.c.
    ("{SSHA}H/zrDv8FXUu1JmwvVYijfrYEF34jVZcO", "test", "SSHA"),
    ("{MD5-CRYPT}$1$GgvxyNz8$OjZhLh4P.gF1lxYEbLZ3e/", "test", "MD5-CRYPT"),
    ("{MD5}$1$wmyrgRuV$kImF6.9MAFQNHe23kq5vI/", "test", "MD5-CRYPT"),
    ("{PBKDF2}$1$bUnT4Pl7yFtYX0KU$5000$50a83cafdc517b9f46519415e53c6a858908680a", "test", "PBKDF2"),
    ("{BLF-CRYPT}$2y$05$11ipvo5dR6CwkzwmhwM26OXgzXwhV2PyPuLV.Qi31ILcRcThQpEiW", "test", "BLF-CRYPT"),
    (
        "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$f2iuP4aUeNMrgu34fhOkkg$"
        "1XSZZMWlIs0zmE+snlUIcLADO3GXbA2O/hsQmmc317k",
        "test",
        "ARGON2I",
    ),
    (
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$vBb99oJ12p3WAdYlaMHz1A$"
        "jtFOtbo/sYV9OSlTxDo/nVNq3uArHd5GJSEx0ty85Cc",
        "test",
        "ARGON2ID",
    ),
    # Ulrich Drepper's SHA-crypt specification (also `openssl passwd -5/-6 -salt saltstring`).
    (
        "{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLi"
        "BFdcbYEdFCoEOfaS35inz1",
        "Hello world!",
        "SHA512-CRYPT",
    ),
    ("{CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!", "SHA256-CRYPT"),
    ("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!", "SHA256-CRYPT"),
    # `openssl passwd -1 -salt saltstri 'Hello world!'`.
    ("{CRYPT}$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1", "Hello world!", "MD5-CRYPT"),
    # Openwall crypt_blowfish's wrapper.c test vectors.
    ("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", "BLF-CRYPT"),
    ("{BLF-CRYPT}$2b$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*", "BLF-CRYPT"),
    # Built as doveadm pw does, with OpenSSL rather than Python, salt 5a1ce093:
    # printf test | cat - salt.bin | openssl dgst -sha256 -binary | cat - salt.bin | base64
    ("{SSHA256}rEndznDC/YbJI09SEbFlUPcVGyj32OyirpOBJAQJ4vdaHOCT", "test", "SSHA256"),
    (
        "{SSHA512}BKuZumbuKl8WbmIJ8IL/othe0y+OYr78ApuIy97XRLHoEY+ejyE3Tzmi53fyQtaffU/x2XviUZsDKPnE2Gpg"
        "1Foc4JM=",
        "test",
        "SSHA512",
    ),
    # Passlib's documentation, passlib.hash.pbkdf2_digest.
    (
        "$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M",
        "password",
        "PBKDF2-SHA256",
    ),
    # `openssl kdf -keylen 64 -kdfopt digest:SHA512 -kdfopt pass:test
    #  -kdfopt hexsalt:5a1ce093 (x4) -kdfopt iter:25000 PBKDF2`, in passlib's adapted base64.
    (
        "$pbkdf2-sha512$25000$Whzgk1oc4JNaHOCTWhzgkw$Y6egxKmCH7P6P59ZnCIBXkJtZ5zwyz3XdKSUG3xrq2wovmH5Tno9u9w"
        "pJLq30ajPkdTsKq2pKQE87gSO8sDR8w",
        "test",
        "PBKDF2-SHA512",
    ),
    # phc-winner-argon2 README: echo -n password | argon2 somesalt -t 2 -m 16 -p 4 -l 24 (-i).
    ("$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", "password", "ARGON2I"),
]


@pytest.mark.parametrize(("stored", "password", "scheme"), FIXED, ids=[s for _, _, s in FIXED])
def test_fixed_vector(hasher: PasswordHasher, stored: str, password: str, scheme: str) -> None:
    assert scheme_of(stored) == scheme
    assert hasher.verify(stored, password) == IMPORTED_OK
    assert hasher.verify(stored, password + "x") == REJECTED


# --- bcrypt's 72-byte limit -----------------------------------------------------------------------


def test_bcrypt_reads_only_72_bytes_as_documented(hasher: PasswordHasher) -> None:
    # Openwall vector: the password is 97 bytes and bcrypt ignores everything after byte 72.
    stored = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"
    password = (
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"
    )
    assert len(password.encode()) > 72
    assert hasher.verify(stored, password) == IMPORTED_OK
    assert hasher.verify(stored, password[:72] + "something else") == IMPORTED_OK
    assert hasher.verify(stored, "X" + password[1:]) == REJECTED


def test_long_password_verifies_against_its_own_bcrypt_hash(hasher: PasswordHasher) -> None:
    long_password = "ü" * 50  # 100 bytes of UTF-8
    stored = "{BLF-CRYPT}" + bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(4)).decode()
    assert hasher.verify(stored, long_password) == IMPORTED_OK


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["{PLAIN}test", "{CLEARTEXT}test", "{CLEAR}test", "{plain}test"])
def test_plaintext_schemes_are_refused(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify(stored, "test") == REJECTED
    assert scheme_of(stored) == "PLAIN"


_SHA512_CHECKSUM = "svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"

MALFORMED = [
    "",
    "test",
    "{}",
    "{SHA512-CRYPT",
    "{SHA512-CRYPT}",
    "{SHA512-CRYPT}$6$salt$tooshort",
    "{SHA512-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",  # scheme mismatch
    "{SHA256-CRYPT}$6$saltstring$" + _SHA512_CHECKSUM,
    "{CRYPT}//EsnG9FLTKjo",  # DES crypt, not accepted
    "{CRYPT}$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    "{SHA1}qUqP5cyxm6YcTAhz05Hph5gvu9M=",  # unsalted digest, not accepted
    "{NTLM}0cb6948805f797bf2a82807973b89537",
    "{NOSUCH}abc",
    "{MD5}CY9rzUYh03PK3k6DJie09g==",  # LDAP-style bare MD5, not Dovecot's MD5-CRYPT
    "$1$",
    "$1$saltstri$",
    "$2y$05$short",
    "{BLF-CRYPT}$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",  # buggy 2x variant
    "{BLF-CRYPT}$6$saltstring$" + _SHA512_CHECKSUM,
    "{SSHA}not base64!",
    "{SSHA}",
    "{SSHA512}" + base64.b64encode(b"\x00" * 64).decode(),  # digest with no salt
    "{SSHA256}" + base64.b64encode(b"short").decode(),
    "{PBKDF2}",
    "{PBKDF2}$1$salt$0$" + "0" * 40,
    "{PBKDF2}$1$salt$5000$" + "z" * 40,
    "{PBKDF2}$1$salt$5000$" + "0" * 39,
    "{PBKDF2}$2$salt$5000$" + "0" * 40,
    "$pbkdf2-sha256$",
    "$pbkdf2-sha256$x$y$z",
    "$argon2id$",
    "$argon2id$v=19$m=1024",
    "$argon2id$v=19$m=1024,t=1,p=1$!!$!!",
    "{ARGON2ID}$2b$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK",
    "{ARGON2ID}$argon2d$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    "\x00\x01\x02",
    "{SHA512-CRYPT}$6$sält$" + _SHA512_CHECKSUM,
]


@pytest.mark.parametrize("stored", MALFORMED)
def test_malformed_or_unsupported_values_are_refused_without_raising(
    hasher: PasswordHasher, stored: str
) -> None:
    assert hasher.verify(stored, "test") == REJECTED
    assert hasher.verify(stored, "Hello world!") == REJECTED


@pytest.mark.parametrize(
    "stored",
    [
        "{SHA512-CRYPT}$6$rounds=999999999$saltstring$" + _SHA512_CHECKSUM,
        "{PBKDF2}$1$salt$99999999$" + "0" * 40,
        "$pbkdf2-sha256$99999999$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M",
        "$2b$31$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK",
        "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$argon2id$v=19$m=1024,t=1000,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    ],
    ids=["sha-crypt", "dovecot-pbkdf2", "passlib-pbkdf2", "bcrypt", "argon2-memory", "argon2-time"],
)
def test_absurd_work_factors_are_refused_without_computing(hasher: PasswordHasher, stored: str) -> None:
    # Were these computed, the test would take minutes or exhaust memory.
    assert hasher.verify(stored, "test") == REJECTED


def test_unencodable_password_is_refused_without_raising(hasher: PasswordHasher) -> None:
    lone_surrogate = "\ud800"
    assert hasher.verify(hasher.hash(PASSWORD), lone_surrogate) == REJECTED
    assert hasher.verify("{SSHA}H/zrDv8FXUu1JmwvVYijfrYEF34jVZcO", lone_surrogate) == REJECTED
    assert hasher.verify("{BLF-CRYPT}" + _bcrypt(PASSWORD), lone_surrogate) == REJECTED
    assert (
        hasher.verify("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", lone_surrogate) == REJECTED
    )


# --- scheme_of ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "scheme"),
    [
        ("{CRYPT}$6$saltstring$" + _SHA512_CHECKSUM, "SHA512-CRYPT"),
        ("{CRYPT}$2y$05$11ipvo5dR6CwkzwmhwM26OXgzXwhV2PyPuLV.Qi31ILcRcThQpEiW", "BLF-CRYPT"),
        ("{ARGON2I}$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", "ARGON2ID"),
        ("{CRYPT}//EsnG9FLTKjo", "UNKNOWN"),
        ("{NOSUCH}abc", "UNKNOWN"),
        ("", "UNKNOWN"),
        ("hunter2", "UNKNOWN"),
    ],
)
def test_scheme_of(stored: str, scheme: str) -> None:
    assert scheme_of(stored) == scheme


@pytest.mark.parametrize("stored", [stored for stored, _, _ in FIXED])
def test_scheme_of_never_reveals_the_hash(stored: str) -> None:
    name = scheme_of(stored)
    body = stored.split("}", 1)[-1]
    assert body not in name
    assert "$" not in name


def test_nul_in_password_is_refused_by_crypt_imports_without_raising(hasher: PasswordHasher) -> None:
    # crypt(3) cannot see past a NUL, so such a password must not match anything there.
    for stored in (
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
        "{BLF-CRYPT}" + _bcrypt("ab"),
    ):
        assert hasher.verify(stored, "Hello world!\x00") == REJECTED
        assert hasher.verify(stored, "a\x00b") == REJECTED
