"""``mailroom config export|import``: the whole configuration as a YAML (or JSON) file.

Both go through the registry (``admin.config.export`` / ``admin.config.import``) as the
SYSTEM principal; this module only turns the document into text and back.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from mailroom.auth.principal import SYSTEM
from mailroom.cli._output import err_console, fail, json_text, print_json, print_table
from mailroom.cli._state import CliState, state
from mailroom.settings import Settings

config_app = typer.Typer(
    name="config",
    help="Export and import the whole configuration (domains, users, aliases, ...) as YAML.",
    no_args_is_help=True,
    rich_help_panel="Configuration",
)


def _dumper() -> Any:
    """A YAML dumper writing multi-line text (DKIM keys, auto-reply bodies) as literal blocks,
    readable in diffs. (PyYAML is imported when a command needs it, not for --help.)"""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def to_yaml(document: dict[str, Any], *, secrets: bool) -> str:
    import yaml

    header = "# mailroom configuration; apply with: mailroom config import FILE [--dry-run]\n"
    if secrets:
        header += "# It contains secrets (password hashes or DKIM private keys): keep it private.\n"
    body = yaml.dump(
        document, Dumper=_dumper(), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return header + body


def _write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` readable by its owner only: an export is personal data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)


@config_app.command("export")
def export(
    ctx: typer.Context,
    with_password_hashes: Annotated[
        bool,
        typer.Option(
            "--with-password-hashes", help="Include users' password hashes (to move them elsewhere)."
        ),
    ] = False,
    include_secrets: Annotated[
        bool, typer.Option("--include-secrets", help="Include DKIM private keys.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write to FILE (mode 0600) instead of standard output."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
) -> None:
    """Export the whole configuration, sorted so that two exports diff cleanly."""
    params = {"with_password_hashes": with_password_hashes, "include_secrets": include_secrets}
    document: dict[str, Any] = state(ctx).run(
        lambda app: app.registry.call("admin.config.export", params, principal=SYSTEM, protocol="cli")
    )
    secrets = with_password_hashes or include_secrets
    text = json_text(document) + "\n" if as_json else to_yaml(document, secrets=secrets)
    if output is None:
        typer.echo(text, nl=False)
        return
    _write_private(output, text)
    counts = ", ".join(f"{len(v)} {k}" for k, v in document.items() if isinstance(v, list))
    err_console().print(f"wrote {counts} to {output}")


def _read(file: str) -> dict[str, Any]:
    import yaml

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    try:
        data = yaml.safe_load(text)  # YAML reads JSON too
    except yaml.YAMLError as exc:
        fail(f"{file} is not valid YAML: {exc}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        fail(f"{file} must hold a mapping (version, domains, users, ...), not a {type(data).__name__}")
    return data


def _summary(change: dict[str, Any]) -> str:
    if change["action"] != "update":
        return ", ".join(change["changes"])
    parts = []
    for name, values in change["changes"].items():
        parts.append(f"{name}: {values['old']!r} → {values['new']!r}")
    return "; ".join(parts)


@config_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="YAML or JSON document; - reads standard input.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also delete what the file lacks (users with their mail!).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON result.")] = False,
) -> None:
    """Import a configuration: create what is missing, update what differs, delete only with --prune.

    The whole file is checked first (every problem listed by its path, such as
    document.users.3.email) and applied in one transaction.
    """
    document = _read(file)
    params = {"document": document, "dry_run": dry_run, "prune": prune}
    st = state(ctx)
    result: dict[str, Any] = (
        _dry_run(st, params)
        if dry_run
        else st.run(
            lambda app: app.registry.call("admin.config.import", params, principal=SYSTEM, protocol="cli")
        )
    )
    if as_json:
        print_json(result)
        return
    changes = result["changes"]
    if changes:
        rows = [c | {"fields": _summary(c)} for c in changes]
        print_table(rows, ("action", "kind", "key", "fields"))
    counts = f"{result['created']} to create, {result['updated']} to update, {result['deleted']} to delete"
    if dry_run:
        typer.echo(f"dry run: {counts}; nothing was changed")
    else:
        typer.echo(
            f"done: {result['created']} created, {result['updated']} updated, {result['deleted']} deleted"
        )


def _has_schema(settings: Settings) -> bool:
    """Whether the database exists and has been migrated, looked at without creating it."""
    from mailroom.store import migrate
    from mailroom.store.engine import open_database

    url = settings.effective_database_url
    if settings.is_sqlite:
        path = url.partition(":///")[2]
        if not path or path == ":memory:" or not Path(path).exists():
            return False

    async def revision() -> str | None:
        db = open_database(url)
        try:
            return await migrate.current_revision(db)
        finally:
            await db.close()

    import asyncio

    return asyncio.run(revision()) is not None


def _dry_run(st: CliState, params: dict[str, Any]) -> dict[str, Any]:
    """``config import --dry-run``, which leaves the data folder as it found it.

    Without a database yet, the plan is made against an empty scratch database in a
    temporary folder (everything is to create); without a secret key yet, a throw-away one
    is used instead of writing ``<data_dir>/secret_key``.
    """
    settings = st.settings()

    def call(app: Any) -> Any:
        return app.registry.call("admin.config.import", params, principal=SYSTEM, protocol="cli")

    throwaway = {"secret_key": type(settings.secret_key)(secrets.token_urlsafe(48))}
    has_secret = bool(settings.secret_key.get_secret_value()) or (settings.data_dir / "secret_key").exists()
    try:
        ready = _has_schema(settings)
    except Exception as exc:  # the driver's own error, said plainly
        fail(f"could not read the database: {exc}")
    if ready:
        result: dict[str, Any] = st.run(
            call, settings=settings if has_secret else settings.model_copy(update=throwaway)
        )
        return result
    with tempfile.TemporaryDirectory(prefix="mailroom-dry-run-") as scratch:
        empty = settings.model_copy(
            update={"data_dir": Path(scratch), "database_url": None, "blob_dir": None, **throwaway}
        )
        result = st.run(call, settings=empty)
        return result
