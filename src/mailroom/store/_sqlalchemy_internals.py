"""The one place in mailroom that uses SQLAlchemy's private API.

Prepared statements (:mod:`.query`) run on SQLite straight on the driver, so they need to
know, for each column a compiled statement returns, the key SQLAlchemy's own result would
give it and its type. The public ``exported_columns`` is close but not the same: an unnamed
expression (``count(*)``) is keyed ``count`` there and ``count_1`` in a result row, and the
two engines must give the same keys. The compiler's ``_result_columns`` is what SQLAlchemy's
results themselves are built from, so that is what we read, here and nowhere else.

Everything else the prepared statements need is public (``compiled.string``,
``positiontup``, ``binds``, ``TypeEngine.dialect_impl().bind_processor()`` /
``result_processor()``). ``tests/store/test_sqlalchemy_internals.py`` checks what this
module relies on, and fails naming the attribute and the SQLAlchemy version if an upgrade
removes or changes it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy


class ReturnedColumn(NamedTuple):
    """A column of a statement's result: its key in a result row, and its SQLAlchemy type."""

    key: str
    type: Any


class SQLAlchemyChanged(RuntimeError):
    """SQLAlchemy no longer has the private attribute this module reads (an upgrade)."""

    def __init__(self, attribute: str, problem: str) -> None:
        super().__init__(
            f"SQLAlchemy {sqlalchemy.__version__}: {attribute} {problem}; "
            "mailroom.store._sqlalchemy_internals reads it for prepared statements on SQLite "
            "(written against SQLAlchemy 2.0/2.1): adapt that module to this version"
        )
        self.attribute = attribute


def result_columns(compiled: Any) -> tuple[ReturnedColumn, ...]:
    """The columns a compiled statement returns, in order (none for a statement without rows).

    Reads ``SQLCompiler._result_columns``: a list of ``ResultColumnsEntry(keyname, name,
    objects, type)``.
    """
    try:
        entries = compiled._result_columns
    except AttributeError:
        raise SQLAlchemyChanged("SQLCompiler._result_columns", "does not exist") from None
    columns = []
    for entry in entries or ():
        try:
            key, type_ = entry.keyname, entry.type
        except AttributeError:
            raise SQLAlchemyChanged(
                "SQLCompiler._result_columns", f"holds {type(entry).__name__}, without .keyname/.type"
            ) from None
        # Plain str (not quoted_name): orjson writes only exact str keys.
        columns.append(ReturnedColumn(str(key), type_))
    return tuple(columns)
