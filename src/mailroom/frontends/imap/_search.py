"""SEARCH criteria (RFC 9051 6.4.4, CONDSTORE's MODSEQ, OBJECTID's EMAILID/THREADID).

Keys on what the session holds (flags, UIDs, sizes, arrival) are evaluated in memory; TEXT,
BODY, SUBJECT, FROM, TO, CC, BCC and HEADER are case-insensitive substrings of the decoded
fields or body text (``mail.imap.search`` over the selected mailbox, one call per key, the
answer a set of email ids: store/imap_search.py); the SENT* dates read the messages' headers.
A key the grammar does not know is a BAD.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from mailroom.domain import objectids
from mailroom.frontends.imap._headers import Headers
from mailroom.frontends.imap._mailbox import DRAFT, FLAGGED, SEEN, Message, Selected, stored_keyword
from mailroom.frontends.imap._parser import Atom, ParseError, Value, astring, number, sequence_set

if TYPE_CHECKING:
    from mailroom.frontends.imap._commands import Commands

Predicate = Callable[[int, Message], bool]
#: Deepest nesting of NOT/OR/parentheses.
MAX_DEPTH = 32


class Search:
    def __init__(self, session: Commands, selected: Selected) -> None:
        self.session = session
        self.selected = selected
        self.uses_modseq = False
        self._header_cache: dict[int, object] = {}

    async def run(self, args: list[Value]) -> list[int]:
        position = [0]
        predicates = []
        while position[0] < len(args):
            predicates.append(await self._key(args, position, 0))
        uids = list(self.selected.uids)
        out = []
        for uid in uids:
            message = self.selected.messages[uid]
            if all(p(uid, message) for p in predicates):
                out.append(uid)
        # Header-reading keys were resolved up front into sets; nothing async remains.
        return out

    async def _text(self, field: str, value: Value, header: str | None = None) -> Predicate:
        text = astring(value)
        if not text and field != "header":
            return lambda uid, m: True
        term: dict[str, str] = {"field": field, "text": text}
        if header is not None:
            term["header"] = header
        ids = set(
            await self.session.call("mail.imap.search", {"terms": [term], "label": self.selected.label_id})
        )
        return lambda uid, m: m.email_id in ids

    async def _headers(self, test: Callable[[Headers], bool]) -> Predicate:
        matched: set[int] = set()
        for uid in self.selected.uids:
            message = self.selected.messages[uid]
            part = await self.session._headers(message.email_id)
            if test(part):
                matched.add(uid)
        return lambda uid, m: uid in matched

    async def _key(self, args: list[Value], position: list[int], depth: int) -> Predicate:
        if depth > MAX_DEPTH:
            raise ParseError("search nested too deep")
        if position[0] >= len(args):
            raise ParseError("missing search key")
        value = args[position[0]]
        position[0] += 1

        def arg() -> Value:
            if position[0] >= len(args):
                raise ParseError("missing search argument")
            v = args[position[0]]
            position[0] += 1
            return v

        if isinstance(value, list):
            if not value:
                raise ParseError("empty search group")
            sub_pos = [0]
            preds = []
            while sub_pos[0] < len(value):
                preds.append(await self._key(value, sub_pos, depth + 1))
            return lambda uid, m: all(p(uid, m) for p in preds)
        if not isinstance(value, Atom):
            raise ParseError("invalid search key")
        key = value.upper()
        selected = self.selected
        if key == "ALL":
            return lambda uid, m: True
        if key in ("SEEN", "UNSEEN"):
            want = key == "SEEN"
            return lambda uid, m: bool(m.bits & SEEN) == want
        if key in ("FLAGGED", "UNFLAGGED"):
            want = key == "FLAGGED"
            return lambda uid, m: bool(m.bits & FLAGGED) == want
        if key in ("DRAFT", "UNDRAFT"):
            want = key == "DRAFT"
            return lambda uid, m: bool(m.bits & DRAFT) == want
        if key in ("DELETED", "UNDELETED", "ANSWERED", "UNANSWERED"):
            flag = "$deleted" if key.endswith("DELETED") else "$answered"
            want = not key.startswith("UN")
            return lambda uid, m: (flag in m.keywords) == want
        if key in ("KEYWORD", "UNKEYWORD"):
            word = stored_keyword(astring(arg()))
            want = key == "KEYWORD"
            return lambda uid, m: (word in m.keywords) == want
        if key in ("RECENT", "NEW"):
            if key == "NEW":
                return lambda uid, m: m.recent and not m.bits & SEEN
            return lambda uid, m: m.recent
        if key == "OLD":
            return lambda uid, m: not m.recent
        if key in ("LARGER", "SMALLER"):
            size = number(arg())
            if key == "LARGER":
                return lambda uid, m: m.size > size
            return lambda uid, m: m.size < size
        if key in ("BEFORE", "ON", "SINCE"):
            from mailroom.frontends.imap._commands import _parse_date

            day = _parse_date(astring(arg()))
            start, end = day.timestamp(), (day + timedelta(days=1)).timestamp()
            if key == "BEFORE":
                return lambda uid, m: m.received < start
            if key == "ON":
                return lambda uid, m: start <= m.received < end
            return lambda uid, m: m.received >= start
        if key in ("SENTBEFORE", "SENTON", "SENTSINCE"):
            from mailroom.frontends.imap._commands import _parse_date, sent_date

            day = _parse_date(astring(arg()))
            nxt = day + timedelta(days=1)

            def sent(part: Headers) -> bool:
                when = sent_date(part)
                if when is None:
                    return False
                d = when.date()
                if key == "SENTBEFORE":
                    return d < day.date()
                if key == "SENTON":
                    return d == day.date()
                return d >= day.date() or when >= nxt

            return await self._headers(sent)
        if key == "TEXT":
            return await self._text("any", arg())
        if key in ("BODY", "SUBJECT", "FROM", "TO", "CC", "BCC"):
            return await self._text(key.lower(), arg())
        if key == "HEADER":
            name = astring(arg())
            if not name or any(ord(c) <= 32 or ord(c) > 126 or c == ":" for c in name):
                raise ParseError("invalid header field name")
            return await self._text("header", arg(), header=name)
        if key == "NOT":
            inner = await self._key(args, position, depth + 1)
            return lambda uid, m: not inner(uid, m)
        if key == "OR":
            left = await self._key(args, position, depth + 1)
            right = await self._key(args, position, depth + 1)
            return lambda uid, m: left(uid, m) or right(uid, m)
        if key == "UID":
            ranges = sequence_set(arg())
            chosen = set(selected.saved if ranges is None else selected.by_uid(ranges))
            return lambda uid, m: uid in chosen
        if key == "MODSEQ":
            nxt_value = arg()
            if isinstance(nxt_value, str) and not isinstance(nxt_value, Atom):
                arg()  # entry name, then entry type
                nxt_value = arg()
            elif isinstance(nxt_value, Atom) and not (nxt_value.isascii() and nxt_value.isdigit()):
                arg()
                nxt_value = arg()
            modseq = number(nxt_value, limit=2**63 - 1)
            self.uses_modseq = True
            return lambda uid, m: m.modseq >= modseq
        if key == "EMAILID":
            email = objectids.decode(objectids.EMAIL_PREFIX, astring(arg()))
            return lambda uid, m: m.email_id == email
        if key == "THREADID":
            thread = objectids.decode(objectids.THREAD_PREFIX, astring(arg()))
            return lambda uid, m: m.thread_id == thread
        if key == "$" or (key[:1] in "0123456789" and key[:1] != "") or key[:1] == "*":
            ranges = sequence_set(value)
            chosen = set(selected.saved if ranges is None else selected.by_sequence(ranges))
            return lambda uid, m: uid in chosen
        raise ParseError(f"unknown search key {key[:30]}")
