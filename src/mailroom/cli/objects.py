"""``mailroom <object> <verb>``: one command per admin method, generated from the registry.

Method ``admin.<objects>.<verb>`` becomes ``mailroom <object> <verb>`` (``admin.domains.create``
→ ``mailroom domain create``; the plural works too). Parameters become:

* path parameters of the REST binding (or, without one, required plain parameters):
  positional arguments;
* fields of a body model (``DomainCreate``): flat options, ``--max-users``;
* other parameters: options of their own name (``--offset``);
* booleans ``--flag/--no-flag``, lists repeated options, nested objects JSON text; a field
  that accepts null takes the word ``null`` (``--max-users null`` clears a limit).

Values go to the registry as text and are validated there, so the CLI reports exactly what
every other protocol reports. Every call runs with the SYSTEM principal, through the runner,
never the store. A new admin method gets its command with no code here.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
import typer
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from rich.markup import escape

from mailroom.auth.principal import SYSTEM
from mailroom.cli._output import fail, print_csv, print_json, print_result
from mailroom.cli._state import state
from mailroom.registry import Download, MethodSpec

#: Admin objects whose commands are written by hand (``mailroom config export``).
HANDWRITTEN = frozenset({"config"})
#: Verbs listed first, in this order; others follow alphabetically.
VERB_ORDER = ("list", "get", "create", "update", "delete")
#: Option names every generated command has; a field of that name gets a prefix.
RESERVED = frozenset({"json", "csv", "params", "help"})
_IRREGULAR = {"aliases": "alias", "dns": "dns", "addresses": "address"}
_METAVARS: dict[Any, str] = {
    str: "TEXT",
    int: "INTEGER",
    float: "NUMBER",
    datetime: "DATETIME",
    date: "YYYY-MM-DD",
    SecretStr: "SECRET",
}

Kind = Literal["argument", "text", "flag", "multi", "json"]


def singular(objects: str) -> str:
    """``domains`` → ``domain``, ``aliases`` → ``alias``, ``apikeys`` → ``apikey``."""
    if objects in _IRREGULAR:
        return _IRREGULAR[objects]
    if objects.endswith("ies"):
        return objects[:-3] + "y"
    if objects.endswith("s") and not objects.endswith("ss"):
        return objects[:-1]
    return objects


def split_name(spec: MethodSpec) -> tuple[str, str] | None:
    """``admin.domains.create`` → (``domains``, ``create``); other shapes get no command."""
    parts = spec.name.split(".")
    if len(parts) != 3 or parts[0] != "admin":
        return None
    return parts[1], parts[2]


# -- parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CliParam:
    """One generated argument or option and where its value goes in the call's params."""

    ident: str
    decl: str
    target: tuple[str, ...]
    kind: Kind
    metavar: str
    help: str
    nullable: bool = False
    secret: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def loc(self) -> str:
        return ".".join(self.target)

    def convert(self, value: Any) -> Any:
        if self.kind == "json":
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                fail(f"{self.decl}: not valid JSON ({exc.msg})")
        if self.kind == "text":
            if self.nullable and value == "null":
                return None
            if self.secret and value == "-":
                return sys.stdin.readline().rstrip("\r\n")
            # Literal[1024, 2048] does not take "1024" from text: give it the value it names.
            return next((c for c in self.choices if str(c) == value), value)
        return value


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def classify(annotation: Any) -> tuple[Kind, bool, str]:
    """(kind, accepts null, metavar) of a field's type."""
    annotation = _strip(annotation)
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [_strip(a) for a in get_args(annotation)]
        rest = [a for a in members if a is not type(None)]
        nullable = len(rest) < len(members)
        if len(rest) != 1:
            return "text", nullable, "VALUE"
        annotation = rest[0]
    origin = get_origin(annotation)
    if annotation is bool:
        return "flag", nullable, ""
    if origin in (list, set, tuple, frozenset):
        items = [_strip(a) for a in get_args(annotation) if a is not Ellipsis]
        if items and all(_is_scalar(a) for a in items):
            return "multi", nullable, _metavar(items[0])
        return "json", nullable, "JSON"
    if (
        origin is dict
        or annotation in (dict, Any)
        or (isinstance(annotation, type) and issubclass(annotation, BaseModel))
    ):
        return "json", nullable, "JSON"
    return "text", nullable and annotation is not str, _metavar(annotation)


def literal_choices(annotation: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` (possibly optional) type; empty for other types."""
    annotation = _strip(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [_strip(a) for a in get_args(annotation) if _strip(a) is not type(None)]
        annotation = rest[0] if len(rest) == 1 else None
    return get_args(annotation) if get_origin(annotation) is Literal else ()


def _is_scalar(annotation: Any) -> bool:
    return (
        annotation in _METAVARS
        or get_origin(annotation) is Literal
        or (isinstance(annotation, type) and issubclass(annotation, Enum))
    )


def _metavar(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "[" + "|".join(str(a) for a in get_args(annotation)) + "]"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "[" + "|".join(str(m.value) for m in annotation) + "]"
    return _METAVARS.get(annotation, "TEXT")


def _help(info: FieldInfo, *, required: bool, kind: Kind, nullable: bool, secret: bool) -> str:
    parts = [info.description or ""]
    if kind == "multi":
        parts.append("Repeat for several.")
    if nullable and kind == "text":
        parts.append("'null' sets null.")
    if secret:
        parts.append("'-' reads it from standard input.")
    if required:
        parts.append("[required]")
    return escape(" ".join(p for p in parts if p))


def _body_model(info: FieldInfo) -> type[BaseModel] | None:
    annotation = _strip(info.annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def cli_params(spec: MethodSpec) -> list[CliParam]:
    """The arguments and options of ``spec``'s command, in declaration order."""
    fields = spec.params_model.model_fields
    if spec.http is not None:
        positional = [p for p in spec.http.path_params if p in fields]
    else:
        positional = [
            n for n in spec.param_names if n in spec.required and classify(fields[n].annotation)[0] == "text"
        ]
    out: list[CliParam] = []
    for name in positional:
        info = fields[name]
        out.append(
            CliParam(
                f"a_{name}", name.upper(), (name,), "argument", name.upper(), escape(info.description or "")
            )
        )
    candidates: list[tuple[str, tuple[str, ...], FieldInfo, bool]] = []
    for name in spec.param_names:
        if name in positional:
            continue
        info = fields[name]
        model = _body_model(info)
        if model is None:
            candidates.append((name, (name,), info, name in spec.required))
            continue
        for field_name, field_info in model.model_fields.items():
            candidates.append((field_name, (name, field_name), field_info, field_info.is_required()))
    candidates.sort(key=lambda c: not c[3])  # required options first, otherwise as declared
    counts: dict[str, int] = {}
    for option, *_ in candidates:
        counts[option] = counts.get(option, 0) + 1
    for i, (option, target, info, required) in enumerate(candidates):
        if counts[option] > 1 or option in RESERVED:
            option = "-".join(target)
        kind, nullable, metavar = classify(info.annotation)
        secret = _strip(info.annotation) is SecretStr or "SecretStr" in str(info.annotation)
        flag = "--" + option.replace("_", "-")
        out.append(
            CliParam(
                ident=f"o{i}_{re.sub(r'[^a-zA-Z0-9_]', '_', option)}",
                decl=flag,
                target=target,
                kind=kind,
                metavar=metavar,
                help=_help(info, required=required, kind=kind, nullable=nullable, secret=secret),
                nullable=nullable,
                secret=secret,
                choices=literal_choices(info.annotation),
            )
        )
    return out


def _parameter(p: CliParam) -> inspect.Parameter:
    kw = inspect.Parameter.KEYWORD_ONLY
    if p.kind == "argument":
        return inspect.Parameter(
            p.ident,
            kw,
            annotation=Annotated[str, typer.Argument(metavar=p.metavar, help=p.help, show_default=False)],
        )
    if p.kind == "flag":
        name = p.decl.removeprefix("--")
        option = typer.Option(f"{p.decl}/--no-{name}", help=p.help, show_default=False)
        return inspect.Parameter(p.ident, kw, default=None, annotation=Annotated[bool | None, option])
    if p.kind == "multi":
        option = typer.Option(p.decl, metavar=p.metavar, help=p.help, show_default=False)
        return inspect.Parameter(p.ident, kw, default=None, annotation=Annotated[list[str] | None, option])
    option = typer.Option(p.decl, metavar=p.metavar, help=p.help, show_default=False)
    return inspect.Parameter(p.ident, kw, default=None, annotation=Annotated[str | None, option])


_CTX, _JSON, _RAW, _CSV = "cli_ctx", "cli_json", "cli_params", "cli_csv"


def _common() -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter(_CTX, kw, annotation=typer.Context),
        inspect.Parameter(
            _JSON,
            kw,
            default=False,
            annotation=Annotated[bool, typer.Option("--json", help="Print the raw JSON result.")],
        ),
        inspect.Parameter(
            _CSV,
            kw,
            default=False,
            annotation=Annotated[
                bool,
                typer.Option(
                    "--csv", help="Print lists and reports as CSV (a header row, then one per item)."
                ),
            ],
        ),
        inspect.Parameter(
            _RAW,
            kw,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    "--params",
                    metavar="JSON",
                    help="Parameters as a JSON object; the options above override them.",
                ),
            ],
        ),
    ]


def make_command(spec: MethodSpec, objects: str, verb: str) -> Callable[..., None]:
    """A function typer turns into the command: its signature is built from ``spec``."""
    params = cli_params(spec)
    option_names = {p.loc: p.decl for p in params}
    bodies = {p.target[0] for p in params if len(p.target) == 2}

    def command(**kwargs: Any) -> None:
        ctx: typer.Context = kwargs[_CTX]
        call: dict[str, Any] = {}
        if kwargs[_RAW] is not None:
            call = _raw_params(kwargs[_RAW])
        for body in bodies:
            call.setdefault(body, {})
        for p in params:
            value = kwargs.get(p.ident)
            if value is None:
                continue
            holder = call
            for part in p.target[:-1]:
                holder = holder.setdefault(part, {})
            holder[p.target[-1]] = p.convert(value)
        result = state(ctx).run(
            lambda app: app.registry.call(spec.name, call, principal=SYSTEM, protocol="cli"),
            option_names=option_names,
        )
        _show(
            result,
            objects,
            verb,
            call,
            as_json=kwargs[_JSON],
            as_csv=kwargs[_CSV],
            positional=[p for p in params if p.kind == "argument"],
        )

    command.__signature__ = inspect.Signature([*(_parameter(p) for p in params), *_common()])  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}  # type: ignore[attr-defined]
    command.__name__ = f"{objects}_{verb}"
    command.__doc__ = spec.doc or spec.name
    return command


def _raw_params(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        fail(f"--params: not valid JSON ({exc.msg})")
    if not isinstance(value, dict):
        fail("--params: give a JSON object")
    return value


def _show(
    result: Any,
    objects: str,
    verb: str,
    call: dict[str, Any],
    *,
    as_json: bool,
    as_csv: bool,
    positional: list[CliParam],
) -> None:
    if isinstance(result, Download):
        typer.echo(result.content, nl=False)
        return
    if result is None:
        keys = " ".join(str(call.get(p.target[0], "")) for p in positional)
        done = "deleted" if verb == "delete" else f"{verb.replace('_', ' ')}: done for"
        typer.echo(f"{done} {singular(objects)} {keys}".rstrip())
        return
    if as_json:
        print_json(result)
        return
    if as_csv:
        if not print_csv(result):
            fail("--csv applies to lists and reports; this result is one object (use --json)")
        return
    print_result(result, objects=objects)


def reflow(doc: str) -> str:
    """Docstring paragraphs as single lines: the help formatter wraps them to the terminal."""
    paragraphs = [
        " ".join(line.strip() for line in p.splitlines()) for p in re.split(r"\n\s*\n", doc.strip())
    ]
    return "\n\n".join(p for p in paragraphs if p)


def _epilog(spec: MethodSpec) -> str:
    rest = f" · REST {spec.http.verb} {spec.http.path}" if spec.http else ""
    return escape(f"Method {spec.name} · access: {spec.access.describe()}{rest}")


def object_help(objects: str, spec: MethodSpec) -> str:
    """An object's one-line help: the first line of the docstring of its methods' module."""
    module = sys.modules.get(spec.func.__module__)
    doc = (module.__doc__ or "").strip().split("\n", 1)[0] if module else ""
    return doc or f"admin.{objects}.* methods"


def object_index(specs: list[MethodSpec]) -> dict[str, tuple[str, str]]:
    """``{singular: (plural, help)}`` of every generated object group, as ``_object_index``
    holds it for ``mailroom --help`` (which lists the objects without building the registry)."""
    first: dict[str, MethodSpec] = {}
    for spec in specs:
        split = split_name(spec)
        if split is not None and split[0] not in HANDWRITTEN:
            first.setdefault(split[0], spec)
    return {singular(o): (o, object_help(o, spec)) for o, spec in sorted(first.items())}


def render_index(index: dict[str, tuple[str, str]]) -> str:
    """The source of ``mailroom/cli/_object_index.py`` (as ``ruff format`` leaves it)."""
    lines = [
        '"""The admin objects ``mailroom --help`` lists: generated by scripts/gen-cli-index; do not edit.',
        "",
        "``mailroom --help`` reads this instead of building the registry (which imports every",
        "service and the store); a command runs from the registry itself. A test fails when this",
        "file and the registry differ.",
        '"""',
        "",
        "#: singular name -> (plural, one-line help)",
        "OBJECTS: dict[str, tuple[str, str]] = {",
    ]
    for name, (plural, text) in index.items():
        lines += [
            f"    {_literal(name)}: (",
            f"        {_literal(plural)},",
            f"        {_literal(text)},",
            "    ),",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _literal(text: str) -> str:
    return orjson.dumps(text).decode()


INDEX_PATH = Path(__file__).with_name("_object_index.py")


def update_index(specs: list[MethodSpec], path: Path = INDEX_PATH) -> bool:
    """Rewrite ``_object_index.py`` from the registry's methods; True when it changed."""
    text = render_index(object_index(specs))
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def object_groups(specs: list[MethodSpec]) -> dict[str, typer.Typer]:
    """One typer group per admin object (by its singular name), a command per verb."""
    by_object: dict[str, list[tuple[str, MethodSpec]]] = {}
    for spec in specs:
        split = split_name(spec)
        if split is None or split[0] in HANDWRITTEN:
            continue
        by_object.setdefault(split[0], []).append((split[1], spec))
    groups: dict[str, typer.Typer] = {}
    for objects, verbs in sorted(by_object.items()):
        group = typer.Typer(
            name=singular(objects),
            help=escape(object_help(objects, verbs[0][1])),
            no_args_is_help=True,
            rich_help_panel="Objects",
        )
        order = {v: i for i, v in enumerate(VERB_ORDER)}
        for verb, spec in sorted(verbs, key=lambda v: (order.get(v[0], len(order)), v[0])):
            group.command(
                name=verb.replace("_", "-"),
                help=escape(reflow(spec.doc or spec.summary)),
                epilog=_epilog(spec),
                deprecated=spec.deprecated is not None,
            )(make_command(spec, objects, verb))
        groups[objects] = group
    return groups
