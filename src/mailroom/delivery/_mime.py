"""The MIME tree: a depth-limited parse and payload access by IMAP-style part path."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from email import errors as email_errors
from email import policy as email_policy
from email.feedparser import FeedParser
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import Policy
from typing import Any, TypeVar

from mailroom.delivery._defects import DefectLog

T = TypeVar("T")

_FEED_CHUNK = 65_536
_UNSEEN = object()
_PATH = re.compile(r"[1-9][0-9]{0,5}(?:\.[1-9][0-9]{0,5}){0,127}")


class ParseLimits:
    """Nesting and part-count limits shared by every part of one parse."""

    def __init__(self, max_depth: int, max_parts: int) -> None:
        self.max_depth = max_depth
        self.parts_left = max_parts


class LimitedMessage(EmailMessage):
    """An `EmailMessage` that keeps some parts opaque and reads its type once.

    The stdlib parser descends into every multipart and message/* part, with
    cost proportional to lines x depth and a RecursionError past ~1000 levels.
    It decides by asking each new part for its content type, so these parts
    answer "application/octet-stream" and keep the bytes that arrived:

    * message/* (forwarded mail, delivery reports): we never show their bodies,
      and an attachment must be served byte for byte, not re-serialised;
    * multiparts nested deeper than the limit: they are not descended into;
    * parts beyond the part budget: nobody will look at them.

    `policy.default` parses the Content-Type header afresh on every call (50-300
    microseconds) and the parser asks several times per part, so the answer is
    cached per header value; with the budget this keeps a message of 100,000
    tiny parts from costing minutes. Depth and budget reach children through
    `attach`, which the parser calls when it links a new part to its parent.

    For the same reason every header object `get` builds is kept per (name, raw value):
    the parser, the structure walk and the body decoder ask a part for its Content-Type
    five or six times (type, boundary, charset, file name), and each answer would
    otherwise parse the header again. Header objects are immutable, and a changed value
    is another key.
    """

    def __init__(self, policy: Policy | None = None) -> None:
        super().__init__(policy)
        self.nesting_depth = 0
        self.limits = ParseLimits(32, 1000)
        self.over_budget = False
        self._type_cache: tuple[tuple[object, str], str] | None = None
        self._fetched: dict[tuple[str, str], Any] = {}

    def get(self, name: str, failobj: Any = None) -> Any:
        """`Message.get`, remembering the header object made for each raw value."""
        wanted = name.lower()
        headers: list[tuple[str, str]] = self._headers  # type: ignore[attr-defined]
        for key, value in headers:
            if key.lower() == wanted:
                fetched = self._fetched.get((key, value), _UNSEEN)
                if fetched is _UNSEEN:
                    fetched = self._fetched[(key, value)] = self.policy.header_fetch_parse(key, value)
                return fetched
        return failobj

    def attach(self, payload: Any) -> None:
        """Link a child part, passing on its depth and the shared limits."""
        if isinstance(payload, LimitedMessage):
            payload.nesting_depth = self.nesting_depth + 1
            payload.limits = self.limits
            payload.limits.parts_left -= 1
            payload.over_budget = payload.limits.parts_left < 0
        super().attach(payload)

    @property
    def too_deep(self) -> bool:
        """Whether this part is a multipart the parser was not allowed to open."""
        return self.nesting_depth >= self.limits.max_depth and self.declared_type().startswith("multipart/")

    def declared_type(self) -> str:
        """The content type as the message declares it (with the RFC 2045 defaults)."""
        raw = next((value for name, value in self.raw_items() if name.lower() == "content-type"), None)
        key = (raw, self.get_default_type())
        if self._type_cache is None or self._type_cache[0] != key:
            self._type_cache = (key, super().get_content_type())
        return self._type_cache[1]

    def get_content_type(self) -> str:
        """The declared content type, except for the parts kept opaque (see the class)."""
        if self.over_budget:
            return "application/octet-stream"
        declared = self.declared_type()
        if declared.startswith("message/") or (
            declared.startswith("multipart/") and self.nesting_depth >= self.limits.max_depth
        ):
            return "application/octet-stream"
        return declared


class _HeaderClasses(HeaderRegistry):
    """`policy.default`'s header factory, making each field's header class once.

    The stdlib makes a new class (``type(...)``, ~16 microseconds) for every header object it
    builds; the class depends only on the field name. Kept for the names it knows (the
    fields the parse reads are among them) and a few dozen others, so that a message with
    thousands of invented field names cannot grow it."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = super().__getitem__(name)
            if key in self.registry or len(self._made) < 64:
                self._made[key] = made
        return made


_DEFAULT = email_policy.default.clone(header_factory=_HeaderClasses())


def safe(call: Callable[[], T], default: T) -> T:
    """Run a stdlib accessor that may choke on hostile headers; `default` if it does."""
    try:
        return call()
    except Exception:
        return default


def parse_tree(raw: bytes, max_depth: int, max_parts: int, defects: DefectLog) -> LimitedMessage:
    """Parse with `policy.default`; fall back to compat32, then to headers only.

    `policy.default` parses header values with a recursive-descent parser that can
    raise on crafted input; compat32 treats them as plain strings.
    """
    attempts: list[tuple[Policy, bool]] = [
        (_DEFAULT, False),
        (email_policy.compat32, False),
        (email_policy.compat32, True),
    ]
    for pol, headers_only in attempts:
        try:
            return _parse_with(raw, pol, ParseLimits(max_depth, max_parts), headers_only=headers_only)
        except Exception as exc:
            defects.add(f"MIME parser failed ({type(exc).__name__}); retried more leniently")
    defects.add("message unreadable")
    return _new_message(_DEFAULT, ParseLimits(max_depth, max_parts))


def _new_message(pol: Policy, limits: ParseLimits) -> LimitedMessage:
    message = LimitedMessage(policy=pol)
    message.limits = limits
    return message


def _parse_with(raw: bytes, pol: Policy, limits: ParseLimits, *, headers_only: bool) -> LimitedMessage:
    def factory(policy: Policy = pol) -> LimitedMessage:
        return _new_message(policy, limits)

    if headers_only:
        parsed = BytesParser(factory, policy=pol).parsebytes(raw, headersonly=True)
    else:
        text = raw.decode("ascii", "surrogateescape")
        fast = fast_tree(text, pol, limits)
        if fast is not None:
            return fast
        single = _single_part(text, pol, limits)
        if single is not None:
            return single
        # What BytesParser.parsebytes does, but feeding stops once the part budget is
        # spent: the stdlib spends ~70 microseconds per part, and a few megabytes of
        # empty parts would otherwise cost minutes. Every part within the budget has
        # ended by then (the next part's delimiter line has been read).
        parser = FeedParser(factory, policy=pol)
        for start in range(0, len(text), _FEED_CHUNK):
            parser.feed(text[start : start + _FEED_CHUNK])
            if limits.parts_left < 0:
                break
        parsed = parser.close()
    if not isinstance(parsed, LimitedMessage):  # the factory guarantees it; checked for the type checker
        raise TypeError("parser ignored the message factory")
    return parsed


def _single_part(text: str, pol: Policy, limits: ParseLimits) -> LimitedMessage | None:
    """A message that is not multipart, parsed without handing its body to the parser line by line.

    The parser gives such a body, every line after the blank line that ends the header
    block, to ``set_payload`` unchanged, after splitting it into lines and joining them
    again at a few microseconds a line (measured: 0.03 ms of a plain 10 KB message's
    0.35 ms tree, 0.27 of 0.5 ms at 50 KB).
    So the header block alone is parsed, and the body set as the parser would set it,
    when the parser's own reading confirms the cut: the headers ended at exactly that
    blank line (nothing was left over for the body) and the type is not multipart.
    Otherwise None, and the whole text is parsed as before, from a fresh start.
    """
    if text.startswith(("\n", "\r")):
        return None
    ends = [i for i in (text.find("\n\n"), text.find("\n\r\n")) if i >= 0]
    if not ends:
        return None
    blank = min(ends)
    cut = blank + (2 if text[blank + 1] == "\n" else 3)
    if "multipart" in text[:cut].lower():
        # Most likely a multipart: the trial would parse the header block only to give up
        # (a third of a multipart's parse). Anything else that names it parses as before.
        return None
    trial = ParseLimits(limits.max_depth, limits.parts_left)

    def factory(policy: Policy = pol) -> LimitedMessage:
        return _new_message(policy, trial)

    parser = FeedParser(factory, policy=pol)
    parser.feed(text[:cut])
    root = parser.close()
    if not isinstance(root, LimitedMessage) or root.get_content_maintype() == "multipart":
        return None
    if root.get_payload() != "" or trial.parts_left != limits.parts_left:
        return None
    root.limits = limits
    root.set_payload(text[cut:])
    return root


# The feed parser's own tests, with what they mean here (email/feedparser.py, Python 3.11).
_HEADER_LINE = re.compile(r"[\041-\071\073-\176]*:|[\t ]")  # its headerRE, less "From "


class _Decline(Exception):
    """The message has something the feed parser treats specially: let it parse the message."""


def fast_tree(text: str, pol: Policy, limits: ParseLimits) -> LimitedMessage | None:
    """The tree `FeedParser` builds, made by cutting the text at its header ends and boundary
    lines with `str.find` instead of reading it line by line; None when the message has
    anything the parser would treat specially or note as a defect.

    What it takes, exactly as the parser does: lines end at LF (CRLF included; a message with
    a lone CR, which the parser also reads as a line end, is declined); a header block ends at
    its first empty line (or where the text ends); header fields are set with the policy's
    ``header_source_parse``; whether a part is a multipart, and its boundary, are asked of the
    part itself (`LimitedMessage` keeps message/* parts and parts too deep or over the budget
    opaque, so these are leaves here as there); a boundary line is ``--boundary``, optionally
    ``--``, spaces or tabs, the line end; the line end before a boundary line belongs to it;
    preamble and epilogue as the parser keeps them. Declined: a header line that is no field
    (a missing blank line), a first line that continues nothing, ``From `` lines, a field
    without a name, a multipart without a boundary or without its first or last boundary
    line, two boundary lines in a row, more than 64 parts. tests/delivery/test_fast_tree.py
    compares both trees on every golden message and on generated ones.
    """
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None
    try:
        root = _new_message(pol, limits)
        _fill(root, text, 0, len(text), limits)
    except _Decline:
        return None
    return root


def _fill(part: LimitedMessage, text: str, start: int, end: int, limits: ParseLimits) -> None:
    body = _headers_into(part, text, start, end)
    if part.get_content_maintype() != "multipart":
        part.set_payload(text[body:end])
        return
    boundary = part.get_boundary()
    if boundary is None:
        raise _Decline
    if str(part.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
        part.policy.handle_defect(part, email_errors.InvalidMultipartContentTransferEncodingDefect())
    lines = _boundary_lines(text, body, end, "--" + boundary)
    if not lines or lines[0][2] or not lines[-1][2]:
        raise _Decline  # no first boundary line, or no closing one
    if lines[0][0] > body:
        part.preamble = _chop(text[body : lines[0][0]])
    digest = part.get_content_type() == "multipart/digest"
    for (_, part_start, _), (next_at, _, _) in itertools.pairwise(lines):
        if next_at == part_start:
            raise _Decline  # two boundary lines in a row: the parser skips the second
        child = _new_message(part.policy, limits)
        if digest:
            child.set_default_type("message/rfc822")
        part.attach(child)
        if limits.parts_left < 0:
            raise _Decline  # over the part budget: the parser stops reading (parse_tree)
        _fill(child, text, part_start, next_at, limits)
        # The line end before a boundary line is the boundary's, not the part's.
        if child.get_content_maintype() == "multipart":
            epilogue = child.epilogue
            child.epilogue = _chop(epilogue) if epilogue else None
        else:
            payload = child._payload  # type: ignore[attr-defined]  # as the parser reads it
            if isinstance(payload, str):
                child._payload = _chop(payload)  # type: ignore[attr-defined]
    # What follows the closing line (its own line end excluded) is the epilogue.
    part.epilogue = text[lines[-1][1] : end]


def _chop(value: str) -> str:
    """The text without its last line end (the parser's NLCRE_eol)."""
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith(("\n", "\r")):
        return value[:-1]
    return value


def _headers_into(part: LimitedMessage, text: str, start: int, end: int) -> int:
    """Set the part's header fields from its header block; where its body starts."""
    pos = start
    field: list[str] = []
    while pos < end:
        nl = text.find("\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        if text.startswith(("\n", "\r\n"), pos):
            pos = line_end
            break
        if text.startswith("From ", pos) or _HEADER_LINE.match(text, pos, line_end) is None:
            raise _Decline  # an mbox "From " line, or a line that is no field (no blank line)
        line = text[pos:line_end]
        if line[0] in " \t":
            if not field:
                raise _Decline  # the first line continues nothing
            field.append(line)
        else:
            if line[0] == ":":
                raise _Decline  # a field without a name
            if field:
                part.set_raw(*part.policy.header_source_parse(field))
            field = [line]
        pos = line_end
    if field:
        part.set_raw(*part.policy.header_source_parse(field))
    return pos


def _boundary_lines(text: str, start: int, end: int, delimiter: str) -> list[tuple[int, int, bool]]:
    """(line start, line end, closing) of every boundary line between start and end."""
    found: list[tuple[int, int, bool]] = []
    pos = start
    size = len(delimiter)
    while True:
        at = text.find(delimiter, pos, end)
        if at < 0:
            return found
        nl = text.find("\n", at, end)
        line_end = end if nl < 0 else nl + 1
        pos = line_end
        if at != start and text[at - 1] != "\n":
            continue
        rest = text[at + size : line_end]
        close = rest.startswith("--")
        if close:
            rest = rest[2:]
        if rest.lstrip(" \t") in ("", "\n", "\r\n"):
            found.append((at, line_end, close))
            if close:
                return found


def is_container(part: Message) -> bool:
    """Whether the part is a multipart the walker should descend into."""
    return safe(lambda: part.is_multipart() and part.get_content_maintype() == "multipart", False)


def children(part: Message, path: str) -> list[tuple[str, LimitedMessage]]:
    """The sub-parts of a container with their part paths ("1", "1.2", ...)."""
    payload: object = safe(lambda: part.get_payload(), None)
    if not isinstance(payload, list):
        return []
    prefix = f"{path}." if path else ""
    return [
        (f"{prefix}{i}", child) for i, child in enumerate(payload, 1) if isinstance(child, LimitedMessage)
    ]


def find_part(root: LimitedMessage, part_path: str) -> LimitedMessage | None:
    """The part at an IMAP-style path: "1" is a single-part message's body, else a child index chain."""
    if not _PATH.fullmatch(part_path):
        return None
    indexes = [int(i) for i in part_path.split(".")]
    if not is_container(root):
        return root if indexes == [1] else None
    current = root
    for index in indexes:
        if not is_container(current):
            return None
        subparts = children(current, "")
        if index > len(subparts):
            return None
        current = subparts[index - 1][1]
    return None if is_container(current) else current


def transfer_encoding(part: Message) -> str:
    """The Content-Transfer-Encoding, lowercased; '' when absent or unreadable."""
    return safe(lambda: str(part.get("content-transfer-encoding", "")).strip().lower(), "")


def part_bytes(part: Message) -> bytes:
    """The content of a leaf part with its Content-Transfer-Encoding undone."""
    payload = safe(lambda: part.get_payload(decode=True), None)
    return payload if isinstance(payload, bytes) else b""
