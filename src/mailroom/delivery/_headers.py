"""Reading the top-level header fields the store needs, tolerant of every kind of junk.

Values are taken raw from the parsed message and decoded here rather than through
`policy.default`'s header objects alone: those raise on some hostile input (deeply
nested comments exhaust the recursion limit) and are quadratic on very long values.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy

from mailroom.delivery._defects import DefectLog
from mailroom.delivery._model import Address
from mailroom.delivery._text import clean_text, decode_encoded_words, fold_whitespace, repair_8bit

# Canonical spelling for the fields we read, also used in defect messages.
CANONICAL = {
    "from": "From",
    "sender": "Sender",
    "reply-to": "Reply-To",
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
    "subject": "Subject",
    "date": "Date",
    "message-id": "Message-ID",
    "in-reply-to": "In-Reply-To",
    "references": "References",
    "list-id": "List-Id",
    "list-unsubscribe": "List-Unsubscribe",
    "precedence": "Precedence",
    "auto-submitted": "Auto-Submitted",
    "return-path": "Return-Path",
    "x-spam-flag": "X-Spam-Flag",
    "x-spam-score": "X-Spam-Score",
    "x-rspamd-score": "X-Rspamd-Score",
}
# RFC 5322 section 3.6 allows at most one of each of these.
_SINGLETONS = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
)
# Beyond these lengths a value is abuse; the stdlib parsers slow down quadratically.
MAX_TEXT_HEADER = 16_384
MAX_STRUCTURED_ADDRESS_HEADER = 16_384  # longer lists go to the simpler, linear parser
MAX_ADDRESS_HEADER = 65_536  # about 2,000 recipients

_LINE_BREAKS = re.compile(r"[\r\n]")
_DOMAIN = re.compile(r"[^\s@<>()\[\]\\,;:\"]+|\[[^\[\]\\\s]*\]")
_DOT_ATOM = re.compile(r"[^\s\x00-\x1f\x7f()<>\[\]:;@\\,.\"]+(?:\.[^\s\x00-\x1f\x7f()<>\[\]:;@\\,.\"]+)*")
_ANGLE = re.compile(r"<([^<>]*)>")
_SCORE = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?=$|[\s/;,(])")

# The everyday address list (``Name <a@b>, "Last, First" <c@d>, e@f``) read by one regex:
# what the stdlib's parser makes of exactly these forms, at a twentieth of its cost. Anything
# else (comments, groups, encoded-words, quoted pairs, domain literals, obsolete syntax,
# empty members, 8-bit bytes) goes to the stdlib as before; tests/delivery/test_parse.py
# compares both on generated lists.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_WORD = r'(?:[A-Za-z0-9!#$%&\'*+/=?^_`{|}~.-]+|"[^"\\]*")'
_ADDR_SPEC = rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:({_WORD}(?:[ \t]+{_WORD})*)?[ \t]*<{_ADDR_SPEC}>|{_ADDR_SPEC})[ \t]*(,|$)"
)
_NOT_SIMPLE = re.compile(r'[^ \t!#-\'*-9<=>?-Z^-~"]|=\?')


class HeaderBlock:
    """The values of the fields in `CANONICAL`, unfolded, 8-bit bytes repaired, in order."""

    def __init__(self, items: Iterable[tuple[object, object]], defects: DefectLog) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in items:
            key = str(name).strip().lower()
            if key not in CANONICAL:
                continue
            text, clean = repair_8bit(value if isinstance(value, str) else str(value))
            if not clean:
                defects.add(f"non-UTF-8 bytes in {CANONICAL[key]} header")
            if "\x00" in text:
                defects.add(f"NUL bytes removed from {CANONICAL[key]} header")
            self._values.setdefault(key, []).append(clean_text(_LINE_BREAKS.sub("", text)))
        for key in _SINGLETONS:
            if len(self._values.get(key, ())) > 1:
                defects.add(f"multiple {CANONICAL[key]} headers")

    def all(self, key: str) -> list[str]:
        """Every value of the field, in header order."""
        return list(self._values.get(key, ()))

    def first(self, key: str) -> str | None:
        """The first (topmost) value of the field, or None when absent."""
        values = self._values.get(key)
        return values[0] if values else None

    def text(self, key: str, defects: DefectLog) -> str | None:
        """The first value as decoded, whitespace-folded text; None when absent."""
        value = self.first(key)
        return None if value is None else decode_text_header(value, CANONICAL[key], defects)


def decode_text_header(value: str, label: str, defects: DefectLog) -> str:
    """Decode RFC 2047 encoded-words in an unstructured value and fold its whitespace."""
    if len(value) > MAX_TEXT_HEADER:
        defects.add(f"overlong {label} header truncated")
        value = value[:MAX_TEXT_HEADER]
    text, broken = decode_encoded_words(value)
    if broken:
        defects.add(f"malformed encoded-word in {label}")
    return fold_whitespace(clean_text(text))


def parse_addresses(values: list[str], label: str, defects: DefectLog) -> list[Address]:
    """Parse address-list values into mailboxes, flattening groups and skipping garbage."""
    result: list[Address] = []
    for value in values:
        if len(value) > MAX_ADDRESS_HEADER:
            defects.add(f"overlong {label} header truncated")
            cut = value.rfind(",", 0, MAX_ADDRESS_HEADER)
            value = value[: cut if cut > 0 else MAX_ADDRESS_HEADER]
        for name, local, domain in _mailboxes(value):
            address = _make_address(name, local, domain)
            if address is None:
                defects.add(f"invalid address in {label}")
            else:
                result.append(address)
    return result


def _simple_mailboxes(value: str) -> list[tuple[str, str, str]] | None:
    """The triples of an everyday address list; None when it is anything more (see above).

    Display names come back with their quotes removed and whitespace as written: callers
    fold whitespace, as they do for the stdlib parser's names.
    """
    if not value or _NOT_SIMPLE.search(value):
        return None
    triples = []
    pos, end = 0, len(value)
    while pos < end:
        match = _SIMPLE_MAILBOX.match(value, pos)
        if match is None:
            return None
        name, local, domain, bare_local, bare_domain, comma = match.groups()
        if local is None:
            triples.append(("", bare_local, bare_domain))
        else:
            triples.append(((name or "").replace('"', ""), local, domain))
        pos = match.end()
        if comma and pos >= end:  # a trailing comma: the stdlib's obsolete-list handling decides
            return None
    return triples


def _mailboxes(value: str) -> list[tuple[str, str, str]]:
    """(display name, local part, domain) triples, by the modern parser when it copes."""
    simple = _simple_mailboxes(value)
    if simple is not None:
        return simple
    if len(value) <= MAX_STRUCTURED_ADDRESS_HEADER:
        try:
            header = policy.default.header_factory("to", value)
            return [
                (mailbox.display_name, mailbox.username, mailbox.domain)
                for group in header.groups
                for mailbox in group.addresses
            ]
        except Exception:  # noqa: S110 - the stdlib parser can fail in many ways; fall back below
            pass
    triples = []
    for name, addr in email.utils.getaddresses([value]):
        local, _, domain = addr.rpartition("@")
        triples.append((name, local, domain))
    return triples


def _make_address(name: str, local: str, domain: str) -> Address | None:
    # The stdlib decodes encoded-words with surrogateescape, so raw bytes can reach here.
    name, local, domain = (clean_text(repair_8bit(part)[0]) for part in (name, local, domain))
    local, domain = local.strip(), domain.strip()
    if not local or not _DOMAIN.fullmatch(domain) or any(ch < " " or ch == "\x7f" for ch in local):
        return None
    if not _DOT_ATOM.fullmatch(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if "=?" in name:
        name = decode_encoded_words(name)[0]
    return Address(name=fold_whitespace(clean_text(name)), email=f"{local}@{domain.lower()}")


#: The year of an RFC 5322 date: the digits after the month name.
_RFC_YEAR = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d+)\b", re.IGNORECASE
)


def _rfc5322_year(token: str) -> int:
    """RFC 5322 §4.3: a two-digit year 00-49 is 20xx, 50-99 is 19xx; a three-digit year
    gets 1900 added; four or more digits are the year as written (``0075`` is year 75, which
    Python's parser, seeing the number 75, would call 1975)."""
    year = int(token)
    if len(token) == 2:
        return year + (2000 if year < 50 else 1900)
    if len(token) == 3:
        return year + 1900
    return year


def parse_date(value: str) -> datetime | None:
    """Parse an RFC 5322 date (or, leniently, ISO 8601) into an aware UTC datetime.

    Anything it cannot place on the calendar (day 32, year 99999, an instant before year 1
    or after 9999 in UTC) is None: the message is stored all the same, its raw header kept.
    """
    text = fold_whitespace(value)
    if not text:
        return None
    parsed: datetime | None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
        found = _RFC_YEAR.search(text)
        if parsed is not None and found is not None and len(found.group(1)) <= 4:
            parsed = parsed.replace(year=_rfc5322_year(found.group(1)))
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        # RFC 5322 "-0000" (and ISO without offset): the zone is unknown, so UTC is the honest guess.
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def parse_spam_score(value: str | None) -> float | None:
    """Read a leading number ("5.2", " 5.2 / 6.0"); anything else is None."""
    if value is None:
        return None
    match = _SCORE.match(value)
    if match is None:
        return None
    score = float(match.group(1))
    return score if math.isfinite(score) else None


def parse_spam_flag(value: str | None) -> bool | None:
    """YES/NO of X-Spam-Flag as a bool; None when absent or neither."""
    if value is None:
        return None
    word = value.strip().upper()
    if word.startswith("YES"):
        return True
    if word.startswith("NO"):
        return False
    return None


def parse_keyword(value: str | None) -> str | None:
    """The lowercased keyword of Precedence / Auto-Submitted, without parameters."""
    if value is None:
        return None
    keyword = value.split(";", 1)[0].strip().lower()
    return keyword or None


def parse_list_id(value: str | None) -> str | None:
    """The identifier inside the angle brackets of List-Id (RFC 2919), else the whole value."""
    if value is None:
        return None
    match = _ANGLE.search(value)
    list_id = "".join((match.group(1) if match else value).split())
    return list_id or None


def parse_return_path(value: str | None) -> str | None:
    """The reverse-path address; '' for the null sender "<>" that bounces carry."""
    if value is None:
        return None
    match = _ANGLE.search(value)
    path = "".join((match.group(1) if match else value).split())
    if path.startswith("@") and ":" in path:
        path = path.split(":", 1)[1]  # obsolete source route "@relay:user@host"
    local, at, domain = path.rpartition("@")
    return f"{local}@{domain.lower()}" if at else path
