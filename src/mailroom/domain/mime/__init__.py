"""The parsed MIME structure of a stored message, and what the protocols read from it.

`scan(blob)` finds, once (at ingest), every MIME entity's header and body offsets in the
message's bytes with its content type, parameters, transfer encoding, disposition,
filename, language, location, Content-ID, sizes and line count, and the envelope of the
message and of every message/rfc822 part inside it. The store keeps the result
(`MimeStructure.to_json()`) beside the blob, so that JMAP's bodyStructure / bodyValues /
header forms (`mailroom.domain.mime.jmap`) and IMAP's ENVELOPE, BODYSTRUCTURE and
BODY[section] (`mailroom.domain.mime.imap`) are served from the blob and the structure
without parsing the message again. Pure and total: any bytes give a structure.
"""

from __future__ import annotations

from mailroom.domain.mime._fields import without_fields
from mailroom.domain.mime._model import VERSION, Address, Envelope, MimeStructure, Part
from mailroom.domain.mime._scan import scan

__all__ = ["VERSION", "Address", "Envelope", "MimeStructure", "Part", "scan", "without_fields"]
