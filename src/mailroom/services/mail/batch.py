"""mail.threads.batch / mail.emails.batch: one action on up to 1,000 threads or emails.

Actions (services/mail/_actions.py carries them out, in one transaction):

* ``archive`` / ``unarchive``: out of / back into the inbox (``archive`` label in between);
* ``read`` / ``unread``, ``star`` / ``unstar``;
* ``spam`` / ``not_spam``, ``trash`` / ``untrash`` (back where each email was before the
  trash; the inbox when that is not known, except for the owner's sent mail and drafts);
* ``delete``: for good, only mail in trash or spam (anything else is ``conflict``); the
  quota gives the bytes back and blobs nothing refers to any more are removed;
* ``move`` (``label``): into that label and out of inbox, archive, spam, trash;
* ``add_label`` / ``remove_label`` (``label``);
* ``postpone`` (``until``): out of the inbox until then, back in the inbox after (a task
  in every worker brings it back: ``PostponedWakeUp``);
* ``mute`` / ``unmute``: a muted thread is archived; replies to it skip the inbox.

Each id gets its own result: ``ok``, or an error code (``not_found`` for ids that do not
exist or are someone else's: those are never touched; ``conflict`` for ``delete`` of mail
not in trash or spam).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from mailroom.domain.numbers import Id
from mailroom.errors import FieldError, InvalidParams
from mailroom.registry import POST, Context, UserSelf
from mailroom.services.mail._actions import NEEDS_LABEL, NEEDS_UNTIL, Action, Refusal, Target, apply
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import POSTPONED, LabelRef, find_label, user_id_of
from mailroom.services.mail._push import announce_threads
from mailroom.store import mailbox_queries as queries
from mailroom.store.engine import Tx

Ids = Annotated[list[Id], Field(min_length=1, max_length=1000)]


class BatchItem(BaseModel):
    """What happened to one id."""

    id: int
    ok: bool
    error: str | None = Field(default=None, description="not_found or conflict when not ok.")
    message: str | None = None


class BatchResult(BaseModel):
    """One result per distinct id, in the order given."""

    n_ok: int
    results: list[BatchItem]


def _check(ctx: Context, action: Action, label: str | None, until: datetime | None) -> None:
    errors: list[FieldError] = []
    if action in NEEDS_LABEL and label is None:
        errors.append(FieldError("label", f"is required for {action}", "missing"))
    if action in NEEDS_UNTIL:
        if until is None:
            errors.append(FieldError("until", f"is required for {action}", "missing"))
        elif until.tzinfo is None:
            errors.append(FieldError("until", "needs a time zone"))
        elif until <= ctx.rt.clock.now():
            errors.append(FieldError("until", "must be in the future"))
    if errors:
        raise InvalidParams(errors)


async def _label_name(tx: Tx, user_id: int, action: Action, label: str | None) -> str | None:
    if action not in NEEDS_LABEL or label is None:
        return None
    name = (await find_label(tx, user_id, label)).name
    if name == POSTPONED:
        raise InvalidParams([FieldError("label", "use the postpone action for postponed")])
    return name


def _results(ids: list[int], refused: dict[int, Refusal]) -> BatchResult:
    items: list[BatchItem] = []
    for i in dict.fromkeys(ids):
        refusal = refused.get(i)
        if refusal is None:
            items.append(BatchItem(id=i, ok=True))
        else:
            items.append(BatchItem(id=i, ok=False, error=refusal.code, message=refusal.message))
    return BatchResult(n_ok=sum(1 for item in items if item.ok), results=items)


def _not_found(kind: str, key: int) -> Refusal:
    return Refusal("not_found", f"{kind} {key} not found")


@api.method("mail.threads.batch", http=POST("/threads/batch"), access=UserSelf(), mutating=True)
async def batch_threads(
    ctx: Context,
    ids: Ids,
    action: Action,
    label: LabelRef | None = None,
    until: Annotated[datetime | None, Field(description="For postpone: when the thread comes back.")] = None,
) -> BatchResult:
    """Apply one action to the caller's threads (every email of each thread)."""
    _check(ctx, action, label, until)
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        name = await _label_name(tx, user_id, action, label)
        owned = await queries.owned_threads(tx, user_id, ids)
        emails = await queries.emails_of_threads(tx, user_id, owned)
        targets = {t: Target(tuple(emails.get(t, ())), (t,)) for t in owned}
        refused = {i: _not_found("thread", i) for i in ids if i not in owned}
        refused |= await apply(tx, ctx.rt, user_id, action, targets, label=name, until=until)
    await announce_threads(ctx.rt, user_id, [t for t in owned if t not in refused], action)
    return _results(ids, refused)


@api.method("mail.emails.batch", http=POST("/emails/batch"), access=UserSelf(), mutating=True)
async def batch_emails(
    ctx: Context,
    ids: Ids,
    action: Action,
    label: LabelRef | None = None,
    until: Annotated[datetime | None, Field(description="For postpone: when the thread comes back.")] = None,
) -> BatchResult:
    """Apply one action to the caller's emails (``postpone``, ``mute`` and ``unmute`` act on
    their threads)."""
    _check(ctx, action, label, until)
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        name = await _label_name(tx, user_id, action, label)
        owned = await queries.thread_ids_of_emails(tx, user_id, ids)
        if action in ("postpone", "mute"):
            # The thread is what leaves the inbox: all its emails go.
            emails = await queries.emails_of_threads(tx, user_id, set(owned.values()))
            targets = {e: Target(tuple(emails.get(t, ())), (t,)) for e, t in owned.items()}
        else:
            targets = {e: Target((e,), (t,)) for e, t in owned.items()}
        refused = {i: _not_found("email", i) for i in ids if i not in owned}
        refused |= await apply(tx, ctx.rt, user_id, action, targets, label=name, until=until)
    await announce_threads(ctx.rt, user_id, [t for e, t in owned.items() if e not in refused], action)
    return _results(ids, refused)
