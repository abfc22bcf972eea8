"""Imports from mbox and Maildir: labels and flags from the container, idempotent re-runs."""

from __future__ import annotations

import asyncio
import mailbox
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.mailhelpers import create_user, message

from mailroom.bootstrap import Mailroom
from mailroom.cli.mail_import import import_items
from mailroom.delivery.importer import (
    count_maildir,
    count_mbox,
    folder_label,
    gmail_labels,
    read_maildir,
    read_mbox,
)
from mailroom.settings import Settings
from mailroom.store import emails as email_store
from mailroom.store.emails import StoredEmail
from mailroom.store.mail_schema import emails

pytestmark = pytest.mark.anyio


def make_maildir(root: Path) -> Path:
    """INBOX (one read, one new), .Sent, .Projects.2026 (flagged), and a Junk folder."""
    for folder in ("", ".Sent", ".Projects.2026", "Junk"):
        for sub in ("cur", "new", "tmp"):
            (root / folder / sub).mkdir(parents=True, exist_ok=True)
    (root / "cur" / "1700000000.M1P1.host:2,S").write_bytes(message(message_id="<in1@x>", subject="Read one"))
    (root / "new" / "1700000100.M2P1.host").write_bytes(message(message_id="<in2@x>", subject="New one"))
    (root / ".Sent" / "cur" / "1700000200.M3P1.host:2,S").write_bytes(
        message(message_id="<s@x>", subject="Sent")
    )
    (root / ".Projects.2026" / "cur" / "1700000300.M4P1.host:2,FS").write_bytes(
        message(message_id="<p@x>", subject="Plan")
    )
    (root / "Junk" / "cur" / "1700000400.M5P1.host:2,").write_bytes(
        message(message_id="<j@x>", subject="Junk")
    )
    (root / "tmp" / "ignored").write_bytes(b"half-delivered")
    return root


def make_mbox(path: Path) -> Path:
    box = mailbox.mbox(path)
    gmail = [
        ("Inbox,Important,Opened", "<g1@x>", "Hello"),
        ('Sent,"Work, old",Category Updates', "<g2@x>", "Report"),
        ("Starred,Unread", "<g3@x>", "Flagged"),
    ]
    for labels, mid, subject in gmail:
        msg = mailbox.mboxMessage(
            message(message_id=mid, subject=subject, headers={"X-Gmail-Labels": labels})
        )
        msg.set_from("bob@example.net", datetime(2020, 5, 17, 8, 30, tzinfo=UTC).timetuple())
        box.add(msg)
    plain = mailbox.mboxMessage(message(message_id="<p@x>", subject="Plain", headers={"Status": "RO"}))
    box.add(plain)
    box.flush()
    box.close()
    return path


async def stored(mailroom: Mailroom, user_id: int) -> dict[str, StoredEmail]:
    async with mailroom.runtime.db.read() as tx:
        ids = await tx.scalars(select(emails.c.id).where(emails.c.user_id == user_id))
        rows = [await email_store.get(tx, user_id, i) for i in ids]
    return {r.subject: r for r in rows if r is not None}


def test_folder_and_gmail_label_mapping() -> None:
    assert folder_label("INBOX") == "inbox"
    assert folder_label("Sent Items") == "sent"
    assert folder_label("[Gmail]/All Mail") == "archive"
    assert folder_label("Projects/2026") == "Projects/2026"
    assert gmail_labels('Inbox,"Work, old",Category Social,Opened') == (["inbox", "Work, old"], True)
    assert gmail_labels("Unread,Starred") == (["starred"], False)


async def test_maildir_import_labels_flags_and_is_idempotent(mailroom: Mailroom, tmp_path: Path) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    root = make_maildir(tmp_path / "Maildir")
    assert count_maildir(root) == 5
    first = await import_items(mailroom, "alice@example.org", read_maildir(root))
    assert (first.imported, first.duplicates, first.failed) == (5, 0, 0)
    again = await import_items(mailroom, "alice@example.org", read_maildir(root))
    assert (again.imported, again.duplicates, again.failed) == (0, 5, 0)
    mail = await stored(mailroom, alice)
    assert len(mail) == 5
    assert (mail["Read one"].labels, mail["Read one"].is_read) == (("inbox",), True)
    assert (mail["New one"].labels, mail["New one"].is_read) == (("inbox",), False)
    assert mail["Sent"].labels == ("sent",)
    assert mail["Plan"].labels == ("Projects/2026", "starred")
    assert mail["Plan"].is_starred is True
    assert mail["Junk"].labels == ("spam",)
    assert mail["Read one"].received_at == datetime.fromtimestamp(1700000000, tz=UTC)
    assert {m.source for m in mail.values()} == {"import"}


async def test_mbox_import_uses_gmail_labels_and_is_idempotent(mailroom: Mailroom, tmp_path: Path) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    path = make_mbox(tmp_path / "takeout.mbox")
    assert count_mbox(path) == 4
    items = list(read_mbox(path))
    assert items[0].received_at == datetime(2020, 5, 17, 8, 30, tzinfo=UTC)
    first = await import_items(mailroom, "alice@example.org", iter(items))
    assert (first.imported, first.failed) == (4, 0)
    again = await import_items(mailroom, "alice@example.org", read_mbox(path))
    assert (again.imported, again.duplicates) == (0, 4)
    mail = await stored(mailroom, alice)
    assert mail["Hello"].labels == ("important", "inbox")
    assert mail["Hello"].is_read is True
    assert mail["Report"].labels == ("Work, old", "sent")
    assert mail["Flagged"].labels == ("archive", "starred")
    assert (mail["Flagged"].is_read, mail["Flagged"].is_starred) == (False, True)
    assert (mail["Plain"].labels, mail["Plain"].is_read) == (("inbox",), True)


async def test_failures_are_counted_not_fatal(mailroom: Mailroom, tmp_path: Path) -> None:
    await create_user(mailroom, "alice@example.org", quota_bytes=100)
    root = make_maildir(tmp_path / "Maildir")
    report = await import_items(mailroom, "alice@example.org", read_maildir(root))
    assert report.failed == 5
    assert "full" in report.errors[0]
    missing = await import_items(mailroom, "nobody@example.org", read_maildir(root))
    assert missing.failed == 5


@pytest.mark.slow
async def test_the_import_command_shows_progress_and_is_idempotent(
    mailroom: Mailroom, settings: Settings, tmp_path: Path
) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    root = make_maildir(tmp_path / "Maildir")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env |= {
        "MAILROOM_DATA_DIR": str(settings.data_dir),
        "MAILROOM_DATABASE_URL": settings.effective_database_url,
        "MAILROOM_MODE": "test",
        "MAILROOM_SECRET_KEY": "test-secret-key-not-for-production",
    }
    command = [sys.executable, "-m", "mailroom", "import", "maildir", "alice@example.org", str(root)]

    def run(user: str = "alice@example.org") -> subprocess.CompletedProcess[str]:
        argv = [*command[:-2], user, str(root)]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)

    first = await asyncio.to_thread(run)
    assert first.returncode == 0, first.stderr
    assert "imported 5, already present 0, failed 0" in first.stderr
    assert "5/5" in first.stderr  # the progress bar's count
    second = await asyncio.to_thread(run)
    assert "imported 0, already present 5, failed 0" in second.stderr
    assert len(await stored(mailroom, alice)) == 5
    missing = await asyncio.to_thread(run, "nobody@example.org")
    assert missing.returncode == 1
