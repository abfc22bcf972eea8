"""The value objects `parse_message` returns; plain data, JSON-ready via `to_dict()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Disposition = Literal["attachment", "inline"]
Encryption = Literal["none", "signed", "encrypted"]


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: display name (decoded, '' when absent) and addr-spec with the domain lowercased."""

    name: str
    email: str

    def to_dict(self) -> dict[str, Any]:
        """Return the address as a JSON-ready dict."""
        return {"name": self.name, "email": self.email}


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A MIME leaf that is not one of the displayed bodies.

    `part_path` is the IMAP-style section number ("1.2") that `extract_attachment`
    accepts; `size` counts decoded bytes. `filename` comes straight from the sender:
    callers must sanitise it before using it as a filesystem path.
    """

    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    disposition: Disposition
    part_path: str

    def to_dict(self) -> dict[str, Any]:
        """Return the attachment description as a JSON-ready dict."""
        return {
            "index": self.index,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "content_id": self.content_id,
            "disposition": self.disposition,
            "part_path": self.part_path,
        }


@dataclass(frozen=True, slots=True)
class PgpInfo:
    """What OpenPGP structure the message carries (PGP/MIME or inline armour)."""

    encrypted: bool = False
    signed: bool = False
    inline: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the flags as a JSON-ready dict."""
        return {"encrypted": self.encrypted, "signed": self.signed, "inline": self.inline}


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the store keeps about one message, extracted once at delivery.

    Strings never contain NUL characters or lone surrogates, so every field can be
    stored in PostgreSQL text columns and encoded as UTF-8 JSON as it is.
    `encryption` covers OpenPGP and S/MIME; `pgp` and `smime` say which was used.
    """

    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    from_: list[Address] = field(default_factory=list)
    sender: Address | None = None
    reply_to: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    text_body: str | None = None
    html_body: str | None = None
    attachments: list[AttachmentInfo] = field(default_factory=list)
    snippet: str = ""
    has_attachments: bool = False
    size: int = 0
    encryption: Encryption = "none"
    pgp: PgpInfo = field(default_factory=PgpInfo)
    smime: bool = False
    list_id: str | None = None
    list_unsubscribe: str | None = None
    precedence: str | None = None
    auto_submitted: str | None = None
    return_path: str | None = None
    spam_flag: bool | None = None
    spam_score: float | None = None
    defects: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; `from_` becomes "from", `date` an ISO 8601 string."""
        return {
            "message_id": self.message_id,
            "in_reply_to": list(self.in_reply_to),
            "references": list(self.references),
            "from": [a.to_dict() for a in self.from_],
            "sender": self.sender.to_dict() if self.sender else None,
            "reply_to": [a.to_dict() for a in self.reply_to],
            "to": [a.to_dict() for a in self.to],
            "cc": [a.to_dict() for a in self.cc],
            "bcc": [a.to_dict() for a in self.bcc],
            "subject": self.subject,
            "date": self.date.isoformat() if self.date else None,
            "text_body": self.text_body,
            "html_body": self.html_body,
            "attachments": [a.to_dict() for a in self.attachments],
            "snippet": self.snippet,
            "has_attachments": self.has_attachments,
            "size": self.size,
            "encryption": self.encryption,
            "pgp": self.pgp.to_dict(),
            "smime": self.smime,
            "list_id": self.list_id,
            "list_unsubscribe": self.list_unsubscribe,
            "precedence": self.precedence,
            "auto_submitted": self.auto_submitted,
            "return_path": self.return_path,
            "spam_flag": self.spam_flag,
            "spam_score": self.spam_score,
            "defects": list(self.defects),
        }
