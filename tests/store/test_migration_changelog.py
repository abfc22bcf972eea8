"""Migration 0005_changelog on existing mail: UIDs in arrival order, a modseq per email, a
UIDVALIDITY per label, a state per account whose floor is that state; then down and up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Column, Connection, MetaData, Table, insert, text

from mailroom.errors import CannotCalculateChanges
from mailroom.store import changelog, migrate
from mailroom.store.engine import Database
from mailroom.store.mail_schema import email_labels, emails, labels, threads
from tests.test_migrations import _fill, _run, assert_matches_models, empty_db, schema

__all__ = ["empty_db"]

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _email(user_id: int, thread_id: int, n: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "thread_id": thread_id,
        "blob_sha": "0" * 64,
        "message_id": f"<{user_id}.{n}@x>",
        "in_reply_to": [],
        "references": [],
        "subject": "s",
        "from_addrs": [],
        "to_addrs": [],
        "cc_addrs": [],
        "bcc_addrs": [],
        "reply_to_addrs": [],
        "received_at": NOW,
        "size": 10,
        "snippet": "",
        "has_attachments": False,
        "attachments": [],
        "encryption": "none",
        "is_read": False,
        "is_starred": False,
        "is_draft": False,
        "source": "lmtp",
        "dedup": f"{user_id}-{n}",
    }


#: ``emails`` as it was at 0003 (later revisions add columns the model has, with defaults that
#: an insert through the model would name).
_EMAILS_0003 = Table(
    "emails",
    MetaData(),
    *(
        Column(c.name, c.type, primary_key=c.primary_key)
        for c in emails.c
        if c.name not in ("version", "trace")
    ),
)


def _fill_mail(conn: Connection) -> None:
    """Two users as before 0005: each an inbox with 3 emails, a label Work with the 1st and 3rd."""
    _fill(conn)
    conn.execute(
        text("INSERT INTO blobs (sha, size, created_at) VALUES (:sha, 10, :now)"),
        {"sha": "0" * 64, "now": NOW},
    )
    for user_id in (1, 2):
        label_ids = [
            conn.execute(
                insert(labels)
                .values(user_id=user_id, name=name, kind=kind, created_at=NOW)
                .returning(labels.c.id)
            ).scalar_one()
            for name, kind in (("inbox", "system"), ("Work", "user"))
        ]
        thread_id = conn.execute(
            insert(threads)
            .values(user_id=user_id, created_at=NOW, last_date=NOW, latest_from=[], participants=[])
            .returning(threads.c.id)
        ).scalar_one()
        for n in range(3):
            email_id = conn.execute(
                insert(_EMAILS_0003).values(_email(user_id, thread_id, n)).returning(_EMAILS_0003.c.id)
            ).scalar_one()
            conn.execute(insert(email_labels).values(email_id=email_id, label_id=label_ids[0]))
            if n != 1:
                conn.execute(insert(email_labels).values(email_id=email_id, label_id=label_ids[1]))


def _read(conn: Connection) -> dict[str, Any]:
    q = conn.execute
    return {
        "uids": [
            tuple(r)
            for r in q(
                text(
                    "SELECT l.user_id, l.name, e.id, el.uid FROM email_labels el "
                    "JOIN labels l ON l.id = el.label_id JOIN emails e ON e.id = el.email_id "
                    "ORDER BY l.user_id, l.name, el.uid"
                )
            )
        ],
        "labels": [
            tuple(r) for r in q(text("SELECT user_id, name, uidvalidity, uidnext FROM labels ORDER BY id"))
        ],
        "modseqs": [
            tuple(r)
            for r in q(
                text(
                    "SELECT DISTINCT e.user_id, e.id, el.modseq FROM emails e "
                    "JOIN email_labels el ON el.email_id = e.id ORDER BY e.id"
                )
            )
        ],
        "states": [
            tuple(r) for r in q(text("SELECT user_id, modseq, floor FROM mail_states ORDER BY user_id"))
        ],
    }


async def test_existing_mail_gets_uids_modseqs_and_a_state_then_down_and_up(empty_db: Database) -> None:
    await migrate.upgrade(empty_db, "0003_row_version")
    await _run(empty_db, _fill_mail)

    await migrate.upgrade(empty_db)

    got = await _run(empty_db, _read)
    # UIDs per label in arrival (id) order, from 1.
    assert got["uids"] == [
        (1, "Work", 1, 1),
        (1, "Work", 3, 2),
        (1, "inbox", 1, 1),
        (1, "inbox", 2, 2),
        (1, "inbox", 3, 3),
        (2, "Work", 4, 1),
        (2, "Work", 6, 2),
        (2, "inbox", 4, 1),
        (2, "inbox", 5, 2),
        (2, "inbox", 6, 3),
    ]
    # UIDNEXT after the highest; UIDVALIDITY above every email's modseq, one per label.
    assert got["labels"] == [(1, "inbox", 4, 4), (1, "Work", 5, 3), (2, "inbox", 4, 4), (2, "Work", 5, 3)]
    assert got["modseqs"] == [(1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 4, 1), (2, 5, 2), (2, 6, 3)]
    assert got["states"] == [(1, 5, 5), (2, 5, 5)]
    await assert_matches_models(empty_db)

    # From now on the database keeps it: a new email in the inbox takes the next state and UID.
    def add(conn: Connection) -> None:
        email_id = conn.execute(insert(emails).values(_email(1, 1, 9)).returning(emails.c.id)).scalar_one()
        conn.execute(insert(email_labels).values(email_id=email_id, label_id=1))

    await _run(empty_db, add)
    async with empty_db.read() as tx:
        found = await changelog.changes(tx, 1, changelog.ChangesQuery(changelog.Kind.EMAIL, 5, 100))
        assert (found.created, found.updated, found.destroyed) == ((7,), (), ())
        assert [(m.uid, m.email_id) for m in await changelog.uids(tx, 1, 1)][-1] == (4, 7)
        with pytest.raises(CannotCalculateChanges):  # before the migration: no log
            await changelog.changes(tx, 1, changelog.ChangesQuery(changelog.Kind.EMAIL, 4, 100))
        assert (await changelog.state(tx, 2)).modseq == 5  # the other account untouched

    await _run(empty_db, lambda c: command.downgrade(migrate._config(c), "0003_row_version"))
    assert await migrate.current_revision(empty_db) == "0003_row_version"
    tables = await schema(empty_db)
    assert "mail_changes" not in tables
    assert "mail_states" not in tables
    assert "uid" not in [c[0] for c in tables["email_labels"]["columns"]]
    # No trigger left naming what is gone.
    await _run(empty_db, lambda c: c.execute(text("UPDATE emails SET is_read = true")))
    await _run(empty_db, lambda c: c.execute(text("DELETE FROM email_labels WHERE email_id = 2")))

    await migrate.upgrade(empty_db)
    again = await _run(empty_db, _read)
    assert again["states"] == [(1, 6, 6), (2, 5, 5)]
    assert [u for u in again["uids"] if u[:2] == (1, "inbox")] == [
        (1, "inbox", 1, 1),
        (1, "inbox", 3, 2),
        (1, "inbox", 7, 3),
    ]
    await assert_matches_models(empty_db)
