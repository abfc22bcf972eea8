"""Tests for mailroom.auth.tokens: issuing, parsing and checking high-entropy secrets."""

from __future__ import annotations

import dataclasses
import hashlib
import re

import pytest

from mailroom.auth.tokens import LOOKUP_ID_LENGTH, IssuedSecret, digest, matches, new_secret, parse_secret


def test_new_secret_shape() -> None:
    issued = new_secret("mrk")
    prefix, lookup_id, random_part = issued.secret.split("_", 2)
    assert prefix == "mrk"
    assert lookup_id == issued.lookup_id
    assert len(issued.lookup_id) == LOOKUP_ID_LENGTH == 8
    assert re.fullmatch(r"[A-Za-z0-9]{8}", issued.lookup_id)
    assert len(random_part) >= 32
    assert re.fullmatch(r"[A-Za-z0-9_-]+", random_part)


def test_new_secret_digest_is_sha256_hex_of_the_whole_secret() -> None:
    issued = new_secret("mrk")
    assert issued.digest == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.digest == digest(issued.secret)
    assert re.fullmatch(r"[0-9a-f]{64}", issued.digest)


def test_new_secrets_are_distinct() -> None:
    issued = [new_secret("mrs") for _ in range(200)]
    assert len({i.secret for i in issued}) == 200
    assert len({i.lookup_id for i in issued}) == 200


def test_issued_secret_is_frozen_and_hides_the_secret_in_repr() -> None:
    issued = new_secret("mrk")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issued.secret = "x"  # type: ignore[misc]
    assert issued.secret not in repr(issued)
    assert issued.lookup_id in repr(issued)
    assert isinstance(issued, IssuedSecret)


@pytest.mark.parametrize("prefix", ["", "MRK", "mr_k", "1ab", "a" * 17, "mr-k", "mrk "])
def test_new_secret_refuses_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_secret(prefix)


def test_parse_secret_round_trips() -> None:
    for _ in range(100):  # token_urlsafe output often contains "_" and "-"
        issued = new_secret("inv")
        assert parse_secret(issued.secret, "inv") == issued.lookup_id


VALID = "mrk_Ab3dEf9h_" + "x" * 43


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "mrk",
        "mrk_",
        "mrk_Ab3dEf9h",
        "mrk_Ab3dEf9h_",
        "mrk_Ab3dEf9h_" + "x" * 31,  # random part too short
        "mrk_Ab3dEf9h_" + "x" * 257,  # absurdly long
        "mrk_Ab3dEf9_" + "x" * 43,  # lookup id too short
        "mrk_Ab3dEf9hX_" + "x" * 43,  # lookup id too long
        "mrk_Ab3d-f9h_" + "x" * 43,  # lookup id with a non-alphanumeric
        "mrk_Ab3dEf9h-" + "x" * 43,  # wrong separator
        "mrs_Ab3dEf9h_" + "x" * 43,  # another kind of secret
        "MRK_Ab3dEf9h_" + "x" * 43,
        " " + VALID,
        VALID + " ",
        VALID + "\n",
        "mrk_Ab3dEf9h_" + "x" * 42 + "+",
        "mrk_Ab3dEf9h_" + "x" * 42 + "=",
        "mrk_Äb3dEf9h_" + "x" * 43,
        "mrk_Ab3dEf9h_" + "x" * 42 + "é",
        "mrk_Ab3dEf9h_" + "x" * 42 + "\ud800",
        "mrk_Ab3dEf9h_" + "x" * 42 + "\x00",
    ],
)
def test_parse_secret_rejects_wrong_shapes(secret: str) -> None:
    assert parse_secret(secret, "mrk") is None


def test_parse_secret_accepts_the_expected_shape() -> None:
    assert parse_secret(VALID, "mrk") == "Ab3dEf9h"
    assert parse_secret("mrk_Ab3dEf9h_" + "_-" * 16, "mrk") == "Ab3dEf9h"


def test_parse_secret_never_raises_for_odd_prefixes() -> None:
    assert parse_secret(VALID, "") is None
    assert parse_secret(VALID, "mr") is None
    assert parse_secret(VALID, "\ud800") is None


def test_digest_is_sha256_hex() -> None:
    # FIPS 180-2 / NIST example: SHA-256("abc").
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_matches() -> None:
    issued = new_secret("mrk")
    assert matches(issued.secret, issued.digest)
    assert not matches(issued.secret + "x", issued.digest)
    assert not matches(new_secret("mrk").secret, issued.digest)
    assert not matches(issued.secret, issued.digest.upper())
    assert not matches(issued.secret, "")


@pytest.mark.parametrize("stored", ["ä" * 64, "\ud800", "\x00" * 64, "not a digest"])
def test_matches_never_raises_on_odd_stored_values(stored: str) -> None:
    assert not matches(new_secret("mrk").secret, stored)


def test_matches_never_raises_on_odd_presented_secrets() -> None:
    stored = new_secret("mrk").digest
    assert not matches("ä\ud800\x00", stored)
