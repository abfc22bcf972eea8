"""What every /set shares (RFC 8620 §5.3): limits, ``ifInState``, SetErrors, patches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from mailroom.registry import Context
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._types import CreationId, IdOrRef, SetError, SetResponse

#: ``create``: creation id → the new object's properties.
CreateMap = Annotated[dict[CreationId, dict[str, Any]], Field(max_length=100_000)]
#: ``update``: id (or ``#creationId``) → PatchObject.
UpdateMap = Annotated[dict[IdOrRef, dict[str, Any]], Field(max_length=100_000)]
DestroyList = Annotated[list[IdOrRef], Field(max_length=100_000)]


def check_set_size(
    ctx: Context,
    create: Mapping[str, Any] | None,
    update: Mapping[str, Any] | None,
    destroy: Sequence[str] | None,
) -> None:
    """``requestTooLarge`` beyond ``maxObjectsInSet`` creates, updates and destroys."""
    total = len(create or {}) + len(update or {}) + len(destroy or [])
    limit = ctx.rt.settings.jmap_max_objects_in_set
    if total > limit:
        raise MethodError("requestTooLarge", f"at most {limit} objects in one /set (maxObjectsInSet)")


def set_error(
    type: str, description: str | None = None, properties: list[str] | None = None
) -> dict[str, Any]:
    return SetError(type=type, description=description, properties=properties).wire()


def flatten_patch(patch: Mapping[str, Any]) -> dict[str, Any]:
    """A PatchObject's top-level properties (``a/b`` paths stay as they are: the caller
    refuses or applies them)."""
    return {key.removeprefix("/"): value for key, value in patch.items()}


def set_response(
    account: str,
    old_state: str | None,
    new_state: str,
    *,
    created: dict[str, dict[str, Any]] | None = None,
    updated: dict[str, dict[str, Any] | None] | None = None,
    destroyed: list[str] | None = None,
    not_created: dict[str, dict[str, Any]] | None = None,
    not_updated: dict[str, dict[str, Any]] | None = None,
    not_destroyed: dict[str, dict[str, Any]] | None = None,
) -> SetResponse:
    """The /set answer; an empty map or list is left out (``null``), as RFC 8620 §5.3 allows."""
    return SetResponse(
        accountId=account,
        oldState=old_state,
        newState=new_state,
        created=created or None,
        updated=updated or None,
        destroyed=destroyed or None,
        notCreated=not_created or None,
        notUpdated=not_updated or None,
        notDestroyed=not_destroyed or None,
    )
