"""The octets of POP3 (RFC 1939 §3): command lines in, multi-line answers out.

Pure functions, fuzzed on their own (tests/pop3/test_fuzz.py): no I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The longest command line read (RFC 2449 §4 allows 255 octets; AUTH's initial response and
#: an app password need more). A longer line is refused and the connection closed.
MAX_LINE = 8192
#: A message number or line count: at most this many digits (no huge integers parsed).
_NUMBER = re.compile(rb"^[0-9]{1,9}$")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_DOT_AT_LINE_START = re.compile(rb"^\.", re.MULTILINE)
_KEYWORD = re.compile(r"^[A-Za-z]{3,4}$")


class CommandError(ValueError):
    """A line that is no POP3 command; the message is fit for an ``-ERR`` reply."""


@dataclass(frozen=True, slots=True)
class Command:
    """One command line: its keyword (upper case) and arguments."""

    keyword: str
    args: tuple[str, ...]
    #: Everything after the keyword and one space, as sent (PASS allows spaces in it).
    rest: str


def parse_command(line: bytes) -> Command:
    """The command in ``line`` (its CRLF or LF already removed, or not)."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise CommandError("line too long")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("command is not UTF-8") from None
    if any(c < " " or c == "\x7f" for c in text):
        raise CommandError("control character in command")
    keyword, _, rest = text.partition(" ")
    if not _KEYWORD.match(keyword):
        raise CommandError("unknown command")
    # Arguments are separated by spaces (RFC 1939 §3), not by any Unicode whitespace that
    # str.split() knows ("LIST \xa0" has an argument: a listing would answer another command).
    return Command(keyword.upper(), tuple(arg for arg in rest.split(" ") if arg), rest)


def number(arg: str) -> int | None:
    """A non-negative decimal argument (at most 9 digits), or None."""
    data = arg.encode("ascii", "replace")
    return int(data) if _NUMBER.match(data) else None


def normalise(raw: bytes) -> bytes:
    """The message with CRLF line ends throughout, ending in CRLF (not yet dot-stuffed)."""
    data = _BARE_LF.sub(b"\r\n", raw)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def multiline(body: bytes) -> bytes:
    """``body`` (CRLF lines, ending in CRLF or empty) as a multi-line answer's lines: every
    line starting with ``.`` stuffed, then the terminating ``.`` line."""
    return _DOT_AT_LINE_START.sub(b"..", body) + b".\r\n"


def top(message: bytes, lines: int) -> bytes:
    """The header of a normalised message, the blank line, and at most ``lines`` body lines."""
    head_end = message.find(b"\r\n\r\n")
    if head_end < 0:
        return message  # no body at all: it is all header
    cut = head_end + 4
    position = cut
    for _ in range(lines):
        if position >= len(message):
            break
        end = message.find(b"\r\n", position)
        position = len(message) if end < 0 else end + 2
    return message[:position]
