"""mail.totp.*: the caller's second factor (TOTP, RFC 6238) and its recovery codes.

Set-up is two steps: ``POST /me/totp`` makes a secret (shown once: text, ``otpauth://`` URI,
QR code) and ``POST /me/totp/confirm`` turns it on with a code from the app, answering the
ten recovery codes once. From then on a login needs ``otp`` (auth/second_factor.py), and the
account password no longer logs in to SMTP, IMAP or POP3: mail clients use app passwords.
``DELETE /me/totp`` with a current code (or a recovery code) turns it off; an administrator
or the user's domain manager can reset it (``admin.users.reset_totp``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr

from mailroom.auth import second_factor, totp
from mailroom.domain.identity import TotpEnabled, TotpSetup, TotpStatus
from mailroom.errors import Conflict, FieldError, InvalidParams, NotFound
from mailroom.registry import DELETE, GET, POST, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.services.mail._auth import authenticator_of
from mailroom.store import identity as store

Code = Annotated[
    SecretStr, Field(min_length=1, max_length=64, description="A code from the authenticator app.")
]


def _box(ctx: Context) -> totp.SecretBox:
    box = authenticator_of(ctx).totp_box
    assert box is not None
    return box


@api.method("mail.totp.get", http=GET("/me/totp"), access=UserSelf())
async def get_totp(ctx: Context) -> TotpStatus:
    """Whether the caller's logins need a second factor, and how many recovery codes are left."""
    user_id = ctx.principal.user_id
    assert user_id is not None
    async with ctx.rt.db.read() as tx:
        row = await store.totp(tx, user_id)
        left = await store.recovery_codes_left(tx, user_id) if row is not None else 0
    if row is None:
        return TotpStatus(enabled=False, pending=False)
    return TotpStatus(
        enabled=row.enabled,
        pending=not row.enabled,
        confirmed_at=row.confirmed_at,
        recovery_codes_left=left,
    )


@api.method("mail.totp.setup", http=POST("/me/totp"), access=UserSelf())
async def setup_totp(ctx: Context) -> TotpSetup:
    """Start setting up TOTP: a new secret, its ``otpauth://`` URI and QR code (shown once).

    Nothing changes for logins until ``POST /me/totp/confirm``. Starting again replaces a
    set-up that was not confirmed; with TOTP on, it is ``conflict`` (turn it off first).
    """
    p = ctx.principal
    assert p.user_id is not None
    assert p.email is not None
    secret = totp.new_secret()
    sealed = _box(ctx).seal(p.user_id, secret)
    async with ctx.rt.db.write() as tx:
        row = await store.totp(tx, p.user_id)
        if row is not None and row.enabled:
            raise Conflict("the second factor is already on; turn it off first")
        await store.start_totp(tx, p.user_id, sealed, ctx.rt.clock.now())
    uri = totp.provisioning_uri(secret, p.email, issuer=p.domain or "mailroom")
    return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


@api.method("mail.totp.confirm", http=POST("/me/totp/confirm"), access=UserSelf())
async def confirm_totp(ctx: Context, code: Code) -> TotpEnabled:
    """Turn TOTP on with the app's current code; answers the ten recovery codes (shown once)."""
    p = ctx.principal
    assert p.user_id is not None
    if not totp.looks_like_code(code.get_secret_value()):
        raise InvalidParams([FieldError("code", "is not a 6-digit code")])
    now = ctx.rt.clock.now()
    async with ctx.rt.db.read() as tx:
        row = await store.totp(tx, p.user_id)
    if row is None:
        raise NotFound("no TOTP set-up was started: POST /me/totp first")
    if row.enabled:
        raise Conflict("the second factor is already on")
    secret = _box(ctx).open(p.user_id, row.secret_encrypted)
    step = totp.matching_step(secret, code.get_secret_value(), now) if secret is not None else None
    if step is None:
        raise InvalidParams([FieldError("code", "is not the authenticator app's current code")])
    codes = totp.new_recovery_codes()
    digests = [d for d in map(totp.recovery_digest, codes) if d is not None]
    async with ctx.rt.db.write() as tx:
        await store.enable_totp(tx, p.user_id, step, now, digests)
    return TotpEnabled(recovery_codes=codes)


@api.method("mail.totp.disable", http=DELETE("/me/totp"), access=UserSelf())
async def disable_totp(ctx: Context, otp: Code) -> None:
    """Turn the second factor off: ``otp`` is a current code (or a recovery code).

    A wrong code is a failed login for the brute-force guard.
    """
    p = ctx.principal
    assert p.user_id is not None
    assert p.email is not None
    presented = otp.get_secret_value()
    if not totp.looks_like_code(presented) and totp.recovery_digest(presented) is None:
        raise InvalidParams([FieldError("otp", "is not a 6-digit code or a recovery code")])
    auth = authenticator_of(ctx)
    if auth.guard is not None:
        await auth.guard.check(p.email, ctx.call.client_ip)
    async with ctx.rt.db.read() as tx:
        row = await store.totp(tx, p.user_id)
    if row is None or not row.enabled:
        raise NotFound("the second factor is not on")
    if not await second_factor.accept(auth, p.user_id, row.secret_encrypted, presented):
        if auth.guard is not None:
            await auth.guard.failed(p.email, ctx.call.client_ip, "\x00otp\x00" + presented)
        raise InvalidParams([FieldError("otp", "is not a current code or an unused recovery code")])
    async with ctx.rt.db.write() as tx:
        await store.remove_totp(tx, p.user_id)
