"""Every integer a method takes is bounded, and the bound is published.

An unbounded integer reaches the database as it came: above 2**63-1 SQLite raises
``OverflowError`` and PostgreSQL refuses anything wider than the column, and either was a
500. So every integer in every method's parameters (nested models included) must carry a
``minimum`` and a ``maximum`` (or be one of a fixed set), within signed 64 bits; and what the
runner refuses at the bound, the database never sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.domain.numbers import INT64_MAX

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Every method, the interop API's included."""
    return {"interop_api": True}


INT64_MIN = -(2**63)


def integer_schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
            yield where or "/", node
        for key, value in node.items():
            yield from integer_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from integer_schemas(value, f"{where}/{i}")


def unbounded(schema: dict[str, Any]) -> list[str]:
    out = []
    for where, node in integer_schemas(schema):
        if "enum" in node or "const" in node:
            continue
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        if low is None or high is None or low < INT64_MIN or high > INT64_MAX:
            out.append(f"{where} (minimum={low}, maximum={high})")
    return out


async def test_every_integer_parameter_is_bounded(mailroom: Mailroom) -> None:
    specs = mailroom.registry.methods()
    problems = {
        spec.name: found
        for spec in specs
        if (found := unbounded(spec.params_model.model_json_schema(mode="validation")))
    }
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_the_walker_finds_a_bare_int_in_a_nested_model() -> None:
    from pydantic import BaseModel

    class Inner(BaseModel):
        n: int

    class Outer(BaseModel):
        inner: Inner
        ok: int = 0

    assert sorted(unbounded(Outer.model_json_schema())) == [
        "/$defs/Inner/properties/n (minimum=None, maximum=None)",
        "/properties/ok (minimum=None, maximum=None)",
    ]
