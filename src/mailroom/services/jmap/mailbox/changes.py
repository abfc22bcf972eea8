"""``Mailbox/changes`` (RFC 8621 §2.2): from the account's change log (label rows)."""

from __future__ import annotations

from mailroom.registry import Context
from mailroom.services.jmap._accounts import account_of, changes_response, changes_since
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._mailboxes import mailbox_id
from mailroom.services.jmap._types import ChangesResponse, JmapId, State, UnsignedInt
from mailroom.store import changelog

#: The most ids one /changes answers, whatever ``maxChanges`` asks.
MAX_CHANGES = 5000


class MailboxChangesResponse(ChangesResponse):
    #: Which properties changed, when only counts did; we do not tell them apart (null:
    #: the client fetches every property).
    updatedProperties: list[str] | None = None


@method("Mailbox/changes", capability=MAIL)
async def mailbox_changes(
    ctx: Context, accountId: JmapId, sinceState: State, maxChanges: UnsignedInt | None = None
) -> MailboxChangesResponse:
    """Mailboxes created, updated (renamed, counts moved) and destroyed since ``sinceState``."""
    user_id = account_of(ctx, accountId)
    async with ctx.rt.db.read() as tx:
        found = await changes_since(tx, user_id, changelog.Kind.LABEL, sinceState, maxChanges, MAX_CHANGES)
    return changes_response(accountId, sinceState, found, mailbox_id, MailboxChangesResponse)
