"""``mailroom methods [API]`` and ``mailroom methods describe NAME``: registry introspection."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from mailroom.cli._output import console, fail, print_json, print_table
from mailroom.cli._state import state


def _type(schema: dict[str, Any]) -> str:
    """A JSON schema's type in a few characters: ``integer|null``, ``DomainCreate``, ``string[]``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return "|".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "|".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type", "any")
    if kind == "object" and "title" in schema:
        return str(schema["title"])
    if kind == "array":
        return _type(schema.get("items", {})) + "[]"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def param_rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameters, with the fields of an object parameter (a REST body) one level down."""
    defs = schema.get("$defs", {})
    rows: list[dict[str, Any]] = []

    def add(props: dict[str, Any], required: list[str], prefix: str) -> None:
        for name, prop in props.items():
            rows.append(
                {
                    "name": prefix + name,
                    "type": _type(prop),
                    "required": name in required,
                    "description": prop.get("description", ""),
                }
            )
            ref = prop.get("$ref")
            target = defs.get(str(ref).rsplit("/", 1)[-1]) if ref else None
            if not prefix and target and "properties" in target:
                add(target["properties"], target.get("required", []), f"{name}.")

    add(schema.get("properties", {}), schema.get("required", []), "")
    return rows


def methods(
    ctx: typer.Context,
    target: Annotated[
        str | None, typer.Argument(metavar="[API | describe]", help="List one API's methods, or 'describe'.")
    ] = None,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="The method to describe.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
) -> None:
    """List the registry's methods (name, access, REST binding), or describe one.

    mailroom methods            every method
    mailroom methods admin      the admin API's methods
    mailroom methods describe admin.users.create
                                the contract: parameters, result, access, REST binding
    """
    registry = state(ctx).contracts()
    if target == "describe":
        if name is None:
            fail("name the method: mailroom methods describe NAME")
        if registry.get(name) is None:
            fail(f"method_not_found: unknown method {name!r}")
        described = registry.describe(name)
        if as_json:
            print_json(described)
        else:
            _print_description(described)
        return
    if name is not None:
        fail("give one API name, or: mailroom methods describe NAME")
    if target is not None and target not in {a.name for a in registry.apis()}:
        known = ", ".join(a.name for a in registry.apis())
        fail(f"unknown API {target!r} (known: {known})")
    specs = registry.methods(target)
    rows = [
        {
            "method": s.name,
            "access": s.access.describe(),
            "rest": f"{s.http.verb} {s.http.path}" if s.http else "-",
            "summary": s.summary,
        }
        for s in specs
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ("method", "access", "rest", "summary"))


def _print_description(d: dict[str, Any]) -> None:
    out = console()
    out.print(f"[bold]{escape(d['name'])}[/]  ({escape(d['api'])} API, provider {escape(d['provider'])})")
    out.print()
    out.print(escape(d["description"] or d["summary"]))
    out.print()
    http = d["http"]
    out.print(f"access:   {escape(d['access'])}")
    out.print(f"REST:     {escape(http['method'] + ' ' + http['path']) if http else '-'}")
    out.print(f"cost:     {d['cost']}")
    if d["since"]:
        out.print(f"since:    {escape(d['since'])}")
    if d["deprecated"]:
        out.print(f"[bold red]deprecated:[/] {escape(d['deprecated'])}")
    out.print(f"returns:  {escape(_type(d['returns']))}")
    rows = param_rows(d["params"])
    if rows:
        print_table(rows, ("name", "type", "required", "description"), title="parameters")
