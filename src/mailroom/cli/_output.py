"""Printing results and errors: rich tables for people, ``--json`` for scripts.

Consoles are made per call so that they write to whatever ``sys.stdout`` is at the time
(tests swap it). Values are never truncated: long cells wrap.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mailroom.errors import InvalidParams, MailroomError

#: Columns of list tables, per object; other objects get their first scalar fields.
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "domains": (
        "name",
        "comment",
        "max_users",
        "max_aliases",
        "max_quota_bytes",
        "signup_enabled",
        "dkim_selector",
    ),
    "users": ("email", "display_name", "quota_bytes", "quota_bytes_used", "enabled", "global_admin"),
    "aliases": ("address", "destinations", "wildcard", "comment"),
    "relays": ("name", "smarthost", "comment"),
    "alternatives": ("name", "domain", "comment"),
    "managers": ("email", "created_at"),
    "apikeys": ("id", "name", "owner", "admin", "scopes", "expires_at", "last_used_at"),
}
_DEFAULT_SKIP = frozenset({"created_at", "updated_at"})
_MAX_DEFAULT_COLUMNS = 7
#: Result fields that carry a secret shown once (a new API key): printed last, alone.
SECRET_RESULT_FIELDS = ("key", "secret", "token")


#: Width when output goes to a file or a pipe, where folding cells would only hurt.
PIPE_WIDTH = 200


def _width(stream: Any) -> int | None:
    isatty = getattr(stream, "isatty", None)
    return None if isatty is not None and isatty() else PIPE_WIDTH


def console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=_width(sys.stdout))


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=False, width=_width(sys.stderr))


def json_text(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def print_json(data: Any) -> None:
    typer.echo(json_text(data))


def table_rows(result: Any) -> list[Mapping[str, Any]] | None:
    """The rows of a tabular result: a page's items, a list of records, a report's rows."""
    if isinstance(result, dict):
        for key in ("items", "rows"):
            if isinstance(result.get(key), list):
                result = result[key]
                break
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return result
    return None


def print_csv(result: Any) -> bool:
    """Print a tabular result as CSV (RFC 4180) on stdout; False when it is not tabular."""
    rows = table_rows(result)
    if rows is None:
        return False
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_cell(row.get(c)) for c in columns])
    typer.echo(out.getvalue(), nl=False)
    return True


def _csv_cell(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cell(value: Any) -> str:
    """A value as a table cell: lists joined, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return json_text(value)
    return str(value)


def _scalar(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, (str, int, float, bool))
        or (isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value))
    )


def columns_for(items: Sequence[Mapping[str, Any]], objects: str | None) -> list[str]:
    if not items:
        return list(LIST_COLUMNS.get(objects or "", ()))
    present = set(items[0])
    preferred = [c for c in LIST_COLUMNS.get(objects or "", ()) if c in present]
    if preferred:
        return preferred
    first = items[0]
    chosen = [k for k, v in first.items() if k not in _DEFAULT_SKIP and _scalar(v)]
    return chosen[:_MAX_DEFAULT_COLUMNS]


def print_table(
    items: Sequence[Mapping[str, Any]], columns: Iterable[str], *, title: str | None = None
) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    names = list(columns)
    for name in names:
        table.add_column(name, overflow="fold")
    for item in items:
        table.add_row(*(escape(cell(item.get(n))) for n in names))
    console().print(table)


def print_record(data: Mapping[str, Any]) -> None:
    """One object as field/value rows."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(escape(key), escape(cell(value)))
    console().print(table)


def print_result(result: Any, *, objects: str | None = None) -> None:
    """Print a registry result for people: pages and lists as tables, objects as records.

    A secret shown once (a new API key) goes last, alone on its line, after a warning on
    stderr; nothing before it carries it.
    """
    if isinstance(result, dict) and isinstance(result.get("items"), list) and "total" in result:
        items = result["items"]
        print_table(items, columns_for(items, objects))
        shown_to = result.get("offset", 0) + len(items)
        if result["total"] > len(items):
            err_console().print(
                f"{result.get('offset', 0) + 1 if items else 0}-{shown_to} of {result['total']}; "
                "use --offset and --limit for more"
            )
        return
    if isinstance(result, list):
        if all(isinstance(i, dict) for i in result):
            print_table(result, columns_for(result, objects))
        else:
            for item in result:
                typer.echo(cell(item))
        return
    if isinstance(result, dict):
        secrets = {k: result[k] for k in SECRET_RESULT_FIELDS if isinstance(result.get(k), str)}
        print_record({k: v for k, v in result.items() if k not in secrets})
        for name, value in secrets.items():
            err_console().print(f"[bold yellow]The {name} is shown this once: store it now.[/]")
            typer.echo(value)
        return
    typer.echo(cell(result))


def fail(message: str, *, details: Iterable[str] = ()) -> NoReturn:
    """Print an error on stderr and exit with status 1."""
    err = err_console()
    err.print(f"[bold red]error:[/] {escape(message)}")
    for line in details:
        err.print(f"  {escape(line)}")
    raise typer.Exit(1)


def fail_with(exc: MailroomError, *, option_names: Mapping[str, str] | None = None) -> NoReturn:
    """A domain error: its code and message; for invalid parameters, each field."""
    details: list[str] = []
    if isinstance(exc, InvalidParams):
        for error in exc.errors:
            option = (option_names or {}).get(error.loc)
            where = f"{error.loc} ({option})" if option else error.loc
            details.append(f"{where}: {error.message}")
    fail(f"{exc.code}: {exc.message}", details=details)


def fail_settings(exc: Exception) -> NoReturn:
    """Settings that do not load (a bad value, a missing or broken TOML file)."""
    if isinstance(exc, ValidationError):
        details = [f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        fail("invalid settings", details=details)
    fail(f"invalid settings: {exc}")
