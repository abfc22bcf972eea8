"""admin.users.reset_totp: take a user's second factor away (they lost their phone and codes).

Admins and the managers of the user's domain may (a manager not for a global admin); the
audit log records who did it. The user logs in with the password alone from the next login
on, on every protocol (the second factor is read on every login, never cached), and can set
TOTP up again.
"""

from __future__ import annotations

from mailroom.domain.names import EmailAddress
from mailroom.registry import DELETE, Context, Manager
from mailroom.services.admin._api import api
from mailroom.services.admin.users import check_may_administer, load_user
from mailroom.store import identity as store


@api.method(
    "admin.users.reset_totp", http=DELETE("/users/{email}/totp"), access=Manager("email", kind="user")
)
async def reset_totp(ctx: Context, email: EmailAddress) -> None:
    """Turn a user's second factor off and forget its secret and recovery codes (audited)."""
    async with ctx.rt.db.write() as tx:
        user = await load_user(tx, email)
        check_may_administer(ctx.principal, user)
        await store.remove_totp(tx, user.id)
