"""Migration 0022_jmap3 on a SQLite database with IMAP subscriptions stored by name (0020):
the choices about existing labels move to ``label_subscriptions`` (by label id), names with
no label stay, and downgrading puts them back as names."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command

from mailroom.store import migrate
from mailroom.store.engine import open_database
from tests.jmap.test_migration import _old_rows

pytestmark = pytest.mark.anyio


async def _to(path: Path, revision: str, *, down: bool = False) -> None:
    db = open_database(f"sqlite:///{path}")
    try:
        if down:
            await migrate._with_connection(db, lambda c: command.downgrade(migrate._config(c), revision))
        else:
            await migrate.upgrade(db, revision)
    finally:
        await db.close()


def _rows(path: Path, sql: str) -> set[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return set(db.execute(sql).fetchall())
    finally:
        db.close()


async def test_subscriptions_by_name_move_to_label_ids(tmp_path: Path) -> None:
    path = tmp_path / "mailroom.db"
    await _to(path, "0008_identity")
    _old_rows(path)  # user 1 with labels inbox (1), archive (2) ... Kept (6)
    await _to(path, "0021_jmap2")
    db = sqlite3.connect(path)
    try:
        db.executemany(
            "INSERT INTO imap_subscriptions (user_id, name, subscribed) VALUES (1, ?, ?)",
            [("Kept", 0), ("archive", 1), ("Nowhere", 1)],
        )
        db.commit()
    finally:
        db.close()

    await _to(path, "0022_jmap3")
    assert _rows(path, "SELECT label_id, user_id, subscribed FROM label_subscriptions") == {
        (6, 1, 0),
        (2, 1, 1),
    }
    assert _rows(path, "SELECT user_id, name, subscribed FROM imap_subscriptions") == {(1, "Nowhere", 1)}

    await _to(path, "0021_jmap2", down=True)
    assert _rows(path, "SELECT user_id, name, subscribed FROM imap_subscriptions") == {
        (1, "Kept", 0),
        (1, "archive", 1),
        (1, "Nowhere", 1),
    }
