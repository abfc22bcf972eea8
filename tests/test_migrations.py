"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

Each test starts from an empty database: a SQLite file in tmp, and, when
``MAILROOM_TEST_DATABASE_URL`` is set, a PostgreSQL database created for the test and
dropped after it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, insert, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from mailroom.store import migrate
from mailroom.store import schema as schema_tables
from mailroom.store.engine import AsyncDatabase, Database, SQLiteDatabase, open_database

pytestmark = pytest.mark.anyio

PG_URL = os.environ.get("MAILROOM_TEST_DATABASE_URL")


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def _pg_admin(sql: str) -> None:
    assert PG_URL
    engine = create_async_engine(PG_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not PG_URL, reason="MAILROOM_TEST_DATABASE_URL is not set"),
            ],
        ),
    ]
)
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database: nothing in it, not even Alembic's version table."""
    if request.param == "sqlite":
        db = open_database(f"sqlite:///{tmp_path / 'empty.db'}")
        try:
            yield db
        finally:
            await db.close()
        return
    assert PG_URL
    name = f"mailroom_migrations_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    db = open_database(PG_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield db
    finally:
        await db.close()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def schema(db: Database) -> dict[str, Any]:
    """Every table with its columns, indexes, keys and constraints, as the database reports them."""

    def read(conn: Connection) -> dict[str, Any]:
        insp = inspect(conn)
        out: dict[str, Any] = {}
        for table in sorted(insp.get_table_names()):
            out[table] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
                "primary_key": insp.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (i["name"] or "", tuple(i["column_names"]), i["unique"]) for i in insp.get_indexes(table)
                ),
                "foreign_keys": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                    for f in insp.get_foreign_keys(table)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            }
        return out

    if isinstance(db, SQLiteDatabase):
        with db.sync_connection() as conn:
            return read(conn)
    assert isinstance(db, AsyncDatabase)
    async with db.engine.connect() as aconn:
        result: dict[str, Any] = await aconn.run_sync(read)
        return result


def describe(diff: list[Any]) -> str:
    """Alembic's comparison, one line per difference (its objects print at great length)."""
    lines = []
    for item in diff:
        for op in item if isinstance(item, list) else [item]:
            kind, *rest = op
            parts = [
                getattr(x, "name", None) or (x if isinstance(x, str) else type(x).__name__) for x in rest
            ]
            lines.append(f"  {kind}: {', '.join(str(p) for p in parts if p)}")
    return "\n".join(lines)


async def assert_matches_models(db: Database) -> None:
    diff = await migrate.differences(db)
    assert diff == [], (
        "the migrations do not build the models' schema (until the first release: "
        "run scripts/regen-initial-migration):\n" + describe(diff)
    )


async def test_empty_database_has_no_revision(empty_db: Database) -> None:
    assert await migrate.current_revision(empty_db) is None
    assert await schema(empty_db) == {}


async def test_upgrade_to_head_matches_the_models(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)

    assert await migrate.current_revision(empty_db) == head_revision()
    await assert_matches_models(empty_db)
    tables = await schema(empty_db)
    assert "alembic_version" in tables
    assert len(tables) > 1


async def test_upgrade_twice_is_a_no_op(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    before = await schema(empty_db)

    await migrate.upgrade(empty_db)

    assert await migrate.current_revision(empty_db) == head_revision()
    assert await schema(empty_db) == before
    await assert_matches_models(empty_db)


async def test_processes_migrating_at_once_take_turns(empty_db: Database, tmp_path: Path) -> None:
    """``serve``'s workers, a second server or ``mailroom db upgrade`` may start together on a
    new database: one migrates, the others wait and find the schema done (without the lock,
    two of them saw the old revision and both created its tables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env |= {"MAILROOM_DATA_DIR": str(tmp_path / "data"), "MAILROOM_DATABASE_URL": empty_db.url}
    command = [sys.executable, "-m", "mailroom", "db", "upgrade"]
    procs = [
        await asyncio.create_subprocess_exec(*command, env=env, stdout=PIPE, stderr=STDOUT) for _ in range(3)
    ]
    outputs = [(await p.communicate())[0].decode(errors="replace") for p in procs]

    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert await migrate.current_revision(empty_db) == head_revision()
    await assert_matches_models(empty_db)


def _user(i: int) -> dict[str, Any]:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "email": f"u{i}@example.org",
        "domain": "example.org",
        "password_hash": "x",
        "quota_bytes": 1,
        "forward_destinations": [],
        "created_at": now,
        "updated_at": now,
    }


async def _run(db: Database, fn: Any) -> Any:
    # The connection migrate itself uses (SQLite: the writer's; PostgreSQL: a transaction).
    return await migrate._with_connection(db, fn)


def _fill(conn: Connection) -> None:
    """Two users in a schema from before 0003_row_version (no row_version named)."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    conn.execute(insert(schema_tables.domain_names).values(name="example.org", kind="domain"))
    conn.execute(insert(schema_tables.domains).values(name="example.org", created_at=now, updated_at=now))
    for i in range(2):
        conn.execute(
            insert(schema_tables.addresses).values(
                address=f"u{i}@example.org", kind="user", domain="example.org"
            )
        )
        conn.execute(insert(schema_tables.users).values(_user(i)))


def _versions(conn: Connection) -> list[int]:
    return [int(v) for v in conn.execute(text("SELECT row_version FROM users ORDER BY id")).scalars()]


async def test_row_version_is_set_for_existing_users_and_kept_by_the_database(empty_db: Database) -> None:
    await migrate.upgrade(empty_db, "0002_fulltext")
    await _run(empty_db, _fill)

    await migrate.upgrade(empty_db)

    before = await _run(empty_db, _versions)
    assert len(set(before)) == 2  # each user its own version, not the column's default
    await _run(
        empty_db, lambda c: c.execute(text("UPDATE users SET quota_bytes = 2 WHERE email = 'u0@example.org'"))
    )
    after = await _run(empty_db, _versions)
    assert after[0] not in before
    assert after[1] == before[1]
    await assert_matches_models(empty_db)


async def test_row_version_downgrades_and_upgrades_again(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    await _run(empty_db, _fill)

    await _run(empty_db, lambda c: command.downgrade(migrate._config(c), "0002_fulltext"))

    assert await migrate.current_revision(empty_db) == "0002_fulltext"
    columns = [name for name, _type, _null in (await schema(empty_db))["users"]["columns"]]
    assert "row_version" not in columns
    # No trigger left that names the column.
    await _run(empty_db, lambda c: c.execute(text("UPDATE users SET quota_bytes = 3")))
    await migrate.upgrade(empty_db)
    assert len(set(await _run(empty_db, _versions))) == 2
    await assert_matches_models(empty_db)
