"""JSON Pointer reference tokens (RFC 6901), decoded strictly.

A token escapes ``~`` as ``~0`` and ``/`` as ``~1``; any other character after ``~`` (or a
``~`` at the end) makes the pointer invalid (RFC 6901 §3–§4), which JMAP reports as
``invalidPatch`` in a PatchObject and ``invalidResultReference`` in a result reference
(RFC 8620 §3.7, §5.3).
"""

from __future__ import annotations

import re

_BAD_ESCAPE = re.compile(r"~(?![01])")


class InvalidPointer(ValueError):
    """A reference token with a ``~`` not followed by ``0`` or ``1``."""


def unescape(token: str) -> str:
    """The token's value: ``~1`` → ``/``, then ``~0`` → ``~`` (RFC 6901 §4's order)."""
    bad = _BAD_ESCAPE.search(token)
    if bad is not None:
        raise InvalidPointer(f"{token[:80]!r}: only ~0 and ~1 are escapes in a JSON Pointer")
    return token.replace("~1", "/").replace("~0", "~")
