"""PATCH models publish what they accept: a field that refuses ``null`` does not offer it.

A PATCH field is typed ``X | None = None`` so that pydantic can tell "absent: keep it" from a
value (``exclude_unset``) while error locations stay plain (``changes.comment``); where null
has no meaning (a comment, a flag) a validator refuses it. The published schema must then
not say ``anyOf: [X, null]``: clients and fuzzers would send the null the runtime refuses.
``tests/fuzz/test_schema_agrees.py`` checks every input model of every method for this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def drop_null(schema: dict[str, Any], names: Iterable[str]) -> None:
    """Remove the ``null`` alternative (and the null default) of the properties ``names``."""
    properties = schema.get("properties", {})
    for name in names:
        prop = properties.get(name)
        if prop is None:
            continue
        variants = [v for v in prop.pop("anyOf", []) if v != {"type": "null"}]
        if len(variants) == 1:
            prop.update(variants[0])
        elif variants:
            prop["anyOf"] = variants
        if prop.get("default", 0) is None:
            del prop["default"]


def never_null(*names: str, examples: list[dict[str, Any]] | None = None) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` publishing ``names`` without null (and ``examples``, if any)."""

    def extra(schema: dict[str, Any]) -> None:
        drop_null(schema, names)
        if examples is not None:
            schema["examples"] = examples

    return extra
