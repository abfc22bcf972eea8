"""The published schema and the runtime validation agree (issue 11 §3).

schemathesis warned that 26 operations "mostly rejected generated data": the schema offered
what the runner then refused. One class of it is checked here for every input model of
every method: a field whose schema admits ``null`` accepts ``null`` (a PATCH field that
refuses null, "leave it out to keep it", must not offer it).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mailroom.bootstrap import Mailroom

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Every method, the interop API's included."""
    return {"interop_api": True}


def models(annotation: Any, seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    """Every pydantic model reachable from ``annotation`` (through unions, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        yield annotation
        for f in annotation.model_fields.values():
            yield from models(f.annotation, seen)
        return
    for arg in typing.get_args(annotation):
        yield from models(arg, seen)


def allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(allows_null(b) for b in schema.get("anyOf", []) if isinstance(b, dict))


def null_refused(model: type[BaseModel]) -> list[str]:
    """Fields whose published schema admits null but whose validation refuses it."""
    schema = model.model_json_schema(mode="validation")
    out = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        prop = schema.get("properties", {}).get(key)
        if prop is None or not allows_null(prop):
            continue
        try:
            model.model_validate({key: None})
        except ValidationError as exc:
            if any(e["loc"][:1] == (key,) for e in exc.errors()):
                out.append(f"{model.__name__}.{key}")
    return out


async def test_a_field_the_schema_lets_be_null_accepts_null(mailroom: Mailroom) -> None:
    seen: set[type[BaseModel]] = set()
    found = []
    for spec in mailroom.registry.methods():
        for field in spec.params_model.model_fields.values():
            for model in models(field.annotation, seen):
                found += null_refused(model)
    assert found == [], "\n".join(found)


def test_the_check_finds_a_null_the_schema_offers_and_the_runtime_refuses() -> None:
    from pydantic import field_validator

    class Patch(BaseModel):
        name: str | None = None

        @field_validator("name", mode="before")
        @classmethod
        def _not_null(cls, value: object) -> object:
            if value is None:
                raise ValueError("cannot be null")
            return value

    assert null_refused(Patch) == ["Patch.name"]
