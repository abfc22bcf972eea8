"""The ``mailroom`` command line: serve, migrate, inspect, and every admin method.

Hand-written commands (``serve``, ``db``, ``settings``, ``config``, ``methods``) live in
their modules; ``mailroom <object> <verb>`` commands are generated from the registry by
:mod:`mailroom.cli.objects` when the command line is parsed, so a new admin method is a
new command with no code here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape
from typer.core import TyperGroup
from typer.main import get_group

from mailroom.cli import config, db, mail_import, methods, serve, settings
from mailroom.cli._object_index import OBJECTS
from mailroom.cli._state import CliState, state

__all__ = ["app", "main"]


class MailroomGroup(TyperGroup):
    """The root group: hand-written commands plus one generated group per admin object.

    The generated groups come from the registry, which imports every service and the store;
    so the root's help lists the objects from :data:`mailroom.cli._object_index.OBJECTS`
    instead, and the registry is built only when an object command is used.
    """

    _objects: dict[str, Any] | None = None
    _plurals: dict[str, Any] | None = None
    _listing = False

    def _generated(self, ctx: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._objects is None or self._plurals is None:
            from mailroom.cli.objects import object_groups, singular

            self._objects, self._plurals = {}, {}
            for objects, group in object_groups(state(ctx).contracts().methods("admin")).items():
                name = singular(objects)
                if name in self.commands:
                    continue  # a hand-written command of that name wins
                command = get_group(group)
                command.rich_help_panel = "Objects"
                self._objects[name] = command
                self._plurals[objects] = command
        return self._objects, self._plurals

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        if self._listing:
            return own + [n for n in OBJECTS if n not in own]
        objects, _ = self._generated(ctx)
        return own + [n for n in objects if n not in own]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        if self._listing and cmd_name in OBJECTS:
            # Only its name and help are shown: no need for the registry.
            listed = click.Group(cmd_name, help=escape(OBJECTS[cmd_name][1]))
            listed.rich_help_panel = "Objects"  # type: ignore[attr-defined]
            return listed
        objects, plurals = self._generated(ctx)
        return objects.get(cmd_name) or plurals.get(cmd_name)


app = typer.Typer(
    name="mailroom",
    cls=MailroomGroup,
    help="mailroom: a mail platform's API server. Every admin method is a command: mailroom <object> <verb>.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would include settings and secrets
)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", envvar="MAILROOM_DATA_DIR", help="Folder for the database, blobs and keys."
        ),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", envvar="MAILROOM_CONFIG", help="TOML settings file.")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="MAILROOM_DATABASE_URL",
            help="SQLAlchemy URL (default: SQLite in the data folder).",
        ),
    ] = None,
) -> None:
    """mailroom: a mail platform's API server."""
    ctx.obj = CliState({"data_dir": data_dir, "config": config_file, "database_url": database_url})


app.command("serve", rich_help_panel="Server")(serve.serve)
app.add_typer(db.db_app, rich_help_panel="Server")
app.command("settings", rich_help_panel="Server")(settings.show_settings)
app.add_typer(config.config_app, rich_help_panel="Configuration")
app.command("methods", rich_help_panel="Introspection")(methods.methods)
app.add_typer(mail_import.import_app, rich_help_panel="Mail")


def main() -> None:
    """Console-script entry point (``mailroom``) and ``python -m mailroom``."""
    app(prog_name="mailroom")
