"""One pass over a message's bytes that finds every MIME entity's header and body offsets.

Byte-level on purpose: the stdlib `email` parser does not keep offsets, and this scan needs
only `bytes.find` over the body and a regex per header line, so it costs a fraction of a
full parse (see tests/domain/mime and the bench figure in docs/mime.md). Lenient like the
mail readers people use: a missing boundary, a missing close delimiter, a header without its
blank line or garbage anywhere still give a structure, never an exception.
"""

from __future__ import annotations

import binascii
import re

from mailroom.domain.mime._addresses import parse_address_list
from mailroom.domain.mime._fields import _FIELD, parse_parameterised, split_fields, text_of, unfold
from mailroom.domain.mime._model import Address, Envelope, MimeStructure, Params, Part

_MEDIA_TYPE = re.compile(r"([a-z0-9!#$&^_.+-]+)/([a-z0-9!#$&^_.+-]+)")
_IDENTITY = (None, "7bit", "8bit", "binary")
_ENVELOPE_FIELDS = frozenset(
    {
        b"date",
        b"subject",
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"in-reply-to",
        b"message-id",
    }
)
_B64_JUNK = b" \t\r\n"
MAX_DEPTH_CEILING = 100


def scan(blob: bytes, *, max_depth: int = 32, max_parts: int = 1000) -> MimeStructure:
    """Compute the structure of `blob` (a whole RFC 5322 message). Never raises.

    `max_depth` bounds nesting (deeper multiparts are read as text/plain, deeper
    message/rfc822 parts are not opened), `max_parts` the number of entities (the rest of a
    multipart's children are left out).
    """
    data = bytes(blob)
    if b"\n" not in data and b"\r" in data:
        # Old Mac line ends (CR alone): read them as LF; one octet for one, so every
        # offset still indexes the stored bytes.
        data = data.replace(b"\r", b"\n")
    scanner = _Scanner(data, max(1, min(max_depth, MAX_DEPTH_CEILING)), max(1, max_parts))
    try:
        root, envelope = scanner.message(0, len(data), 0, "")
    except RecursionError:  # cannot happen within the ceiling; totality is the contract
        root, envelope = Part("1", 0, 0, len(data), "text", "plain"), _EMPTY_ENVELOPE
    return MimeStructure(root, envelope, len(data))


_EMPTY_ENVELOPE = Envelope(None, None, (), (), (), (), (), (), None, None)


class _Scanner:
    def __init__(self, blob: bytes, max_depth: int, max_parts: int) -> None:
        self.blob = blob
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.count = 0

    def message(self, start: int, end: int, depth: int, prefix: str) -> tuple[Part, Envelope]:
        """A message root: its part number is `prefix` when multipart, else prefix + ".1"."""
        return self.entity(start, end, depth, None, prefix, ("text", "plain"), envelope=True)

    def entity(
        self,
        start: int,
        end: int,
        depth: int,
        number: str | None,
        prefix: str,
        default: tuple[str, str],
        envelope: bool = False,
    ) -> tuple[Part, Envelope]:
        self.count += 1
        blob = self.blob
        body_start = _header_end(blob, start, end, allow_from=start == 0)
        fields = split_fields(blob[start:body_start])
        content: dict[bytes, bytes] = {}
        wanted: dict[bytes, bytes] = {}
        for name, value in fields:
            lower = name.lower()
            if lower.startswith(b"content-"):
                content.setdefault(lower, value)
            elif envelope and lower in _ENVELOPE_FIELDS:
                wanted.setdefault(lower, value)
        kind, subtype = default
        params: dict[str, str] = {}
        if b"content-type" in content:
            head, params = parse_parameterised(text_of(content[b"content-type"]))
            match = _MEDIA_TYPE.fullmatch(head)
            if match is not None:
                kind, subtype = match.group(1), match.group(2)
            else:  # RFC 2045 §5.2: an invalid Content-Type means text/plain (us-ascii)
                kind, subtype, params = "text", "plain", {}
        encoding = _simple(content.get(b"content-transfer-encoding"))
        encoding = encoding.lower() if encoding else None
        root = number is None
        if number is None:
            number = prefix if kind == "multipart" else (f"{prefix}.1" if prefix else "1")
        children: tuple[Part, ...] = ()
        nested: Part | None = None
        nested_envelope: Envelope | None = None
        if kind == "multipart":
            boundary = params.get("boundary")
            found = self.children(body_start, end, depth, number, subtype, boundary) if boundary else None
            if found:
                children = tuple(found)
            else:  # no usable boundary: the body is text (as the stdlib and clients read it)
                kind, subtype = "text", "plain"
                if root:
                    number = f"{prefix}.1" if prefix else "1"
        elif (
            kind == "message"
            and subtype in ("rfc822", "global")
            and encoding in _IDENTITY
            and depth + 1 < self.max_depth
            and self.count < self.max_parts
        ):
            nested, nested_envelope = self.message(body_start, end, depth + 1, number)
        disposition: str | None = None
        disposition_params: dict[str, str] = {}
        if b"content-disposition" in content:
            head, disposition_params = parse_parameterised(text_of(content[b"content-disposition"]))
            disposition = head or None
        language = tuple(
            tag.strip() for tag in (_simple(content.get(b"content-language")) or "").split(",") if tag.strip()
        )
        location = _simple(content.get(b"content-location"))
        part = Part(
            section=number,
            header_start=start,
            body_start=body_start,
            body_end=end,
            type=kind,
            subtype=subtype,
            params=_pairs(params),
            encoding=encoding,
            disposition=disposition,
            disposition_params=_pairs(disposition_params),
            language=language,
            location="".join(location.split()) if location else None,
            content_id=_simple(content.get(b"content-id")),
            description=_simple(content.get(b"content-description")),
            md5=_simple(content.get(b"content-md5")),
            lines=_lines(blob, body_start, end),
            decoded_size=_decoded_size(blob, body_start, end, encoding) if kind != "multipart" else 0,
            parts=children,
            message=nested,
            envelope=nested_envelope,
        )
        return part, (_envelope(wanted) if envelope else _EMPTY_ENVELOPE)

    def children(
        self, start: int, end: int, depth: int, number: str, subtype: str, boundary: str
    ) -> list[Part] | None:
        """The parts between the boundary lines of a multipart body; None when there are none."""
        if depth + 1 >= self.max_depth:
            return None
        spans = _delimited(self.blob, start, end, b"--" + boundary.encode("utf-8", "replace"))
        if not spans:
            return None
        default = ("message", "rfc822") if subtype == "digest" else ("text", "plain")
        parts: list[Part] = []
        for index, (part_start, part_end) in enumerate(spans, 1):
            if self.count >= self.max_parts:
                break
            child_number = f"{number}.{index}" if number else str(index)
            part, _ = self.entity(part_start, part_end, depth + 1, child_number, "", default)
            parts.append(part)
        return parts or None


def _header_end(blob: bytes, start: int, end: int, allow_from: bool) -> int:
    """Where the body starts: after the blank line, or at the first line that is no header."""
    pos = start
    first = True
    while pos < end:
        nl = blob.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        if blob.startswith(b"\n", pos) or blob.startswith(b"\r\n", pos):
            return line_end
        if (
            blob.startswith((b" ", b"\t"), pos)
            or _FIELD.match(blob, pos, line_end) is not None
            or (first and allow_from and blob.startswith(b"From ", pos))
        ):
            pos = line_end
            first = False
            continue
        return pos
    return end


def _delimited(blob: bytes, start: int, end: int, delimiter: bytes) -> list[tuple[int, int]]:
    """(start, end) of each body part between `delimiter` lines (RFC 2046 §5.1.1).

    The line break before a delimiter line belongs to the delimiter. A missing close
    delimiter ends the last part at the end of the enclosing body.
    """
    spans: list[tuple[int, int]] = []
    open_at: int | None = None
    pos = start
    size = len(delimiter)
    while pos < end:
        found = blob.find(delimiter, pos, end)
        if found < 0:
            break
        pos = found + size
        if found != start and blob[found - 1] != 0x0A:
            continue
        nl = blob.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        tail = blob[pos:line_end]
        close = tail.startswith(b"--")
        if not close and tail.strip(b" \t\r\n"):
            continue  # "--boundaryX": another boundary that starts with this one
        if open_at is not None:
            cut = found
            if cut > open_at and blob[cut - 1] == 0x0A:
                cut -= 2 if cut - 2 >= open_at and blob[cut - 2] == 0x0D else 1
            spans.append((open_at, cut))
        if close:
            return spans
        open_at = line_end
        pos = line_end
    if open_at is not None and open_at < end:
        spans.append((open_at, end))
    return spans


def _lines(blob: bytes, start: int, end: int) -> int:
    if end <= start:
        return 0
    count = blob.count(b"\n", start, end)
    return count if blob[end - 1] == 0x0A else count + 1


def _decoded_size(blob: bytes, start: int, end: int, encoding: str | None) -> int:
    if encoding == "base64":
        data = blob[start:end].translate(None, _B64_JUNK)
        padding = len(data) - len(data.rstrip(b"="))
        return max(0, (len(data) - padding) * 3 // 4)
    if encoding == "quoted-printable":
        try:
            return len(binascii.a2b_qp(blob[start:end]))
        except (binascii.Error, ValueError):
            return end - start
    return end - start


def _simple(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return unfold(text_of(raw)).strip() or None


def _pairs(params: dict[str, str]) -> Params:
    return tuple(params.items())


def _addresses(raw: bytes | None) -> tuple[Address, ...]:
    if raw is None:
        return ()
    out: list[Address] = []
    for group in parse_address_list(unfold(text_of(raw))):
        if group.name is not None:
            out.append(Address(None, None, group.name, None))
        for mailbox in group.mailboxes:
            # No phrase: the comment is the name ("user@domain (Real Name)"), as Dovecot and
            # JMAP (domain/mime/jmap.py) take it.
            name = mailbox.name if mailbox.name is not None else mailbox.comment
            out.append(Address(name, mailbox.route, mailbox.local, mailbox.domain))
        if group.name is not None:
            out.append(Address(None, None, None, None))
    return tuple(out)


def _envelope(fields: dict[bytes, bytes]) -> Envelope:
    def raw(name: bytes) -> str | None:
        value = fields.get(name)
        return None if value is None else unfold(text_of(value)).strip()

    return Envelope(
        date=raw(b"date"),
        subject=raw(b"subject"),
        from_=_addresses(fields.get(b"from")),
        sender=_addresses(fields.get(b"sender")),
        reply_to=_addresses(fields.get(b"reply-to")),
        to=_addresses(fields.get(b"to")),
        cc=_addresses(fields.get(b"cc")),
        bcc=_addresses(fields.get(b"bcc")),
        in_reply_to=raw(b"in-reply-to"),
        message_id=raw(b"message-id"),
    )
