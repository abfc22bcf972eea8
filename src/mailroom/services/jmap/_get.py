"""What every /get shares (RFC 8620 §5.1): ids and properties checked, objects filtered."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from mailroom.registry import Context
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._request import resolve
from mailroom.services.jmap._types import GetResponse

_T = TypeVar("_T")


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


def get_response(
    account: str,
    current: str,
    by_id: Mapping[str, _T],
    render: Callable[[_T], dict[str, Any]],
    wanted: Sequence[str] | None,
    properties: Sequence[str] | None,
) -> GetResponse:
    """A /get answer from all of a type's records by id: every one (in ``by_id`` order) for
    ``ids: null``, else those of ``wanted`` (from check_ids) and the others ``notFound``;
    only the records answered are rendered."""
    if wanted is None:
        wanted = list(by_id)
    items = [pick(render(by_id[i]), properties) for i in wanted if i in by_id]
    missing = [i for i in wanted if i not in by_id]
    return GetResponse(accountId=account, state=current, items=items, notFound=missing)
