"""Turning bytes of unreliable provenance into clean text.

Mail declares charsets that are wrong, unknown or missing, and headers carry raw
8-bit bytes. Everything here degrades to a best guess instead of failing, and
the result never holds NUL or lone surrogates (PostgreSQL and UTF-8 JSON reject both).
"""

from __future__ import annotations

import binascii
import codecs
import re

# Labels mail gets wrong in practice, mapped to the superset real mailers meant
# (the same choices browsers make in the WHATWG Encoding standard).
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "tis-620": "cp874",
}
# Python codecs that accept a charset name but are not mail charsets; one of
# these in a header would make the parser interpret escapes or punycode.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
# For these a few bad bytes usually mean damage, not a wrong label: keep the
# declared decoding and replace the damage rather than turning the whole text into mojibake.
_MULTIBYTE = {
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "utf-32-le",
    "utf-32-be",
    "cp932",
    "euc_jp",
    "iso2022_jp",
    "gb18030",
    "big5",
    "big5hkscs",
    "cp950",
    "cp949",
    "johab",
    "hz",
}

_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NEWLINES = re.compile(r"\r\n?")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def lookup_codec(charset: str | None) -> str | None:
    """Return the Python codec name to use for a declared charset, or None if unusable."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if not label:
        return None
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # codecs.lookup also finds bytes-to-bytes codecs such as "base64" and "zlib".
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    name = info.name
    return _SUPERSETS.get(name, name)


def _single_byte_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: read bytes that are not UTF-8 as Windows-1252 (else Latin-1)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(_CP1252[byte] for byte in error.object[error.start : error.end]), error.end


# Windows-1252 leaves five bytes undefined; Latin-1 names every byte.
_CP1252 = [bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(256)]
# Registered under a private name: the registry is process-wide, the handler pure.
_FALLBACK_ERRORS = "mailroom.delivery.cp1252-fallback"
codecs.register_error(_FALLBACK_ERRORS, _single_byte_fallback)


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, list[str]]:
    """Decode with the declared charset, else as UTF-8 with single-byte fallback.

    Returns the text and defect descriptions. Never raises.
    """
    defects: list[str] = []
    codec = lookup_codec(charset)
    label = (charset or "").strip()[:40]
    if label and codec is None:
        defects.append(f"unknown charset {label!r}")
    if codec is not None:
        try:
            return data.decode(codec), defects
        except (ValueError, LookupError):  # UnicodeDecodeError is a ValueError
            defects.append(f"bytes invalid in declared charset {label!r}")
        if codec in _MULTIBYTE:
            try:
                return data.decode(codec, "replace"), defects
            except (ValueError, LookupError):
                pass
    # Valid UTF-8 sequences stay UTF-8 and every other byte is read as Windows-1252:
    # right for Latin-1 mislabelled as UTF-8, for undeclared 8-bit text, and for the
    # mixtures that appear when a mailer pastes Latin-1 into UTF-8 text.
    return data.decode("utf-8", _FALLBACK_ERRORS), defects


def repair_8bit(value: str) -> tuple[str, bool]:
    """Turn surrogate-escaped raw bytes (how `email` keeps 8-bit header bytes) into text.

    UTF-8 is tried first because RFC 6532 allows it in headers, then the
    single-byte fallbacks. Returns the text and whether it was clean: False when
    raw bytes were present that are not UTF-8.
    """
    if not _SURROGATES.search(value):
        return value, True
    if not all("\udc80" <= ch <= "\udcff" for ch in _SURROGATES.findall(value)):
        return _SURROGATES.sub("\ufffd", value), False  # not from surrogateescape: nothing to recover
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", _FALLBACK_ERRORS), False


def clean_text(value: str) -> str:
    """Drop NUL and other control characters (not tabs and newlines); lone surrogates become U+FFFD."""
    if not value.isascii():  # an ASCII string has no surrogates; isascii costs nothing
        value = _SURROGATES.sub("\ufffd", value)
    return _CONTROLS.sub("", value)


def normalize_newlines(value: str) -> str:
    """Use LF line endings whatever the message used (CRLF, LF or lone CR)."""
    # What _NEWLINES.sub("\n", value) gives (a CR eats the LF after it), at a tenth of its cost.
    return value.replace("\r\n", "\n").replace("\r", "\n")


def fold_whitespace(value: str) -> str:
    """Collapse every whitespace run (including folded header line breaks) to one space."""
    return " ".join(value.split())


def decode_encoded_words(value: str) -> tuple[str, bool]:
    """Decode RFC 2047 encoded-words anywhere in `value`, tolerantly.

    Adjacent encoded-words in the same charset are joined before decoding because
    mailers split multi-byte characters across them. Words whose payload is not
    valid base64 are left as written rather than decoded into garbage. Returns the
    text and whether any word was malformed or in an unusable charset.
    """
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    broken = False
    pos = 0

    def flush() -> None:
        nonlocal pending_charset, broken
        if pending:
            text, problems = decode_bytes(b"".join(pending), pending_charset)
            broken = broken or bool(problems)
            out.append(text)
        pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        pos = match.end()
        charset = match.group(1).split("*", 1)[0]  # drop an RFC 2231 language suffix
        payload = _decode_word_payload(match.group(2), match.group(3))
        if payload is None:
            broken = True
            flush()
            out.append(gap + match.group(0))
            continue
        # Whitespace between two encoded-words is not part of the text (RFC 2047 section 6.2).
        adjacent = bool(pending) and not gap.strip(" \t\r\n")
        if adjacent and charset.lower() == (pending_charset or "").lower():
            pending.append(payload)
            continue
        flush()
        if not adjacent:
            out.append(gap)
        pending_charset = charset
        pending.append(payload)
    flush()
    out.append(value[pos:])
    return "".join(out), broken


def _decode_word_payload(encoding: str, payload: str) -> bytes | None:
    """Decode the B or Q payload of one encoded-word; None if it is not decodable."""
    data = payload.encode("ascii", "replace")
    if encoding in "qQ":
        return _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))
    data += b"=" * (-len(data) % 4)  # missing padding is common and harmless
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
