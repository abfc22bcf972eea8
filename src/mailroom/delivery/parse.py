"""Parsing raw mail once, at delivery, into the metadata the store keeps.

`parse_message` is total: whatever bytes arrive (broken charsets, malformed
MIME, hostile nesting, NUL bytes) it returns a `ParsedMessage`, listing what
was wrong in `defects`, because refusing mail at this point loses it.
"""

from __future__ import annotations

import re

from mailroom.delivery._bodies import BodyDecoder, assemble_bodies, body_leaves
from mailroom.delivery._defects import DefectLog
from mailroom.delivery._headers import (
    HeaderBlock,
    parse_addresses,
    parse_date,
    parse_keyword,
    parse_list_id,
    parse_return_path,
    parse_spam_flag,
    parse_spam_score,
)
from mailroom.delivery._html import html_to_text
from mailroom.delivery._mime import LimitedMessage, find_part, parse_tree, part_bytes, safe
from mailroom.delivery._model import Address, AttachmentInfo, Disposition, Encryption, ParsedMessage, PgpInfo
from mailroom.delivery._snippet import make_snippet
from mailroom.delivery._structure import Structure, walk_structure
from mailroom.delivery.subjects import clean_message_id, parse_id_list

__all__ = [
    "Address",
    "AttachmentInfo",
    "ParsedMessage",
    "PgpInfo",
    "extract_attachment",
    "parse_message",
]

# The stdlib parser and our walker recurse per nesting level; beyond this the
# recursion limit, not the caller's setting, would decide.
MAX_DEPTH_CEILING = 100
_ARMOUR_ENCRYPTED = re.compile(r"^[ \t]*-----BEGIN PGP MESSAGE-----[ \t]*$", re.MULTILINE)
_ARMOUR_SIGNED = re.compile(r"^[ \t]*-----BEGIN PGP SIGNED MESSAGE-----[ \t]*$", re.MULTILINE)
_SNIPPET_HTML_CHARS = 4000


def parse_message(raw: bytes, *, max_depth: int = 32, max_parts: int = 1000) -> ParsedMessage:
    """Parse a raw RFC 5322 message into `ParsedMessage`. Never raises.

    `max_depth` bounds MIME nesting (deeper containers are not opened; capped at
    100), `max_parts` the number of MIME parts examined. Both are recorded as
    defects when hit.
    """
    if isinstance(raw, str):  # not what the signature asks for, but text is still mail
        data = raw.encode("utf-8", "surrogateescape")
    else:
        data = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
    try:
        return _parse(data, *_limits(max_depth, max_parts))
    except Exception as exc:  # the contract is totality: a bug here must not lose mail
        return ParsedMessage(size=len(data), defects=[f"internal parser error ({type(exc).__name__})"])


def extract_attachment(
    raw: bytes, part_path: str, *, max_depth: int = 32, max_parts: int = 1000
) -> bytes | None:
    """Return the decoded bytes of the leaf part at `part_path` ("1", "2.1", ...).

    Paths are those in `AttachmentInfo.part_path`; pass the limits given to
    `parse_message` so that the tree is cut the same way. Returns None for an
    invalid path or a container part. Never raises.
    """
    try:
        root = parse_tree(bytes(raw), *_limits(max_depth, max_parts), DefectLog())
        part = find_part(root, part_path)
        return None if part is None else part_bytes(part)
    except Exception:
        return None


def _limits(max_depth: int, max_parts: int) -> tuple[int, int]:
    return max(1, min(max_depth, MAX_DEPTH_CEILING)), max(1, max_parts)


def _parse(raw: bytes, max_depth: int, max_parts: int) -> ParsedMessage:
    defects = DefectLog()
    root = parse_tree(raw, max_depth, max_parts, defects)
    headers = HeaderBlock(safe(lambda: list(root.raw_items()), []), defects)
    structure = walk_structure(root, max_parts, defects)
    decoder = BodyDecoder(defects)
    text_body, html_body = assemble_bodies(structure, decoder)
    attachments, has_attachments = _attachments(structure)
    pgp = _pgp(structure, text_body, html_body)
    _collect_email_defects(root, structure, defects)

    message_id_value = headers.first("message-id")
    message_id = clean_message_id(message_id_value) if message_id_value is not None else None
    date_value = headers.first("date")
    date = parse_date(date_value) if date_value is not None else None
    from_ = parse_addresses(headers.all("from")[:1], "From", defects)
    # RFC 5322 requires From and Date and asks for Message-ID; threading and sorting need them.
    for value, parsed, label in (
        (headers.first("from"), from_, "From"),
        (date_value, date, "Date"),
        (message_id_value, message_id, "Message-ID"),
    ):
        if value is None:
            defects.add(f"missing {label}")
        elif not parsed:
            defects.add(f"unparseable {label}")

    senders = parse_addresses(headers.all("sender")[:1], "Sender", defects)
    encrypted = pgp.encrypted or structure.smime_encrypted
    signed = pgp.signed or structure.smime_signed
    encryption: Encryption = "encrypted" if encrypted else "signed" if signed else "none"
    return ParsedMessage(
        message_id=message_id,
        in_reply_to=parse_id_list(headers.first("in-reply-to") or ""),
        references=parse_id_list(headers.first("references") or ""),
        from_=from_,
        sender=senders[0] if senders else None,
        reply_to=parse_addresses(headers.all("reply-to")[:1], "Reply-To", defects),
        to=parse_addresses(headers.all("to"), "To", defects),
        cc=parse_addresses(headers.all("cc"), "Cc", defects),
        bcc=parse_addresses(headers.all("bcc"), "Bcc", defects),
        subject=headers.text("subject", defects) or "",
        date=date,
        text_body=text_body,
        html_body=html_body,
        attachments=attachments,
        snippet=_snippet(text_body, html_body),
        has_attachments=has_attachments,
        size=len(raw),
        encryption=encryption,
        pgp=pgp,
        smime=structure.smime_encrypted or structure.smime_signed,
        list_id=parse_list_id(headers.text("list-id", defects)),
        list_unsubscribe=headers.text("list-unsubscribe", defects) or None,
        precedence=parse_keyword(headers.text("precedence", defects)),
        auto_submitted=parse_keyword(headers.text("auto-submitted", defects)),
        return_path=parse_return_path(headers.first("return-path")),
        spam_flag=parse_spam_flag(headers.first("x-spam-flag")),
        spam_score=_spam_score(headers),
        defects=defects.to_list(),
    )


def _spam_score(headers: HeaderBlock) -> float | None:
    # SpamAssassin's header first, then rspamd's; the first readable one wins.
    for key in ("x-spam-score", "x-rspamd-score"):
        score = parse_spam_score(headers.first(key))
        if score is not None:
            return score
    return None


def _attachments(structure: Structure) -> tuple[list[AttachmentInfo], bool]:
    """Every leaf that is not a displayed body, and whether any is a real attachment."""
    shown = body_leaves(structure)
    attachments: list[AttachmentInfo] = []
    has_attachments = False
    for leaf in structure.leaves:
        if id(leaf) in shown:
            continue
        disposition: Disposition
        if leaf.disposition is not None:
            disposition = "inline" if leaf.disposition == "inline" else "attachment"
        else:
            disposition = "inline" if leaf.content_id or leaf.body_candidate else "attachment"
        size = len(part_bytes(leaf.part))
        attachments.append(
            AttachmentInfo(
                index=len(attachments),
                filename=leaf.filename,
                content_type=leaf.content_type,
                size=size,
                content_id=leaf.content_id,
                disposition=disposition,
                part_path=leaf.path,
            )
        )
        # Signatures and ciphertext are envelope, not something the user attached.
        has_attachments = has_attachments or (disposition == "attachment" and not leaf.envelope)
    return attachments, has_attachments


def _pgp(structure: Structure, text_body: str | None, html_body: str | None) -> PgpInfo:
    encrypted, signed, inline = structure.pgp_encrypted, structure.pgp_signed, False
    texts = [text_body] if text_body else []
    if html_body and "-----BEGIN PGP " in html_body:
        texts.append(html_to_text(html_body))
    for text in texts:
        if "-----BEGIN PGP " not in text:
            continue
        if _ARMOUR_ENCRYPTED.search(text):
            encrypted = inline = True
        if _ARMOUR_SIGNED.search(text):
            signed = inline = True
    return PgpInfo(encrypted=encrypted, signed=signed, inline=inline)


def _snippet(text_body: str | None, html_body: str | None) -> str:
    if text_body and text_body.strip():
        return make_snippet(text_body)
    if html_body:
        return make_snippet(html_to_text(html_body, max_chars=_SNIPPET_HTML_CHARS))
    return ""


def _collect_email_defects(root: LimitedMessage, structure: Structure, defects: DefectLog) -> None:
    """Add the `email` package's own findings (bad boundaries, bad base64, ...)."""
    for defect in _defects_of(root):
        defects.add_email_defect(defect, None)
    for path, part in structure.visited:
        if part is not root:
            for defect in _defects_of(part):
                defects.add_email_defect(defect, path)


def _defects_of(part: LimitedMessage) -> list[object]:
    return list(getattr(part, "defects", None) or [])
