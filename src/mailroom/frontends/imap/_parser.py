"""The IMAP command parser (RFC 9051 section 9): bounded, and never more than a BAD.

A command arrives as *segments*: text up to a line end, then the bytes of each literal the
line announced (``{n}``, ``{n+}``, ``~{n}``), then the text after it, and so on
(:class:`~mailroom.frontends.imap._server.ImapSession` reads them under the limits below).
:func:`parse` turns the segments into the tag, the command name and its arguments:

- :class:`Atom` for atoms (a ``str``; ``BODY[HEADER.FIELDS (A B)]<0.10>`` is one atom: the
  brackets of a section may hold spaces and parentheses), ``str`` for quoted strings,
  ``bytes`` for literals, ``None`` for ``NIL``, ``list`` for a parenthesised list.
- Anything malformed — unbalanced parentheses or brackets, a stray quote, a bad escape, a
  list nested deeper than :data:`MAX_DEPTH`, a non-UTF-8 quoted string, more than
  :data:`MAX_ITEMS` tokens — raises :class:`ParseError`, which the server answers ``BAD``.

Sequence sets (:func:`sequence_set`) are lists of ranges, never expanded: ``1:4294967295``
costs what ``1`` costs, and a set of more than :data:`MAX_RANGES` ranges is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

#: Longest command line (without its literals).
MAX_LINE = 64 * 1024
#: Deepest parenthesised list.
MAX_DEPTH = 16
#: Most tokens in one command.
MAX_ITEMS = 20_000
#: Most ranges in one sequence set.
MAX_RANGES = 10_000
#: Largest number in a sequence set, UID or count (RFC 9051: nz-number is 32-bit).
MAX_NUMBER = 4_294_967_295

_ATOM_SPECIALS = frozenset(b'(){ "]') | frozenset(range(0x20)) | {0x7F}
_TAG = re.compile(rb"^[\x21-\x7e]+$")
_DIGITS = re.compile(r"[0-9]+")
_LITERAL = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}$")


class ParseError(Exception):
    """A command that does not parse; the text is safe to send in a BAD."""


class Atom(str):
    """An atom (as opposed to a quoted string with the same text)."""

    __slots__ = ()


Value = Union[Atom, str, bytes, None, list["Value"]]  # noqa: UP007 (a recursive alias)


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str  # upper case
    args: list[Value]


@dataclass(frozen=True, slots=True)
class LiteralStart:
    """A line that ends in a literal announcement: its size, whether the client waits for
    ``+`` (synchronizing), and whether it is ``literal8`` (``~{n}``, binary)."""

    size: int
    synchronizing: bool
    binary: bool


def literal_at_end(line: bytes) -> LiteralStart | None:
    """The literal a line (without CRLF) announces at its end, if any."""
    if not line.endswith(b"}"):
        return None
    match = _LITERAL.search(line)
    if match is None:
        return None
    size = int(match.group(2))
    return LiteralStart(size=size, synchronizing=not match.group(3), binary=bool(match.group(1)))


class _Reader:
    def __init__(self, segments: Sequence[bytes]) -> None:
        # segments: text, literal, text, literal, ..., text. A literal is the bytes that
        # followed a text ending in ``{n}``.
        self.segments = segments
        self.index = 0
        self.pos = 0
        self.items = 0

    @property
    def text(self) -> bytes:
        return self.segments[self.index]

    def at_end(self) -> bool:
        return self.index == len(self.segments) - 1 and self.pos >= len(self.text)

    def peek(self) -> int | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def space(self) -> None:
        if self.peek() != 0x20:
            raise ParseError("expected a space")
        self.pos += 1

    def value(self, depth: int = 0) -> Value:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise ParseError("too many items in one command")
        c = self.peek()
        if c is None:
            raise ParseError("missing argument")
        if c == 0x28:  # (
            if depth >= MAX_DEPTH:
                raise ParseError("lists nested too deep")
            self.pos += 1
            out: list[Value] = []
            while True:
                c = self.peek()
                if c == 0x29:  # )
                    self.pos += 1
                    return out
                if c is None:
                    raise ParseError("unbalanced parenthesis")
                if out:
                    self.space()
                    if self.peek() == 0x29:
                        raise ParseError("space before )")
                out.append(self.value(depth + 1))
        if c == 0x22:  # "
            return self.quoted()
        if c == 0x7B or (c == 0x7E and self.text[self.pos + 1 : self.pos + 2] == b"{"):  # { or ~{
            return self.literal()  # (a "~" alone starts an atom: "~foo" is a mailbox name)
        return self.atom()

    def quoted(self) -> str:
        self.pos += 1
        out = bytearray()
        text = self.text
        while True:
            if self.pos >= len(text):
                raise ParseError("unterminated quoted string")
            c = text[self.pos]
            self.pos += 1
            if c == 0x22:
                break
            if c == 0x5C:  # backslash
                if self.pos >= len(text) or text[self.pos] not in (0x22, 0x5C):
                    raise ParseError("bad escape in quoted string")
                c = text[self.pos]
                self.pos += 1
            elif c in (0x0D, 0x0A, 0x00):
                raise ParseError("control character in quoted string")
            out.append(c)
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("quoted string is not UTF-8") from None

    def literal(self) -> bytes:
        match = _LITERAL.match(self.text, self.pos)
        if match is None or match.end() != len(self.text) or self.index + 2 >= len(self.segments):
            raise ParseError("malformed literal")
        data = self.segments[self.index + 1]
        self.index += 2
        self.pos = 0
        if len(data) != int(match.group(2)):
            raise ParseError("literal size mismatch")
        return data

    def atom(self) -> Atom:
        text = self.text
        start = self.pos
        while self.pos < len(text):
            c = text[self.pos]
            if c == 0x5B:  # [ : a section, up to its matching ]
                end = text.find(b"]", self.pos)
                # Without one, "[" is an atom character (a flag keyword such as "a[b", which
                # JMAP allows too); a section left open is then an unknown FETCH item (BAD).
                self.pos = end + 1 if end >= 0 else self.pos + 1
                continue
            if c in _ATOM_SPECIALS:
                break
            self.pos += 1
        if self.pos == start:
            raise ParseError("unexpected character")
        raw = text[start : self.pos]
        if any(b >= 0x80 for b in raw):
            try:
                return Atom(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ParseError("atom is not UTF-8") from None
        return Atom(raw.decode("ascii"))


def parse(segments: Sequence[bytes]) -> Command:
    """Parse one command (see the module docstring); :class:`ParseError` when malformed."""
    if not segments or not segments[0]:
        raise ParseError("empty command")
    first = segments[0]
    tag_end = first.find(b" ")
    tag = first[: tag_end if tag_end >= 0 else len(first)]
    if not _TAG.match(tag) or any(c in tag for c in b'(){%*"\\+'):
        raise ParseError("invalid tag")
    if tag_end < 0:
        raise ParseError("missing command")
    reader = _Reader(segments)
    reader.pos = tag_end + 1
    name = reader.atom().upper()
    args: list[Value] = []
    while not reader.at_end():
        reader.space()
        args.append(reader.value())
    return Command(tag.decode("ascii"), name, args)


def tag_of(line: bytes) -> str:
    """The tag of a line, for a BAD about it ("*" when it has none fit to echo)."""
    tag = line.split(b" ", 1)[0][:64]
    return tag.decode("ascii") if tag and _TAG.match(tag) and b"+" not in tag else "*"


# -- sequence sets -------------------------------------------------------------------------

#: A range ``(low, high)``; ``None`` is ``*`` (the largest number in use).
Range = tuple[int | None, int | None]


def _number(text: str) -> int | None:
    if text == "*":
        return None
    if not _DIGITS.fullmatch(text) or text.startswith("0") or len(text) > 10:
        raise ParseError(f"invalid number in sequence set: {text[:20]}")
    value = int(text)
    if value > MAX_NUMBER:
        raise ParseError("number too large in sequence set")
    return value


def sequence_set(value: Value, *, allow_saved: bool = True) -> list[Range] | None:
    """A sequence set as ranges; None for ``$`` (SEARCHRES's saved result)."""
    if not isinstance(value, Atom):
        raise ParseError("expected a sequence set")
    if value == "$" and allow_saved:
        return None
    parts = value.split(",")
    if len(parts) > MAX_RANGES:
        raise ParseError("sequence set has too many ranges")
    out: list[Range] = []
    for part in parts:
        low, sep, high = part.partition(":")
        a = _number(low)
        out.append((a, _number(high) if sep else a))
    return out


def number(value: Value, *, limit: int = MAX_NUMBER) -> int:
    """A plain number argument."""
    if not isinstance(value, Atom) or not _DIGITS.fullmatch(value) or len(value) > 20:
        raise ParseError("expected a number")
    n = int(value)
    if n > limit:
        raise ParseError("number too large")
    return n


def astring(value: Value) -> str:
    """An astring argument (atom, quoted string or literal) as text."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("literal is not UTF-8") from None
    if isinstance(value, str):
        return str(value)
    raise ParseError("expected a string")
