"""The mail search language: a query string → a flat AST of terms that must all hold.

Grammar (every term must match; ``-`` before a term negates it)::

    query  := term*
    term   := ["-"] (operator ":" value | word | '"' phrase '"')
    value  := word | '"' phrase '"'

Free words and quoted phrases search the full-text index (subject, addresses, body,
attachment names). Operators:

=====================  =========================================================
``from:`` ``to:``      an address or name in From / To / Cc (substring, any case)
``cc:``
``subject:``           words or a phrase in the subject
``label:``             the email carries this label (name)
``has:attachment``     the email has an attachment
``is:unread``          flags: ``unread``, ``read``, ``starred``, ``encrypted``
``before:`` ``after:`` arrival date: ``before:2026-03-01`` is earlier than that day
                       (UTC), ``after:2026-03-01`` is that day or later
``larger:``            size in bytes, with an optional ``k``/``m``/``g`` suffix
``smaller:``           (powers of 1024): ``larger:2m``
=====================  =========================================================

Anything else shaped like ``name:`` is an unknown operator and refused (quote it to search
for the text itself). Parsing never touches storage: the store translates the AST for SQLite
FTS5 or PostgreSQL (store/mailbox_search.py). Errors are :class:`BadRequest` naming the
problem, so the API answers 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from mailroom.errors import BadRequest

#: Queries longer than this are refused (they would only be abuse).
MAX_QUERY_CHARS = 1000
MAX_TERMS = 50

TextField = Literal["any", "subject", "from", "to", "cc"]
FlagName = Literal["unread", "read", "starred", "encrypted", "attachment"]


@dataclass(frozen=True, slots=True)
class TextTerm:
    """Words (``phrase`` false: each word anywhere) or a phrase, in ``field``."""

    text: str
    field: TextField = "any"
    phrase: bool = False
    negated: bool = False


@dataclass(frozen=True, slots=True)
class FlagTerm:
    """``is:unread``, ``is:read``, ``is:starred``, ``is:encrypted``, ``has:attachment``."""

    flag: FlagName
    negated: bool = False


@dataclass(frozen=True, slots=True)
class LabelTerm:
    name: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class DateTerm:
    """``before``: arrived earlier than ``at``; ``after``: arrived at ``at`` or later."""

    op: Literal["before", "after"]
    at: datetime
    negated: bool = False


@dataclass(frozen=True, slots=True)
class SizeTerm:
    """``larger``: size > ``size`` bytes; ``smaller``: size < ``size`` bytes."""

    op: Literal["larger", "smaller"]
    size: int
    negated: bool = False


Term = TextTerm | FlagTerm | LabelTerm | DateTerm | SizeTerm


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Terms that must all hold for an email to match (empty: every email)."""

    terms: tuple[Term, ...] = ()

    @property
    def text_terms(self) -> tuple[TextTerm, ...]:
        return tuple(t for t in self.terms if isinstance(t, TextTerm))


_OPERATORS = frozenset(
    {"from", "to", "cc", "subject", "label", "has", "is", "before", "after", "larger", "smaller"}
)
_IS = {"unread": "unread", "read": "read", "starred": "starred", "encrypted": "encrypted"}
_HAS = {"attachment": "attachment", "attachments": "attachment"}
_SIZE = re.compile(r"^(\d{1,15})([kmg]?)b?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_OPERATOR_PREFIX = re.compile(r"([A-Za-z_]+):")  # .match(s, pos) anchors at pos
_WORD_CHAR = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _bad(message: str) -> BadRequest:
    return BadRequest(f"bad search query: {message}", param="q")


def _tokens(query: str) -> list[tuple[bool, str | None, str, bool]]:
    """Split into ``(negated, operator, value, quoted)`` tokens."""
    out: list[tuple[bool, str | None, str, bool]] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        start = i
        negated = False
        if query[i] == "-":
            negated = True
            i += 1
            if i >= n or query[i].isspace():
                raise _bad(f"'-' at position {start + 1} negates nothing")
        operator: str | None = None
        match = _OPERATOR_PREFIX.match(query, i)
        if match is not None:
            name = match.group(1).lower()
            if name not in _OPERATORS:
                raise _bad(f"unknown operator '{match.group(1)}:' (quote it to search for the text)")
            operator = name
            i = match.end()
            if i >= n or query[i].isspace():
                raise _bad(f"'{name}:' needs a value")
        if query[i] == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise _bad(f"unterminated quote at position {i + 1}")
            value = query[i + 1 : end]
            i = end + 1
            if not value.strip():
                raise _bad(f"empty quotes at position {start + 1}")
            out.append((negated, operator, value, True))
            continue
        end = i
        while end < n and not query[end].isspace() and query[end] != '"':
            end += 1
        out.append((negated, operator, query[i:end], False))
        i = end
    return out


def _date(op: str, value: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _bad(f"'{op}:{value}' is not a date (YYYY-MM-DD)") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _size(op: str, value: str) -> int:
    match = _SIZE.match(value)
    if match is None:
        raise _bad(f"'{op}:{value}' is not a size (a number with an optional k, m or g)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def _term(negated: bool, operator: str | None, value: str, quoted: bool) -> Term:
    if operator is None:
        if not _WORD_CHAR.search(value):
            raise _bad(f"'{value}' has no letters or digits to search for")
        return TextTerm(value, "any", phrase=quoted, negated=negated)
    if operator in ("from", "to", "cc", "subject"):
        if not _WORD_CHAR.search(value):
            raise _bad(f"'{operator}:{value}' has no letters or digits to search for")
        field: TextField = operator  # type: ignore[assignment]
        return TextTerm(value.strip(), field, phrase=quoted, negated=negated)
    if operator == "label":
        return LabelTerm(value.strip(), negated)
    if operator == "is":
        flag = _IS.get(value.lower())
        if flag is None:
            raise _bad(f"'is:{value}' is not one of is:unread, is:read, is:starred, is:encrypted")
        return FlagTerm(flag, negated)  # type: ignore[arg-type]
    if operator == "has":
        flag = _HAS.get(value.lower())
        if flag is None:
            raise _bad(f"'has:{value}' is not has:attachment")
        return FlagTerm(flag, negated)  # type: ignore[arg-type]
    if operator in ("before", "after"):
        return DateTerm(operator, _date(operator, value), negated)  # type: ignore[arg-type]
    return SizeTerm(operator, _size(operator, value), negated)  # type: ignore[arg-type]


def parse_query(query: str) -> SearchQuery:
    """Parse a search string; :class:`BadRequest` (400) naming the problem when it is bad."""
    if len(query) > MAX_QUERY_CHARS:
        raise _bad(f"longer than {MAX_QUERY_CHARS} characters")
    if _CONTROL.search(query):
        raise _bad("control characters are not allowed")
    terms = tuple(_term(*token) for token in _tokens(query))
    if len(terms) > MAX_TERMS:
        raise _bad(f"more than {MAX_TERMS} terms")
    return SearchQuery(terms)
