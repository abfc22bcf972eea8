"""admin.users.kick: close a user's open connections now, on every worker (``doveadm kick``).

The user may log in again at once (disable them first to keep them out); what is cut is
what is open: IMAP (``* BYE``), POP3 (``-ERR``), SMTP submission (``421`` at the next
command), push streams and JMAP WebSockets (closed). docs/auth.md, "Everywhere".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mailroom.domain.names import EmailAddress
from mailroom.events import Revocation
from mailroom.registry import POST, Context, Manager
from mailroom.services.admin._api import api
from mailroom.services.admin.users import check_may_administer, load_user

KickProtocol = Literal["imap", "pop3", "smtp", "push", "jmap"]


class Kicked(BaseModel):
    """What this worker closed; the other workers close theirs as the revocation reaches
    them (at once with Redis; without it there is only this worker)."""

    closed_here: int = Field(description="Connections of the user this worker closed.")


@api.method(
    "admin.users.kick",
    http=POST("/users/{email}/kick"),
    access=Manager("email", kind="user"),
    mutating=True,
)
async def kick_user(ctx: Context, email: EmailAddress, protocols: list[KickProtocol] | None = None) -> Kicked:
    """Close the user's open IMAP, POP3, SMTP submission, push and JMAP WebSocket
    connections (only those of ``protocols`` when given), on every worker; audited."""
    async with ctx.rt.db.read() as tx:
        user = await load_user(tx, email)
    check_may_administer(ctx.principal, user)
    revocation = Revocation(
        "disconnected by an administrator",
        user_id=user.id,
        protocols=frozenset(protocols) if protocols is not None else None,
    )
    return Kicked(closed_here=await ctx.rt.events.revoke(revocation))
