"""Prepared reads on the SQLite driver: rows as dicts (converted in a generated builder) and
rows as tuples, against what SQLAlchemy's own execution gives."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    select,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import StaticPool

from mailroom.store._prepared import insert_query
from mailroom.store.query import Query, _row_builder
from mailroom.store.types import UTCDateTime

meta = MetaData()
things = Table(
    "things",
    meta,
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("odd 'name\"", Integer),
    Column("flag", Boolean),
    Column("tags", JSON),
    Column("at", UTCDateTime),
)
WHEN = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
ROWS = [
    {"id": 1, "name": "a", "odd 'name\"": 7, "flag": True, "tags": ["x", "y"], "at": WHEN},
    {"id": 2, "name": None, "odd 'name\"": None, "flag": None, "tags": None, "at": None},
    {"id": 3, "name": "c", "odd 'name\"": 0, "flag": False, "tags": [], "at": WHEN},
]


def connection() -> sqlite3.Connection:
    """A driver connection holding ``ROWS``, written through SQLAlchemy (its bind processors)."""
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(things.insert(), ROWS)
    return raw


def test_rows_and_tuples_are_the_stored_values_converted() -> None:
    raw = connection()
    query = Query(select(things).where(things.c.id >= bindparam("low")).order_by(things.c.id)).sqlite(
        sqlite.dialect()
    )
    assert query.rows(raw, {"low": 1}) == ROWS
    assert query.tuples(raw, {"low": 2}) == [tuple(r.values()) for r in ROWS[1:]]
    plain = Query(select(things.c.id, things.c.name).order_by(things.c.id)).sqlite(sqlite.dialect())
    assert plain.tuples(raw, None) == [(1, "a"), (2, None), (3, "c")]


def test_the_row_builder_keeps_names_as_they_are_and_leaves_none_alone() -> None:
    build = _row_builder(["a", "b'\"c", "n"], {2: lambda v: v * 2})
    assert build((1, "x", 5)) == {"a": 1, "b'\"c": "x", "n": 10}
    assert build((None, None, None)) == {"a": None, "b'\"c": None, "n": None}


def test_prepared_writes_bind_processed_values_and_scalar_defaults() -> None:
    defaults = Table(
        "defaulted",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("label", String, default="none"),
        Column("tags", JSON),
        Column("at", UTCDateTime),
    )
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE defaulted (id INTEGER PRIMARY KEY, label TEXT, tags JSON, at VARCHAR(32))")
    insert = insert_query(defaults).sqlite(sqlite.dialect())
    insert.run(raw, {"tags": ["a"], "at": WHEN})
    insert.run(raw, {"label": "given", "tags": None, "at": None})
    select_all = Query(select(defaults).order_by(defaults.c.id)).sqlite(sqlite.dialect())
    assert select_all.rows(raw, None) == [
        {"id": 1, "label": "none", "tags": ["a"], "at": WHEN},
        {"id": 2, "label": "given", "tags": None, "at": None},
    ]
    assert raw.execute("SELECT at FROM defaulted WHERE id = 1").fetchone() == (
        "2026-11-21 12:00:00.123456+00:00",
    )
