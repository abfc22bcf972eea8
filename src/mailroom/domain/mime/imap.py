"""IMAP's views of a stored structure: ENVELOPE, BODY/BODYSTRUCTURE, sections (RFC 9051).

Pure functions over a `MimeStructure` and the stored bytes; nothing here parses the message
again. The message an IMAP client sees is ``trace + blob``: the per-mailbox trace lines
(``Return-Path``, ``Delivered-To``, ``Received``: the email row's ``trace`` column, encoded
as UTF-8) in front of the shared blob. Every function that returns bytes or offsets takes
that trace, so RFC822.SIZE, BODY[] and BODY[HEADER] agree with each other.

Data for the IMAP writer (`envelope`, `body_structure`) is built from four kinds of value:

- ``str`` — an IMAP string (quoted, or a literal when it holds CR, LF, NUL, '"' and '\\'
  beyond what quoting allows, or non-ASCII: header text may carry raw UTF-8);
- ``None`` — NIL; ``int`` — a number;
- ``list`` — a parenthesised list, items separated by one space;
- ``tuple`` — items written one after the other with no separator (only the children of a
  multipart, which RFC 9051's ``body-type-mpart = 1*body SP media-subtype`` concatenates).

This module's API is stable: the IMAP server builds on it.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

from mailroom.domain.mime._fields import field_spans
from mailroom.domain.mime._model import Address, Envelope, MimeStructure, Part

#: The data `envelope` and `body_structure` return (see the module docstring).
ImapValue = Union[str, int, None, list["ImapValue"], tuple["ImapValue", ...]]  # noqa: UP007

SectionText = Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]

__all__ = [
    "ImapValue",
    "Section",
    "SectionText",
    "binary_bytes",
    "body_structure",
    "envelope",
    "find_part",
    "parse_section",
    "section_bytes",
    "section_range",
]


# -- ENVELOPE ------------------------------------------------------------------------------


def _address_list(addresses: tuple[Address, ...]) -> ImapValue:
    if not addresses:
        return None
    return [[a.name, a.adl, a.mailbox, a.host] for a in addresses]


def envelope(env: Envelope) -> list[ImapValue]:
    """ENVELOPE (RFC 9051 §7.5.2): date, subject, from, sender, reply-to, to, cc, bcc,
    in-reply-to, message-id. Sender and Reply-To repeat From when absent or empty."""
    sender = env.sender or env.from_
    reply_to = env.reply_to or env.from_
    return [
        env.date,
        env.subject,
        _address_list(env.from_),
        _address_list(sender),
        _address_list(reply_to),
        _address_list(env.to),
        _address_list(env.cc),
        _address_list(env.bcc),
        env.in_reply_to,
        env.message_id,
    ]


# -- BODY / BODYSTRUCTURE -----------------------------------------------------------------


def _params(part: Part) -> ImapValue:
    params: list[ImapValue] = [item for pair in part.params for item in pair]
    if part.type == "text" and part.charset is None:
        params = ["charset", "us-ascii", *params]
    return params or None


def _disposition(part: Part) -> ImapValue:
    if part.disposition is None:
        return None
    params: list[ImapValue] = [item for pair in part.disposition_params for item in pair]
    return [part.disposition, params or None]


def _language(part: Part) -> ImapValue:
    if not part.language:
        return None
    if len(part.language) == 1:
        return part.language[0]
    return list(part.language)


def body_structure(part: Part, *, extensible: bool = True) -> list[ImapValue]:
    """BODYSTRUCTURE of `part` (pass `structure.root`), or BODY with `extensible=False`.

    A multipart gives ``[(child, child, ...), subtype, params, disposition, language,
    location]``; a leaf ``[type, subtype, params, id, description, encoding, octets, ...]``
    with, for text, its line count, and for message/rfc822 the nested envelope, body and
    line count, then (BODYSTRUCTURE only) md5, disposition, language, location.
    """
    if part.is_multipart:
        children = tuple(body_structure(child, extensible=extensible) for child in part.parts)
        out: list[ImapValue] = [children, part.subtype]
        if extensible:
            out += [_params(part), _disposition(part), _language(part), part.location]
        return out
    out = [
        part.type,
        part.subtype,
        _params(part),
        part.content_id,
        part.description,
        part.encoding or "7bit",
        part.size,
    ]
    if part.type == "message" and part.message is not None and part.envelope is not None:
        out += [envelope(part.envelope), body_structure(part.message, extensible=extensible), part.lines]
    elif part.type == "text":
        out.append(part.lines)
    if extensible:
        out += [part.md5, _disposition(part), _language(part), part.location]
    return out


# -- sections -----------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")


@dataclass(frozen=True, slots=True)
class Section:
    """A FETCH section: part numbers (empty: the message itself), then the text
    specifier if any, with the field names of HEADER.FIELDS[.NOT] (uppercase-insensitive)."""

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()


def parse_section(spec: str) -> Section | None:
    """Read what stands between the brackets of BODY[...]: "", "1.2", "HEADER", "1.MIME",
    "2.HEADER.FIELDS (From To)" ...; None when it is not a valid section (a BAD).

    Field names may be atoms or quoted strings (quotes are removed)."""
    spec = spec.strip()
    names: str | None = None
    if "(" in spec:
        spec, _, rest = spec.partition("(")
        if not rest.endswith(")") or "(" in rest or ")" in rest[:-1]:
            return None
        spec, names = spec.rstrip(), rest[:-1]
    if spec.endswith("."):
        return None
    items = spec.split(".") if spec else []
    numbers: list[int] = []
    while items and items[0].isdigit() and items[0].isascii():
        if items[0].startswith("0") or len(items[0]) > 9 or len(numbers) >= 100:
            return None
        numbers.append(int(items.pop(0)))
    text = ".".join(items).upper()
    if text not in _TEXTS:
        return None
    kind = text or None
    if kind == "MIME" and not numbers:
        return None
    if (names is not None) != (kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT")):
        return None
    fields: tuple[str, ...] = ()
    if names is not None:
        fields = tuple(n.strip('"') for n in names.split())
        if not fields or not all(_FIELD_NAME.match(n) for n in fields):
            return None
    return Section(tuple(numbers), kind, fields)  # type: ignore[arg-type]


_TEXTS = frozenset({"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"})


def find_part(structure: MimeStructure, numbers: Sequence[int]) -> Part | None:
    """The entity that part number `numbers` names, or None when there is none.

    In a message that is not multipart the body is part 1; inside a message/rfc822 part N,
    "N.1", "N.2" number the parts of the nested message (its body, when not multipart)."""
    current = structure.root
    in_message = True
    for index, number in enumerate(numbers):
        if current.is_multipart:
            if not 1 <= number <= len(current.parts):
                return None
            current = current.parts[number - 1]
        elif not (in_message and number == 1):
            return None
        in_message = False
        if index + 1 < len(numbers) and current.message is not None:
            current, in_message = current.message, True
    return current


def _message_of(structure: MimeStructure, section: Section) -> Part | None:
    """The message root that HEADER/TEXT of `section` speak of."""
    if not section.part:
        return structure.root
    part = find_part(structure, section.part)
    return None if part is None else part.message


def section_range(structure: MimeStructure, section: Section, trace_size: int = 0) -> tuple[int, int] | None:
    """(start, end) of a contiguous section in ``trace + blob`` (every section but
    HEADER.FIELDS[.NOT]); None when the part does not exist or has no such section (IMAP
    then answers an empty string). `trace_size` is the length of the trace in octets."""
    shift = trace_size
    end_of_message = structure.size + shift
    if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return None
    if section.text in ("HEADER", "TEXT"):
        message = _message_of(structure, section)
        if message is None:
            return None
        if section.text == "HEADER":
            start = 0 if not section.part else message.header_start + shift
            return start, message.body_start + shift
        return message.body_start + shift, message.body_end + shift
    if not section.part:
        return 0, end_of_message
    part = find_part(structure, section.part)
    if part is None:
        return None
    if section.text == "MIME":
        return part.header_start + shift, part.body_start + shift
    return part.body_start + shift, part.body_end + shift


def section_bytes(structure: MimeStructure, section: Section, blob: bytes, trace: bytes = b"") -> bytes:
    """The octets of BODY[section] of the message ``trace + blob`` (before any <partial>).

    A part that does not exist gives b"" (RFC 9051 leaves it to the server; Dovecot and
    Gmail answer an empty string). HEADER.FIELDS[.NOT] gives the matching fields in order
    (field names case-insensitive) followed by the blank line, as RFC 9051 asks."""
    if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        message = _message_of(structure, section)
        if message is None:
            return b""
        block = blob[message.header_start : message.body_start]
        if not section.part:
            block = trace + block
        wanted = {name.lower().encode("ascii", "replace") for name in section.fields}
        keep = section.text == "HEADER.FIELDS"
        out = [block[start:end] for name, start, end in field_spans(block) if (name in wanted) == keep]
        text = b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in out)
        return text + b"\r\n"
    span = section_range(structure, section, len(trace))
    if span is None:
        return b""
    start, end = span
    if start >= len(trace):
        return blob[start - len(trace) : end - len(trace)]
    return (trace + blob[: max(0, end - len(trace))])[start:end]


class UnknownTransferEncoding(ValueError):
    """BINARY of a part whose Content-Transfer-Encoding is not one IMAP can undo
    (RFC 3516: answer NO [UNKNOWN-CTE])."""


def binary_bytes(structure: MimeStructure, numbers: Sequence[int], blob: bytes, trace: bytes = b"") -> bytes:
    """BINARY[part] (RFC 9051 §6.4.5): the part's body with its transfer encoding undone.

    Empty `numbers` is the whole message as it is (trace included). A missing part gives
    b"". Raises `UnknownTransferEncoding` for an encoding other than 7bit/8bit/binary/
    base64/quoted-printable."""
    if not numbers:
        return trace + blob
    part = find_part(structure, numbers)
    if part is None:
        return b""
    body = blob[part.body_start : part.body_end]
    if part.is_multipart or part.encoding in (None, "7bit", "8bit", "binary"):
        return body
    if part.encoding == "base64":
        return decode_base64(body)
    if part.encoding == "quoted-printable":
        return decode_quoted_printable(body)
    raise UnknownTransferEncoding(part.encoding)


_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|\Z)")


def decode_quoted_printable(body: bytes) -> bytes:
    """Quoted-printable undone as RFC 2045 §6.7 says: white space at the end of a line is
    transport padding and goes (so ``=`` then spaces is still a soft line break)."""
    return binascii.a2b_qp(_TRAILING_SPACE.sub(b"", body))


def decode_base64(body: bytes) -> bytes:
    """Lenient base64: characters outside the alphabet are skipped, missing padding added;
    what cannot be decoded at all (a lone trailing character) is dropped."""
    data = body.translate(None, _B64_NOT_ALPHABET).rstrip(b"=")
    data = data[: len(data) - (len(data) % 4 == 1)]
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return b""


_B64_NOT_ALPHABET = bytes(
    c for c in range(256) if c not in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)
