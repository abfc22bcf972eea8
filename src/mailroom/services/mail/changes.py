"""mail.state and mail.changes: the caller's change log, as JMAP's ``/changes`` reads it.

Every change to a mailbox (mail arriving or deleted, read/starred flags, labels added or
removed, threads, labels created, renamed, deleted or their counts moving) takes the
account's next modification sequence, and so does a change to the auto-reply (``vacation``,
JMAP's VacationResponse, whose id is the user's); the current one is the account's *state*, and push
events carry it. A client keeps the state it last saw and asks what changed since then: ids
created, updated and destroyed, per type, at most ``max_changes`` at a time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mailroom.domain.numbers import Count
from mailroom.registry import GET, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import user_id_of
from mailroom.store import changelog

ChangeType = Literal["email", "thread", "label", "vacation"]
_KINDS: dict[str, changelog.Kind] = {
    "email": changelog.Kind.EMAIL,
    "thread": changelog.Kind.THREAD,
    "label": changelog.Kind.LABEL,
    "vacation": changelog.Kind.VACATION,
}


class MailState(BaseModel):
    """The mailbox's current state: a number that grows with every change."""

    state: int = Field(description="The account's modification sequence.", examples=[1042])


class ChangesOut(BaseModel):
    """What changed since ``old_state``: ids of one type created, updated and destroyed."""

    type: ChangeType
    old_state: int
    new_state: int = Field(description="Ask from this state next time.")
    has_more_changes: bool = Field(
        description="More changes follow: new_state is an intermediate state; ask again from it."
    )
    created: list[int]
    updated: list[int]
    destroyed: list[int]


@api.method("mail.state", http=GET("/state"), access=UserSelf())
async def get_state(ctx: Context) -> MailState:
    """The caller's current mailbox state."""
    async with ctx.rt.db.read() as tx:
        current = await changelog.state(tx, user_id_of(ctx))
    return MailState(state=current.modseq)


@api.method("mail.changes", http=GET("/changes"), access=UserSelf())
async def get_changes(
    ctx: Context,
    since: Annotated[Count, Field(description="A state the client had.")],
    type: ChangeType = "email",
    max_changes: Annotated[int, Field(ge=1, le=5000)] = 500,
) -> ChangesOut:
    """Ids of emails, threads, labels (or the auto-reply) created, updated and destroyed since
    state ``since``.

    ``cannot_calculate_changes`` when ``since`` is older than the change log keeps
    (``changes_retention_days``): the client syncs again from scratch.
    """
    query = changelog.ChangesQuery(kind=_KINDS[type], since=since, max_changes=max_changes)
    async with ctx.rt.db.read() as tx:
        found = await changelog.changes(tx, user_id_of(ctx), query)
    return ChangesOut(
        type=type,
        old_state=found.old_state,
        new_state=found.new_state,
        has_more_changes=found.has_more_changes,
        created=list(found.created),
        updated=list(found.updated),
        destroyed=list(found.destroyed),
    )
