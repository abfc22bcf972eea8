"""The short preview shown in message lists."""

from __future__ import annotations

import re

SNIPPET_LENGTH = 200
# A reply under 20,000 quoted lines is not worth finding; the quote is shown instead.
_MAX_LINES = 20_000

# Invisible characters newsletters use to pad their preheader; they would fill the preview.
_INVISIBLE = re.compile("[\u00ad\u034f\u200b\u200c\u200e\u200f\u2060\ufeff]")
_ORIGINAL_MESSAGE = re.compile(r"-{2,}\s*original message\s*-{2,}", re.IGNORECASE)


def make_snippet(text: str, limit: int = SNIPPET_LENGTH) -> str:
    """Return up to `limit` characters of what the author wrote, cut at a word boundary.

    Quoted lines ("> ...") with their attribution line, the signature (after "-- "),
    Outlook's "Original Message" tail and OpenPGP armour are left out. If nothing is
    left (a bare forward of a quote, say) the quote is shown rather than nothing.
    """
    budget = limit * 4  # enough text to fill the snippet after collapsing
    snippet = _collapse(_visible_lines(text, budget, drop_quotes=True))
    if not snippet:
        snippet = _collapse(_visible_lines(text, budget, drop_quotes=False))
    return _truncate(snippet, limit)


def _visible_lines(text: str, budget: int, *, drop_quotes: bool) -> list[str]:
    kept: list[str] = []
    size = 0
    state = "text"  # or "armour" (skipped), "armour-headers", "signed" (dash-escaped)
    in_quote = False
    for line in text.split("\n", _MAX_LINES)[:_MAX_LINES]:
        stripped = line.strip()
        if state == "armour":
            if stripped.startswith("-----END PGP "):
                state = "text"
            continue
        if state == "armour-headers":
            state = "signed" if not stripped else state
            continue
        if stripped in ("-----BEGIN PGP MESSAGE-----", "-----BEGIN PGP SIGNATURE-----"):
            state = "armour"
            continue
        if stripped == "-----BEGIN PGP SIGNED MESSAGE-----":
            state = "armour-headers"
            continue
        if state == "signed" and line.startswith("- "):
            line = line[2:]  # OpenPGP dash-escaping (RFC 4880 section 7.1)
        if line.rstrip("\r") in ("-- ", "--") or _ORIGINAL_MESSAGE.fullmatch(stripped):
            break
        if drop_quotes and stripped.startswith(">"):
            if not in_quote and kept and kept[-1].endswith(":"):
                kept.pop()  # the "On <date>, <name> wrote:" attribution
            in_quote = True
            continue
        if stripped:
            in_quote = False
            kept.append(stripped)
            size += len(stripped) + 1
            if size > budget:
                break
    return kept


def _collapse(lines: list[str]) -> str:
    return " ".join(_INVISIBLE.sub("", " ".join(lines)).split())


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    space = head.rfind(" ")
    if space > limit // 2:
        return head[:space].rstrip()
    return text[:limit]  # one huge "word" (a URL, or a script without spaces): hard cut
