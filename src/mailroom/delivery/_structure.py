"""Deciding which MIME leaves are the displayed bodies and which are attachments.

The body selection is the algorithm of RFC 8621 (JMAP Mail) section 4.1.4, which
is what clients converged on: inside multipart/alternative take the text/plain
and text/html sides; elsewhere consecutive inline text parts are all shown.
Every leaf that does not end up as a displayed text body is an attachment here,
including inline images, so that the server can serve `cid:` references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import collapse_rfc2231_value

from mailroom.delivery._defects import DefectLog
from mailroom.delivery._mime import LimitedMessage, children, is_container, safe
from mailroom.delivery._text import clean_text, decode_encoded_words, repair_8bit
from mailroom.delivery.subjects import clean_message_id

_INLINE_MEDIA = ("image/", "audio/", "video/")
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_RAW_FILENAME = re.compile(r"(?i)(?:^|;)\s*filename\s*=\s*(?:\"([^\"]*)\"|([^;\s]+))")
_RAW_NAME = re.compile(r"(?i)(?:^|;)\s*name\s*=\s*(?:\"([^\"]*)\"|([^;\s]+))")
_TEXT_TYPES = ("text/plain", "text/html")
_PGP_SIGNATURE = "application/pgp-signature"
_PGP_ENCRYPTED = "application/pgp-encrypted"
_SMIME_SIGNATURE = ("application/pkcs7-signature", "application/x-pkcs7-signature")
_SMIME_MIME = ("application/pkcs7-mime", "application/x-pkcs7-mime")


@dataclass(eq=False)
class Leaf:
    """A non-container MIME part and what the walker learnt about it."""

    path: str
    part: LimitedMessage
    content_type: str  # as declared; a multipart without a boundary is read as text/plain
    disposition: str | None  # the Content-Disposition type, lowercased, if present
    filename: str | None
    content_id: str | None
    body_candidate: bool  # may be displayed inline (RFC 8621 isInline)
    envelope: bool = False  # an OpenPGP/S/MIME protocol part, not user content


@dataclass
class Structure:
    """The result of walking a message's MIME tree."""

    leaves: list[Leaf] = field(default_factory=list)
    text_parts: list[Leaf] = field(default_factory=list)
    html_parts: list[Leaf] = field(default_factory=list)
    visited: list[tuple[str, LimitedMessage]] = field(default_factory=list)
    pgp_encrypted: bool = False
    pgp_signed: bool = False
    smime_encrypted: bool = False
    smime_signed: bool = False


def walk_structure(root: LimitedMessage, max_parts: int, defects: DefectLog) -> Structure:
    """Walk the tree once, in order of appearance, classifying every leaf."""
    walker = _Walker(max_parts, defects)
    structure = walker.structure
    if is_container(root):
        subtype = safe(root.get_content_subtype, "mixed")
        subparts = children(root, "")
        envelope_from = walker.crypto_container(root, subtype, subparts)
        walker.walk(
            subparts,
            subtype,
            subtype == "alternative",
            structure.html_parts,
            structure.text_parts,
            envelope_from,
        )
    else:
        walker.walk([("1", root)], "mixed", False, structure.html_parts, structure.text_parts, None)
    return structure


class _Walker:
    def __init__(self, max_parts: int, defects: DefectLog) -> None:
        self.structure = Structure()
        self.max_parts = max_parts
        self.defects = defects
        self.stopped = False

    def walk(
        self,
        parts: list[tuple[str, LimitedMessage]],
        multipart_type: str,
        in_alternative: bool,
        html: list[Leaf] | None,
        text: list[Leaf] | None,
        envelope_from: int | None,
    ) -> None:
        """RFC 8621 parseStructure; `text`/`html` become None where a side is excluded."""
        text_length = len(text) if text is not None else -1
        html_length = len(html) if html is not None else -1
        for index, (path, part) in enumerate(parts):
            if len(self.structure.visited) >= self.max_parts:
                self.defects.add(f"more than {self.max_parts} MIME parts; the rest were ignored")
                self.stopped = True
            if self.stopped:
                return
            self.structure.visited.append((path, part))
            if part.too_deep:
                self.defects.add(f"MIME nesting deeper than {part.limits.max_depth} levels; not descended")
                continue
            if is_container(part):
                subtype = safe(part.get_content_subtype, "mixed")
                subparts = children(part, path)
                inner_envelope = self.crypto_container(part, subtype, subparts)
                alternative = in_alternative or subtype == "alternative"
                self.walk(subparts, subtype, alternative, html, text, inner_envelope)
                continue
            leaf = self._leaf(path, part, index, multipart_type)
            leaf.envelope = envelope_from is not None and index >= envelope_from
            if not leaf.envelope:
                leaf.envelope = self._smime_leaf(leaf, index)
            self.structure.leaves.append(leaf)
            if not leaf.body_candidate:
                continue
            if multipart_type == "alternative":
                if leaf.content_type == "text/plain" and text is not None:
                    text.append(leaf)
                elif leaf.content_type == "text/html" and html is not None:
                    html.append(leaf)
                continue
            if in_alternative:
                if leaf.content_type == "text/plain":
                    html = None
                if leaf.content_type == "text/html":
                    text = None
            if text is not None:
                text.append(leaf)
            if html is not None:
                html.append(leaf)
        if multipart_type == "alternative" and text is not None and html is not None:
            # Only one side was found at this level: show it on both sides.
            if text_length == len(text) and html_length != len(html):
                text.extend(html[html_length:])
            if html_length == len(html) and text_length != len(text):
                html.extend(text[text_length:])

    def _leaf(self, path: str, part: LimitedMessage, index: int, multipart_type: str) -> Leaf:
        content_type = safe(part.declared_type, "text/plain")
        if not _MEDIA_TYPE.fullmatch(content_type):
            # RFC 2045 section 5.2: an invalid Content-Type means text/plain.
            self.defects.add(f"invalid Content-Type (part {path})")
            content_type = "text/plain"
        elif content_type.startswith("multipart/"):
            content_type = "text/plain"  # no usable boundary: the parser kept the body as text
        disposition = safe(part.get_content_disposition, None)
        filename = _filename(part)
        media = content_type.startswith(_INLINE_MEDIA)
        body_candidate = (
            disposition in (None, "inline")  # RFC 2183: unknown dispositions mean attachment
            and (content_type in _TEXT_TYPES or media)
            and (index == 0 or (multipart_type != "related" and (media or filename is None)))
        )
        raw_cid = safe(lambda: part.get("content-id"), None)
        content_id = clean_message_id(repair_8bit(str(raw_cid))[0]) if raw_cid is not None else None
        return Leaf(path, part, content_type, disposition, filename, content_id, body_candidate)

    def crypto_container(
        self, part: LimitedMessage, subtype: str, subparts: list[tuple[str, LimitedMessage]]
    ) -> int | None:
        """Note PGP/MIME or S/MIME; return the index from which sub-parts are protocol parts."""
        if subtype not in ("encrypted", "signed"):
            return None
        protocol = _param(part, "protocol").lower()
        types = [safe(sub.declared_type, "") for _, sub in subparts]
        if subtype == "encrypted":
            if protocol == _PGP_ENCRYPTED or (not protocol and types[:1] == [_PGP_ENCRYPTED]):
                self.structure.pgp_encrypted = True
            return 0
        if protocol == _PGP_SIGNATURE or (not protocol and types[1:2] == [_PGP_SIGNATURE]):
            self.structure.pgp_signed = True
        elif protocol in _SMIME_SIGNATURE or (not protocol and types[1:2] and types[1] in _SMIME_SIGNATURE):
            self.structure.smime_signed = True
        return 1

    def _smime_leaf(self, leaf: Leaf, index: int) -> bool:
        # An S/MIME body is the first part; a .p7m further down is a file someone attached.
        if leaf.content_type not in _SMIME_MIME or index != 0:
            return False
        smime_type = _param(leaf.part, "smime-type").lower()
        if smime_type == "signed-data":
            self.structure.smime_signed = True
        elif smime_type in ("", "enveloped-data", "authenveloped-data"):
            self.structure.smime_encrypted = True
        else:
            return False
        return True


def _param(part: LimitedMessage, name: str) -> str:
    value = safe(lambda: part.get_param(name), None)
    if isinstance(value, tuple):
        rfc2231 = value
        value = safe(lambda: collapse_rfc2231_value(rfc2231), None)
    return value.strip() if isinstance(value, str) else ""


def _raw_filename(part: LimitedMessage) -> str | None:
    """Find a filename the parameter parser rejects, such as an unquoted encoded-word."""
    items: list[tuple[str, object]] = safe(lambda: list(part.raw_items()), [])
    for header, pattern in (("content-disposition", _RAW_FILENAME), ("content-type", _RAW_NAME)):
        for name, value in items:
            if name.lower() == header and (match := pattern.search(str(value))):
                return match.group(1) if match.group(1) is not None else match.group(2)
    return None


def _filename(part: LimitedMessage) -> str | None:
    """The RFC 2231 / RFC 2047 decoded filename (Content-Disposition, else Content-Type name)."""
    name = safe(part.get_filename, None)
    if not isinstance(name, str):
        name = _raw_filename(part)
    if name is None:
        return None
    name, _ = repair_8bit(name)
    if "=?" in name:
        name = decode_encoded_words(name)[0]
    name = clean_text(name.replace("\r", "").replace("\n", "")).strip()
    return name or None
