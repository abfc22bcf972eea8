"""Migration 0014_jmap on a SQLite database with data: ids deleted before the migration are
never handed out again (each sequence starts above what the table and the change log hold)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import argon2
import pytest
from sqlalchemy import text

from mailroom import bootstrap
from mailroom.settings import Settings
from mailroom.store import migrate
from mailroom.store.engine import open_database
from tests.conftest import FAST_ARGON2

pytestmark = pytest.mark.anyio


async def test_sequences_start_above_every_id_ever_used(tmp_path: Path) -> None:
    path = tmp_path / "mailroom.db"
    db = open_database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(db, "0008_identity")
    finally:
        await db.close()
    # The data is written as rows of the 0008 schema: today's code reads columns that later
    # migrations add, so it cannot run against a database this old.
    _old_rows(path)
    made = {"id": _DOOMED_LABEL_ID}
    before = _snapshot(path)
    db = open_database(f"sqlite:///{path}")
    try:
        with db.sync_connection() as conn:
            # What SQLite's defensive mode forbids (Python 3.11 cannot switch it on):
            # writing the schema table directly.
            raw: Any = conn.connection.dbapi_connection
            raw.set_authorizer(_defensive)
            with pytest.raises(Exception, match="not authorized"):
                conn.execute(text("PRAGMA writable_schema = ON"))
        await migrate.upgrade(db)
    finally:
        await db.close()
    after = _snapshot(path)
    # Every row is still there (dropping a table with foreign keys on would have deleted the
    # labels and settings of every user), and every index and trigger is made again.
    assert {t: n for t, n in after["rows"].items() if t in before["rows"]} == before["rows"]
    assert before["objects"] <= after["objects"]
    assert before["rows"]["labels"] > 0
    for table in ("users", "labels", "threads", "emails"):
        assert "AUTOINCREMENT" in after["tables"][table]
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{path}",
        mode="test",
        secret_key="test-secret-key-not-for-production",
        **FAST_ARGON2,
    )
    app = await bootstrap.start(settings, run_migrations=False)
    try:
        principal = await app.authenticator.basic("a@example.org", "pw-123456789", "127.0.0.1")
        again = await app.registry.call("mail.labels.create", {"label": {"name": "New"}}, principal=principal)
    finally:
        await app.close()
    assert again["id"] > made["id"]


_DOOMED_LABEL_ID = 7
_NOW = "2026-01-01T00:00:00.000000+00:00"


def _fill(db: sqlite3.Connection, table: str, **values: Any) -> None:
    """Insert a row giving every NOT NULL column without a default a value of its type."""
    for _, name, kind, notnull, default, _pk in db.execute(f'PRAGMA table_info("{table}")'):
        if name in values or not notnull or default is not None or name == "id":
            continue
        kind = kind.upper()
        if kind.startswith(("INT", "BIGINT", "BOOL", "FLOAT", "REAL", "NUMERIC")):
            values[name] = 0
        elif kind == "JSON":
            values[name] = "[]"
        elif name.endswith("_at"):
            values[name] = _NOW
        else:
            values[name] = ""
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    db.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(values.values()))


def _old_rows(path: Path) -> None:
    """A domain, a user who can log in, some labels and one label deleted (its id the
    highest ever used: the new sequence must start above it)."""
    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA foreign_keys = ON")
        _fill(db, "domain_names", name="example.org", kind="domain")
        _fill(db, "domains", name="example.org")
        _fill(db, "addresses", address="a@example.org", kind="user", domain="example.org")
        _fill(
            db,
            "users",
            id=1,
            email="a@example.org",
            domain="example.org",
            password_hash=hasher.hash("pw-123456789"),
            quota_bytes=1 << 30,
            enabled=1,
            enable_imap=1,
            enable_pop=1,
            enable_smtp=1,
            spam_threshold=5.0,
        )
        for n, name in enumerate(("inbox", "archive", "sent", "trash", "spam", "Kept"), start=1):
            _fill(db, "labels", id=n, user_id=1, name=name, kind="user" if name == "Kept" else "system")
        _fill(db, "labels", id=_DOOMED_LABEL_ID, user_id=1, name="Doomed", kind="user")
        db.execute("DELETE FROM labels WHERE id = ?", (_DOOMED_LABEL_ID,))
        db.commit()
    finally:
        db.close()


def _defensive(action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action == sqlite3.SQLITE_PRAGMA and arg1 == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _snapshot(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    try:
        master = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        tables = {name: sql for kind, name, _, sql in master if kind == "table"}
        rows = {
            name: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in tables
            if not name.startswith("sqlite_") and "fts" not in name
        }
        objects = {(kind, name) for kind, name, _, sql in master if kind in ("index", "trigger") and sql}
        return {"tables": tables, "rows": rows, "objects": objects}
    finally:
        db.close()
