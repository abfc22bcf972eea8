"""The parsed MIME structure of one message: plain frozen data, with a compact JSON form.

All offsets index the stored blob (the message as it arrived, without the per-mailbox trace
lines that the store keeps beside it; see `mailroom.domain.mime.imap.section_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

#: Bumped when the scanner or this layout changes: a stored structure of another version is
#: computed anew from the blob on read (the store does this lazily).
VERSION = 1

Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Address:
    """An address as IMAP's ENVELOPE carries it: (name, adl, mailbox, host), raw text.

    A group start is (None, None, group name, None), its end (None, None, None, None)
    (RFC 9051 §7.5.2, address structure)."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


@dataclass(frozen=True, slots=True)
class Envelope:
    """The header fields of IMAP's ENVELOPE, unfolded raw values (encoded words kept).

    `sender` and `reply_to` are as written (empty when absent); `mailroom.domain.mime.imap.
    envelope` applies the rule that absent ones repeat `from_`."""

    date: str | None
    subject: str | None
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    in_reply_to: str | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity.

    - `section`: its IMAP part number ("1", "2.1"); the JMAP partId of a non-multipart part.
      A multipart message's root has "" (only its children are numbered); the root of a
      message inside a message/rfc822 part "N" has "N" when multipart, else "N.1".
    - `header_start`..`body_start`: its header, blank line included (IMAP `N.MIME`, or
      `HEADER` for a message root); `body_start`..`body_end`: its body, still
      transfer-encoded (IMAP `N`, `TEXT`); a multipart's body includes preamble, boundary
      lines and epilogue, as IMAP's section text of a multipart does.
    - `type`/`subtype`: lowercased; an invalid or missing Content-Type is text/plain (RFC
      2045 §5.2), a multipart without a usable boundary is read as text/plain too.
    - `params`: Content-Type parameters, names lowercased, RFC 2231 applied, in order.
    - `encoding`: Content-Transfer-Encoding lowercased, None when absent.
    - `disposition`, `disposition_params`, `language` (Content-Language tags), `location`,
      `content_id` (raw, angle brackets kept), `description`, `md5`: the other MIME fields.
    - `size`: body octets as stored (encoded); `decoded_size`: after transfer decoding
      (JMAP `size`); `lines`: text lines of the body (IMAP body-fld-lines).
    - `parts`: children of a multipart; `message`: the root of the message inside a
      message/rfc822 (or message/global) part; `envelope`: that message's envelope.
    """

    section: str
    header_start: int
    body_start: int
    body_end: int
    type: str
    subtype: str
    params: Params = ()
    encoding: str | None = None
    disposition: str | None = None
    disposition_params: Params = ()
    language: tuple[str, ...] = ()
    location: str | None = None
    content_id: str | None = None
    description: str | None = None
    md5: str | None = None
    lines: int = 0
    decoded_size: int = 0
    parts: tuple[Part, ...] = ()
    message: Part | None = None
    envelope: Envelope | None = None

    @property
    def size(self) -> int:
        return self.body_end - self.body_start

    @property
    def media_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart"

    def param(self, name: str) -> str | None:
        """A Content-Type parameter by (lowercase) name."""
        return next((value for key, value in self.params if key == name), None)

    @property
    def charset(self) -> str | None:
        return self.param("charset")

    @property
    def filename(self) -> str | None:
        """Content-Disposition's filename, else Content-Type's name (RFC 8621 `name`)."""
        for key, value in self.disposition_params:
            if key == "filename":
                return value
        return self.param("name")

    def walk(self) -> list[Part]:
        """This part and every part below it (into nested messages too), depth first."""
        out: list[Part] = [self]
        for child in self.parts:
            out.extend(child.walk())
        if self.message is not None:
            out.extend(self.message.walk())
        return out


@dataclass(frozen=True, slots=True)
class MimeStructure:
    """A message's structure: its root entity and envelope, and the size it was made from."""

    root: Part
    envelope: Envelope
    size: int
    version: int = VERSION

    def to_json(self) -> bytes:
        """The compact stored form (JSON arrays, not objects: ~3x smaller)."""
        return orjson.dumps([self.version, self.size, _envelope_out(self.envelope), _part_out(self.root)])

    @staticmethod
    def from_json(data: bytes | str) -> MimeStructure | None:
        """Read the stored form; None when it is of another version or unreadable."""
        try:
            version, size, envelope, root = orjson.loads(data)
            if version != VERSION:
                return None
            return MimeStructure(_part_in(root), _envelope_in(envelope), int(size), version)
        except (ValueError, TypeError, IndexError, orjson.JSONDecodeError):
            return None


def _addresses_out(addresses: tuple[Address, ...]) -> list[list[str | None]]:
    return [[a.name, a.adl, a.mailbox, a.host] for a in addresses]


def _addresses_in(data: list[list[str | None]]) -> tuple[Address, ...]:
    return tuple(Address(*item) for item in data)


def _envelope_out(e: Envelope) -> list[Any]:
    return [
        e.date,
        e.subject,
        *(_addresses_out(a) for a in (e.from_, e.sender, e.reply_to, e.to, e.cc, e.bcc)),
        e.in_reply_to,
        e.message_id,
    ]


def _envelope_in(d: list[Any]) -> Envelope:
    lists = [_addresses_in(x) for x in d[2:8]]
    return Envelope(d[0], d[1], lists[0], lists[1], lists[2], lists[3], lists[4], lists[5], d[8], d[9])


def _pairs_out(params: Params) -> list[str]:
    return [item for pair in params for item in pair]


def _pairs_in(flat: list[str]) -> Params:
    return tuple(zip(flat[0::2], flat[1::2], strict=True))


def _part_out(p: Part) -> list[Any]:
    return [
        p.section,
        p.header_start,
        p.body_start,
        p.body_end,
        p.type,
        p.subtype,
        _pairs_out(p.params),
        p.encoding,
        p.disposition,
        _pairs_out(p.disposition_params),
        list(p.language),
        p.location,
        p.content_id,
        p.description,
        p.md5,
        p.lines,
        p.decoded_size,
        [_part_out(c) for c in p.parts],
        _part_out(p.message) if p.message is not None else None,
        _envelope_out(p.envelope) if p.envelope is not None else None,
    ]


def _part_in(d: list[Any]) -> Part:
    return Part(
        section=d[0],
        header_start=d[1],
        body_start=d[2],
        body_end=d[3],
        type=d[4],
        subtype=d[5],
        params=_pairs_in(d[6]),
        encoding=d[7],
        disposition=d[8],
        disposition_params=_pairs_in(d[9]),
        language=tuple(d[10]),
        location=d[11],
        content_id=d[12],
        description=d[13],
        md5=d[14],
        lines=d[15],
        decoded_size=d[16],
        parts=tuple(_part_in(c) for c in d[17]),
        message=_part_in(d[18]) if d[18] is not None else None,
        envelope=_envelope_in(d[19]) if d[19] is not None else None,
    )
