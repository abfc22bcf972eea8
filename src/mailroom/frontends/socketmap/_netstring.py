"""Netstrings (``<length>:<bytes>,``), read incrementally from a stream with a size bound.

Postfix's socketmap client (socketmap_table(5)) writes one netstring per request and reads
one per reply; both are at most 100,000 bytes. The reader takes whatever arrived and hands
back every complete netstring in it; a malformed or oversized one raises
:class:`NetstringError`, after which the stream cannot be resynchronised and the
connection is to be closed.
"""

from __future__ import annotations

#: socketmap_table(5): "The maximum length of a request or reply is 100000 bytes".
MAX_LENGTH = 100_000
#: The longest length prefix a bounded netstring can have ("100000").
_MAX_DIGITS = len(str(MAX_LENGTH))


class NetstringError(ValueError):
    """The stream is not a sequence of netstrings within the limit."""


def encode(data: bytes) -> bytes:
    """``b"OK x"`` → ``b"4:OK x,"``."""
    if len(data) > MAX_LENGTH:
        raise NetstringError(f"netstring of {len(data)} bytes exceeds {MAX_LENGTH}")
    return b"%d:%s," % (len(data), data)


class NetstringReader:
    """Feeds on chunks of a stream; :meth:`feed` returns the netstrings completed so far."""

    __slots__ = ("_buffer", "_limit")

    def __init__(self, limit: int = MAX_LENGTH) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        out: list[bytes] = []
        buffer = self._buffer
        while buffer:
            colon = buffer.find(b":", 0, _MAX_DIGITS + 1)
            if colon < 0:
                if len(buffer) > _MAX_DIGITS or not buffer.isdigit():
                    raise NetstringError("malformed netstring length")
                break  # the length is still arriving
            digits = bytes(buffer[:colon])
            # Digits only: int() would also take "+5", " 5" or "5_0".
            if not digits.isdigit() or (len(digits) > 1 and digits[0:1] == b"0"):
                raise NetstringError("malformed netstring length")
            length = int(digits)
            if length > self._limit:
                raise NetstringError(f"netstring of {length} bytes exceeds {self._limit}")
            end = colon + 1 + length
            if len(buffer) <= end:
                break  # the payload or its comma is still arriving
            if buffer[end] != 0x2C:  # ","
                raise NetstringError("netstring without its closing comma")
            out.append(bytes(buffer[colon + 1 : end]))
            del buffer[: end + 1]
        return out

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole netstring."""
        return len(self._buffer)
