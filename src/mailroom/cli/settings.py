"""``mailroom settings``: the effective settings, secrets masked, as TOML or JSON."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mailroom.cli._output import print_json
from mailroom.cli._state import state

MASKED = "****"


def _value(value: Any) -> str:
    # JSON strings, numbers, booleans and arrays of them are valid TOML values.
    return json.dumps(value, ensure_ascii=False)


def _line(key: str, value: Any) -> str:
    if value is None:
        return f"# {key} = (not set)"
    if isinstance(value, str) and MASKED in value:
        return f"# {key} = {_value(value)}  (masked)"
    return f"{key} = {_value(value)}"


def to_toml(data: dict[str, Any]) -> str:
    """``data`` as a ``[mailroom]`` TOML table; unset and masked values as comments."""
    lines = ["[mailroom]"]
    tables: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        ):
            tables.append((key, value))
        else:
            lines.append(_line(key, value))
    for key, value in tables:
        for row in value if isinstance(value, list) else [value]:
            lines.append("")
            lines.append(f"[[mailroom.{key}]]" if isinstance(value, list) else f"[mailroom.{key}]")
            lines.extend(_line(k, v) for k, v in row.items())
    return "\n".join(lines)


def show_settings(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
) -> None:
    """Show the effective settings: flags > environment > TOML file > defaults; secrets masked.

    The TOML output can seed a mailroom.toml: unset and masked values are comments.
    """
    data = state(ctx).settings().masked()
    if as_json:
        print_json(data)
    else:
        typer.echo(to_toml(data))
