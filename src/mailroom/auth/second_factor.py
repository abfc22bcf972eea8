"""The second step of a login for users who turned TOTP on (see :mod:`mailroom.auth.totp`).

A login of such a user needs, besides the password, ``otp``: the current code of their
authenticator app (each accepted once: the step of the last one is kept, so a code seen by
someone else cannot be replayed) or one of their unused recovery codes (spent on use).
Without it the login answers :class:`~mailroom.errors.OtpRequired`; a wrong, replayed or
spent code is a failed login for the brute-force guard, like a wrong password.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mailroom.auth import totp
from mailroom.errors import OtpRequired, Unauthenticated
from mailroom.store import identity

if TYPE_CHECKING:
    from mailroom.auth.authenticate import Authenticator

log = logging.getLogger("mailroom.auth")

OTP_REQUIRED = 'this account has a second factor: send "otp" (the current code or a recovery code)'


async def check(
    auth: Authenticator, user_id: int, email: str, otp: str | None, client_ip: str | None
) -> None:
    """Return when the user has no second factor or ``otp`` passes it; raise otherwise."""
    async with auth.db.read() as tx:
        row = await identity.totp(tx, user_id)
    if row is None or not row.enabled:
        return
    if not otp:
        raise OtpRequired(OTP_REQUIRED)
    if await accept(auth, user_id, row.secret_encrypted, otp):
        return
    if auth.guard is not None:
        # Distinct from any password (the guard counts one value once per account).
        await auth.guard.failed(email, client_ip, "\x00otp\x00" + otp)
    raise Unauthenticated("invalid or expired credentials")


async def accept(auth: Authenticator, user_id: int, sealed: str, otp: str) -> bool:
    """Whether ``otp`` is a code not used before or an unused recovery code (then spent)."""
    now = auth.clock.now()
    if totp.looks_like_code(otp):
        secret = auth.totp_box.open(user_id, sealed) if auth.totp_box is not None else None
        if secret is None:
            log.warning("the TOTP secret of user %s cannot be decrypted (secret_key changed?)", user_id)
            return False
        step = totp.matching_step(secret, otp, now)
        if step is None:
            return False
        async with auth.db.write() as tx:
            return await identity.use_step(tx, user_id, step)
    digest = totp.recovery_digest(otp)
    if digest is None:
        return False
    async with auth.db.write() as tx:
        return await identity.use_recovery_code(tx, user_id, digest, now)
