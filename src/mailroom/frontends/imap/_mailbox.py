"""The selected mailbox as one session sees it: messages in UID order, their flags and
MODSEQs, and the sync with the store (new messages, flag changes, expunges)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from mailroom.frontends.imap._parser import Range

SEEN, FLAGGED, DRAFT = 1, 2, 4
_BITS = ((SEEN, "\\Seen"), (FLAGGED, "\\Flagged"), (DRAFT, "\\Draft"))
#: The flag names of each combination of the three bits (FETCH FLAGS of 10,000 messages).
_BIT_NAMES = tuple(tuple(name for bit, name in _BITS if bits & bit) for bits in range(8))
_FLAGS_ITEMS = tuple(b"FLAGS (" + " ".join(names).encode() + b")" for names in _BIT_NAMES)
#: The flags of the three ``emails`` columns; every other flag is a stored keyword.
COLUMN_FLAGS = ("\\Seen", "\\Flagged", "\\Draft")
#: Keywords as stored (JMAP's lower-case form) → as IMAP shows them.
_SHOWN = {
    "$answered": "\\Answered",
    "$deleted": "\\Deleted",
    "$forwarded": "$Forwarded",
    "$junk": "$Junk",
    "$notjunk": "$NotJunk",
    "$mdnsent": "$MDNSent",
    "$phishing": "$Phishing",
}
#: FLAGS and PERMANENTFLAGS of a selected mailbox.
FLAGS = (
    "\\Answered",
    "\\Flagged",
    "\\Deleted",
    "\\Seen",
    "\\Draft",
    "$Forwarded",
    "$Junk",
    "$NotJunk",
    "$MDNSent",
)


_NONE: frozenset[str] = frozenset()


def stored_keyword(flag: str) -> str:
    """An IMAP flag other than the three columns, as stored: ``\\Answered`` → ``$answered``."""
    return "$" + flag[1:].lower() if flag.startswith("\\") else flag.lower()


def shown_keyword(keyword: str) -> str:
    return _SHOWN.get(keyword, keyword)


@dataclass(slots=True)
class Message:
    email_id: int
    thread_id: int
    modseq: int
    bits: int
    size: int
    received: int
    keywords: AbstractSet[str] = _NONE  # as stored (replaced, never changed in place)
    recent: bool = False

    def flags_item(self) -> bytes:
        """``FLAGS (...)`` as FETCH answers it."""
        if not self.keywords and not self.recent:
            return _FLAGS_ITEMS[self.bits & 7]
        return b"FLAGS (" + " ".join(self.flags()).encode() + b")"

    def flags(self) -> Sequence[str]:
        if not self.keywords and not self.recent:
            return _BIT_NAMES[self.bits & 7]
        names = list(_BIT_NAMES[self.bits & 7])
        names.extend(sorted(shown_keyword(k) for k in self.keywords))
        if self.recent:
            names.append("\\Recent")
        return names


@dataclass
class Selected:
    label_id: int
    name: str
    readonly: bool
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    uids: list[int] = field(default_factory=list)
    messages: dict[int, Message] = field(default_factory=dict)
    pending_expunge: set[int] = field(default_factory=set)
    saved: list[int] = field(default_factory=list)  # SEARCHRES "$" (UIDs)
    recent: int = 0  # how many messages are \\Recent in this session (IMAP4rev1)
    #: Keywords (as stored) the session's FLAGS response named beyond :data:`FLAGS`.
    announced: set[str] = field(default_factory=set)

    def load(self, view: dict[str, Any]) -> None:
        self.uids = uids = list(view["uids"])
        # One object per message, made by map() without keyword arguments or a fresh set each
        # (SELECT of 10,000 messages); the few with keywords get theirs after.
        self.messages = dict(
            zip(
                uids,
                map(
                    Message,
                    view["email_ids"],
                    view["thread_ids"],
                    view["modseqs"],
                    view["flags"],
                    view["sizes"],
                    view["received"],
                ),
                strict=True,
            )
        )
        keywords: dict[int, set[str]] = {}
        for uid, keyword in view["keywords"]:
            keywords.setdefault(uid, set()).add(keyword)
        for uid, found in keywords.items():
            message = self.messages.get(uid)
            if message is not None:
                message.keywords = found
        self.announced = {k for _, k in view["keywords"]}
        self.uidnext = int(view["uidnext"])
        self.uidvalidity = int(view["uidvalidity"])
        self.highest_modseq = int(view["highest_modseq"])

    def mark_recent(self, first: int, since: int = 0) -> int:
        """Mark the messages with UIDs from ``first`` (and above ``since``) as \\Recent; how
        many of the mailbox's are recent now."""
        for uid in self.uids[bisect.bisect_left(self.uids, max(first, since + 1)) :]:
            message = self.messages[uid]
            if not message.recent:
                message.recent = True
                self.recent += 1
        return self.recent

    def seq_of(self, uid: int) -> int:
        return bisect.bisect_left(self.uids, uid) + 1

    def by_sequence(self, ranges: list[Range]) -> list[int]:
        """UIDs of the messages a sequence-number set names, in order."""
        n = len(self.uids)
        if n == 0:
            return []
        chosen: set[int] = set()
        for low, high in ranges:
            a = n if low is None else low
            b = n if high is None else high
            a, b = min(a, b), max(a, b)
            if a > n:
                continue
            chosen.update(range(max(a, 1) - 1, min(b, n)))
        return [self.uids[i] for i in sorted(chosen)]

    def by_uid(self, ranges: list[Range]) -> list[int]:
        """UIDs of the messages a UID set names (``*`` is the highest UID), in order."""
        if not self.uids:
            return []
        top = self.uids[-1]
        chosen: set[int] = set()
        for low, high in ranges:
            a = top if low is None else low
            b = top if high is None else high
            a, b = min(a, b), max(a, b)
            i = bisect.bisect_left(self.uids, a)
            j = bisect.bisect_right(self.uids, b)
            chosen.update(self.uids[i:j])
        return sorted(chosen)

    def remove(self, uid: int) -> int:
        """Forget an expunged message; its sequence number before."""
        seq = self.seq_of(uid)
        del self.uids[seq - 1]
        gone = self.messages.pop(uid, None)
        if gone is not None and gone.recent:
            self.recent -= 1
        self.pending_expunge.discard(uid)
        return seq


def flags_list(keywords: AbstractSet[str]) -> str:
    """FLAGS of a mailbox: the system flags, the usual keywords and those its messages have."""
    extra = sorted({shown_keyword(k) for k in keywords} - set(FLAGS))
    return " ".join((*FLAGS, *extra))


def uid_set(uids: list[int]) -> str:
    """A compact UID set: ``1:3,7,9:12``."""
    if not uids:
        return ""
    parts = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)
