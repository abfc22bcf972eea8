"""``mailroom db``: schema migrations (Alembic) without starting anything else."""

from __future__ import annotations

import typer

from mailroom.cli._output import fail
from mailroom.cli._state import state

db_app = typer.Typer(
    name="db",
    help="The database schema: migrate it, show its revision.",
    no_args_is_help=True,
    rich_help_panel="Server",
)


async def _upgrade(url: str) -> str | None:
    from mailroom.store import migrate
    from mailroom.store.engine import open_database

    db = open_database(url)
    try:
        await migrate.upgrade(db)
        return await migrate.current_revision(db)
    finally:
        await db.close()


async def _current(url: str) -> str | None:
    from mailroom.store import migrate
    from mailroom.store.engine import open_database

    db = open_database(url)
    try:
        return await migrate.current_revision(db)
    finally:
        await db.close()


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the newest schema (serve does this on start too)."""
    url = state(ctx).settings().effective_database_url
    try:
        import asyncio

        revision = asyncio.run(_upgrade(url))
    except Exception as exc:  # the driver's or Alembic's own error, said plainly
        fail(f"could not migrate the database: {exc}")
    typer.echo(f"database at revision {revision}")


@db_app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database's schema revision ('none' for an empty database)."""
    url = state(ctx).settings().effective_database_url
    try:
        import asyncio

        revision = asyncio.run(_current(url))
    except Exception as exc:
        fail(f"could not read the database: {exc}")
    typer.echo(revision or "none")
