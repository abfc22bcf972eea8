"""A real third-party IMAP client: isync's mbsync (Debian's ``isync``) syncing a mailroom account
to a local Maildir and back over loopback: mail delivered over LMTP reaches the Maildir, flags
and a deletion made locally and a message added locally reach the server, and a flag and a
delivery on the server come back. Skipped only when mbsync is not installed (.ci/run installs
it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.imap.conftest import PASSWORD, Imap

pytestmark = pytest.mark.anyio

MBSYNC = shutil.which("mbsync")


def _config(folder: Path, port: int) -> Path:
    maildir = folder / "Mail"
    maildir.mkdir()
    config = folder / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount mailroom
Host 127.0.0.1
Port {port}
User alice@example.org
Pass "{PASSWORD}"
SSLType None
AuthMechs PLAIN
Timeout 20

IMAPStore remote
Account mailroom

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel mailroom
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
"""
    )
    return config


def _sync(config: Path) -> str:
    assert MBSYNC is not None
    done = subprocess.run(
        [MBSYNC, "-c", str(config), "-a"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _messages(maildir: Path) -> dict[str, Path]:
    """``Subject → file`` of the Maildir's INBOX (new and cur)."""
    out = {}
    for sub in ("new", "cur"):
        for path in (maildir / "INBOX" / sub).iterdir():
            for line in path.read_bytes().splitlines():
                if line.startswith(b"Subject: "):
                    out[line[9:].decode()] = path
                    break
    return out


def _flags(path: Path) -> str:
    return path.name.rpartition(":2,")[2] if ":2," in path.name else ""


def _server_flags(imap: Imap) -> dict[str, str]:
    """``Subject → FLAGS`` of the server's INBOX, as imaplib reads them."""
    conn = imap.login()
    try:
        conn.select("INBOX", readonly=True)
        typ, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        out = {}
        for item in data:
            if isinstance(item, tuple):
                subject = item[1].decode().strip().removeprefix("Subject: ")
                out[subject] = item[0].decode().partition("FLAGS (")[2].partition(")")[0]
        return out
    finally:
        conn.logout()


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (Debian package isync) is not installed")
async def test_mbsync_syncs_an_account_both_ways(imap: Imap, tmp_path: Path) -> None:
    config = _config(tmp_path, imap.port)
    maildir = tmp_path / "Mail"
    await imap.deliver(subject="first", message_id="<first@example.net>")
    await imap.deliver(subject="second", message_id="<second@example.net>")
    await asyncio.to_thread(_sync, config)
    local = _messages(maildir)
    assert set(local) == {"first", "second"}

    # Locally: "first" read and flagged, "second" deleted (trashed, then expunged by the sync),
    # and a new message written into the Maildir.
    first = local["first"]
    first.rename(first.with_name(first.name.partition(":2,")[0] + ":2,FS"))
    second = local["second"]
    second.rename(second.with_name(second.name.partition(":2,")[0] + ":2,T"))
    added = maildir / "INBOX" / "cur" / f"{int(time.time())}.local1.test:2,S"
    added.write_bytes(
        b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: written locally\r\n"
        b"Message-ID: <local1@example.org>\r\nDate: Sat, 05 Dec 2026 20:00:00 +0000\r\n\r\nhello\r\n"
    )
    await asyncio.to_thread(_sync, config)
    on_server = await asyncio.to_thread(_server_flags, imap)
    assert set(on_server) == {"first", "written locally"}, on_server
    assert set(on_server["first"].split()) == {"\\Seen", "\\Flagged"}
    assert "\\Seen" in on_server["written locally"].split()

    # On the server: "first" answered, a new delivery; the next sync brings both.
    conn = await asyncio.to_thread(imap.login)
    try:
        await asyncio.to_thread(conn.select, "INBOX")
        typ, found = await asyncio.to_thread(conn.uid, "SEARCH", "SUBJECT", "first")
        assert typ == "OK"
        [uid] = found[0].split()
        typ, _ = await asyncio.to_thread(conn.uid, "STORE", uid.decode(), "+FLAGS", "(\\Answered)")
        assert typ == "OK"
    finally:
        await asyncio.to_thread(conn.logout)
    await imap.deliver(subject="third", message_id="<third@example.net>")
    await asyncio.to_thread(_sync, config)
    local = _messages(maildir)
    assert set(local) == {"first", "written locally", "third"}
    assert _flags(local["first"]) == "FRS"
    # A sync with nothing new changes nothing.
    await asyncio.to_thread(_sync, config)
    assert set(_messages(maildir)) == {"first", "written locally", "third"}
    assert set(await asyncio.to_thread(_server_flags, imap)) == {"first", "written locally", "third"}
