"""OpenPGP detection by content: encrypted messages (armoured, binary, old and new packet
formats) pass; plain files, signed-only messages, keys and truncated data do not."""

from __future__ import annotations

import warnings

import pytest

from mailroom.domain.openpgp import is_openpgp_encrypted

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pgpy


def new_header(tag: int, length: int) -> bytes:
    assert length < 192
    return bytes([0xC0 | tag, length])


def old_header(tag: int, length: int) -> bytes:
    return bytes([0x80 | (tag << 2) | 0, length])


PKESK_BODY = bytes([3]) + b"\x01" * 8 + bytes([1]) + b"\x00" * 20  # v3, key id, RSA, MPI bytes
SEIPD_BODY = bytes([1]) + b"\x5a" * 40


def symmetric_message() -> pgpy.PGPMessage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pgpy.PGPMessage.new(b"attachment bytes", file=True).encrypt("passphrase")


def test_pgpy_encrypted_messages_armoured_and_binary() -> None:
    message = symmetric_message()
    assert is_openpgp_encrypted(bytes(message))
    assert is_openpgp_encrypted(str(message).encode())
    assert is_openpgp_encrypted(b"\r\n  " + str(message).encode())  # leading blank lines


@pytest.mark.parametrize(
    "data",
    [
        new_header(1, len(PKESK_BODY)) + PKESK_BODY + new_header(18, len(SEIPD_BODY)) + SEIPD_BODY,
        old_header(1, len(PKESK_BODY)) + PKESK_BODY + old_header(9, 40) + b"\x00" * 40,
        # two recipients, then the data in a partial-length packet (allowed for data)
        2 * (new_header(1, len(PKESK_BODY)) + PKESK_BODY) + bytes([0xC0 | 18, 0xE5]) + SEIPD_BODY,
        # a marker packet first
        new_header(10, 3) + b"PGP" + new_header(18, len(SEIPD_BODY)) + SEIPD_BODY,
    ],
)
def test_hand_made_packet_sequences(data: bytes) -> None:
    assert is_openpgp_encrypted(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"just some text\n",
        b"%PDF-1.7\n...",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
        new_header(11, 10) + b"b\x00\x00\x00\x00\x00hello",  # a literal data packet
        new_header(1, len(PKESK_BODY)) + PKESK_BODY,  # session key, no data
        new_header(1, 200 - 192) + PKESK_BODY,  # length shorter than the data: then garbage
        new_header(1, 60) + PKESK_BODY,  # truncated
        new_header(18, 1) + bytes([7]),  # SEIPD of an unknown version
        b"-----BEGIN PGP MESSAGE-----\n\nbm90IGJhc2U2NCEh!!\n-----END PGP MESSAGE-----\n",
        b"-----BEGIN PGP MESSAGE-----\n\nAAAA\n",  # no end line
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n",
    ],
)
def test_not_encrypted(data: bytes) -> None:
    assert not is_openpgp_encrypted(data)


def test_a_signed_only_message_is_not_encrypted() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = pgpy.PGPMessage.new(
            b"plain but compressed", compression=pgpy.constants.CompressionAlgorithm.ZLIB
        )
    assert not is_openpgp_encrypted(bytes(message))
    assert not is_openpgp_encrypted(str(message).encode())
