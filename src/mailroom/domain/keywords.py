"""Email keywords as JMAP (RFC 8621 §4.1.1) and IMAP (RFC 9051 flags) share them.

One set of keywords per email, whichever protocol sets it, in JMAP's form and in lower
case (keywords are case-insensitive in JMAP, and IMAP compares them without regard to case):

- ``$seen``, ``$flagged`` and ``$draft`` are the ``emails`` columns ``is_read``,
  ``is_starred`` and ``is_draft`` (IMAP's ``\\Seen``, ``\\Flagged``, ``\\Draft``; the REST
  API's read and starred);
- every other one is a row of ``email_keywords``: ``$answered`` (IMAP ``\\Answered``),
  ``$deleted`` (IMAP ``\\Deleted``, which RFC 8621 has no keyword for: JMAP shows it as
  ``$deleted``), ``$forwarded``, ``$junk``, ``$notjunk``, ``$mdnsent``, a client's own.
"""

from __future__ import annotations

#: The keywords kept as ``emails`` columns; every other one is stored as a row.
COLUMN_KEYWORDS = ("$seen", "$flagged", "$draft")
#: The longest keyword stored (``email_keywords.keyword``).
MAX_LENGTH = 64
#: Characters RFC 8621 §4.1.1 forbids in a keyword (besides anything outside 0x21-0x7e);
#: the same as IMAP's atom-specials, so any JMAP keyword is a valid IMAP flag keyword.
_FORBIDDEN = frozenset('(){]%*"\\')


def keyword_problem(keyword: str) -> str | None:
    """Why ``keyword`` is not a keyword this server can keep (None if it is one)."""
    if not keyword:
        return "a keyword cannot be empty"
    if len(keyword) > 255:
        return "a keyword is at most 255 characters"
    bad = next((c for c in keyword if not "\x21" <= c <= "\x7e" or c in _FORBIDDEN), None)
    if bad is not None:
        return f"a keyword cannot contain {bad!r} (RFC 8621 §4.1.1)"
    if len(keyword) > MAX_LENGTH:
        return f"this server keeps keywords of at most {MAX_LENGTH} characters"
    return None


def normal(keyword: str) -> str:
    """A keyword as stored and shown in JMAP (lower case)."""
    return keyword.lower()
