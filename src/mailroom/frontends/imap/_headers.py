"""A message's header fields, for the SEARCH keys that look at them (HEADER, BCC, SENT*).

FETCH never parses a message: ENVELOPE, BODYSTRUCTURE and sections come from the stored
MIME structure (domain/mime). SEARCH HEADER reads the header block of each message it
tests, with Python's email package (``compat32``: values as they stand in the message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class Headers:
    """The first value of each header field, by lower-case name."""

    fields: dict[str, str]

    def get(self, name: str) -> str | None:
        return self.fields.get(name.lower())


def headers(raw: bytes) -> Headers:
    match = _HEADER_END.search(raw)
    block = raw[: match.end()] if match else raw
    fields: dict[str, str] = {}
    for key, value in BytesHeaderParser(policy=compat32).parsebytes(block).items():
        fields.setdefault(key.lower(), str(value))
    return Headers(fields)
