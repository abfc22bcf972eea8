"""Decoding the displayed text and HTML bodies chosen by the structure walk."""

from __future__ import annotations

import html
import re

from mailroom.delivery._defects import DefectLog
from mailroom.delivery._html import html_to_text
from mailroom.delivery._mime import part_bytes, safe
from mailroom.delivery._structure import Leaf, Structure
from mailroom.delivery._text import clean_text, decode_bytes, normalize_newlines

_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_:.-]{1,40})", re.IGNORECASE)


class BodyDecoder:
    """Decodes leaves to text once each, recording charset trouble as defects."""

    def __init__(self, defects: DefectLog) -> None:
        self.defects = defects
        self._cache: dict[int, str] = {}

    def text_of(self, leaf: Leaf) -> str:
        """The part's content as text with LF line endings, NUL and control characters removed."""
        cached = self._cache.get(id(leaf))
        if cached is not None:
            return cached
        data = part_bytes(leaf.part)
        charset = safe(leaf.part.get_content_charset, None)
        if charset is None and leaf.content_type == "text/html":
            # HTML often declares its charset only in a <meta> tag.
            match = _META_CHARSET.search(data[:4096])
            charset = match.group(1).decode("ascii") if match else None
        text, problems = decode_bytes(data, charset)
        for problem in problems:
            self.defects.add(f"{problem} (part {leaf.path})")
        if "\x00" in text:
            self.defects.add(f"NUL bytes removed from body (part {leaf.path})")
        text = normalize_newlines(clean_text(text)).removeprefix("\ufeff")
        self._cache[id(leaf)] = text
        return text


def assemble_bodies(structure: Structure, decoder: BodyDecoder) -> tuple[str | None, str | None]:
    """Return (text_body, html_body); None for a side the message does not have.

    A side exists only if the message has a part of that type: an HTML-only
    message has no text body, a plain one no HTML body. Where a client would show
    both kinds one after the other (multipart/mixed), the other kind is converted.
    """
    text_leaves = [leaf for leaf in structure.text_parts if leaf.content_type in ("text/plain", "text/html")]
    html_leaves = [leaf for leaf in structure.html_parts if leaf.content_type in ("text/plain", "text/html")]
    text_body = None
    if any(leaf.content_type == "text/plain" for leaf in text_leaves):
        pieces = [
            decoder.text_of(leaf)
            if leaf.content_type == "text/plain"
            else html_to_text(decoder.text_of(leaf))
            for leaf in text_leaves
        ]
        text_body = _join(pieces, "\n\n")
    html_body = None
    if any(leaf.content_type == "text/html" for leaf in html_leaves):
        pieces = [
            decoder.text_of(leaf)
            if leaf.content_type == "text/html"
            else f"<pre>{html.escape(decoder.text_of(leaf))}</pre>"
            for leaf in html_leaves
        ]
        html_body = _join(pieces, "\n")
    return text_body, html_body


def body_leaves(structure: Structure) -> set[int]:
    """Identities of the leaves shown as text or HTML body (the rest are attachments)."""
    return {
        id(leaf)
        for leaf in structure.text_parts + structure.html_parts
        if leaf.content_type in ("text/plain", "text/html")
    }


def _join(pieces: list[str], separator: str) -> str:
    if len(pieces) == 1:
        return pieces[0]
    # Trailing newlines of all but the last piece would widen the separating blank line.
    return separator.join([piece.rstrip("\n") for piece in pieces[:-1]] + pieces[-1:])
