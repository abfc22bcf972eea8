"""mail.sessions.*: logging in and out, listing and revoking sessions, changing the password.

Login takes a user name or a full address. A bare user name belongs to the ``default_domain``
setting, else to the first domain (by name) with sign-up enabled; it is matched the way
sign-up names are (dots and case ignored), then as the local part itself. Every failure is
the same generic ``unauthenticated``, and every attempt goes through
:meth:`Authenticator.password <mailroom.auth.authenticate.Authenticator.password>`, so the
brute-force guard applies as for any other password login.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr

from mailroom.auth import tokens
from mailroom.auth.principal import Principal
from mailroom.auth.sessions import (
    REFRESH_PREFIX,
    SESSION_PREFIX,
    is_mobile,
    password_stamp,
    refresh_ttl,
    session_ttl,
    session_ttl_for,
)
from mailroom.domain.directory import DIRECTORY_SOURCE, directory_password_error
from mailroom.domain.names import normalize_address
from mailroom.domain.sessions import LoginResult, Session
from mailroom.domain.usernames import canonical, looks_like_username
from mailroom.domain.users import Password
from mailroom.errors import BadRequest, FieldError, InvalidParams, NotFound, Unauthenticated
from mailroom.events import Revocation, revoke_safely
from mailroom.registry import DELETE, GET, POST, PUT, Context, Public, UserSelf
from mailroom.services.mail._api import api
from mailroom.services.mail._auth import authenticator_of
from mailroom.store import accounts, signups
from mailroom.store import directory as directory_store
from mailroom.store import sessions as store
from mailroom.store import users as users_store

LoginName = Annotated[
    str,
    Field(min_length=1, max_length=320, description="User name or full address.", examples=["john.smith"]),
]
LoginPassword = Annotated[SecretStr, Field(max_length=1024, description="The account's password.")]
OtpCode = Annotated[
    SecretStr,
    Field(
        min_length=1,
        max_length=64,
        description="The second factor: the authenticator app's current 6-digit code, or a recovery code.",
    ),
]
RefreshToken = Annotated[
    SecretStr,
    Field(min_length=1, max_length=300, description="The refresh token of the login or of the last refresh."),
]

log = logging.getLogger("mailroom.sessions")
INVALID = "invalid or expired credentials"


async def login_address(ctx: Context, name: str) -> str:
    """The mailbox address a login name stands for.

    An address or a bare name (in the sign-up domain) is the mailbox with exactly that
    address, else the one signed up under the same name ignoring dots and case. A name that
    stands for none is returned as it is: it matches no user, so the login fails like any
    other (a password verification is still spent, and the brute-force guard counts the
    failure under that name).
    """
    name = name.strip()
    async with ctx.rt.db.read() as tx:
        if "@" in name:
            try:
                address = normalize_address(name)
            except ValueError:
                return name
            local, _, domain = address.partition("@")
        else:
            domain_or_none = ctx.rt.settings.default_domain or await signups.first_signup_domain(tx)
            if domain_or_none is None or not looks_like_username(name):
                return name
            domain = domain_or_none
            local = name.lower()
            address = f"{local}@{domain}"
        # A mailbox with exactly this address wins (an administrator may have made
        # johnsmith@ beside a signed-up john.smith@); otherwise the signed-up name.
        if looks_like_username(local) and await accounts.user_for_auth(tx, email=address) is None:
            found = await signups.address_for(tx, domain, canonical(local))
            if found is not None:
                return found
    return address


def _session_out(session: store.SessionRecord, current: str | None) -> Session:
    return Session(
        id=session.id,
        current=session.id == current,
        mobile=session.mobile,
        user_agent=session.user_agent,
        client_ip=session.client_ip,
        created_at=session.created_at,
        expires_at=session.expires_at,
        refresh_expires_at=session.refresh_expires_at,
        last_used_at=session.last_used_at,
    )


@api.method(
    "mail.sessions.login",
    http=POST("/login"),
    access=Public(),
    examples=[{"username": "john.smith", "password": "correct horse battery staple"}],
)
async def login(
    ctx: Context, username: LoginName, password: LoginPassword, otp: OtpCode | None = None
) -> LoginResult:
    """Start a session: ``{token, exp_date}``; send the token as ``Authorization: Bearer``.

    A user with a second factor (``POST /me/totp``) also sends ``otp``: the current code of
    their authenticator app or one of their recovery codes; without it the answer is 401
    ``otp_required``, and a wrong or already used code is a failed login.

    Sessions last ``session_ttl_seconds`` (1 hour by default), or
    ``mobile_session_ttl_seconds`` (30 days) for clients whose User-Agent says Android,
    iPhone, iPad or Mobile. A wrong name or password gives the generic ``unauthenticated``.
    """
    address = await login_address(ctx, username)
    principal = await authenticator_of(ctx).login(
        address,
        password.get_secret_value(),
        otp.get_secret_value() if otp is not None else None,
        ctx.call.client_ip,
    )
    return await start_session(ctx, principal)


async def start_session(ctx: Context, principal: Principal) -> LoginResult:
    """A new session (and its refresh token) for a user who just proved who they are: by
    password (:func:`login`) or at the OpenID Connect provider (services/mail/oidc.py)."""
    assert principal.user_id is not None
    assert principal.email is not None
    user_agent = (ctx.call.headers.get("user-agent") or "")[:500]
    now = ctx.rt.clock.now()
    expires = now + session_ttl(ctx.rt.settings, user_agent)
    issued = tokens.new_secret(SESSION_PREFIX)
    refresh = tokens.new_secret(REFRESH_PREFIX)
    refresh_expires = max(expires, now + refresh_ttl(ctx.rt.settings))
    async with ctx.rt.db.write() as tx:
        user = await accounts.user_for_auth(tx, user_id=principal.user_id)
        if user is None:  # deleted between the check and now
            raise Unauthenticated("invalid or expired credentials")
        await store.delete_expired(tx, principal.user_id, now)
        await store.insert_session(
            tx,
            {
                "id": issued.lookup_id,
                "digest": issued.digest,
                "user_id": principal.user_id,
                "password_stamp": password_stamp(user.password_hash),
                "mobile": is_mobile(user_agent),
                "user_agent": user_agent,
                "client_ip": ctx.call.client_ip,
                "created_at": now,
                "expires_at": expires,
                "last_used_at": now,
                "refresh_expires_at": refresh_expires,
            },
        )
        await store.insert_refresh(tx, _refresh_row(refresh, issued.lookup_id, now, refresh_expires))
    return LoginResult(
        token=issued.secret,
        exp_date=expires,
        refresh_token=refresh.secret,
        refresh_exp_date=refresh_expires,
        session_id=issued.lookup_id,
        email=principal.email,
    )


def _refresh_row(
    refresh: tokens.IssuedSecret, session_id: str, now: datetime, expires: datetime
) -> store.NewRefresh:
    return {
        "id": refresh.lookup_id,
        "session_id": session_id,
        "digest": refresh.digest,
        "created_at": now,
        "expires_at": expires,
        "used_at": None,
    }


Verdict = Literal["ok", "invalid", "reused"]


def _judge(row: store.RefreshCredential | None, presented: str, now: datetime, caller: int | None) -> Verdict:
    """Whether a presented refresh token may renew its session."""
    if row is None or not tokens.matches(presented, row.digest):
        return "invalid"
    if row.expires_at <= now or not row.enabled:
        return "invalid"
    if row.password_stamp != password_stamp(row.password_hash):
        return "invalid"  # the password changed since: the session is over
    if caller is not None and caller != row.user_id:
        return "invalid"  # signed in as someone else: refused, and the token is not spent
    if row.used_at is not None:
        return "reused"
    return "ok"


@api.method(
    "mail.sessions.refresh",
    http=POST("/sessions/refresh"),
    access=Public(),
    examples=[{"refresh_token": "msr_AbCd1234_..."}],
)
async def refresh(ctx: Context, refresh_token: RefreshToken) -> LoginResult:
    """Renew a session without the password: a new ``token`` and a new ``refresh_token``.

    A refresh token works once, until ``refresh_exp_date`` (``session_refresh_ttl_seconds``,
    30 days), whether the session token has expired or not. The session keeps its id; its
    previous token and refresh token stop working at once. A refresh token presented a
    second time means it was copied: the session ends (logout, in effect) and the call
    fails. Logout, revocation, a password change and a disabled account end refreshing too.
    Every failure is the generic ``unauthenticated``.
    """
    presented = refresh_token.get_secret_value()
    refresh_id = tokens.parse_secret(presented, REFRESH_PREFIX)
    if refresh_id is None:
        raise Unauthenticated(INVALID)
    settings = ctx.rt.settings
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        row = await store.refresh_for_auth(tx, refresh_id)
        verdict = _judge(row, presented, now, ctx.principal.user_id)
        if verdict == "ok":
            assert row is not None
            if not await store.use_refresh(tx, refresh_id, now):  # a concurrent refresh won
                verdict = "reused"
        if verdict == "reused":
            assert row is not None
            await store.delete_session(tx, row.session_id, row.user_id)
        elif verdict == "ok":
            assert row is not None
            session_id = row.session_id
            issued = tokens.new_secret(SESSION_PREFIX, lookup_id=session_id)
            renewal = tokens.new_secret(REFRESH_PREFIX)
            expires = now + session_ttl_for(settings, row.mobile)
            refresh_expires = max(expires, now + refresh_ttl(settings))
            await store.renew(
                tx,
                session_id,
                {
                    "digest": issued.digest,
                    "expires_at": expires,
                    "refresh_expires_at": refresh_expires,
                    "last_used_at": now,
                    "client_ip": ctx.call.client_ip,
                },
                now,
            )
            await store.insert_refresh(tx, _refresh_row(renewal, session_id, now, refresh_expires))
    if verdict == "reused":
        assert row is not None
        log.warning("a used refresh token of session %s was presented again: session ended", row.session_id)
    if verdict != "ok":
        raise Unauthenticated(INVALID)
    assert row is not None
    return LoginResult(
        token=issued.secret,
        exp_date=expires,
        refresh_token=renewal.secret,
        refresh_exp_date=refresh_expires,
        session_id=session_id,
        email=row.email,
    )


@api.method("mail.sessions.logout", http=DELETE("/logout"), access=UserSelf())
async def logout(ctx: Context) -> None:
    """End the session this request was made with; its token stops working at once."""
    p = ctx.principal
    if p.session_id is None or p.user_id is None:
        raise BadRequest("this request was not made with a session token")
    async with ctx.rt.db.write() as tx:
        await store.delete_session(tx, p.session_id, p.user_id)
    credentials = frozenset({f"session:{p.session_id}"})
    await revoke_safely(ctx.rt.events, Revocation("signed out", user_id=p.user_id, credentials=credentials))


@api.method("mail.sessions.list", http=GET("/me/sessions"), access=UserSelf())
async def list_sessions(ctx: Context) -> list[Session]:
    """The caller's sessions that have not expired, newest first; ``current`` marks this one."""
    p = ctx.principal
    assert p.user_id is not None
    async with ctx.rt.db.read() as tx:
        rows = await store.of_user(tx, p.user_id, ctx.rt.clock.now())
    return [_session_out(r, p.session_id) for r in rows]


@api.method("mail.sessions.revoke", http=DELETE("/me/sessions/{id}"), access=UserSelf())
async def revoke_session(ctx: Context, id: Annotated[str, Field(max_length=16)]) -> None:
    """End one of the caller's sessions (the current one included)."""
    p = ctx.principal
    assert p.user_id is not None
    async with ctx.rt.db.write() as tx:
        if not await store.delete_session(tx, id, p.user_id):
            raise NotFound.of("session", id)
    credentials = frozenset({f"session:{id}"})
    await revoke_safely(ctx.rt.events, Revocation("signed out", user_id=p.user_id, credentials=credentials))


class SessionsRevoked(BaseModel):
    """How many sessions the call ended."""

    revoked_sessions: int


@api.method("mail.sessions.revoke_others", http=DELETE("/me/sessions", status=200), access=UserSelf())
async def revoke_other_sessions(ctx: Context) -> SessionsRevoked:
    """Sign out everywhere else: end every session of the caller but the one this call is
    made with (every one, when it is made with an API key). Their tokens stop working and
    their open push streams and JMAP connections close at once, on every worker; mail
    clients logged in with a password or an app password are not sessions and go on."""
    p = ctx.principal
    assert p.user_id is not None
    keep = [p.session_id] if p.session_id is not None else []
    async with ctx.rt.db.write() as tx:
        revoked = await store.delete_others(tx, p.user_id, keep)
    revocation = Revocation(
        "signed out everywhere",
        user_id=p.user_id,
        credentials=frozenset({"session"}),
        keep=frozenset(f"session:{s}" for s in keep),
    )
    await revoke_safely(ctx.rt.events, revocation)
    return SessionsRevoked(revoked_sessions=revoked)


class PasswordChanged(BaseModel):
    """How many other sessions the change ended."""

    revoked_sessions: int


@api.method("mail.password.change", http=PUT("/me/password"), access=UserSelf())
async def change_password(
    ctx: Context, current_password: LoginPassword, new_password: Password
) -> PasswordChanged:
    """Change the caller's password; every other session ends, the current one goes on.

    ``current_password`` is checked like a login (the brute-force guard counts failures). A
    password changed any other way (admin API, command line) ends every session.
    """
    p = ctx.principal
    assert p.user_id is not None
    assert p.email is not None
    async with ctx.rt.db.read() as tx:
        if await directory_store.auth_source(tx, p.email) == DIRECTORY_SOURCE:
            raise directory_password_error(p.email)
    try:
        await authenticator_of(ctx).password(p.email, current_password.get_secret_value(), ctx.call.client_ip)
    except Unauthenticated:
        raise InvalidParams([FieldError("current_password", "is not the current password")]) from None
    new_hash = await asyncio.to_thread(ctx.rt.passwords.hash, new_password.get_secret_value())
    keep = [p.session_id] if p.session_id is not None else []
    async with ctx.rt.db.write() as tx:
        await users_store.update_user(
            tx,
            p.email,
            {"password_hash": new_hash, "change_pw_next_login": False, "updated_at": ctx.rt.clock.now()},
        )
        if p.session_id is not None:
            await store.restamp(tx, p.session_id, password_stamp(new_hash))
        revoked = await store.delete_others(tx, p.user_id, keep)
    await revoke_safely(
        ctx.rt.events,
        Revocation(
            "password changed",
            user_id=p.user_id,
            credentials=frozenset({"password", "session"}),
            keep=frozenset(f"session:{s}" for s in keep),
        ),
    )
    return PasswordChanged(revoked_sessions=revoked)
