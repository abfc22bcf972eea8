"""What the store takes from SQLAlchemy beyond its documented API, checked against the
installed version: an upgrade that removes or changes it fails here, naming the attribute
and the version, instead of as wrong rows somewhere in the suite."""

from __future__ import annotations

import gc
import importlib
import pkgutil
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    column,
    create_engine,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import sqlite

import mailroom.store
from mailroom.store._sqlalchemy_internals import SQLAlchemyChanged, result_columns
from mailroom.store.query import Query

VERSION = sqlalchemy.__version__
meta = MetaData()
users = Table("users", meta, Column("id", Integer, primary_key=True), Column("name", String))
notes = Table("notes", meta, Column("id", Integer, primary_key=True), Column("user_id", Integer))

STATEMENTS = {
    "columns": select(users.c.id, users.c.name),
    "label": select(users.c.name.label("who")),
    "unnamed function": select(func.count()).select_from(users),
    "two functions": select(func.min(users.c.id), func.max(users.c.id)),
    "same name twice": select(users.c.id, notes.c.id).join_from(users, notes, users.c.id == notes.c.user_id),
    "returning": insert(users).values(name="x").returning(users.c.id),
    "text with columns": text("SELECT 1 AS q").columns(column("q", Integer)),
}


def loud(what: str, detail: str) -> str:
    return f"SQLAlchemy {VERSION}: {what} {detail}; see mailroom/store/_sqlalchemy_internals.py"


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_result_columns_are_the_keys_and_types_of_sqlalchemys_own_results(name: str) -> None:
    stmt = STATEMENTS[name]
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        executed = list(conn.execute(stmt).keys())
    compiled = stmt.compile(dialect=engine.dialect)
    columns = result_columns(compiled)
    assert [c.key for c in columns] == executed, loud(
        "SQLCompiler._result_columns", f"no longer gives the result's keys for {name!r}"
    )
    assert all(type(c.key) is str for c in columns), loud("ResultColumnsEntry.keyname", "is no plain str")
    public = list(stmt.exported_columns)
    assert [type(c.type) for c in columns] == [type(c.type) for c in public], loud(
        "ResultColumnsEntry.type", f"is no longer the column's type for {name!r}"
    )


def test_a_statement_without_rows_has_no_result_columns() -> None:
    compiled = users.update().values(name="y").compile(dialect=sqlite.dialect())
    assert result_columns(compiled) == ()


def test_a_missing_attribute_is_named_with_the_version() -> None:
    with pytest.raises(SQLAlchemyChanged) as raised:
        result_columns(object())
    assert f"SQLAlchemy {VERSION}: SQLCompiler._result_columns does not exist" in str(raised.value)

    class Changed:
        _result_columns = [("id", "id", (), Integer())]

    with pytest.raises(SQLAlchemyChanged, match=r"_result_columns holds tuple, without \.keyname/\.type"):
        result_columns(Changed())


def every_prepared_query() -> list[Query]:
    for module in pkgutil.walk_packages(mailroom.store.__path__, "mailroom.store."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    return [o for o in gc.get_objects() if isinstance(o, Query)]


def test_every_prepared_statement_of_the_store_compiles_with_what_we_read() -> None:
    """Over the store's real statements, on SQLite (the only engine that runs them on the
    driver): the private result columns, and the public attributes the code generation
    reads too (``positiontup``, ``binds``)."""
    dialect = sqlite.dialect()
    queries = every_prepared_query()
    assert len(queries) > 50
    for query in queries:
        compiled: Any = query.stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
        columns = result_columns(compiled)
        exported = getattr(query.stmt, "exported_columns", ())
        assert len(columns) == len(exported), loud("SQLCompiler._result_columns", f"differs for {query.stmt}")
        assert isinstance(compiled.positiontup, list), loud("SQLCompiler.positiontup", "is not a list")
        for name in compiled.positiontup:
            assert name in compiled.binds, loud("SQLCompiler.binds", f"lacks the positional {name!r}")
        query.sqlite(dialect)  # builds the driver-level statement
