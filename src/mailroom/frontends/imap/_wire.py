"""Writing IMAP data: strings as quoted strings or literals, NIL, lists."""

from __future__ import annotations

import re

_SAFE = frozenset(range(0x20, 0x7F)) - {0x22, 0x5C}
#: A byte a quoted string cannot hold (CR, LF, other controls, 8-bit): one C-coded scan per
#: string rather than a Python test per byte (ENVELOPE and BODYSTRUCTURE write hundreds).
_NOT_QUOTABLE = re.compile(rb"[^\x20-\x7e]")


class Raw(bytes):
    """Bytes already in IMAP syntax (written as they are)."""


def qstring(value: str | bytes) -> bytes:
    """A string: quoted when it can be, else a literal (CR, LF, 8-bit, very long)."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if len(data) < 1024 and _NOT_QUOTABLE.search(data) is None:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def nstring(value: str | bytes | None) -> bytes:
    return b"NIL" if value is None else qstring(value)


def literal(data: bytes) -> bytes:
    return b"{" + str(len(data)).encode() + b"}\r\n" + data


#: What a quoted string may not hold once UTF-8 is accepted (RFC 6855 §3): CR, LF, controls.
_NOT_QUOTABLE_UTF8 = re.compile(rb"[\x00-\x1f\x7f]")


def astring(value: str, *, utf8: bool = False) -> bytes:
    """A mailbox name or other astring: an atom when it is one, else quoted/literal; with
    ``utf8`` (a session that enabled UTF8=ACCEPT or IMAP4rev2) UTF-8 in a quoted string."""
    data = value.encode("utf-8")
    if data and all(c in _SAFE and c not in b"(){ %*]" for c in data):
        return data
    if utf8 and len(data) < 1024 and _NOT_QUOTABLE_UTF8.search(data) is None:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return qstring(data)


def render(value: object) -> bytes:
    """IMAP data from domain/mime/imap.py's values: str a string, None NIL, int a number,
    list a parenthesised list, tuple items written one after the other."""
    if value is None:
        return b"NIL"
    if isinstance(value, bool):
        raise TypeError("no booleans in IMAP data")
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, str):
        return qstring(value)
    if isinstance(value, tuple):
        return b"".join(render(v) for v in value)
    if isinstance(value, list):
        return b"(" + b" ".join(render(v) for v in value) + b")"
    raise TypeError(f"not IMAP data: {type(value).__name__}")
