"""JMAP Mail's views of a stored structure (RFC 8621 §4.1): header forms, EmailBodyPart,
textBody / htmlBody / attachments, bodyValues and preview.

Pure functions over a `MimeStructure` (or one of its `Part`s) and the stored blob; the
results are JSON-ready (dicts, lists, str, int, bool, None). Blob ids of parts are not this
module's business: callers pass `blob_id_of(part)`.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from mailroom.domain.mime._addresses import Group, parse_address_list
from mailroom.domain.mime._fields import as_text, decode_charset, decode_words, split_fields, text_of, unfold
from mailroom.domain.mime._model import MimeStructure, Part
from mailroom.domain.mime.imap import decode_base64

HeaderForm = Literal["Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs"]
FORMS: tuple[HeaderForm, ...] = ("Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs")

#: RFC 8621 §4.1.2: the forms a known header field may be read as (Raw is always allowed);
#: a field not named here may be read in every form.
_KNOWN: dict[str, frozenset[str]] = {}
for _names, _forms in (
    (("subject", "comments", "keywords", "list-id"), {"Text"}),
    (
        (
            "from", "sender", "reply-to", "to", "cc", "bcc",
            "resent-from", "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc",
        ),
        {"Addresses", "GroupedAddresses"},
    ),
    (("message-id", "in-reply-to", "references", "resent-message-id"), {"MessageIds"}),
    (("date", "resent-date"), {"Date"}),
    (
        ("list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive"),
        {"URLs"},
    ),
):  # fmt: skip
    for _name in _names:
        _KNOWN[_name] = frozenset({"Raw", *_forms})

#: EmailBodyPart properties returned when the client names none (RFC 8621 §4.2).
DEFAULT_BODY_PROPERTIES: tuple[str, ...] = (
    "partId", "blobId", "size", "name", "type", "charset", "disposition", "cid", "language", "location",
)  # fmt: skip
BODY_PART_PROPERTIES = frozenset({*DEFAULT_BODY_PROPERTIES, "headers", "subParts"})
PREVIEW_CHARS = 256
_HEADER_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")


@dataclass(frozen=True, slots=True)
class HeaderProperty:
    """A parsed `header:{name}[:as{Form}][:all]` property (name as the client wrote it)."""

    name: str
    form: HeaderForm = "Raw"
    all: bool = False

    @property
    def key(self) -> str:
        return self.name.lower()


def parse_header_property(prop: str) -> HeaderProperty | None:
    """Read `header:From:asAddresses:all` and the like; None when malformed, or when the form
    is not allowed for that field (both are invalidArguments in Email/get)."""
    if not prop.startswith("header:"):
        return None
    pieces = prop[len("header:") :].split(":")
    name, rest = pieces[0], pieces[1:]
    if not name or not _HEADER_NAME.match(name):
        return None
    every = False
    if rest and rest[-1] == "all":
        every, rest = True, rest[:-1]
    form: HeaderForm = "Raw"
    if rest:
        if len(rest) != 1 or not rest[0].startswith("as") or rest[0][2:] not in FORMS:
            return None
        form = rest[0][2:]  # type: ignore[assignment]
    if not form_allowed(name, form):
        return None
    return HeaderProperty(name, form, every)


def form_allowed(name: str, form: str) -> bool:
    """Whether RFC 8621 §4.1.2 lets header field `name` be read as `form`."""
    allowed = _KNOWN.get(name.lower())
    return form in FORMS if allowed is None else form in allowed


def header_fields(blob: bytes, part: Part, trace: bytes = b"") -> list[tuple[str, bytes]]:
    """The header fields of `part` (name as written, raw value octets), in order. For the
    message root pass the trace so that Received and friends are included."""
    block = blob[part.header_start : part.body_start]
    if trace and part.header_start == 0:
        block = trace + block
    return [(name.decode("ascii", "replace"), value) for name, value in split_fields(block)]


def headers_list(fields: Iterable[tuple[str, bytes]]) -> list[dict[str, str]]:
    """The `headers` property: every field as {name, value} with the Raw value."""
    return [{"name": name, "value": text_of(value)} for name, value in fields]


def header_value(fields: Sequence[tuple[str, bytes]], prop: HeaderProperty) -> Any:
    """The value of `prop` over a part's fields: the last instance's (None when absent), or
    with `:all` a list of every instance's, in order (empty when absent)."""
    key = prop.key
    values = [value for name, value in fields if name.lower() == key]
    if prop.all:
        return [parse_form(value, prop.form) for value in values]
    return parse_form(values[-1], prop.form) if values else None


def parse_form(raw: bytes, form: HeaderForm) -> Any:
    """One field value in one form (RFC 8621 §4.1.2.1–§4.1.2.7)."""
    if form == "Raw":
        return text_of(raw)
    if form == "Text":
        return _nfc(as_text(raw))
    if form == "Addresses":
        return [address for group in _groups(raw) for address in group["addresses"]]
    if form == "GroupedAddresses":
        return _groups(raw)
    if form == "MessageIds":
        return message_ids(raw)
    if form == "Date":
        return date_of(raw)
    return urls(raw)


def _nfc(text: str) -> str:
    """RFC 8621 §4.1.2.2: the Text form (and names in addresses) is normalised to NFC."""
    return unicodedata.normalize("NFC", text)


def _groups(raw: bytes) -> list[dict[str, Any]]:
    return [_group(group) for group in parse_address_list(unfold(text_of(raw)))]


def _group(group: Group) -> dict[str, Any]:
    addresses = []
    for mailbox in group.mailboxes:
        name = mailbox.name if mailbox.name is not None else mailbox.comment
        name = _nfc(decode_words(name).strip()) if name else None
        addresses.append({"name": name or None, "email": mailbox.email})
    return {
        "name": _nfc(decode_words(group.name).strip()) if group.name is not None else None,
        "addresses": addresses,
    }


_MSG_ID = re.compile(r"<([^<>\s]+)>")
_URL = re.compile(r"<([^<>]*)>")


def message_ids(raw: bytes) -> list[str] | None:
    """asMessageIds: the ids without angle brackets; None when there is none."""
    ids = _MSG_ID.findall(unfold(text_of(raw)))
    return ids or None


def urls(raw: bytes) -> list[str] | None:
    """asURLs: the URLs between angle brackets (RFC 2369); None when there is none."""
    found = ["".join(url.split()) for url in _URL.findall(unfold(text_of(raw)))]
    return found or None


def date_of(raw: bytes) -> str | None:
    """asDate: RFC 5322 date-time as RFC 3339 with its offset; None when unparseable."""
    text = unfold(text_of(raw)).strip()
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": the offset is unknown; RFC 8621 wants UTC then
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not 1 <= when.year <= 9999:
        return None
    return when.replace(microsecond=0).isoformat()


# -- body parts ---------------------------------------------------------------------------


def body_part(
    part: Part,
    blob: bytes,
    blob_id_of: Callable[[Part], str],
    properties: Iterable[str] = DEFAULT_BODY_PROPERTIES,
    trace: bytes = b"",
    with_sub_parts: bool = True,
) -> dict[str, Any]:
    """An EmailBodyPart (RFC 8621 §4.1.4) with the requested properties; `subParts` of a
    multipart when asked for (bodyStructure always is). message/rfc822 parts are leaves, as
    the RFC wants. `properties` may hold header:* forms."""
    wanted = list(properties)
    fields: list[tuple[str, bytes]] | None = None
    out: dict[str, Any] = {}
    for prop in wanted:
        if prop == "partId":
            out[prop] = None if part.is_multipart else part.section
        elif prop == "blobId":
            out[prop] = None if part.is_multipart else blob_id_of(part)
        elif prop == "size":
            out[prop] = 0 if part.is_multipart else part.decoded_size
        elif prop == "name":
            out[prop] = part.filename
        elif prop == "type":
            out[prop] = part.media_type
        elif prop == "charset":
            out[prop] = part.charset or ("us-ascii" if part.type == "text" else None)
        elif prop == "disposition":
            out[prop] = part.disposition
        elif prop == "cid":
            out[prop] = _cid(part.content_id)
        elif prop == "language":
            out[prop] = list(part.language) or None
        elif prop == "location":
            out[prop] = part.location
        elif prop == "headers":
            fields = fields if fields is not None else header_fields(blob, part, trace)
            out[prop] = headers_list(fields)
        elif prop.startswith("header:"):
            parsed = parse_header_property(prop)
            if parsed is not None:
                fields = fields if fields is not None else header_fields(blob, part, trace)
                out[prop] = header_value(fields, parsed)
    if part.is_multipart and with_sub_parts:
        out["subParts"] = [body_part(p, blob, blob_id_of, wanted, trace) for p in part.parts]
    elif "subParts" in wanted:
        out["subParts"] = None
    return out


def _cid(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


def _inline_media(part: Part) -> bool:
    return part.type in ("image", "audio", "video")


def body_lists(structure: MimeStructure) -> tuple[list[Part], list[Part], list[Part]]:
    """(textBody, htmlBody, attachments): RFC 8621 §4.1.4's parseStructure, to the letter."""
    text: list[Part] = []
    html: list[Part] = []
    attachments: list[Part] = []
    _parse_structure([structure.root], "mixed", False, html, text, attachments)
    return text, html, attachments


def _parse_structure(
    parts: Sequence[Part],
    multipart_type: str,
    in_alternative: bool,
    html: list[Part] | None,
    text: list[Part] | None,
    attachments: list[Part],
) -> None:
    text_length = len(text) if text is not None else -1
    html_length = len(html) if html is not None else -1
    for index, part in enumerate(parts):
        media = part.media_type
        is_inline = (
            part.disposition != "attachment"
            and (media in ("text/plain", "text/html") or _inline_media(part))
            and (index == 0 or (multipart_type != "related" and (_inline_media(part) or not part.filename)))
        )
        if part.is_multipart:
            _parse_structure(
                part.parts,
                part.subtype,
                in_alternative or part.subtype == "alternative",
                html,
                text,
                attachments,
            )
        elif is_inline:
            if multipart_type == "alternative":
                if media == "text/plain" and text is not None:
                    text.append(part)
                elif media == "text/html" and html is not None:
                    html.append(part)
                else:
                    attachments.append(part)
                continue
            if in_alternative:
                if media == "text/plain":
                    html = None
                if media == "text/html":
                    text = None
            if text is not None:
                text.append(part)
            if html is not None:
                html.append(part)
            if (text is None or html is None) and _inline_media(part):
                attachments.append(part)
        else:
            attachments.append(part)
    if multipart_type == "alternative" and text is not None and html is not None:
        if text_length == len(text) and html_length != len(html):
            text.extend(html[html_length:])
        if html_length == len(html) and text_length != len(text):
            html.extend(text[text_length:])


def decoded_body(part: Part, blob: bytes) -> tuple[bytes, bool]:
    """The part's body with its transfer encoding undone; (octets, whether that had a
    problem: an unknown encoding, whose octets are then given as they are)."""
    body = blob[part.body_start : part.body_end]
    encoding = part.encoding
    if encoding in (None, "7bit", "8bit", "binary"):
        return body, False
    if encoding == "base64":
        return decode_base64(body), False
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body), False
    return body, True


def body_value(part: Part, blob: bytes, max_bytes: int = 0) -> dict[str, Any]:
    """An EmailBodyValue (RFC 8621 §4.1.4): the text of a text/* part, decoded; cut to
    `max_bytes` UTF-8 octets (0: no limit) at a character boundary, saying so."""
    data, problem = decoded_body(part, blob)
    value, charset_problem = decode_charset(data, part.charset)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    truncated = False
    if max_bytes > 0:
        encoded = value.encode("utf-8")
        if len(encoded) > max_bytes:
            value = encoded[:max_bytes].decode("utf-8", "ignore")
            truncated = True
    return {"value": value, "isEncodingProblem": problem or charset_problem, "isTruncated": truncated}


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_ENTITIES = {"&nbsp;": " ", "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'"}


def preview(text: str, *, html: bool = False) -> str:
    """A plain-text preview of a body (RFC 8621 `preview`: at most 256 characters, whitespace
    collapsed). With `html`, tags, scripts and styles are dropped first."""
    if html:
        text = _TAG.sub(" ", text)
        for entity, char in _ENTITIES.items():
            text = text.replace(entity, char)
    elif len(text) <= PREVIEW_CHARS and text.isprintable() and "  " not in text and text.strip(" ") == text:
        # Already collapsed (a stored snippet usually is): printable means no white space
        # but the ASCII space, of which there are no runs and none at either end.
        return text
    return " ".join(text.split())[:PREVIEW_CHARS]
