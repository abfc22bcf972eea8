"""What Dovecot's imaptest found (docs/imap.md, "Compliance"), each as a regression over a raw
loopback socket: APPEND always adds a message, new keywords are announced in FLAGS before a
FETCH shows them, [TRYCREATE], a deleted selected mailbox, STATUS RECENT/DELETED."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.imap.conftest import PASSWORD, Imap
from tests.imap.test_hostile import Raw

pytestmark = pytest.mark.anyio


class Session(Raw):
    """A raw session with numbered tags; ``run`` answers the untagged lines and the tagged one."""

    def __init__(self, port: int, *, login: bool = True) -> None:
        super().__init__(port)
        self.n = 0
        if login:
            assert said(self.run(f'LOGIN alice@example.org "{PASSWORD}"')).startswith(b"OK")

    def run(self, command: str | bytes) -> list[bytes]:
        self.n += 1
        tag = f"t{self.n}".encode()
        data = command.encode() if isinstance(command, str) else command
        self.send(tag + b" " + data + b"\r\n")
        return self.until_tagged(tag)

    def line(self) -> bytes:
        """A response line with its literals (``{n}`` and the bytes) kept in it."""
        line = super().line()
        while (found := re.search(rb"\{(\d+)\}$", line)) is not None:
            size = int(found[1])
            while len(self.buffer) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buffer += chunk
            line += b"\r\n" + self.buffer[:size]
            self.buffer = self.buffer[size:]
            line += super().line()
        return line

    def append(self, mailbox: str, raw: bytes, flags: str = "") -> bytes:
        self.n += 1
        tag = f"t{self.n}".encode()
        head = f"{tag.decode()} APPEND {mailbox} {('(' + flags + ') ') if flags else ''}{{{len(raw)}+}}\r\n"
        self.send(head.encode() + raw + b"\r\n")
        last = self.until_tagged(tag)[-1]
        assert last.startswith(tag + b" OK"), last
        return last

    def close(self) -> None:
        self.sock.close()


def said(lines: list[bytes]) -> bytes:
    """The tagged answer without its tag: ``OK ...``, ``NO [...] ...``, ``BAD ...``."""
    return lines[-1].split(b" ", 1)[1]


MESSAGE = b"From: a@example.net\r\nSubject: s1\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\n\r\nbody1\r\n"


def _append_again(imap: Imap) -> None:
    s = Session(imap.port)
    assert said(s.run("CREATE box")).startswith(b"OK")
    first = s.append("box", MESSAGE, r"\Seen $work")
    assert said(s.run("SELECT box")).endswith(b"SELECT completed")
    assert said(s.run(r"STORE 1 +FLAGS (\Deleted)")).startswith(b"OK")
    assert b"* 1 EXPUNGE" in s.run("EXPUNGE")
    # The same bytes again (imaptest appends the same mbox in every test): a new message with a
    # new UID and only the flags this APPEND names, not the older copy's \Deleted and \Seen.
    again = s.append("box", MESSAGE)
    uid_of = re.compile(rb"APPENDUID \d+ (\d+)")
    first_match, again_match = uid_of.search(first), uid_of.search(again)
    assert first_match is not None
    assert again_match is not None
    assert int(again_match[1]) > int(first_match[1])
    s.append("box", MESSAGE)  # and twice into the same mailbox: two messages
    lines = s.run("FETCH 1:* (UID FLAGS)")
    fetched = [line for line in lines if line.startswith(b"* ") and b" FETCH " in line]
    assert len(fetched) == 2, lines
    for line in fetched:
        assert not {b"\\Deleted", b"\\Seen", b"$work"} & set(line.replace(b")", b" ").split()), line
    s.close()


async def test_append_of_the_same_bytes_adds_a_new_message(imap: Imap) -> None:
    await asyncio.to_thread(_append_again, imap)


def _keywords_announced(imap: Imap) -> None:
    s = Session(imap.port)
    s.append("INBOX", MESSAGE)
    s.append("INBOX", MESSAGE, "$Known")
    lines = s.run("SELECT INBOX")
    flags = next(line for line in lines if line.startswith(b"* FLAGS"))
    assert b"$Known" in flags  # a keyword some message has is in SELECT's FLAGS, as first written
    other = Session(imap.port)
    other.run("SELECT INBOX")
    lines = s.run("STORE 1 +FLAGS ($hello)")
    # FLAGS (and PERMANENTFLAGS) name the new keyword before the FETCH that shows it.
    flags_at = next(i for i, line in enumerate(lines) if line.startswith(b"* FLAGS"))
    fetch_at = next(i for i, line in enumerate(lines) if line.startswith(b"* ") and b"FETCH" in line)
    assert flags_at < fetch_at
    assert b"$hello" in lines[flags_at]
    assert b"$Known" in lines[flags_at]
    assert any(line.startswith(b"* OK [PERMANENTFLAGS") and b"$hello" in line for line in lines)
    # Another session learns it the same way when the change reaches it.
    lines = other.run("NOOP")
    flags_at = next(i for i, line in enumerate(lines) if line.startswith(b"* FLAGS"))
    fetch_at = next(i for i, line in enumerate(lines) if b"FETCH" in line and b"$hello" in line)
    assert flags_at < fetch_at
    # Once named, it is not announced again.
    lines = s.run("STORE 2 +FLAGS ($hello)")
    assert not any(line.startswith(b"* FLAGS") for line in lines), lines
    s.close()
    other.close()


async def test_new_keywords_are_announced_in_flags_first(imap: Imap) -> None:
    await asyncio.to_thread(_keywords_announced, imap)


def _trycreate(imap: Imap) -> None:
    s = Session(imap.port)
    s.n += 1
    s.send(f"t{s.n} APPEND nowhere {{{len(MESSAGE)}+}}\r\n".encode() + MESSAGE + b"\r\n")
    assert said(s.until_tagged(f"t{s.n}".encode())).startswith(b"NO [TRYCREATE]")
    s.append("INBOX", MESSAGE)
    s.run("SELECT INBOX")
    assert said(s.run("COPY 1 nowhere")).startswith(b"NO [TRYCREATE]")
    assert said(s.run("MOVE 1 nowhere")).startswith(b"NO [TRYCREATE]")
    # SELECT and STATUS of a missing mailbox stay [NONEXISTENT].
    assert said(s.run("STATUS nowhere (MESSAGES)")).startswith(b"NO [NONEXISTENT]")
    s.close()


async def test_append_copy_move_to_a_missing_mailbox_say_trycreate(imap: Imap) -> None:
    await asyncio.to_thread(_trycreate, imap)


def _deleted_selected(imap: Imap) -> None:
    s = Session(imap.port)
    s.run("CREATE doomed")
    s.append("doomed", MESSAGE)
    s.run("SELECT doomed")
    # Deleting the selected mailbox (as imaptest's tests do between runs) leaves the selected
    # state; the next commands work, a recreated mailbox of that name takes APPENDs.
    assert said(s.run("DELETE doomed")).startswith(b"OK")
    assert said(s.run("NOOP")).startswith(b"OK")
    assert said(s.run("FETCH 1 FLAGS")).startswith(b"BAD")  # no mailbox selected
    s.run("CREATE doomed")
    s.append("doomed", MESSAGE)
    # Another session deleting the mailbox this one has selected: BYE, not an error per command.
    s.run("SELECT doomed")
    other = Session(imap.port)
    assert said(other.run("DELETE doomed")).startswith(b"OK")
    s.send(b"last NOOP\r\n")
    lines = _until_closed(s)
    assert any(line.startswith(b"* BYE") for line in lines), lines
    s.close()
    other.close()


def _until_closed(s: Session) -> list[bytes]:
    lines = []
    while True:
        try:
            lines.append(s.line())
        except ConnectionError:
            return lines


async def test_deleting_the_selected_mailbox(imap: Imap) -> None:
    await asyncio.to_thread(_deleted_selected, imap)


def _status_counts(line: bytes) -> dict[str, int]:
    inside = line[line.rindex(b"(") + 1 : line.rindex(b")")].decode().split()
    return {inside[i]: int(inside[i + 1]) for i in range(0, len(inside), 2)}


def _status(s: Session, mailbox: str) -> dict[str, int]:
    lines = s.run(f"STATUS {mailbox} (MESSAGES RECENT DELETED)")
    assert said(lines).startswith(b"OK"), lines
    return _status_counts(next(line for line in lines if line.startswith(b"* STATUS")))


def _status_recent_deleted(imap: Imap) -> None:
    s = Session(imap.port)
    s.run("CREATE counted")
    for _ in range(3):
        s.append("counted", MESSAGE)
    # No session has been told of them: all three are \Recent; none is \Deleted.
    assert _status(s, "counted") == {"MESSAGES": 3, "RECENT": 3, "DELETED": 0}
    # EXAMINE only looks (RFC 3501 §2.3.2); a read-write SELECT takes them for its session.
    looker = Session(imap.port)
    assert b"* 3 RECENT" in looker.run("EXAMINE counted")
    assert _status(s, "counted")["RECENT"] == 3
    taker = Session(imap.port)
    assert b"* 3 RECENT" in taker.run("SELECT counted")
    assert _status(s, "counted")["RECENT"] == 0
    s.append("counted", MESSAGE)
    assert _status(s, "counted") == {"MESSAGES": 4, "RECENT": 1, "DELETED": 0}
    # DELETED: messages flagged \Deleted (RFC 9051 §6.3.11), what EXPUNGE would remove.
    lines = taker.run(r"STORE 1,2 +FLAGS.SILENT (\Deleted)")
    assert said(lines).startswith(b"OK")
    # The selecting session was told of the fourth with this command: recent there, no longer
    # to anyone else.
    assert b"* 4 EXISTS" in lines, lines
    assert b"* 4 RECENT" in lines, lines
    assert _status(s, "counted") == {"MESSAGES": 4, "RECENT": 0, "DELETED": 2}
    s.append("counted", MESSAGE)
    # LIST-STATUS answers the same numbers.
    lines = s.run('LIST "" counted RETURN (STATUS (RECENT DELETED))')
    listed = next(line for line in lines if line.startswith(b"* STATUS"))
    assert _status_counts(listed) == {"RECENT": 1, "DELETED": 2}
    assert said(taker.run("EXPUNGE")).startswith(b"OK")
    assert _status(s, "counted") == {"MESSAGES": 3, "RECENT": 0, "DELETED": 0}
    # Another account's mailbox of the same name is not counted (nor seen).
    assert _status(s, "INBOX")["DELETED"] == 0
    for session in (s, looker, taker):
        session.close()


async def test_status_counts_recent_and_deleted(imap: Imap) -> None:
    await asyncio.to_thread(_status_recent_deleted, imap)


# -- UTF8=ACCEPT (RFC 6855) -------------------------------------------------------------------

UTF8_MESSAGE = (
    "From: Jörg Müller <jörg@bücher.example>\r\n"
    "To: Ann <ann@example.org>\r\n"
    "Subject: Grüße aus Köln\r\n"
    "Date: Sat, 24 Mar 2007 23:00:00 +0200\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    'Content-Disposition: inline; filename="Grüße.txt"\r\n'
    "\r\n"
    "Schöne Grüße\r\n"
).encode()


def _decoded(words: bytes) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(words.decode("ascii"))))


def _utf8_both_ways(imap: Imap) -> None:
    plain = Session(imap.port)
    # The UTF8 data item of APPEND is for sessions that enabled UTF8=ACCEPT (RFC 6855 §4).
    plain.n += 1
    plain.send(
        f"t{plain.n} APPEND INBOX UTF8 (~{{{len(UTF8_MESSAGE)}+}}\r\n".encode() + UTF8_MESSAGE + b")\r\n"
    )
    assert said(plain.until_tagged(f"t{plain.n}".encode())).startswith(b"BAD")
    utf8 = Session(imap.port)
    assert b"* ENABLED UTF8=ACCEPT" in utf8.run("ENABLE UTF8=ACCEPT")
    utf8.n += 1
    utf8.send(
        f"t{utf8.n} APPEND INBOX UTF8 (~{{{len(UTF8_MESSAGE)}+}}\r\n".encode() + UTF8_MESSAGE + b")\r\n"
    )
    assert said(utf8.until_tagged(f"t{utf8.n}".encode())).startswith(b"OK")
    # With UTF8=ACCEPT: the header text as stored, raw UTF-8.
    utf8.run("SELECT INBOX")
    lines = utf8.run("FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    fetched = b"\n".join(lines[:-1])
    assert "Grüße aus Köln".encode() in fetched
    assert "jörg".encode() in fetched
    # Without it: 7-bit text, RFC 2047 encoded-words that decode to the same, IDNA domains.
    plain.run("SELECT INBOX")
    lines = plain.run(
        "FETCH 1 (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"
    )
    fetched = b"\n".join(lines[:-1])
    assert fetched.isascii(), fetched
    subject = re.search(rb'ENVELOPE \("[^"]*" "([^"]+)"', fetched)
    assert subject is not None, fetched
    assert _decoded(subject[1]) == "Grüße aus Köln"
    assert b"xn--bcher-kva.example" in fetched
    name = re.search(rb'\(\("(=\?utf-8\?b\?[^"]+)" NIL "([^"]+)" "xn--bcher-kva.example"\)\)', fetched)
    assert name is not None, fetched
    assert _decoded(name[1]) == "Jörg Müller"
    assert _decoded(name[2]) == "jörg"
    field = re.search(rb"Subject: ([^\r\n]+)\r\n", fetched)
    assert field is not None
    assert _decoded(field[1]) == "Grüße aus Köln"
    # A MIME field keeps its syntax: the parameter in RFC 2231's form.
    assert b"Content-Disposition: inline; filename*=utf-8''Gr%C3%BC%C3%9Fe.txt\r\n" in fetched
    # The whole message stays the stored bytes (its size is RFC822.SIZE).
    lines = plain.run("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    size = re.search(rb"RFC822.SIZE (\d+)", lines[0])
    assert size is not None
    assert "Schöne Grüße".encode() in lines[0]
    assert f"BODY[] {{{size[1].decode()}}}".encode() in lines[0]
    plain.close()
    utf8.close()


async def test_utf8_headers_raw_with_utf8_accept_and_encoded_without(imap: Imap) -> None:
    await asyncio.to_thread(_utf8_both_ways, imap)


# -- smaller findings -------------------------------------------------------------------------


def _small_findings(imap: Imap) -> None:
    s = Session(imap.port)
    s.append("INBOX", MESSAGE, r"\Seen")
    s.append("INBOX", b"From: user@domain (Real Name)\r\nSubject: x\r\n\r\nx\r\n")
    lines = s.run("SELECT INBOX")
    # RFC 3501 §6.3.1's first unseen message (an IMAP4rev1 session).
    assert b"* OK [UNSEEN 2] first unseen" in lines, lines
    # A comment is the name when the address has no phrase (as Dovecot reads it).
    lines = s.run("FETCH 2 ENVELOPE")
    assert b'(("Real Name" NIL "user" "domain"))' in lines[0], lines
    # The first CONDSTORE-enabling command tells HIGHESTMODSEQ (RFC 7162 §3.1).
    lines = s.run("FETCH 1 MODSEQ")
    assert any(line.startswith(b"* OK [HIGHESTMODSEQ ") for line in lines), lines
    assert not any(line.startswith(b"* OK [HIGHESTMODSEQ ") for line in s.run("FETCH 1 MODSEQ"))
    # ESEARCH with MIN (or MAX) alone: the MODSEQ of that message, not of all matches.
    modseqs = {}
    for seq in (1, 2):
        found = re.search(rb"MODSEQ \((\d+)\)", s.run(f"STORE {seq} +FLAGS ($mark{seq})")[-2])
        assert found is not None
        modseqs[seq] = int(found[1])
    assert modseqs[1] < modseqs[2]
    lines = s.run("SEARCH RETURN (MIN) MODSEQ 1")
    assert f"MIN 1 MODSEQ {modseqs[1]}".encode() in lines[0], lines
    lines = s.run("SEARCH RETURN (MAX) MODSEQ 1")
    assert f"MAX 2 MODSEQ {modseqs[2]}".encode() in lines[0], lines
    # "~" starts an atom unless a literal8 follows (imaptest's atoms test).
    assert said(s.run('LIST "" ~foo')).startswith(b"OK")
    # A name that is not valid modified UTF-7: NO for SELECT, no match for LIST, NO for CREATE.
    odd = "!#$&'+,-.0123456789:;<=>?@^_`|[}"
    assert said(s.run(f"SELECT {odd}")).startswith(b"NO")
    lines = s.run(f'LIST "" {odd}%*')
    assert said(lines).startswith(b"OK")
    assert len(lines) == 1
    assert said(s.run(f"CREATE {odd}")).startswith(b"NO")
    # LIST-EXTENDED (RFC 5258 §3): unknown options, RECURSIVEMATCH alone, are BAD.
    for bad in ('LIST (nonsense) "" ""', 'LIST (RECURSIVEMATCH) "" "*"', 'LIST "" "*" RETURN (nonsense)'):
        assert said(s.run(bad)).startswith(b"BAD"), bad
    assert said(s.run('LIST (SUBSCRIBED RECURSIVEMATCH) "" "*" RETURN (CHILDREN)')).startswith(b"OK")
    assert said(s.run("NOOP")).startswith(b"OK")
    s.close()


QP_MESSAGE = (
    b'From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"hello  \r\nbar=\r\n\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\n--b--\r\n"
)


def _binary_quoted_printable(imap: Imap) -> None:
    s = Session(imap.port)
    s.append("INBOX", QP_MESSAGE)
    s.run("SELECT INBOX")
    # RFC 2045 §6.7: trailing white space is padding, "=" before it still a soft line break.
    decoded = b"hello\r\nbar\r\nfoo\t \tb\r\nfoo bar"  # (the last CRLF is the boundary's)
    lines = s.run("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert f"BINARY.SIZE[1] {len(decoded)}".encode() in lines[0], lines
    assert lines[0].endswith(b"BINARY[1] {%d}\r\n" % len(decoded) + decoded + b")"), lines
    s.close()


async def test_binary_undoes_quoted_printable_padding(imap: Imap) -> None:
    await asyncio.to_thread(_binary_quoted_printable, imap)


def _sort_subject(imap: Imap) -> None:
    s = Session(imap.port)
    s.run("CREATE sorted")
    for subject in ("a", "_", "[xyz]", "re: [fwd: [fwd: re: [fwd: babylon]]]", "C"):
        s.append("sorted", f"From: x@example.org\r\nSubject: {subject}\r\n\r\nx\r\n".encode())
    s.run("SELECT sorted")
    # Base subjects A, _, [XYZ] (a blob alone stays), BABYLON (nested [fwd: ...] unwrapped; a
    # blob holds no "["), C, compared in titlecase as i;unicode-casemap does (RFC 5051).
    assert s.run("SORT (SUBJECT) US-ASCII ALL")[0] == b"* SORT 1 4 5 3 2"
    s.close()


async def test_sort_by_base_subject(imap: Imap) -> None:
    await asyncio.to_thread(_sort_subject, imap)


def _move_to_itself(imap: Imap) -> None:
    s = Session(imap.port)
    s.run("CREATE self")
    s.append("self", MESSAGE)
    s.append("self", MESSAGE)
    lines = s.run("SELECT self")
    uidnext = re.search(rb"UIDNEXT (\d+)", b" ".join(lines))
    assert uidnext is not None
    # RFC 6851: the message leaves and comes back with a new UID (COPYUID says which).
    lines = s.run("MOVE 1 self")
    assert said(lines).startswith(b"OK"), lines
    assert any(re.match(rb"\* OK \[COPYUID \d+ 1 %s\]" % uidnext[1], line) for line in lines), lines
    assert b"* 1 EXPUNGE" in lines
    assert b"* 2 EXISTS" in lines
    fetched = [line for line in s.run("FETCH 1:* UID") if line.startswith(b"* ")]
    assert fetched == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID %s)" % uidnext[1]], fetched
    s.close()


async def test_move_into_the_same_mailbox(imap: Imap) -> None:
    await asyncio.to_thread(_move_to_itself, imap)


async def test_smaller_imaptest_findings(imap: Imap) -> None:
    await asyncio.to_thread(_small_findings, imap)
