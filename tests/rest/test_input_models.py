"""Unknown JSON fields are refused everywhere: every input object schema forbids extra properties.

This walks every registry method's parameter model, nested models included, so a model
added later without ``extra="forbid"`` fails here, not in production where a typo'd field
would be silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from mailroom.bootstrap import Mailroom

pytestmark = pytest.mark.anyio


def object_schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema under ``node`` (``$defs`` included), with where it sits."""
    if isinstance(node, dict):
        if node.get("type") == "object" or isinstance(node.get("properties"), dict):
            yield where or "/", node
        for key, value in node.items():
            if key in ("properties", "patternProperties", "$defs") and isinstance(value, dict):
                # Maps of names to schemas, not schemas (a parameter may be called
                # "properties", as JMAP's /get one is).
                for name, schema in value.items():
                    yield from object_schemas(schema, f"{where}/{key}/{name}")
            else:
                yield from object_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from object_schemas(value, f"{where}/{i}")


def open_objects(schema: dict[str, Any]) -> list[str]:
    """Where ``schema`` accepts fields nobody declared.

    A typed map (``dict[str, int]``: no properties, ``additionalProperties`` a schema) has no
    declared fields to be unknown; anything else must say ``additionalProperties: false``.
    """
    out = []
    for where, obj in object_schemas(schema):
        extra = obj.get("additionalProperties")
        typed_map = "properties" not in obj and (
            (isinstance(extra, dict) and bool(extra)) or "patternProperties" in obj
        )
        if _jmap_object(where):
            continue
        if extra is not False and not typed_map:
            out.append(f"{where} ({obj.get('title', 'untitled')}: additionalProperties={extra!r})")
    return out


_JMAP_OBJECT = re.compile(
    r"/properties/(create|update|onSuccessUpdateEmail)(/anyOf/\d+)?/patternProperties/[^/]+$"
)


def _jmap_object(where: str) -> bool:
    """A JMAP object or patch in a /set map (``create``, ``update``, ``onSuccessUpdateEmail``
    keyed by id): RFC 8620 §5.3 wants each checked on its own, an unknown property being that
    object's ``invalidProperties`` SetError, not the whole call's ``invalidArguments``; the
    methods do that check (tests/jmap)."""
    return _JMAP_OBJECT.search(where) is not None


async def test_every_input_object_forbids_unknown_fields(mailroom: Mailroom) -> None:
    specs = mailroom.registry.methods()
    assert len(specs) > 10
    problems = {
        spec.name: found
        for spec in specs
        if (found := open_objects(spec.params_model.model_json_schema(mode="validation")))
    }
    assert problems == {}


async def test_unknown_top_level_parameters_are_refused(mailroom: Mailroom) -> None:
    for spec in mailroom.registry.methods():
        with pytest.raises(ValidationError) as caught:
            spec.params_model.model_validate({"surely_not_a_parameter": 1})
        assert "extra_forbidden" in [e["type"] for e in caught.value.errors()], spec.name


# The walker itself: it must catch what it is for.


class Lax(BaseModel):
    name: str


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: Lax
    counts: dict[str, int]


class Loose(BaseModel):
    model_config = ConfigDict(extra="forbid")
    anything: dict[str, Any]


def test_walker_finds_a_nested_lax_model() -> None:
    found = open_objects(Strict.model_json_schema())
    assert found == ["/$defs/Lax (Lax: additionalProperties=None)"]


def test_walker_finds_free_form_objects() -> None:
    assert len(open_objects(Loose.model_json_schema())) == 1


def test_walker_accepts_strict_models_and_typed_maps() -> None:
    class Fine(BaseModel):
        model_config = ConfigDict(extra="forbid")
        counts: dict[str, int]

    assert open_objects(Fine.model_json_schema()) == []
