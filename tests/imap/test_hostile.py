"""Hostile input gets BAD or NO and the session goes on; the parser is fuzzed with hypothesis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.frontends.imap._parser import MAX_LINE, ParseError, parse, sequence_set
from tests.imap.conftest import PASSWORD, Imap

pytestmark = pytest.mark.anyio


class Raw:
    """A bare socket speaking IMAP lines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        assert self.line().startswith(b"* OK")

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until_tagged(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines


HOSTILE = [
    b"a1 LOGIN (unbalanced\r\n",
    b'a2 LOGIN "unterminated\r\n',
    b"a3 LOGIN {-5}\r\n",
    b"a4 SELECT " + b"(" * 100 + b"\r\n",
    b'a5 LOGIN "\xff\xfe" x\r\n',
    b"a6 FETCH 1 (FLAGS\r\n",
    b"a7 NOSUCHCOMMAND\r\n",
    b'a8 LOGIN "bad\\escape" x\r\n',
]


def _hostile(imap: Imap) -> None:
    raw = Raw(imap.port)
    for command in HOSTILE:
        raw.send(command)
        tag = command.split(b" ", 1)[0]
        last = raw.until_tagged(tag)[-1]
        assert last.startswith(tag + b" BAD") or last.startswith(tag + b" NO"), (command, last)
    # A literal far over the limit before login: refused without reading it.
    raw.send(b"b1 LOGIN {999999999999}\r\n")
    assert raw.line().startswith(b"* BAD [TOOBIG]")
    # A line over the limit.
    raw.send(b"b2 NOOP " + b"x" * (MAX_LINE + 10) + b"\r\n")
    assert raw.line().startswith(b"* BAD")
    # The session still works.
    raw.send(b'c1 LOGIN alice@example.org "' + PASSWORD.encode() + b'"\r\n')
    assert raw.until_tagged(b"c1")[-1].startswith(b"c1 OK")
    raw.send(b"c2 SELECT INBOX\r\n")
    assert raw.until_tagged(b"c2")[-1].startswith(b"c2 OK")
    # A million-item sequence set cannot fit a line; a huge range costs nothing.
    raw.send(b"c3 FETCH " + b",".join(str(i).encode() for i in range(1, 10_002)) + b" FLAGS\r\n")
    assert raw.until_tagged(b"c3")[-1].startswith(b"c3 BAD")
    raw.send(b"c3 FETCH " + b",".join(str(i).encode() for i in range(1, 1_000_001)) + b" FLAGS\r\n")
    assert raw.line().startswith(b"* BAD")
    raw.send(b"c4 UID FETCH 1:4294967295 (FLAGS)\r\n")
    assert raw.until_tagged(b"c4")[-1].startswith(b"c4 OK")
    raw.send(b"c5 FETCH 1:99999999999 (FLAGS)\r\n")
    assert raw.until_tagged(b"c5")[-1].startswith(b"c5 BAD")
    raw.send(b"c6 SEARCH " + b"NOT " * 100 + b"ALL\r\n")
    assert raw.until_tagged(b"c6")[-1].startswith(b"c6 BAD")
    raw.send(b"c7 LOGOUT\r\n")
    assert raw.until_tagged(b"c7")[-1].startswith(b"c7 OK")
    raw.sock.close()


async def test_hostile_input_gets_bad_and_the_session_goes_on(imap: Imap) -> None:
    await asyncio.to_thread(_hostile, imap)


def _logindisabled(imap: Imap) -> None:
    raw = Raw(imap.port)
    raw.send(b"a1 CAPABILITY\r\n")
    lines = raw.until_tagged(b"a1")
    assert b"LOGINDISABLED" in lines[0]
    raw.send(b"a2 LOGIN alice@example.org x\r\n")
    assert raw.until_tagged(b"a2")[-1].startswith(b"a2 NO [PRIVACYREQUIRED]")
    raw.sock.close()


@pytest.mark.parametrize("settings_overrides", [{"imap_allow_plaintext_loopback": False}])
async def test_logindisabled_without_tls(imap: Imap) -> None:
    await asyncio.to_thread(_logindisabled, imap)


def _random_bytes(imap: Imap, blobs: list[bytes]) -> None:
    raw = Raw(imap.port)
    for i, blob in enumerate(blobs):
        clean = blob.replace(b"\r", b"").replace(b"\n", b"").replace(b"{", b"(")
        raw.send(f"r{i} ".encode() + clean + b"\r\n")
        last = raw.until_tagged(f"r{i}".encode()) if not clean.upper().startswith(b"LOGOUT") else [b""]
        if clean.upper().startswith(b"LOGOUT"):
            return
        assert last[-1].split(b" ")[1] in (b"OK", b"NO", b"BAD"), last
    raw.send(b"z NOOP\r\n")
    assert raw.until_tagged(b"z")[-1] == b"z OK NOOP completed"
    raw.sock.close()


async def test_random_commands_on_a_live_session(imap: Imap) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=10))
    def run(blobs: list[bytes]) -> None:
        future = asyncio.run_coroutine_threadsafe(asyncio.to_thread(_random_bytes, imap, blobs), loop)
        future.result(60)

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(run)


atoms = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:*,\\[]<>$-", min_size=1, max_size=12)
value = st.recursive(
    st.one_of(atoms, st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"')),
    lambda inner: st.lists(inner, max_size=4).map(lambda xs: "(" + " ".join(xs) + ")"),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(value, max_size=8))
def test_parser_never_fails_but_with_parse_error(args: list[str]) -> None:
    line = ("t1 CMD " + " ".join(args)).encode("utf-8", "surrogatepass")
    try:
        command = parse([line.rstrip()])
    except ParseError:
        return
    assert command.tag == "t1"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parser_on_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse([data])


@given(st.text(max_size=50))
def test_sequence_sets(text: str) -> None:
    from mailroom.frontends.imap._parser import Atom

    try:
        ranges = sequence_set(Atom(text))
    except ParseError:
        return
    for low, high in ranges or []:
        assert low is None or 1 <= low <= 4_294_967_295
        assert high is None or 1 <= high <= 4_294_967_295


_set = st.one_of(
    st.just("1:*"), st.just("*"), st.just("$"), st.integers(0, 5).map(str), st.just("2:1"), st.just("1,3:4")
)
_word = st.sampled_from(
    [
        "FLAGS", "UID", "ENVELOPE", "BODYSTRUCTURE", "BODY", "BODY.PEEK[]", "BODY[1]", "BODY[2.MIME]",
        "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]", "BODY[TEXT]<0.5>", "BINARY[1]", "BINARY.SIZE[1]",
        "RFC822", "RFC822.SIZE", "RFC822.HEADER", "INTERNALDATE", "MODSEQ", "EMAILID", "THREADID",
        "BODY[0]", "BODY[1.2.3.4]", "BINARY[x]", "BODY[HEADER.FIELDS ()]",
    ]
)  # fmt: skip
_flag = st.sampled_from(
    ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft", "$Junk", "work", "\\Bogus"]
)
_search = st.sampled_from(
    [
        "ALL", "SEEN", "UNSEEN", "TEXT hello", "FROM bob", "SUBJECT Hello", "HEADER Subject Hello",
        "OR SEEN FLAGGED", "NOT DELETED", "LARGER 10", "SINCE 1-Jan-2020", "SENTBEFORE 1-Jan-2030",
        "UID 1:*", "1:*", "MODSEQ 1", "KEYWORD work", "(SEEN UNSEEN)", "BCC x", "BEFORE bogus", "()",
    ]
)  # fmt: skip
_command = st.one_of(
    st.tuples(st.sampled_from(["FETCH", "UID FETCH"]), _set, st.lists(_word, min_size=1, max_size=4)).map(
        lambda t: f"{t[0]} {t[1]} ({' '.join(t[2])})"
    ),
    st.tuples(
        st.sampled_from(["STORE", "UID STORE"]), _set, st.sampled_from(["+FLAGS", "-FLAGS", "FLAGS.SILENT"]),
        st.lists(_flag, max_size=3),
    ).map(lambda t: f"{t[0]} {t[1]} {t[2]} ({' '.join(t[3])})"),
    st.tuples(st.sampled_from(["SEARCH", "UID SEARCH", "SEARCH RETURN (MIN MAX COUNT SAVE)"]), _search).map(
        lambda t: f"{t[0]} {t[1]}"
    ),
    st.tuples(
        st.sampled_from(["COPY", "MOVE", "UID COPY"]), _set, st.sampled_from(["Archive", "Nope", "Trash"])
    ).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    st.sampled_from(
        [
            "NOOP", "EXPUNGE", "CHECK", "STATUS INBOX (MESSAGES UIDNEXT SIZE HIGHESTMODSEQ)",
            "SORT (SUBJECT) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL", "LIST \"\" *", "SELECT INBOX",
            "EXAMINE INBOX", "ENABLE QRESYNC", "UID EXPUNGE 1:*", "NAMESPACE", "GETQUOTAROOT INBOX",
        ]
    ),
)  # fmt: skip


def _session(imap: Imap, commands: list[str]) -> None:
    raw = Raw(imap.port)
    raw.send(b'l LOGIN alice@example.org "' + PASSWORD.encode() + b'"\r\n')
    assert raw.until_tagged(b"l")[-1].startswith(b"l OK")
    raw.send(b"s SELECT INBOX\r\n")
    raw.until_tagged(b"s")
    for i, command in enumerate(commands):
        tag = f"f{i}".encode()
        raw.send(tag + b" " + command.encode() + b"\r\n")
        last = raw.until_tagged(tag)[-1]
        assert last.split(b" ")[1] in (b"OK", b"NO", b"BAD"), (command, last)
        assert b"SERVERBUG" not in last, (command, last)
    raw.send(b"z LOGOUT\r\n")
    raw.until_tagged(b"z")
    raw.sock.close()


async def test_hypothesis_built_commands_on_a_selected_mailbox(imap: Imap) -> None:
    for n in range(3):
        await imap.deliver(message_id=f"<f{n}@example.net>", subject=f"Hello {n}")
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=int(os.environ.get("MAILROOM_IMAP_FUZZ_EXAMPLES", "25")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(_command, min_size=1, max_size=8))
    def run(commands: list[str]) -> None:
        asyncio.run_coroutine_threadsafe(asyncio.to_thread(_session, imap, commands), loop).result(120)

    await asyncio.to_thread(run)


def _compressed(imap: Imap) -> None:
    import zlib

    raw = Raw(imap.port)
    raw.send(b'a LOGIN alice@example.org "' + PASSWORD.encode() + b'"\r\n')
    assert b"COMPRESS=DEFLATE" in raw.until_tagged(b"a")[-1]
    raw.send(b"b COMPRESS DEFLATE\r\n")
    assert raw.until_tagged(b"b")[-1] == b"b OK DEFLATE active"
    deflate, inflate = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
    received = inflate.decompress(raw.buffer)

    def send(data: bytes) -> None:
        raw.sock.sendall(deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH))

    def until(tag: bytes) -> bytes:
        nonlocal received
        while not any(line.startswith(tag + b" ") for line in received.split(b"\r\n")):
            chunk = raw.sock.recv(65536)
            assert chunk, ("closed", received)
            received += inflate.decompress(chunk)
        out, received = received, b""
        return out

    send(b"c SELECT INBOX\r\n")
    assert b"c OK [READ-WRITE]" in until(b"c")
    send(b"d COMPRESS DEFLATE\r\n")
    assert b"d NO [COMPRESSIONACTIVE]" in until(b"d")
    send(b"e APPEND INBOX {16+}\r\nSubject: x\r\n\r\nhi\r\n")
    assert b"e OK [APPENDUID" in until(b"e")
    send(b"f LOGOUT\r\n")
    assert b"f OK" in until(b"f")
    raw.sock.close()


async def test_compress_deflate(imap: Imap) -> None:
    await asyncio.to_thread(_compressed, imap)
