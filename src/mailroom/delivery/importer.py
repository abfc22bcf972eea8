"""Reading mbox files and Maildir folders for import, with the labels and flags they carry.

The readers only read: every message is stored through the same ingest as arriving mail
(``mail.messages.import``), so an import is idempotent (the dedup key is Message-ID + hash of
the bytes, and the bytes of a file or mbox entry do not change between runs).

- **Maildir** (and Maildir++ ``.Sub.Folder`` or plain ``Sub/Folder`` subfolders): the folder
  gives the label (``INBOX`` → inbox, ``Sent`` → sent, ``Junk``/``Spam`` → spam, ...; other
  folders become user labels named by their path); the file name's ``:2,`` flags give read
  (``S``), starred (``F``), draft (``D``) and trash (``T``); mail in ``new/`` is unread; the
  arrival time is the file name's timestamp (Maildir delivery time).
- **mbox**: ``X-Gmail-Labels`` (Google Takeout) gives labels (``Inbox``, ``Sent``,
  ``Starred``, user labels; ``Opened``/``Unread`` give the read flag; ``Category ...`` is
  skipped); ``Status``/``X-Status`` give read and starred; the arrival time is the ``From``
  line's date, else the ``Date`` header. Mail with no location label is archived.
"""

from __future__ import annotations

import csv
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from mailroom.delivery.trace import header_block

#: Folder names (lower-cased, last path element) that map to system labels.
FOLDER_LABELS = {
    "inbox": "inbox",
    "sent": "sent",
    "sent items": "sent",
    "sent messages": "sent",
    "sent mail": "sent",
    "drafts": "drafts",
    "draft": "drafts",
    "junk": "spam",
    "junk e-mail": "spam",
    "junk email": "spam",
    "spam": "spam",
    "trash": "trash",
    "deleted items": "trash",
    "deleted messages": "trash",
    "bin": "trash",
    "archive": "archive",
    "archives": "archive",
    "all mail": "archive",
    "starred": "starred",
    "important": "important",
}
GMAIL_LABELS = {
    "inbox": "inbox",
    "sent": "sent",
    "draft": "drafts",
    "drafts": "drafts",
    "spam": "spam",
    "trash": "trash",
    "important": "important",
    "starred": "starred",
    "archived": "archive",
}
_LOCATIONS = frozenset({"inbox", "sent", "drafts", "spam", "trash", "archive"})
_FROM_LINE_DATE = re.compile(r"^From \S+\s+(.+)$")
MAX_LABEL_LENGTH = 100


@dataclass(frozen=True, slots=True)
class ImportItem:
    """One message to import, with what its container says about it."""

    raw: bytes
    labels: tuple[str, ...]
    is_read: bool = False
    is_starred: bool = False
    is_draft: bool = False
    received_at: datetime | None = None
    origin: str = ""


def _label(name: str) -> str:
    return name.strip()[:MAX_LABEL_LENGTH]


def folder_label(path: str) -> str:
    """The label for a folder path (``INBOX``, ``Sent``, ``Projects/2024``)."""
    last = path.rsplit("/", 1)[-1].strip().lower()
    if path.lower().startswith("[gmail]/"):
        last = path[len("[gmail]/") :].lower()
    return FOLDER_LABELS.get(last, _label(path))


def _header_date(raw: bytes) -> datetime | None:
    try:
        headers = BytesHeaderParser().parsebytes(header_block(raw) + b"\n\n")
        value = headers.get("date")
        if not value:
            return None
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# -- Maildir -----------------------------------------------------------------------------


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def maildir_folders(root: Path) -> list[tuple[str, Path]]:
    """(folder name, path) of every Maildir folder under ``root``; the root is ``INBOX``."""
    folders: list[tuple[str, Path]] = []
    if _is_maildir(root):
        folders.append(("INBOX", root))
    for dirpath, dirnames, _files in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in ("cur", "new", "tmp"))
        for name in dirnames:
            candidate = here / name
            if not _is_maildir(candidate):
                continue
            if name.startswith(".") and here == root:
                folder = name[1:].replace(".", "/")  # Maildir++: .Sub.Folder
            else:
                folder = candidate.relative_to(root).as_posix()
            folders.append((folder, candidate))
    return folders


def _maildir_flags(filename: str) -> str:
    _, sep, info = filename.partition(":2,")
    if not sep:
        _, sep, info = filename.partition("!2,")  # the variant for filesystems without ':'
    return info if sep else ""


def _maildir_time(filename: str) -> datetime | None:
    head = filename.split(".", 1)[0]
    if head.isdigit():
        try:
            return datetime.fromtimestamp(int(head), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def read_maildir(root: Path) -> Iterator[ImportItem]:
    """Every message of a Maildir tree, folder by folder, in file-name order."""
    for folder, path in maildir_folders(root):
        label = folder_label(folder)
        for sub in ("cur", "new"):
            directory = path / sub
            if not directory.is_dir():
                continue
            for entry in sorted(directory.iterdir()):
                if not entry.is_file() or entry.name.startswith("."):
                    continue
                raw = entry.read_bytes()
                flags = _maildir_flags(entry.name)
                labels = [label]
                if "T" in flags and "trash" not in labels:
                    labels.append("trash")
                yield ImportItem(
                    raw=raw,
                    labels=tuple(labels),
                    is_read=sub == "cur" and "S" in flags,
                    is_starred="F" in flags,
                    is_draft="D" in flags or label == "drafts",
                    received_at=_maildir_time(entry.name) or _header_date(raw),
                    origin=str(entry),
                )


def count_maildir(root: Path) -> int:
    return sum(
        1
        for _, path in maildir_folders(root)
        for sub in ("cur", "new")
        if (path / sub).is_dir()
        for entry in (path / sub).iterdir()
        if entry.is_file() and not entry.name.startswith(".")
    )


# -- mbox --------------------------------------------------------------------------------


def gmail_labels(value: str) -> tuple[list[str], bool | None]:
    """Labels and the read flag (None: not said) from an ``X-Gmail-Labels`` value."""
    labels: list[str] = []
    read: bool | None = None
    for item in next(csv.reader([value], skipinitialspace=True), []):
        name = item.strip()
        lowered = name.lower()
        if not name or lowered.startswith("category "):
            continue
        if lowered == "opened":
            read = True
        elif lowered == "unread":
            read = False
        elif lowered in GMAIL_LABELS:
            labels.append(GMAIL_LABELS[lowered])
        else:
            labels.append(_label(name))
    return list(dict.fromkeys(labels)), read


def _from_line_time(line: bytes) -> datetime | None:
    match = _FROM_LINE_DATE.match(line.decode("latin-1").strip())
    if not match:
        return None
    try:
        when = datetime.strptime(" ".join(match.group(1).split()[-5:]), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return when.replace(tzinfo=UTC)


def read_mbox(path: Path) -> Iterator[ImportItem]:
    """Every message of an mbox file, in file order."""
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            with_from = box.get_bytes(key, from_=True)
            first, _, raw = with_from.partition(b"\n")
            if not first.startswith(b"From "):
                first, raw = b"", with_from
            headers = BytesHeaderParser().parsebytes(header_block(raw) + b"\n\n")
            labels: list[str] = []
            read: bool | None = None
            if headers.get("x-gmail-labels") is not None:
                labels, read = gmail_labels(str(headers.get("x-gmail-labels")))
            status = str(headers.get("status") or "") + str(headers.get("x-status") or "")
            if read is None:
                read = "R" in status
            starred = "F" in str(headers.get("x-status") or "") or "starred" in labels
            if not _LOCATIONS & set(labels):
                labels.append("archive" if headers.get("x-gmail-labels") is not None else "inbox")
            yield ImportItem(
                raw=raw,
                labels=tuple(labels),
                is_read=read,
                is_starred=starred,
                is_draft="drafts" in labels,
                received_at=_from_line_time(first) or _header_date(raw),
                origin=f"{path}#{key}",
            )
    finally:
        box.close()


def count_mbox(path: Path) -> int:
    box = mailbox.mbox(path, create=False)
    try:
        return len(box)
    finally:
        box.close()
