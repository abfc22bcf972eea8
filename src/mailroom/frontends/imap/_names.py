"""Mailbox names: labels ↔ IMAP names, special-use flags, modified UTF-7 (RFC 3501 5.1.3)."""

from __future__ import annotations

import base64

#: System label → (IMAP name, special-use attribute or "").
SYSTEM = {
    "inbox": ("INBOX", ""),
    "archive": ("Archive", "\\Archive"),
    "drafts": ("Drafts", "\\Drafts"),
    "sent": ("Sent", "\\Sent"),
    "spam": ("Junk", "\\Junk"),
    "trash": ("Trash", "\\Trash"),
    "starred": ("Starred", "\\Flagged"),
    "important": ("Important", "\\Important"),
    "postponed": ("Postponed", ""),
}
#: IMAP name (upper case) → system label.
BY_NAME = {imap.upper(): label for label, (imap, _) in SYSTEM.items()}
DELIMITER = "/"


def imap_name(label: str, kind: str) -> str:
    if kind == "system" and label in SYSTEM:
        return SYSTEM[label][0]
    return label


def label_key(name: str) -> str:
    """The label name an IMAP name stands for (``INBOX`` → ``inbox``; a user label's name is
    its IMAP name), as subscriptions are stored."""
    return BY_NAME.get(name.upper(), name)


def key_name(key: str) -> str:
    """The IMAP name of a stored subscription key (:func:`label_key`'s inverse)."""
    return SYSTEM[key][0] if key in SYSTEM else key


def special_use(label: str, kind: str) -> str:
    return SYSTEM[label][1] if kind == "system" and label in SYSTEM else ""


def encode_utf7(name: str) -> str:
    """Modified UTF-7 of a mailbox name (for IMAP4rev1 clients)."""
    out: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            data = "".join(buffer).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            buffer.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buffer.append(ch)
    flush()
    return "".join(out)


def decode_utf7(name: str) -> str:
    """A modified UTF-7 name as text (ValueError when malformed)."""
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i)
        if end < 0:
            raise ValueError("unterminated modified UTF-7")
        chunk = name[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            data = chunk.replace(",", "/")
            data += "=" * (-len(data) % 4)
            out.append(base64.b64decode(data, validate=True).decode("utf-16-be"))
        i = end + 1
    return "".join(out)
