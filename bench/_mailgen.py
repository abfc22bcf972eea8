"""Generated mail for bench/mailbox.py: one mailbox's worth of realistic, reproducible messages.

Everything follows from the seed, so two fills with the same seed and count store the same
bytes. What "realistic" means here:

- **Sizes**: the text body is log-normal (median ~6 KB, mostly 2–50 KB); 40% of messages
  also carry an HTML alternative; 8% an attachment (mostly 20–300 KB, a tail up to ~3 MB),
  base64 like a real client sends it.
- **Threads**: 70% of messages belong to conversations of 2–20 messages (most short), with
  ``In-Reply-To`` and ``References`` (first + last 9 ids, like common clients), ``Re:``
  subjects and a quoted excerpt of the previous message. About a third of the replies are
  the mailbox owner's own (labelled ``sent``).
- **Senders**: ~2,000 correspondents, a few of them frequent (Zipf), on ~150 domains.
- **Words**: a 6,000-word vocabulary drawn with Zipf frequencies, so mid-ranked words occur
  in some percent of the messages and three of them together in hundreds to thousands.
- **Labels**: per conversation: inbox (~30%, more of the recent ones), archive, trash (2%);
  3% of singletons are spam (``X-Spam-Flag: YES``, labelled ``spam``); 30% of non-spam
  conversations carry one of eight user labels; 90% of messages are read, 3% starred.
- **Time**: two years of mail; messages are yielded in arrival order.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

OWNER_NAME = "Alex Bench"
USER_LABELS = ("work", "family", "receipts", "travel", "newsletters", "github", "finance", "friends")
_SYLLABLES = [
    "ka",
    "ri",
    "to",
    "mo",
    "len",
    "sa",
    "vi",
    "dor",
    "an",
    "el",
    "ta",
    "mi",
    "ro",
    "ne",
    "bu",
    "lo",
    "fa",
    "gen",
    "tri",
    "qua",
    "ver",
    "sol",
    "pan",
    "dur",
    "mek",
    "zi",
    "hal",
    "tor",
    "wen",
    "bri",
    "cas",
    "ul",
    "om",
    "is",
    "ex",
    "po",
    "nar",
    "fel",
    "gra",
    "dim",
    "sto",
    "pli",
]
_FIRST = [
    "Ada",
    "Ben",
    "Cara",
    "Dan",
    "Eva",
    "Finn",
    "Gia",
    "Hugo",
    "Ines",
    "Jon",
    "Kira",
    "Liam",
    "Mona",
    "Nils",
    "Olga",
    "Pia",
    "Quin",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Xena",
    "Yuri",
    "Zoe",
    "Alma",
    "Boris",
    "Celia",
    "Dario",
    "Elena",
    "Farid",
    "Greta",
    "Hana",
    "Ivan",
    "Jana",
]
_LAST = [
    "Adler",
    "Brandt",
    "Costa",
    "Dubois",
    "Eklund",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ulrich",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
]
_ATTACHMENT_KINDS = (
    ("application/pdf", "pdf"),
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
)
_START = datetime(2024, 11, 1, tzinfo=UTC)
_SPAN = timedelta(days=730)


@dataclass(slots=True)
class Planned:
    """One message to generate, in arrival order."""

    conv: int
    index: int  # position in its conversation
    at: datetime
    from_owner: bool
    sender: int  # correspondent number (the other party)
    labels: tuple[str, ...]
    is_read: bool
    is_starred: bool
    spam: bool


@dataclass(slots=True)
class Conversation:
    number: int
    subject: str
    sender: int
    others: list[int]
    size: int
    start: datetime
    ids: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)


class MailGenerator:
    def __init__(self, owner: str, count: int, seed: int = 1) -> None:
        self.owner = owner
        self.count = count
        self.seed = seed
        rng = random.Random(seed)
        self.vocab = self._vocabulary(rng, 6000)
        weights = [1.0 / (rank + 1) for rank in range(len(self.vocab))]
        self.cum = list(itertools.accumulate(weights))
        self.domains = [f"{self._word(rng, 2)}.{rng.choice(['com', 'org', 'net', 'io', 'de', 'fr'])}"
                        for _ in range(150)]  # fmt: skip
        self.people = [
            (
                f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                f"{self._word(rng, 2)}.{i}@{rng.choice(self.domains)}",
            )
            for i in range(2000)
        ]
        self.people_cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(len(self.people))))
        self.paragraphs = [self._paragraph(rng) for _ in range(3000)]
        self.attachments = [rng.randbytes(rng.choice([30_000, 80_000, 150_000, 300_000])) for _ in range(40)]
        self.big_attachments = [rng.randbytes(rng.choice([1_000_000, 2_000_000])) for _ in range(4)]
        self.conversations: dict[int, Conversation] = {}
        self.plan = self._plan(rng)

    # -- words --------------------------------------------------------------------------

    @staticmethod
    def _word(rng: random.Random, n: int) -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(n))

    def _vocabulary(self, rng: random.Random, n: int) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        while len(out) < n:
            w = self._word(rng, rng.choice([2, 2, 3, 3, 4]))
            if w not in seen:
                seen.add(w)
                out.append(w)
        return out

    def words(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.vocab, cum_weights=self.cum, k=k)

    def _paragraph(self, rng: random.Random) -> str:
        sentences = []
        for _ in range(rng.randint(3, 7)):
            w = self.words(rng, rng.randint(6, 18))
            sentences.append(" ".join(w).capitalize() + rng.choice([".", ".", ".", "?", "!"]))
        return " ".join(sentences)

    def query_words(self) -> list[str]:
        """Candidate words for 3-word searches: mid-ranked ones (in some percent of messages)."""
        return self.vocab[150:2500]

    # -- the plan -----------------------------------------------------------------------

    def _person(self, rng: random.Random) -> int:
        return bisect.bisect_left(self.people_cum, rng.random() * self.people_cum[-1])

    def _plan(self, rng: random.Random) -> list[Planned]:
        threaded_target = round(self.count * 0.7)
        sizes: list[int] = []
        while sum(sizes) < threaded_target:
            size = min(20, 2 + int(rng.expovariate(1 / 3.0)))
            sizes.append(min(size, max(2, threaded_target - sum(sizes))))
        sizes += [1] * (self.count - sum(sizes))
        rng.shuffle(sizes)
        plan: list[Planned] = []
        for number, size in enumerate(sizes):
            start = _START + _SPAN * rng.random()
            conv = Conversation(
                number=number,
                subject=" ".join(self.words(rng, rng.randint(3, 7))).capitalize(),
                sender=self._person(rng),
                others=[self._person(rng) for _ in range(rng.randint(0, 2))],
                size=size,
                start=start,
            )
            self.conversations[number] = conv
            recent = start > _START + _SPAN - timedelta(days=120)
            spam = size == 1 and rng.random() < 0.03
            if spam:
                place = "spam"
            elif rng.random() < 0.02:
                place = "trash"
            elif rng.random() < (0.85 if recent else 0.22):
                place = "inbox"
            else:
                place = "archive"
            user_label = rng.choice(USER_LABELS) if not spam and rng.random() < 0.3 else None
            at = start
            for i in range(size):
                if i:
                    at += timedelta(seconds=rng.expovariate(1 / (6 * 3600)))
                from_owner = i > 0 and rng.random() < 0.33
                if from_owner:
                    labels: tuple[str, ...] = ("sent",)
                else:
                    labels = (place,)
                if user_label:
                    labels += (user_label,)
                participants = [conv.sender, *conv.others]
                plan.append(
                    Planned(
                        conv=number,
                        index=i,
                        at=at,
                        from_owner=from_owner,
                        sender=participants[i % len(participants)],
                        labels=labels,
                        is_read=from_owner or (not (recent and rng.random() < 0.35) and rng.random() < 0.97),
                        is_starred=rng.random() < 0.03,
                        spam=spam,
                    )
                )
        plan.sort(key=lambda p: (p.at, p.conv, p.index))
        return plan

    # -- messages -----------------------------------------------------------------------

    def _message_id(self, p: Planned) -> str:
        return f"<c{p.conv}.m{p.index}.s{self.seed}@{self.domains[(p.conv + p.index) % len(self.domains)]}>"

    def messages(self) -> Iterator[tuple[Planned, bytes]]:
        """(plan entry, raw bytes), in arrival order."""
        for p in self.plan:
            yield p, self.render(p)

    def render(self, p: Planned) -> bytes:
        rng = random.Random(hash((self.seed, p.conv, p.index)) & 0xFFFFFFFF)
        conv = self.conversations[p.conv]
        name, address = self.people[p.sender]
        owner = (OWNER_NAME, self.owner)
        sender, to = (owner, (name, address)) if p.from_owner else ((name, address), owner)
        message_id = self._message_id(p)
        headers = [
            f"Return-Path: <{sender[1]}>",
            f"Received: from mx.{sender[1].rpartition('@')[2]} by mx.bench.example with ESMTPS; "
            f"{format_datetime(p.at)}",
            f'From: "{sender[0]}" <{sender[1]}>',
            f'To: "{to[0]}" <{to[1]}>',
        ]
        if conv.others and rng.random() < 0.5:
            cc = ", ".join(f'"{self.people[o][0]}" <{self.people[o][1]}>' for o in conv.others)
            headers.append(f"Cc: {cc}")
        headers.append(f"Subject: {'Re: ' if p.index else ''}{conv.subject}")
        headers.append(f"Date: {format_datetime(p.at)}")
        headers.append(f"Message-ID: {message_id}")
        if p.index:
            previous = [self._message_id(Planned(p.conv, i, p.at, False, 0, (), False, False, False))
                        for i in range(p.index)]  # fmt: skip
            refs = previous if len(previous) <= 10 else [previous[0], *previous[-9:]]
            headers.append(f"In-Reply-To: {previous[-1]}")
            headers.append("References: " + " ".join(refs))
        if p.spam:
            headers += ["X-Spam-Flag: YES", f"X-Spam-Score: {rng.uniform(6, 30):.1f}"]
        headers.append("MIME-Version: 1.0")

        target = int(min(60_000, max(1_500, rng.lognormvariate(8.7, 0.8))))  # median ~6 KB
        parts: list[str] = [self._first_paragraph(p.conv, p.index)]
        total = len(parts[0])
        while total < target:
            para = rng.choice(self.paragraphs)
            parts.append(para)
            total += len(para) + 2
        if p.index:
            quoted = self._first_paragraph(p.conv, p.index - 1)
            parts.append(f"On {format_datetime(p.at)}, someone wrote:\n> " + quoted.replace(". ", ".\n> "))
        text = _wrap("\n\n".join(parts)) + f"\n\n-- \n{sender[0]}\n"
        html = rng.random() < 0.4
        attachment: tuple[str, str, bytes] | None = None
        if rng.random() < 0.08:
            kind, ext = rng.choice(_ATTACHMENT_KINDS)
            data = rng.choice(self.big_attachments if rng.random() < 0.05 else self.attachments)
            attachment = (kind, f"{'-'.join(self.words(rng, 2))}.{ext}", data)

        boundary = f"b{p.conv}x{p.index}"
        text_part = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        text_part += text.replace("\n", "\r\n")
        body_part = text_part
        if html:
            html_body = "<html><body>" + "".join(f"<p>{para}</p>\n" for para in parts) + "</body></html>"
            body_part = (
                f'Content-Type: multipart/alternative; boundary="{boundary}a"\r\n\r\n'
                f"--{boundary}a\r\n{text_part}\r\n"
                f"--{boundary}a\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: 8bit\r\n\r\n{html_body}\r\n--{boundary}a--\r\n"
            )
        if attachment is None:
            return ("\r\n".join(headers) + "\r\n" + body_part).encode("utf-8")
        kind, filename, data = attachment
        encoded = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
        return (
            "\r\n".join(headers)
            + f'\r\nContent-Type: multipart/mixed; boundary="{boundary}m"\r\n\r\n'
            + f"--{boundary}m\r\n{body_part}\r\n"
            + f'--{boundary}m\r\nContent-Type: {kind}; name="{filename}"\r\n'
            + f'Content-Disposition: attachment; filename="{filename}"\r\n'
            + f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--{boundary}m--\r\n"
        ).encode("utf-8")

    def _first_paragraph(self, conv: int, index: int) -> str:
        """A message's first paragraph (what the next reply quotes)."""
        return self.paragraphs[hash((self.seed, conv, index, 7)) % len(self.paragraphs)]


def _wrap(text: str, width: int = 76) -> str:
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            if line and len(line) + 1 + len(word) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(line)
    return "\n".join(out)
