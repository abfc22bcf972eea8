"""``mailroom import mbox|maildir USER PATH``: existing mail into a mailbox, with a progress bar.

Each message goes through ``mail.messages.import`` (the same ingest as arriving mail), so a
second run imports nothing twice: already-present messages are counted, not stored.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailroom.auth.principal import SYSTEM
from mailroom.cli._output import err_console, fail
from mailroom.cli._state import state
from mailroom.errors import MailroomError

if TYPE_CHECKING:  # imported when an import runs, not for --help
    from mailroom.bootstrap import Mailroom
    from mailroom.delivery.importer import ImportItem

import_app = typer.Typer(
    name="import",
    help="Import mail (mbox, Maildir) into a mailbox; running it again imports nothing twice.",
    no_args_is_help=True,
)

Advance = Callable[[], None]


@dataclass
class ImportReport:
    """What an import did: new messages, messages already present, failures (with reasons)."""

    imported: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


async def import_items(
    app: Mailroom, user: str, items: Iterator[ImportItem], advance: Advance | None = None
) -> ImportReport:
    """Import ``items`` into ``user``'s mailbox through the registry; never stops on one bad message."""
    report = ImportReport()
    for item in items:
        params = {
            "email": user,
            "message": base64.b64encode(item.raw).decode("ascii"),
            "labels": list(item.labels),
            "is_read": item.is_read,
            "is_starred": item.is_starred,
            "is_draft": item.is_draft,
            "received_at": item.received_at.isoformat() if item.received_at else None,
        }
        try:
            result = await app.registry.call("mail.messages.import", params, principal=SYSTEM, protocol="cli")
        except MailroomError as exc:
            report.failed += 1
            if len(report.errors) < 20:
                report.errors.append(f"{item.origin}: {exc.message}")
        else:
            if result["duplicate"]:
                report.duplicates += 1
            else:
                report.imported += 1
        if advance is not None:
            advance()
    return report


def _run(
    ctx: typer.Context, user: str, path: Path, read: Callable[[Path], Iterator[ImportItem]], total: int
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    st = state(ctx)

    async def work(app: Mailroom) -> ImportReport:
        await app.registry.call("admin.users.get", {"email": user}, principal=SYSTEM, protocol="cli")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err_console(), transient=False) as progress:
            task = progress.add_task(f"importing into {user}", total=total)
            return await import_items(app, user, read(path), lambda: progress.advance(task))

    report = st.run(work)
    err = err_console()
    err.print(f"imported {report.imported}, already present {report.duplicates}, failed {report.failed}")
    for line in report.errors:
        err.print(f"  [red]{line}[/]")
    if report.failed:
        raise typer.Exit(1)


UserArg = Annotated[str, typer.Argument(help="The mailbox (user address) to import into.")]


@import_app.command("mbox")
def import_mbox(
    ctx: typer.Context,
    user: UserArg,
    path: Annotated[Path, typer.Argument(help="An mbox file (Google Takeout's X-Gmail-Labels are used).")],
) -> None:
    """Import an mbox file."""
    from mailroom.delivery.importer import count_mbox, read_mbox

    if not path.is_file():
        fail(f"{path} is not a file")
    _run(ctx, user, path, read_mbox, count_mbox(path))


@import_app.command("maildir")
def import_maildir(
    ctx: typer.Context,
    user: UserArg,
    path: Annotated[Path, typer.Argument(help="A Maildir folder; its subfolders become labels.")],
) -> None:
    """Import a Maildir tree (Maildir++ .Folder subfolders or nested folders)."""
    from mailroom.delivery.importer import count_maildir, read_maildir

    if not path.is_dir():
        fail(f"{path} is not a folder")
    _run(ctx, user, path, read_maildir, count_maildir(path))
