"""Migration 0014_jmap on a SQLite database with data: ids deleted before the migration are
never handed out again (each sequence starts above what the table and the change log hold)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

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
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{path}",
        mode="test",
        secret_key="test-secret-key-not-for-production",
        **FAST_ARGON2,
    )
    app = await bootstrap.start(settings, run_migrations=False)
    try:
        call = app.registry.call
        await call("admin.domains.create", {"domain": {"name": "example.org"}})
        await call("admin.users.create", {"user": {"email": "a@example.org", "password": "pw-123456789"}})
        principal = await app.authenticator.basic("a@example.org", "pw-123456789", "127.0.0.1")
        made = await call("mail.labels.create", {"label": {"name": "Doomed"}}, principal=principal)
        await call("mail.labels.delete", {"id": made["id"]}, principal=principal)
    finally:
        await app.close()
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
    app = await bootstrap.start(settings, run_migrations=False)
    try:
        principal = await app.authenticator.basic("a@example.org", "pw-123456789", "127.0.0.1")
        again = await app.registry.call("mail.labels.create", {"label": {"name": "New"}}, principal=principal)
    finally:
        await app.close()
    assert again["id"] > made["id"]


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
