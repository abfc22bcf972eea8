"""``Email/changes`` (RFC 8621 §4.3): from the account change log."""

from __future__ import annotations

from mailroom.registry import Context
from mailroom.services.jmap._accounts import EMAIL_PREFIX, account_of, changes_response, changes_since, encode
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._types import ChangesResponse, JmapId, State, UnsignedInt
from mailroom.store import changelog

MAX_CHANGES = 5000


@method("Email/changes", capability=MAIL)
async def email_changes(
    ctx: Context, accountId: JmapId, sinceState: State, maxChanges: UnsignedInt | None = None
) -> ChangesResponse:
    """Emails created, updated (keywords, mailboxes, thread) and destroyed since ``sinceState``."""
    user_id = account_of(ctx, accountId)
    async with ctx.rt.db.read() as tx:
        found = await changes_since(tx, user_id, changelog.Kind.EMAIL, sinceState, maxChanges, MAX_CHANGES)
    return changes_response(accountId, sinceState, found, lambda i: encode(EMAIL_PREFIX, i))
