"""Migration 0014_jmap on a SQLite database with data: ids deleted before the migration are
never handed out again (each sequence starts above what the table and the change log hold)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    db = open_database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(db)
    finally:
        await db.close()
    app = await bootstrap.start(settings, run_migrations=False)
    try:
        principal = await app.authenticator.basic("a@example.org", "pw-123456789", "127.0.0.1")
        again = await app.registry.call("mail.labels.create", {"label": {"name": "New"}}, principal=principal)
    finally:
        await app.close()
    assert again["id"] > made["id"]
