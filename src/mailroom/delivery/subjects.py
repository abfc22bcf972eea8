"""Threading keys: normalised subjects and tolerant Message-ID parsing.

Threading prefers Message-ID / In-Reply-To / References; the normalised subject is
the fallback key when a mailer dropped them.
"""

from __future__ import annotations

import re
import unicodedata

# Reply prefixes used by common mail clients in various languages (after NFKC, so
# full-width forms are covered): English, German, Scandinavian, Finnish, Dutch,
# Italian, French, Polish, Portuguese, Turkish, Chinese, Korean.
_REPLY_WORDS = (
    "re",
    "aw",
    "sv",
    "vs",
    "antw",
    "r",
    "rif",
    "réf",
    "odp",
    "res",
    "ynt",
    "回复",
    "回覆",
    "答复",
    "회신",
    "답장",
)
_FORWARD_WORDS = (
    "fwd",
    "fw",
    "wg",
    "tr",
    "rv",
    "enc",
    "vl",
    "doorst",
    "pd",
    "ilt",
    "转发",
    "轉寄",
    "轉發",
    "전달",
)


def _prefix_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first so "fwd" wins over "fw"; a counter such as [2], ^2 or (2) may
    # sit between the word and the colon.
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?:{alternatives})\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*:\s*", re.IGNORECASE)


_REPLY_PREFIX = _prefix_pattern(_REPLY_WORDS)
_ANY_PREFIX = _prefix_pattern(_REPLY_WORDS + _FORWARD_WORDS)
_LIST_TAG = re.compile(r"\[[^\[\]]*\]\s*")
_TRAILING_FWD = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)

# RFC 5322 caps a line at 998 characters; a longer "id" is abuse, not an identifier.
MAX_ID_LENGTH = 998


def _prepare(subject: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", subject).split())


def normalize_subject(subject: str) -> str:
    """Return the subject reduced to a threading key.

    Strips reply/forward prefixes (any number, any supported language, with
    counters such as ``Re[2]:``), leading ``[list-tag]`` markers and trailing
    ``(fwd)``, collapses whitespace and casefolds. May return '' (for example for
    a subject that is only a tag); callers should not thread on an empty key.
    """
    text = _prepare(subject)
    while True:
        match = _ANY_PREFIX.match(text) or _LIST_TAG.match(text)
        if match is None:
            break
        text = text[match.end() :]
    while (match := _TRAILING_FWD.search(text)) is not None:
        text = text[: match.start()]
    return text.strip().casefold()


def is_reply_subject(subject: str) -> bool:
    """Whether the subject starts (after any ``[list-tag]``) with a reply prefix such as ``Re:``.

    Forward prefixes do not count: a forward usually starts a new conversation.
    """
    text = _prepare(subject)
    while (match := _LIST_TAG.match(text)) is not None:
        text = text[match.end() :]
    return _REPLY_PREFIX.match(text) is not None


def _strip_comments(value: str) -> str:
    """Remove RFC 5322 comments (nested, with escapes) outside angle brackets and quotes."""
    out: list[str] = []
    depth = 0
    in_angle = in_quote = escaped = False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if depth:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            continue
        if ch == "(" and not in_angle and not in_quote:
            depth = 1
            out.append(" ")
            continue
        if ch == '"' and not in_angle:
            in_quote = not in_quote
        elif ch == "<" and not in_quote:
            in_angle = True
        elif ch == ">" and not in_quote:
            in_angle = False
        out.append(ch)
    return "".join(out)


def _tokens(value: str) -> tuple[list[str], list[str]]:
    """Split an id list into bracketed ids and bare words (without brackets or whitespace)."""
    bracketed: list[str] = []
    bare: list[str] = []
    text = _strip_comments(value)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            end = text.find(">", i + 1)
            if end != -1:
                bracketed.append("".join(text[i + 1 : end].split()))
                i = end + 1
                continue
            i += 1  # an unclosed '<' (truncated header): read on as a bare word
            continue
        if ch.isspace() or ch in ",>":
            i += 1
            continue
        start = i
        while i < len(text) and not text[i].isspace() and text[i] not in ",<>":
            i += 1
        bare.append(text[start:i].strip("\"'"))
    return bracketed, bare


def parse_id_list(value: str) -> list[str]:
    """Parse a References / In-Reply-To value into message ids, in order, without duplicates.

    Tolerates missing brackets, commas, comments and folding whitespace. When any
    id is bracketed only bracketed ids count, since the rest is then usually an
    old-style phrase ("Your message of ..."); otherwise bare words containing '@' count.
    """
    bracketed, bare = _tokens(value)
    candidates = bracketed if bracketed else [word for word in bare if "@" in word]
    ids: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        if candidate and len(candidate) <= MAX_ID_LENGTH and candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def clean_message_id(value: str) -> str | None:
    """Return the single message id in a Message-ID (or Content-ID) value, or None.

    Angle brackets, comments and all whitespace are removed; an id without
    brackets or without '@' is still accepted because some mailers emit them.
    """
    bracketed, bare = _tokens(value)
    for candidate in bracketed or [w for w in bare if "@" in w] or bare:
        if candidate and len(candidate) <= MAX_ID_LENGTH:
            return candidate
    return None
