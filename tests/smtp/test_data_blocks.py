"""DATA read in blocks (frontends/smtp/_data.py) gives exactly what aiosmtpd's own line loop gives.

Both ``smtp_DATA``s — aiosmtpd's ``LMTP`` as shipped and mailroom's listener class — read the
same byte stream, fed to a real ``asyncio.StreamReader`` in the same pieces with the reader
given the chance to run between them (so lines and the terminator arrive split across
reads), with small line and size limits so that every branch is reached. Compared: the
replies pushed, the content handed to the handler, and what is left in the reader after the
terminator (pipelined commands must stay there). A loopback test then runs the real listener.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiosmtpd.lmtp import LMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp._data import DataState, read_data
from mailroom.frontends.smtp._server import _LMTPServer
from mailroom.store.mail_schema import emails
from tests.mailhelpers import create_user, message


class _Recorder:
    def __init__(self) -> None:
        self.content: bytes | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.content = envelope.original_content
        return "250 stored"


def _server(
    cls: type[Any], size_limit: int, line_limit: int, reader: asyncio.StreamReader
) -> tuple[Any, Any]:
    handler = _Recorder()
    server = cls(handler, data_size_limit=size_limit, enable_SMTPUTF8=True, loop=asyncio.get_running_loop())
    server.line_length_limit = line_limit
    server._reader = reader
    server.transport = object()  # "connected": aiosmtpd's loop runs while there is one
    server.session = type("S", (), {"host_name": "client.test", "authenticated": False})()
    server.envelope = server._create_envelope()
    server.envelope.rcpt_tos = ["a@example.org"]
    pushed: list[str] = []

    async def push(status: str) -> None:
        pushed.append(status)

    server.push = push
    return server, (handler, pushed)


async def _run(cls: type[Any], stream: bytes, cuts: list[int], size_limit: int, line_limit: int) -> Any:
    reader = asyncio.StreamReader(limit=line_limit)
    server, (handler, pushed) = _server(cls, size_limit, line_limit, reader)
    task = asyncio.ensure_future(server.smtp_DATA(""))
    previous = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        if cut > previous:
            reader.feed_data(stream[previous:cut])
            previous = cut
        for _ in range(3):
            await asyncio.sleep(0)
    await asyncio.wait_for(task, 5)
    reader.feed_eof()
    left = await reader.read()
    return pushed, handler.content, left


_PIECES = st.sampled_from(
    [b"a", b"bc", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b".\r\n", b"\r\n.\r", b"x" * 9, b" ", b"\xff"]
)


@st.composite
def _streams(draw: Any) -> tuple[bytes, list[int], int, int]:
    body = b"".join(draw(st.lists(_PIECES, max_size=40)))
    # Always a terminator (a lone "." line) and something pipelined after it.
    stream = body + b"\r\n.\r\n" + draw(st.sampled_from([b"", b"MAIL FROM:<x@y>\r\n", b".\r\n"]))
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=8))
    size_limit = draw(st.sampled_from([0, 5, 20, 40, 80]))
    line_limit = draw(st.integers(4, 24))
    return stream, cuts, size_limit, line_limit


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams())
def test_blocks_give_what_aiosmtpd_gives(case: tuple[bytes, list[int], int, int]) -> None:
    stream, cuts, size_limit, line_limit = case

    async def both() -> tuple[Any, Any]:
        ours = await _run(_LMTPServer, stream, cuts, size_limit, line_limit)
        theirs = await _run(LMTP, stream, cuts, size_limit, line_limit)
        return ours, theirs

    ours, theirs = asyncio.run(both())
    assert ours == theirs


@pytest.mark.parametrize(
    ("stream", "size_limit", "expected"),
    [
        (b".\r\n", 100, (DataState.NOMINAL, b"")),
        (b"..\r\n.\r\n", 100, (DataState.NOMINAL, b".\r\n")),
        (b"a\r\n..b\r\n.\r\n", 100, (DataState.NOMINAL, b"a\r\n.b\r\n")),
        (b"a\n.\r\n.\r\n", 100, (DataState.NOMINAL, b"a\n.\r\n")),  # a lone LF ends no line
        (b"a\r.\r\n.\r\n", 100, (DataState.NOMINAL, b"a\r.\r\n")),
        (b"x" * 11 + b"\r\n.\r\n", 100, (DataState.TOO_LONG, b"")),  # the line limit is 10 here
        (b"x" * 9 + b"\r\n.\r\n", 100, (DataState.TOO_LONG, b"")),  # 11 octets with its CRLF
        (b"x" * 8 + b"\r\n.\r\n", 100, (DataState.NOMINAL, b"x" * 8 + b"\r\n")),
        (b"abcdefg\r\n" * 3 + b".\r\n", 20, (DataState.TOO_MUCH, b"")),
        (b"abcdefg\r\n" * 3 + b"x" * 30 + b"\r\n.\r\n", 20, (DataState.TOO_MUCH, b"")),
        (b"abcdefg\r\n" + b"x" * 30 + b"\r\n.\r\n", 20, (DataState.TOO_LONG, b"")),
    ],
)
def test_examples(stream: bytes, size_limit: int, expected: tuple[DataState, bytes]) -> None:
    async def read() -> tuple[DataState, bytes]:
        reader = asyncio.StreamReader(limit=10)
        reader.feed_data(stream + b"QUIT\r\n")
        got = await read_data(reader, size_limit=size_limit, line_limit=10)
        assert await reader.readexactly(6) == b"QUIT\r\n"  # nothing read past the terminator
        return got

    assert asyncio.run(read()) == expected


def test_a_big_message_keeps_only_what_the_limit_needs() -> None:
    async def read() -> tuple[DataState, bytes]:
        reader = asyncio.StreamReader(limit=1000)
        line = b"y" * 98 + b"\r\n"
        for _ in range(5000):  # 500 KB against a 10 KB limit
            reader.feed_data(line)
        reader.feed_data(b".\r\n")
        return await read_data(reader, size_limit=10_000, line_limit=1000)

    assert asyncio.run(read()) == (DataState.TOO_MUCH, b"")


@pytest.mark.anyio
async def test_loopback_pipelined_transactions_and_dot_stuffing(mailroom: Any, listeners: Listeners) -> None:
    """The listener over a real socket: a dot-stuffed message, then the next transaction sent
    in the same write as the terminator (what a pipelining client may do)."""
    await create_user(mailroom, "alice@example.org")
    raw = message(body=".leading dot\r\n..two dots\r\nend\r\n")

    def numbered(data: bytes, i: int) -> bytes:
        return data.replace(b"Message-ID: <", f"Message-ID: <{i}".encode())

    def talk() -> list[bytes]:
        with socket.create_connection(("127.0.0.1", listeners.ports["lmtp"])) as sock:
            f = sock.makefile("rb")
            replies: list[bytes] = [f.readline()]
            sock.sendall(b"LHLO client.test\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            stuffed = b"".join(
                b"." + line if line.startswith(b".") else line for line in raw.splitlines(keepends=True)
            )
            for i in range(2):
                sock.sendall(b"MAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
                replies += [f.readline(), f.readline(), f.readline()]
                tail = b"" if i else b"RSET\r\n"
                sock.sendall(numbered(stuffed, i) + b".\r\n" + tail)
                replies.append(f.readline())
                if not i:
                    replies.append(f.readline())  # RSET's 250
            sock.sendall(b"QUIT\r\n")
            replies.append(f.readline())
            return replies

    replies = await asyncio.to_thread(talk)
    codes = [r[:3] for r in replies]
    assert codes == [b"220", b"250", b"250", b"354", b"250", b"250", b"250", b"250", b"354", b"250", b"221"]
    async with mailroom.runtime.db.read() as tx:
        shas = list(await tx.scalars(select(emails.c.blob_sha).order_by(emails.c.id)))
    assert len(shas) == 2
    for i, sha in enumerate(shas):
        assert await mailroom.runtime.blobs.get(sha) == numbered(raw, i)
