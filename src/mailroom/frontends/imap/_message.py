"""A message's MIME structure as IMAP addresses it: parts with their exact byte ranges,
ENVELOPE, BODYSTRUCTURE and ``BODY[section]``.

The message is split on its own bytes (header/body at the first empty line, multipart bodies
at their boundary lines), so ``BODY[1.2]`` is exactly the bytes of that part as stored, and
header fields are parsed with Python's email package (``compat32``: values as they are in
the message, RFC 2047 words untouched, as ENVELOPE wants them). One :class:`Part` tree is
built per message and the server keeps a few in a cache, so a FETCH of many items of one
message parses it once.

This is the IMAP front-end's own interface; when the store keeps a parsed structure per
message (issue 14, developer "mime"), :func:`structure` is the one place to switch over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from mailroom.frontends.imap._wire import Raw, nstring, qstring

#: Deepest MIME nesting followed (deeper parts are treated as leaves).
MAX_DEPTH = 32
#: Most parts of one message followed.
MAX_PARTS = 2000

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(rb"\r?\n")


@dataclass
class Part:
    """A MIME entity: ``header`` and ``body`` are exact byte slices of the message."""

    header: bytes
    body: bytes
    maintype: str = "text"
    subtype: str = "plain"
    params: list[tuple[str, str]] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)  # lower-case name: first value
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  # the body of a message/rfc822 part, parsed

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def _split(raw: bytes) -> tuple[bytes, bytes]:
    if raw.startswith(b"\r\n"):
        return b"\r\n", raw[2:]
    if raw.startswith(b"\n"):
        return b"\n", raw[1:]
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.end()], raw[match.end() :]


def _parse_part(raw: bytes, default: tuple[str, str], depth: int, budget: list[int]) -> Part:
    header, body = _split(raw)
    parsed = BytesHeaderParser(policy=compat32).parsebytes(header)
    fields: dict[str, str] = {}
    for key, value in parsed.items():
        fields.setdefault(key.lower(), str(value))
    part = Part(header=header, body=body, fields=fields)
    ctype = fields.get("content-type")
    if ctype:
        maintype, _, subtype = parsed.get_content_type().partition("/")
        part.maintype, part.subtype = maintype, subtype
        part.params = [(k, str(v)) for k, v in (parsed.get_params() or [])[1:]]
    else:
        part.maintype, part.subtype = default
        if default == ("text", "plain"):
            part.params = [("charset", "us-ascii")]
    budget[0] -= 1
    if depth >= MAX_DEPTH or budget[0] <= 0:
        return part
    if part.maintype == "multipart":
        boundary = dict((k.lower(), v) for k, v in part.params).get("boundary")
        if boundary:
            child_default = ("message", "rfc822") if part.subtype == "digest" else ("text", "plain")
            for chunk in _multipart_chunks(body, boundary.encode("utf-8", "replace")):
                if budget[0] <= 0:
                    break
                part.children.append(_parse_part(chunk, child_default, depth + 1, budget))
    elif (part.maintype, part.subtype) in (("message", "rfc822"), ("message", "global")):
        part.message = _parse_part(body, ("text", "plain"), depth + 1, budget)
    return part


def _multipart_chunks(body: bytes, boundary: bytes) -> Iterator[bytes]:
    """The bodies between ``--boundary`` lines (without the CRLF before each delimiter)."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            yield body[start : match.start()]
        if match.group(1):
            return
        start = match.end()
    if start is not None:
        yield body[start:]


def structure(raw: bytes) -> Part:
    """The message's MIME tree."""
    return _parse_part(raw, ("text", "plain"), 0, [MAX_PARTS])


# -- ENVELOPE ----------------------------------------------------------------------------


def _addresses(value: str | None) -> Raw:
    if not value:
        return Raw(b"NIL")
    items = []
    for name, email in getaddresses([value]):
        if not email and not name:
            continue
        local, at, domain = email.rpartition("@")
        if not at:
            local, domain = email, ""
        items.append(
            b"("
            + b" ".join([nstring(name or None), b"NIL", nstring(local or None), nstring(domain or None)])
            + b")"
        )
    if not items:
        return Raw(b"NIL")
    return Raw(b"(" + b"".join(items) + b")")


def envelope(part: Part) -> bytes:
    """ENVELOPE of a message (RFC 9051 7.5.2)."""
    get = part.get
    sender = get("sender") or get("from")
    reply_to = get("reply-to") or get("from")
    fields = [
        nstring(get("date")),
        nstring(get("subject")),
        _addresses(get("from")),
        _addresses(sender),
        _addresses(reply_to),
        _addresses(get("to")),
        _addresses(get("cc")),
        _addresses(get("bcc")),
        nstring(get("in-reply-to")),
        nstring(get("message-id")),
    ]
    return b"(" + b" ".join(bytes(f) for f in fields) + b")"


# -- BODYSTRUCTURE -----------------------------------------------------------------------


def _params(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(qstring(k) + b" " + qstring(v) for k, v in params) + b")"


def _disposition(part: Part) -> bytes:
    value = part.get("content-disposition")
    if not value:
        return b"NIL"
    parsed = BytesHeaderParser(policy=compat32).parsebytes(
        b"Content-Disposition: " + value.encode("utf-8", "replace")
    )
    params = parsed.get_params(header="content-disposition") or []
    kind = params[0][0] if params else value.split(";", 1)[0].strip()
    rest = [(k, str(v)) for k, v in params[1:]]
    return b"(" + qstring(kind) + b" " + _params(rest) + b")"


def _lines(body: bytes) -> int:
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def bodystructure(part: Part, *, extended: bool = True) -> bytes:
    """BODYSTRUCTURE (``extended``) or BODY of a part."""
    if part.children:
        inner = b"".join(bodystructure(c, extended=extended) for c in part.children)
        out = b"(" + inner + b" " + qstring(part.subtype)
        if extended:
            params = [(k, v) for k, v in part.params]
            out += b" " + _params(params) + b" " + _disposition(part) + b" " + _language(part) + b" NIL"
        return out + b")"
    encoding = (part.get("content-transfer-encoding") or "7bit").strip()
    basic = [
        qstring(part.maintype),
        qstring(part.subtype),
        _params(part.params),
        nstring(part.get("content-id")),
        nstring(part.get("content-description")),
        qstring(encoding),
        str(len(part.body)).encode(),
    ]
    if part.message is not None:
        basic += [envelope(part.message), bodystructure(part.message, extended=extended)]
        basic.append(str(_lines(part.body)).encode())
    elif part.maintype == "text":
        basic.append(str(_lines(part.body)).encode())
    if extended:
        basic += [nstring(part.get("content-md5")), _disposition(part), _language(part), b"NIL"]
    return b"(" + b" ".join(basic) + b")"


def _language(part: Part) -> bytes:
    value = part.get("content-language")
    if not value:
        return b"NIL"
    langs = [v.strip() for v in value.split(",") if v.strip()]
    return b"(" + b" ".join(qstring(v) for v in langs) + b")" if langs else b"NIL"


# -- sections ----------------------------------------------------------------------------


class SectionError(Exception):
    """A section specification that does not parse."""


def _header_fields(header: bytes, names: set[str], keep: bool) -> bytes:
    """The header fields named (or all others), with the terminating empty line."""
    out = []
    current: list[bytes] = []
    current_name = ""
    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
            continue
        if current and ((current_name in names) == keep):
            out.extend(current)
        current = [line]
        current_name = line.split(b":", 1)[0].strip().decode("latin-1").lower()
    if current and ((current_name in names) == keep):
        out.extend(current)
    return b"".join(out) + b"\r\n"


def section(part: Part, spec: str) -> bytes | None:
    """The bytes of ``BODY[spec]`` (``spec`` upper-cased, without brackets); None when the
    part does not exist (IMAP answers an empty string then)."""
    spec = spec.strip()
    if spec == "":
        return part.header + part.body
    path: list[int] = []
    rest = spec
    while rest and rest[0] in "0123456789":
        number, _, rest = rest.partition(".")
        if not (number.isascii() and number.isdigit()) or len(number) > 6 or int(number) < 1:
            raise SectionError("invalid part number")
        path.append(int(number))
    target = part
    for i, n in enumerate(path):
        if target.message is not None and not target.children:
            target = target.message
        if target.children:
            if n > len(target.children):
                return None
            target = target.children[n - 1]
        elif n == 1 and i == len(path) - 1 and not rest:
            return target.body  # a single-part message's part 1 is its body
        elif n == 1 and target.message is None:
            continue
        else:
            return None
    if not rest:
        if not path:
            return part.header + part.body
        return target.body
    if rest == "MIME":
        if not path:
            raise SectionError("MIME needs a part number")
        return target.header
    message = target.message if path and target.message is not None else target
    if path and target.message is None and target is not part:
        raise SectionError("HEADER and TEXT apply to a message")
    if rest == "HEADER":
        return message.header
    if rest == "TEXT":
        return message.body
    match = re.fullmatch(r"HEADER\.FIELDS(\.NOT)? \((.*)\)", rest, re.DOTALL)
    if match is None:
        raise SectionError("unknown section")
    names = {n.strip('"').lower() for n in match.group(2).split() if n}
    if not names:
        raise SectionError("HEADER.FIELDS needs field names")
    return _header_fields(message.header, names, keep=not match.group(1))
