"""Header fields as bytes: splitting a header block, unfolding, encoded words, parameters.

Total functions: any bytes in, a value out (never an exception), because the input is mail.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator

#: A header field name (RFC 5322 ftext), then the colon; whitespace before the colon is
#: tolerated (obsolete syntax, still seen).
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_SPACE_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(?==\?)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def split_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Split a header block into (name, raw value) pairs, in order.

    The raw value is every octet after the colon up to (not including) the field's final
    line end, folding kept. Lines that are neither a field nor a continuation are skipped.
    """
    block = _lf(block)
    fields: list[tuple[bytes, bytes]] = []
    for start, end in _field_spans(block):
        line = block[start:end]
        match = _FIELD.match(line)
        if match is None:
            continue
        value = line[match.end() :]
        if value.endswith(b"\n"):
            value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
        fields.append((match.group(1), value))
    return fields


def _lf(block: bytes) -> bytes:
    """CR-only line ends read as LF (same length: offsets stay valid)."""
    return block.replace(b"\r", b"\n") if b"\n" not in block and b"\r" in block else block


def _field_spans(block: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each logical field (a line and its continuations), line ends included."""
    pos, size = 0, len(block)
    start = -1
    while pos < size:
        nl = block.find(b"\n", pos)
        end = size if nl < 0 else nl + 1
        first = block[pos : pos + 1]
        if first in (b" ", b"\t") and start >= 0:
            pos = end
            continue
        if start >= 0:
            yield start, pos
        start = pos if block[pos:end].strip(b"\r\n") else -1
        pos = end
    if start >= 0:
        yield start, size


def field_spans(block: bytes) -> list[tuple[bytes, int, int]]:
    """(lowercased name, start, end) of each field of a header block, line ends included."""
    block = _lf(block)
    spans: list[tuple[bytes, int, int]] = []
    for start, end in _field_spans(block):
        match = _FIELD.match(block, start, end)
        if match is not None:
            spans.append((match.group(1).lower(), start, end))
    return spans


def without_fields(message: bytes, names: set[bytes]) -> bytes:
    """``message`` with the top-level header fields named in ``names`` (lowercase) removed,
    continuation lines included (Bcc before sending, RFC 5322 §3.6.3)."""
    end = _header_end(message)
    block = message[:end]
    kept = b"".join(block[start:stop] for name, start, stop in _field_spans_named(block) if name not in names)
    return kept + message[end:]


def _header_end(message: bytes) -> int:
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = message.find(separator)
        if at >= 0:
            return at + len(separator) // 2
    return len(message)


def _field_spans_named(block: bytes) -> list[tuple[bytes, int, int]]:
    """Every logical line of a header block with its field name (b"" when it is none)."""
    out: list[tuple[bytes, int, int]] = []
    for start, end in _field_spans(block):
        match = _FIELD.match(block, start, end)
        out.append((match.group(1).lower() if match else b"", start, end))
    return out


def text_of(raw: bytes) -> str:
    """Octets as text: UTF-8 where valid, each invalid octet as U+FFFD. NULs are dropped."""
    return raw.decode("utf-8", "replace").replace("\x00", "")


def unfold(value: str) -> str:
    """Remove the line breaks of folding (RFC 5322 §2.2.3); the whitespace stays."""
    return _FOLD.sub("", value).replace("\r", "").replace("\n", "")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; whitespace between two adjacent words is dropped."""
    if "=?" not in value:
        return value
    return _ENCODED_WORD.sub(_decode_word, _SPACE_BETWEEN_WORDS.sub(r"\1", value))


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
    try:
        if encoding == "b":
            padded = payload + "=" * (-len(payload) % 4)
            data = binascii.a2b_base64(padded.encode("ascii", "replace"))
        else:
            data = binascii.a2b_qp(payload.replace("_", " ").encode("ascii", "replace"), header=False)
    except (binascii.Error, ValueError):
        return match.group(0)
    return decode_charset(data, charset)[0]


def decode_charset(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode `data` in `charset` (UTF-8 when unknown); (text, whether anything was wrong)."""
    name = (charset or "utf-8").strip().strip('"').lower() or "utf-8"
    if name in ("us-ascii", "ascii", "ansi_x3.4-1968"):
        name = "utf-8"  # 8-bit octets in "ASCII" are nearly always UTF-8 in practice
    try:
        codec = codecs.lookup(name)
    except (LookupError, ValueError):
        codec, problem = codecs.lookup("utf-8"), True
    else:
        problem = False
    try:
        text = data.decode(codec.name)
    except (UnicodeDecodeError, ValueError):
        text, problem = data.decode(codec.name, "replace"), True
    except Exception:  # a codec that is not a text codec (rot13, zlib, ...)
        text, problem = data.decode("utf-8", "replace"), True
    return text.replace("\x00", ""), problem


def as_text(raw: bytes) -> str:
    """RFC 8621 asText: unfold, decode encoded words, trim surrounding whitespace."""
    return decode_words(unfold(text_of(raw))).strip()


# -- parameters (RFC 2045 §5.1, RFC 2231) ---------------------------------------------------

_TOKEN = re.compile(r'[^\s;=()<>@,:\\"/\[\]?]+')


def parse_parameterised(value: str) -> tuple[str, dict[str, str]]:
    """Split `type/subtype; a=b; c="d"` (or `attachment; filename=x`) into the value and its
    parameters: names lowercased, RFC 2231 continuations and charsets applied, encoded words
    in values decoded (common in filenames though not allowed there)."""
    value = _strip_comments(unfold(value))
    head, _, rest = value.partition(";")
    raw: list[tuple[str, str]] = []
    pos = 0
    while pos < len(rest):
        while pos < len(rest) and rest[pos] in " \t;":
            pos += 1
        match = _TOKEN.match(rest, pos)
        if match is None:
            next_semi = rest.find(";", pos)
            pos = len(rest) if next_semi < 0 else next_semi + 1
            continue
        name = match.group(0).lower()
        pos = match.end()
        while pos < len(rest) and rest[pos] in " \t":
            pos += 1
        if pos >= len(rest) or rest[pos] != "=":
            continue
        pos += 1
        while pos < len(rest) and rest[pos] in " \t":
            pos += 1
        if pos < len(rest) and rest[pos] == '"':
            text, pos = _quoted(rest, pos)
        else:
            end = rest.find(";", pos)
            end = len(rest) if end < 0 else end
            text, pos = rest[pos:end].strip(), end
        raw.append((name, text))
    return head.strip().lower(), _collapse(raw)


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The quoted string starting at text[pos] == '"': (its content, position after it)."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    return "".join(out), pos


def _strip_comments(value: str) -> str:
    if "(" not in value:
        return value
    out: list[str] = []
    depth = 0
    quoted = False
    escape = False
    for char in value:
        if escape:
            escape = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escape = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == '"' and depth == 0:
            quoted = True
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


_SECTION = re.compile(r"^([^*]+)\*(\d{1,3})(\*?)$")


def _collapse(raw: list[tuple[str, str]]) -> dict[str, str]:
    """Apply RFC 2231: `name*=charset'lang'%xx` and `name*0=..; name*1=..` continuations."""
    plain: dict[str, str] = {}
    pieces: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, value in raw:
        section = _SECTION.match(name)
        if section is not None:
            pieces.setdefault(section.group(1), {})[int(section.group(2))] = (value, bool(section.group(3)))
        elif name.endswith("*"):
            pieces.setdefault(name[:-1], {})[0] = (value, True)
        else:
            plain.setdefault(name, decode_words(value))
    for name, parts in pieces.items():
        ordered = [parts[i] for i in sorted(parts)]
        charset = "us-ascii"
        if ordered and ordered[0][1]:
            first = ordered[0][0]
            if first.count("'") >= 2:
                charset, _, rest = first.partition("'")
                rest = rest.partition("'")[2]
                ordered[0] = (rest, True)
        data = b"".join(
            _percent_decode(v) if encoded else v.encode("utf-8", "replace") for v, encoded in ordered
        )
        plain[name] = decode_charset(data, charset or "us-ascii")[0]
    return plain


def _percent_decode(value: str) -> bytes:
    out = bytearray()
    data = value.encode("utf-8", "replace")
    i = 0
    while i < len(data):
        if data[i] == 0x25 and i + 2 < len(data) + 0 and _is_hex(data[i + 1 : i + 3]):
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)
