"""Reading an SMTP/LMTP DATA section in blocks, with aiosmtpd's result.

aiosmtpd reads DATA a line at a time (one ``readuntil`` and a few list operations a line:
~130 awaits for a 10 KB message) and unstuffs the lines one by one. :func:`read_data`
finds the terminating ``CRLF . CRLF`` with ``readuntil`` over the whole block (in the
StreamReader's limit, 64 KB, at a time), unstuffs with one ``bytes.replace`` and checks the
line lengths only when the data is longer than the line limit. It never reads past the
terminator, so pipelined commands after it stay in the reader.

The outcome is exactly aiosmtpd's (1.4; ``tests/smtp/test_data_blocks.py`` compares both on
generated streams split at random places): lines are split at CRLF only (a lone CR or LF is
data); the first line that is exactly ``.`` ends the data; a leading dot of every other line
is removed; the size limit counts the bytes before unstuffing; a line longer than the line
limit answers ``500`` unless the size limit was already passed before aiosmtpd would have
noticed it, in which case ``552``, and the same holds the other way round.
"""

from __future__ import annotations

import asyncio
import enum

_END = b"\r\n.\r\n"
_CRLF = b"\r\n"


class DataState(enum.Enum):
    NOMINAL = enum.auto()
    TOO_LONG = enum.auto()
    TOO_MUCH = enum.auto()


def _carry(consumed: bytes) -> bytes:
    """The longest end of `consumed` that begins the terminator (all of it when complete)."""
    for k in range(min(len(consumed), len(_END)), 0, -1):
        if consumed[-k:] == _END[:k]:
            return consumed[-k:]
    return b""


async def read_data(
    reader: asyncio.StreamReader, *, size_limit: int | None, line_limit: int
) -> tuple[DataState, bytes]:
    """Read up to and including the terminating ``.`` line; (state, unstuffed data).

    The data is empty unless the state is ``NOMINAL``. With a size limit, at most
    ``size_limit + line_limit + 3`` bytes are kept however much arrives (what is needed to
    tell a too-long line from too much data); the rest is counted and dropped.
    """
    keep = size_limit + line_limit + 3 if size_limit else None
    pieces: list[bytes] = []
    kept = consumed = 0
    # The line end of the DATA command itself: the data may be a lone "." at once. While
    # what was consumed last could begin the terminator, read byte by byte (a byte or two,
    # once a message); otherwise readuntil cannot miss a terminator that began earlier.
    tail = _CRLF
    while True:
        if tail:
            piece = await reader.readexactly(1)
            tail = _carry(tail + piece)
            done = tail == _END
        else:
            try:
                piece = await reader.readuntil(_END)
                done = True
            except asyncio.LimitOverrunError as exc:
                # No terminator starts in the first exc.consumed bytes (readuntil looked at
                # every place one could start with all its bytes there).
                piece = await reader.read(exc.consumed)
                done = False
        consumed += len(piece)
        if keep is None or kept < keep:
            if keep is not None and kept + len(piece) > keep:
                piece = piece[: keep - kept]
            pieces.append(piece)
            kept += len(piece)
        if done:
            break
    total = consumed - 3  # the terminator's ". CRLF" (its CRLF ends the last line of data)
    data = b"".join(pieces)
    if total > line_limit and _too_long(data[:total], size_limit, line_limit):
        return DataState.TOO_LONG, b""
    if size_limit and total > size_limit:
        return DataState.TOO_MUCH, b""
    body = data[:total]
    if body.startswith(b"."):
        body = body[1:]
    return DataState.NOMINAL, body.replace(b"\r\n.", _CRLF)


def _too_long(data: bytes, size_limit: int | None, line_limit: int) -> bool:
    """Whether aiosmtpd would answer "line too long": for the first line longer than the
    limit (CRLF included), it notices a line whose text alone passes the limit before
    counting its bytes (the stream's limit), a shorter one after (its own check); either way
    only while the size limit is not yet passed."""
    segments = data.split(_CRLF)
    if max(map(len, segments)) <= line_limit - 2:
        return False
    start = 0
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        text = len(segment)
        if text > line_limit:
            return not size_limit or start <= size_limit
        if index == last:  # a line cut short by what was kept, or the empty end
            return False
        if text + 2 > line_limit:
            return not size_limit or start + text + 2 <= size_limit
        start += text + 2
    return False
