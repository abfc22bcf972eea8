"""The selected mailbox as one session sees it: messages in UID order, their flags and
MODSEQs, and the sync with the store (new messages, flag changes, expunges)."""

from __future__ import annotations

import bisect
import contextvars
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
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


#: The connection's keyword spellings (stored → as the account first wrote it, services
#: ``mail.imap.keyword_spellings``): one dict per session, set in its task and updated in place.
SPELLINGS: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "imap_spellings", default=MappingProxyType({})
)


def shown_keyword(keyword: str) -> str:
    """A stored keyword as IMAP shows it: the system flags, the usual keywords' registered
    case, else the case the account first stored it with (RFC 9051 §2.3.2)."""
    shown = _SHOWN.get(keyword)
    if shown is not None:
        return shown
    return SPELLINGS.get().get(keyword, keyword)


def unspelled(flags: Iterable[str], spellings: Mapping[str, str]) -> list[str]:
    """The mixed-case keywords among ``flags`` whose spelling the session does not know yet."""
    known = spellings.keys() | _SHOWN.keys()
    return sorted({f for f in flags if not f.startswith("\\") and f != f.lower() and f.lower() not in known})


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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A whole mailbox as ``mail.imap.view`` gave it at (UIDVALIDITY, account MODSEQ), shared
    by the sessions of a worker that select it in that state (``_snapshots``): the columns
    as received (never changed), the position of each UID, the keywords by UID, and whole-
    mailbox FETCH answers already rendered (by their items; valid for a session whose view
    is still this one, :meth:`Selected.pristine`)."""

    user_id: int
    label_id: int
    uidvalidity: int
    highest_modseq: int
    uids: list[int]
    email_ids: list[int]
    thread_ids: list[int]
    modseqs: list[int]
    flags: list[int]
    sizes: list[int]
    received: list[int]
    keywords: dict[int, frozenset[str]]
    position: dict[int, int]
    rendered: dict[tuple[str, ...], bytes]

    @classmethod
    def of(cls, user_id: int, view: dict[str, Any]) -> Snapshot:
        keywords: dict[int, set[str]] = {}
        for uid, keyword in view["keywords"]:
            keywords.setdefault(uid, set()).add(keyword)
        uids = list(view["uids"])
        return cls(
            user_id=user_id,
            label_id=int(view["label_id"]),
            uidvalidity=int(view["uidvalidity"]),
            highest_modseq=int(view["highest_modseq"]),
            uids=uids,
            email_ids=view["email_ids"],
            thread_ids=view["thread_ids"],
            modseqs=view["modseqs"],
            flags=view["flags"],
            sizes=view["sizes"],
            received=view["received"],
            keywords={uid: frozenset(found) for uid, found in keywords.items()},
            position=dict(zip(uids, range(len(uids)), strict=True)),
            rendered={},
        )

    def message(self, uid: int) -> Message | None:
        i = self.position.get(uid)
        if i is None:
            return None
        return Message(
            self.email_ids[i],
            self.thread_ids[i],
            self.modseqs[i],
            self.flags[i],
            self.sizes[i],
            self.received[i],
            self.keywords.get(uid, _NONE),
        )

    def render_fetch(self, items: Sequence[str]) -> bytes:
        """``* n FETCH (...)`` of every message, for items among UID, FLAGS and MODSEQ (no
        \\Recent: a pristine session has none), in one pass: the FLAGS item made once per
        flag combination, the lines joined into one block; kept for the next session."""
        key = tuple(items)
        found = self.rendered.get(key)
        if found is not None:
            return found
        by_bits = _FLAGS_ITEMS
        keywords = self.keywords
        flag_items = [by_bits[bits & 7] for bits in self.flags]
        for uid in keywords:
            i = self.position[uid]
            message = self.message(uid)
            assert message is not None
            flag_items[i] = message.flags_item()
        uids = self.uids
        seqs = range(1, len(uids) + 1)
        lines: Iterable[bytes]
        if key == ("UID", "FLAGS"):
            lines = map(b"* %d FETCH (UID %d %b)\r\n".__mod__, zip(seqs, uids, flag_items, strict=True))
        elif key == ("FLAGS", "UID"):
            lines = map(b"* %d FETCH (%b UID %d)\r\n".__mod__, zip(seqs, flag_items, uids, strict=True))
        else:
            columns = {
                "UID": [b"UID %d" % u for u in uids],
                "FLAGS": flag_items,
                "MODSEQ": [b"MODSEQ (%d)" % m for m in self.modseqs],
            }
            chosen = [columns[item] for item in key]
            lines = (
                b"* %d FETCH (%b)\r\n" % (seq, b" ".join(fields))
                for seq, *fields in zip(seqs, *chosen, strict=True)
            )
        block = b"".join(lines)
        self.rendered[key] = block
        return block


class Messages(MutableMapping[int, Message]):
    """A session's messages by UID: made from its :class:`Snapshot` when first asked for
    (a SELECT of 10,000 messages makes no 10,000 objects a client may never look at), then
    kept, so a message changed by the session's sync is the same object the next time."""

    __slots__ = ("_added", "_gone", "_made", "_snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._made: dict[int, Message] = {}
        self._gone: set[int] = set()  # of the snapshot's, those removed
        self._added: dict[int, None] = {}  # not in the snapshot, in order of arrival

    def _get(self, uid: int) -> Message | None:
        found = self._made.get(uid)
        if found is not None:
            return found
        if uid in self._gone:
            return None
        found = self._snapshot.message(uid)
        if found is not None:
            self._made[uid] = found
        return found

    def __getitem__(self, uid: int) -> Message:
        found = self._get(uid)
        if found is None:
            raise KeyError(uid)
        return found

    def __contains__(self, uid: object) -> bool:
        if uid in self._made:
            return True
        return uid in self._snapshot.position and uid not in self._gone

    def __setitem__(self, uid: int, message: Message) -> None:
        if uid not in self._snapshot.position:
            self._added[uid] = None
        self._gone.discard(uid)
        self._made[uid] = message

    def __delitem__(self, uid: int) -> None:
        if uid not in self:
            raise KeyError(uid)
        self._made.pop(uid, None)
        self._added.pop(uid, None)
        if uid in self._snapshot.position:
            self._gone.add(uid)

    def __iter__(self) -> Iterator[int]:
        gone = self._gone
        for uid in self._snapshot.uids:
            if uid not in gone:
                yield uid
        yield from list(self._added)

    def __len__(self) -> int:
        return len(self._snapshot.uids) - len(self._gone) + len(self._added)


@dataclass
class Selected:
    label_id: int
    name: str
    readonly: bool
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    uids: list[int] = field(default_factory=list)
    messages: MutableMapping[int, Message] = field(default_factory=dict)
    pending_expunge: set[int] = field(default_factory=set)
    saved: list[int] = field(default_factory=list)  # SEARCHRES "$" (UIDs)
    recent: int = 0  # how many messages are \\Recent in this session (IMAP4rev1)
    snapshot: Snapshot | None = None  # the view it was loaded from
    #: Keywords (as stored) the session's FLAGS response named beyond :data:`FLAGS`.
    announced: set[str] = field(default_factory=set)

    def load(self, snapshot: Snapshot, uidnext: int) -> None:
        """The session's view: the mailbox as in ``snapshot`` (shared, read only)."""
        self.snapshot = snapshot
        self.uids = list(snapshot.uids)
        self.messages = Messages(snapshot)
        self.announced = set().union(*snapshot.keywords.values())
        self.uidnext = uidnext
        self.uidvalidity = snapshot.uidvalidity
        self.highest_modseq = snapshot.highest_modseq

    def pristine(self) -> Snapshot | None:
        """The snapshot when the session still sees exactly it: nothing changed since (every
        change the sync applies comes with a higher MODSEQ), nothing expunged or waiting to
        be, no \\Recent (shown per session); else None."""
        snapshot = self.snapshot
        if (
            snapshot is None
            or self.highest_modseq != snapshot.highest_modseq
            or self.uidvalidity != snapshot.uidvalidity
            or self.recent
            or self.pending_expunge
            or len(self.uids) != len(snapshot.uids)
        ):
            return None
        return snapshot

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
        if len(ranges) == 1:  # one range (1:*, a single UID): a slice, already in order
            low, high = ranges[0]
            a = top if low is None else low
            b = top if high is None else high
            a, b = min(a, b), max(a, b)
            return self.uids[bisect.bisect_left(self.uids, a) : bisect.bisect_right(self.uids, b)]
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
