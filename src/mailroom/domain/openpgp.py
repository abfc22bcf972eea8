"""Is this file OpenPGP-encrypted? Decided from its bytes alone (RFC 9580 packet framing).

An encrypted OpenPGP message is zero or more session-key packets (PKESK, tag 1; SKESK,
tag 3; marker packets, tag 10, are skipped) followed by an encrypted data packet (SEIPD,
tag 18; the old SED, tag 9; AEAD, tag 20). Anything else (a literal, a signature, a key,
a compressed or signed-only message) is not encrypted. ASCII armour (``-----BEGIN PGP
MESSAGE-----``) is decoded first and the packets inside are checked the same way.

This checks the framing, not that anyone can decrypt it: a policy that wants attachments
encrypted refuses plain files, it cannot tell a well-encrypted file from random bytes shaped
like one.
"""

from __future__ import annotations

import base64
import binascii

PKESK, SKESK, MARKER = 1, 3, 10
ENCRYPTED_DATA = frozenset({9, 18, 20})
_ARMOR_BEGIN = b"-----BEGIN PGP MESSAGE-----"
_ARMOR_END = b"-----END PGP MESSAGE-----"
_MAX_PACKETS = 1000


def is_openpgp_encrypted(data: bytes) -> bool:
    """True for an OpenPGP encrypted message, binary or ASCII-armoured."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(_ARMOR_BEGIN):
        binary = _dearmor(head)
        return binary is not None and _is_encrypted_binary(binary)
    return _is_encrypted_binary(data)


def _dearmor(text: bytes) -> bytes | None:
    lines = text.splitlines()
    try:
        end = next(i for i, line in enumerate(lines) if line.strip() == _ARMOR_END)
    except StopIteration:
        return None
    body = lines[1:end]
    # Armour headers ("Version: ...") end at a blank line, which some producers leave out.
    blank = next((i for i, line in enumerate(body) if not line.strip()), None)
    if blank is not None and all(b": " in line for line in body[:blank]):
        body = body[blank + 1 :]
    chunks = [line.strip() for line in body if line.strip()]
    if chunks and chunks[-1].startswith(b"=") and len(chunks[-1]) == 5:
        chunks = chunks[:-1]  # the CRC-24 checksum line
    try:
        return base64.b64decode(b"".join(chunks), validate=True)
    except (binascii.Error, ValueError):
        return None


def _header(data: bytes, pos: int) -> tuple[int, int | None, int] | None:
    """(tag, body length or None for "to the end / partial", header size) at ``pos``."""
    if pos >= len(data):
        return None
    first = data[pos]
    if not first & 0x80:
        return None
    if first & 0x40:  # new format
        tag = first & 0x3F
        if pos + 1 >= len(data):
            return None
        o1 = data[pos + 1]
        if o1 < 192:
            return tag, o1, 2
        if o1 < 224:
            if pos + 2 >= len(data):
                return None
            return tag, ((o1 - 192) << 8) + data[pos + 2] + 192, 3
        if o1 == 255:
            if pos + 6 > len(data):
                return None
            return tag, int.from_bytes(data[pos + 2 : pos + 6], "big"), 6
        return tag, None, 2  # partial body length: only data packets may use it
    tag = (first >> 2) & 0x0F
    kind = first & 0x03
    if kind == 3:
        return tag, None, 1  # indeterminate: to the end
    size = (1, 2, 4)[kind]
    if pos + 1 + size > len(data):
        return None
    return tag, int.from_bytes(data[pos + 1 : pos + 1 + size], "big"), 1 + size


def _is_encrypted_binary(data: bytes) -> bool:
    pos = 0
    for _ in range(_MAX_PACKETS):
        header = _header(data, pos)
        if header is None:
            return False
        tag, length, size = header
        body = pos + size
        if tag in ENCRYPTED_DATA:
            if body >= len(data):
                return False
            # SEIPD is version 1 or 2; SED and AEAD carry no version byte worth checking here.
            return tag != 18 or data[body] in (1, 2)
        if tag not in (PKESK, SKESK, MARKER) or length is None or body + length > len(data):
            return False
        if tag == PKESK and (length < 2 or data[body] not in (3, 6)):
            return False
        if tag == SKESK and (length < 2 or data[body] not in (4, 5, 6)):
            return False
        pos = body + length
    return False
