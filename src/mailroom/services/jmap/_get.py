"""What every /get shares (RFC 8620 §5.1): ids and properties checked, objects filtered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mailroom.registry import Context
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._request import resolve


def check_ids(ctx: Context, ids: Sequence[str] | None) -> list[str] | None:
    """``ids`` with creation references resolved (unknown ones stay as given: not found),
    or ``requestTooLarge`` beyond ``maxObjectsInGet``."""
    if ids is None:
        return None
    limit = ctx.rt.settings.jmap_max_objects_in_get
    if len(ids) > limit:
        raise MethodError("requestTooLarge", f"at most {limit} ids in one /get (maxObjectsInGet)")
    out: list[str] = []
    seen: set[str] = set()
    for given in ids:
        value = resolve(ctx, given) or given
        if value not in seen:  # the RFC lets a server drop duplicates
            seen.add(value)
            out.append(value)
    return out


def check_properties(properties: Sequence[str] | None, known: Iterable[str]) -> list[str] | None:
    """The properties asked for (``id`` always included), or ``invalidArguments`` naming an
    unknown one."""
    if properties is None:
        return None
    known_set = set(known)
    unknown = [p for p in properties if p not in known_set]
    if unknown:
        raise MethodError("invalidArguments", f"unknown properties: {', '.join(unknown[:10])}")
    return ["id", *[p for p in dict.fromkeys(properties) if p != "id"]]


def pick(obj: dict[str, Any], properties: Sequence[str] | None) -> dict[str, Any]:
    return obj if properties is None else {p: obj[p] for p in properties}
