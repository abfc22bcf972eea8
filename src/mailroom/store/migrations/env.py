"""Alembic environment: runs with the connection mailroom hands it (see store/migrate.py)."""

from __future__ import annotations

from alembic import context

from mailroom.store.migrate import include_name
from mailroom.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - mailroom always passes its connection
    raise RuntimeError("run migrations through 'mailroom db upgrade'")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
