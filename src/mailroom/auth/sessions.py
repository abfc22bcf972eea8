"""Mail client session tokens: ``ms_<id>_<random>``, a bearer credential like an API key.

A session is issued at login (``mail.sessions.login``) and stored as the SHA-256 digest of
its token, with its user, expiry, user agent and client address. :class:`SessionTokens` is
the bearer handler :class:`~mailroom.auth.authenticate.Authenticator` calls for the ``ms``
prefix; it answers with the user's principal (carrying ``session_id``) or None, which the
authenticator turns into the generic ``unauthenticated``.

A session also has a single-use refresh token (``msr_<id>_<random>``, :data:`REFRESH_PREFIX`)
that renews it without the password (``mail.sessions.refresh``): a new session token and a
new refresh token each time, the old ones stop working.

A session remembers a stamp of the user's password hash: when the password changes by any
path (mail client, admin API, command line), sessions not explicitly carried over end.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta

from mailroom.auth import tokens
from mailroom.auth.authenticate import Authenticator
from mailroom.auth.principal import Principal
from mailroom.clock import Clock
from mailroom.settings import Settings
from mailroom.store import accounts
from mailroom.store import sessions as store
from mailroom.store.engine import Database

log = logging.getLogger("mailroom.auth.sessions")

SESSION_PREFIX = "ms"
#: Refresh tokens (``msr_<id>_<random>``): never a bearer credential, only the parameter of
#: ``mail.sessions.refresh``.
REFRESH_PREFIX = "msr"
#: last_used_at is written at most this often per session.
TOUCH_INTERVAL_SECONDS = 60.0
#: User agents that get the longer, mobile session lifetime.
MOBILE_USER_AGENT = re.compile(r"Android|iPhone|iPad|Mobile")


def is_mobile(user_agent: str | None) -> bool:
    return bool(user_agent) and MOBILE_USER_AGENT.search(user_agent or "") is not None


def session_ttl(settings: Settings, user_agent: str | None) -> timedelta:
    """``mobile_session_ttl_seconds`` for phones and tablets, ``session_ttl_seconds`` otherwise."""
    seconds = settings.mobile_session_ttl_seconds if is_mobile(user_agent) else settings.session_ttl_seconds
    return timedelta(seconds=seconds)


def session_ttl_for(settings: Settings, mobile: bool) -> timedelta:
    """The access token lifetime of a session already known to be mobile or not."""
    return timedelta(seconds=settings.mobile_session_ttl_seconds if mobile else settings.session_ttl_seconds)


def refresh_ttl(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.session_refresh_ttl_seconds)


def password_stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SessionTokens:
    """The bearer handler for session tokens."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._touched: dict[str, float] = {}

    async def __call__(self, token: str, client_ip: str | None) -> Principal | None:
        session_id = tokens.parse_secret(token, SESSION_PREFIX)
        if session_id is None:
            return None
        async with self.db.read() as tx:
            row = await store.get_for_auth(tx, session_id)
            if row is None or not tokens.matches(token, row.digest):
                return None
            now = self.clock.now()
            if row.expires_at <= now or not row.enabled:
                return None
            if row.password_stamp != password_stamp(row.password_hash):
                return None
            managed = await accounts.managed_domains(tx, row.user_id)
        await self._touch(session_id)
        return Principal(
            kind="user",
            user_id=row.user_id,
            email=row.email,
            is_admin=row.global_admin,
            managed_domains=managed,
            session_id=session_id,
            client_ip=client_ip,
        )

    async def _touch(self, session_id: str) -> None:
        now = self.clock.now()
        last = self._touched.get(session_id)
        if last is not None and now.timestamp() - last < TOUCH_INTERVAL_SECONDS:
            return
        if len(self._touched) > 100_000:  # bounded memory: forget, at worst touch again
            self._touched.clear()
        self._touched[session_id] = now.timestamp()
        try:
            async with self.db.write() as tx:
                await store.touch(tx, session_id, now)
        except Exception:  # a failed bookkeeping write must not fail the request
            log.warning("could not record last use of session %s", session_id)


def install(authenticator: Authenticator) -> None:
    """Register the handler for ``ms_`` bearer tokens (called by bootstrap)."""
    authenticator.bearer_handlers[SESSION_PREFIX] = SessionTokens(authenticator.db, authenticator.clock)
