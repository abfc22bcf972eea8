"""Credentials → :class:`Principal`, the same for every front-end.

Bearer tokens are API keys (``mr_...``) or, once the mail client API exists, session tokens;
HTTP Basic carries ``address:password`` or ``address:apikey`` for clients that only know
Basic. Every failure gives the same generic ``Unauthenticated``: which part was wrong (no
such user, bad password, expired key, wrong network) is never revealed to the caller.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from mailroom.auth import second_factor, tokens
from mailroom.auth.passwords import PasswordHasher
from mailroom.auth.principal import Principal, anonymous
from mailroom.clock import Clock
from mailroom.domain.directory import DIRECTORY_SOURCE
from mailroom.errors import Unauthenticated
from mailroom.store import accounts, apikeys, identity
from mailroom.store.engine import Database, Tx

if TYPE_CHECKING:
    from mailroom.accounting.guard import LoginGuard
    from mailroom.auth.directory import Directory
    from mailroom.auth.oidc.client import OidcClient
    from mailroom.auth.provisioning import Provisioner
    from mailroom.auth.totp import SecretBox

log = logging.getLogger("mailroom.auth")

API_KEY_PREFIX = "mr"
#: App passwords: ``mrapp_<lookup id>_<random>``.
APP_PASSWORD_PREFIX = "mrapp"
#: Who asks :meth:`Authenticator.basic`: the API (HTTP Basic) or a mail protocol.
Protocol = Literal["api", "smtp", "imap", "pop3", "jmap", "dav"]
#: Most API keys kept in the per-process cache (it is emptied when full).
KEY_CACHE_SIZE = 10_000
#: last_used_at is written at most this often per key, so reads never turn into writes.
TOUCH_INTERVAL_SECONDS = 60.0

BearerHandler = Callable[[str, str | None], Awaitable[Principal | None]]


def ip_allowed(client_ip: str | None, networks: list[str] | None) -> bool:
    if not networks:
        return True
    if client_ip is None:
        return False
    try:
        addr = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net, strict=False) for net in networks)


class Authenticator:
    """Turns credentials into principals; the one place that checks them."""

    def __init__(self, db: Database, passwords: PasswordHasher, clock: Clock) -> None:
        self.db = db
        self.passwords = passwords
        self.clock = clock
        self._touched: dict[str, float] = {}
        #: API keys with the principal they stand for, for ``cache_seconds`` (0: no cache).
        self.cache_seconds = 0.0
        self._key_cache: dict[
            str, tuple[float, apikeys.ApiKeyCredential, Principal, dict[str | None, Principal]]
        ] = {}
        #: Other token kinds (sessions) register a handler by prefix.
        self.bearer_handlers: dict[str, BearerHandler] = {}
        #: The brute-force guard every password login goes through (set by bootstrap).
        self.guard: LoginGuard | None = None
        #: Encrypts and decrypts TOTP secrets (set by bootstrap from ``secret_key``).
        self.totp_box: SecretBox | None = None
        #: The LDAP directory that checks the passwords of users not stored here, and what
        #: makes and updates their mailboxes (set by bootstrap when ``ldap_url`` is set).
        self.directory: Directory | None = None
        self.provisioner: Provisioner | None = None
        #: The OpenID Connect provider, when one is configured (set by bootstrap).
        self.oidc: OidcClient | None = None
        #: Bearer tokens of no prefix of ours (the provider's access tokens, auth/oidc).
        self.fallback_bearer: BearerHandler | None = None

    async def bearer(self, token: str, client_ip: str | None) -> Principal:
        prefix = token.split("_", 1)[0]
        if prefix == API_KEY_PREFIX:
            return await self.api_key(token, client_ip)
        handler = self.bearer_handlers.get(prefix)
        if handler is None and not tokens.looks_issued(token):
            handler = self.fallback_bearer  # not one of ours: the identity provider's
        if handler is not None:
            principal = await handler(token, client_ip)
            if principal is not None:
                return principal
        raise Unauthenticated("invalid or expired credentials")

    async def api_key(self, secret: str, client_ip: str | None) -> Principal:
        # The cache is keyed by the digest of the presented secret: an entry is only made
        # after the secret matched its key's stored digest, so finding one proves the
        # secret (a lookup by a SHA-256 digest reveals nothing a timing could use), and a
        # cached request costs one hash instead of a parse, a hash and a comparison.
        presented = tokens.digest(secret)
        cached = self._key_cache.get(presented)
        by_ip: dict[str | None, Principal] | None = None
        if cached is not None and cached[0] > time.monotonic():
            row, principal, by_ip = cached[1], cached[2], cached[3]
        else:
            key_id = tokens.parse_secret(secret, API_KEY_PREFIX)
            if key_id is None:
                raise Unauthenticated("invalid or expired credentials")
            async with self.db.read() as tx:
                found = await apikeys.get_for_auth(tx, key_id)
                if found is None or not tokens.digests_equal(presented, found.digest):
                    raise Unauthenticated("invalid or expired credentials")
                row = found
                principal = await self._key_principal(tx, row, None)
            if self.cache_seconds > 0:
                if len(self._key_cache) >= KEY_CACHE_SIZE:
                    self._key_cache.clear()
                by_ip = {}
                self._key_cache[presented] = (time.monotonic() + self.cache_seconds, row, principal, by_ip)
        # The checks that depend on the time and the caller's address run on every
        # request, cached or not.
        key_id = row.id
        now = self.clock.timestamp()
        if row.expires_at is not None and row.expires_at.timestamp() <= now:
            raise Unauthenticated("invalid or expired credentials")
        if not ip_allowed(client_ip, row.allowed_networks):
            raise Unauthenticated("invalid or expired credentials")
        last = self._touched.get(key_id)
        if last is None or now - last >= TOUCH_INTERVAL_SECONDS:
            await self._touch(key_id)
        if by_ip is None:
            return replace(principal, client_ip=client_ip)
        # The principal for this address, made once per cache period (a key is used from
        # a handful of addresses; the dict is bounded all the same).
        found_for_ip = by_ip.get(client_ip)
        if found_for_ip is None:
            if len(by_ip) >= 64:
                by_ip.clear()
            found_for_ip = by_ip[client_ip] = replace(principal, client_ip=client_ip)
        return found_for_ip

    def invalidate(self) -> None:
        """Forget cached keys: called after a change in this process that may alter a key's
        principal (bootstrap.KEY_CACHE_SAFE_OBJECTS lists the others): a deleted key, a
        disabled user, a new manager take effect at once here; other processes see them
        within ``auth_cache_seconds``."""
        self._key_cache.clear()

    async def _key_principal(self, tx: Tx, key: apikeys.ApiKeyCredential, client_ip: str | None) -> Principal:
        scopes = tuple(key.scopes) if key.scopes else None
        if key.owner_id is None:
            return Principal(
                kind="apikey",
                is_admin=key.is_admin,
                key_id=key.id,
                scopes=scopes,
                client_ip=client_ip,
            )
        user = await accounts.user_for_auth(tx, user_id=key.owner_id)
        if user is None or not user.enabled:
            raise Unauthenticated("invalid or expired credentials")
        return Principal(
            kind="apikey",
            user_id=user.id,
            email=user.email,
            is_admin=user.global_admin,
            managed_domains=await accounts.managed_domains(tx, user.id),
            key_id=key.id,
            scopes=scopes,
            client_ip=client_ip,
        )

    async def _touch(self, key_id: str) -> None:
        """Record the key's use (the caller checked it is due: at most every
        ``TOUCH_INTERVAL_SECONDS``)."""
        now = self.clock.now()
        self._touched[key_id] = now.timestamp()
        try:
            async with self.db.write() as tx:
                await apikeys.touch(tx, key_id, now)
        except Exception:  # a failed bookkeeping write must not fail the request
            log.warning("could not record last use of key %s", key_id)

    async def _verify_password(self, email: str, password: str, client_ip: str | None) -> accounts.AuthUser:
        """The user whose password this is (the guard asked first and told of a failure);
        imported hashes are upgraded to argon2id. The guard is not told of the success:
        the caller does that once every factor passed."""
        guard = self.guard
        if guard is not None:
            await guard.check(email, client_ip)
        async with self.db.read() as tx:
            user = await accounts.user_for_auth(tx, email=email)
        if self.directory is not None and (user is None or user.auth_source == DIRECTORY_SOURCE):
            return await self._verify_in_directory(self.directory, email, password, client_ip)
        if user is None:
            await self.passwords.dummy_verify_async(password)
            if guard is not None:
                await guard.failed(email, client_ip, password)
            raise Unauthenticated("invalid or expired credentials")
        # Off the event loop, in the hasher's bounded pool: one login's argon2id (~0.1-0.4 s
        # of CPU) must not stall every other session of this worker.
        result = await self.passwords.verify_async(user.password_hash, password)
        if not result.ok or not user.enabled:
            if guard is not None:
                await guard.failed(email, client_ip, password)
            raise Unauthenticated("invalid or expired credentials")
        if result.needs_rehash:
            new_hash = await self.passwords.hash_async(password)
            async with self.db.write() as tx:
                await accounts.set_password_hash(tx, user.id, new_hash)
        return user

    async def _verify_in_directory(
        self, directory: Directory, email: str, password: str, client_ip: str | None
    ) -> accounts.AuthUser:
        """The directory user whose password this is, their mailbox made or brought up to
        date first. A directory that cannot answer raises :class:`DirectoryUnavailable`
        (a temporary failure: it does not count for the guard, the password was not judged)."""
        guard = self.guard
        entry = await directory.authenticate(email, password)
        user = None
        if entry is not None and self.provisioner is not None:
            has_mailbox, roles_changed = await self.provisioner.apply(entry)
            if roles_changed:
                self.invalidate()  # API keys of this user carry their old roles
            if has_mailbox:
                async with self.db.read() as tx:
                    user = await accounts.user_for_auth(tx, email=email)
        if user is None or user.auth_source != DIRECTORY_SOURCE or not user.enabled:
            if guard is not None:
                await guard.failed(email, client_ip, password)
            raise Unauthenticated("invalid or expired credentials")
        return user

    async def _user_principal(self, user: accounts.AuthUser, client_ip: str | None) -> Principal:
        async with self.db.read() as tx:
            managed = await accounts.managed_domains(tx, user.id)
        return Principal(
            kind="user",
            user_id=user.id,
            email=user.email,
            is_admin=user.global_admin,
            managed_domains=managed,
            client_ip=client_ip,
        )

    async def _succeeded(self, email: str, client_ip: str | None) -> None:
        if self.guard is not None:
            await self.guard.succeeded(email, client_ip)

    async def password(self, address: str, password: str, client_ip: str | None) -> Principal:
        """A user's own password alone, to confirm who a signed-in caller is (a password
        change); logins go through :meth:`login` (second factor) or :meth:`basic`.

        The brute-force guard refuses locked-out networks and accounts (429) before anything
        is verified, and counts every failure.
        """
        email = address.strip().lower()
        user = await self._verify_password(email, password, client_ip)
        await self._succeeded(email, client_ip)
        return await self._user_principal(user, client_ip)

    async def login(self, address: str, password: str, otp: str | None, client_ip: str | None) -> Principal:
        """The web and API login: the password, then the second factor when the user has
        one (:mod:`mailroom.auth.second_factor`): a current TOTP code or a recovery code in
        ``otp``. Without it :class:`OtpRequired`; a wrong or replayed one is a failed login
        for the brute-force guard."""
        email = address.strip().lower()
        user = await self._verify_password(email, password, client_ip)
        await second_factor.check(self, user.id, email, otp, client_ip)
        await self._succeeded(email, client_ip)
        return await self._user_principal(user, client_ip)

    async def _password_without_second_factor(
        self, email: str, password: str, client_ip: str | None, protocol: Protocol
    ) -> Principal:
        """A password where no second factor can be asked for (HTTP Basic, mail protocols):
        refused for users who turned TOTP on (they use an app password or an API key)."""
        user = await self._verify_password(email, password, client_ip)
        async with self.db.read() as tx:
            two_factor = await identity.totp_enabled(tx, user.id)
        if two_factor:
            log.info("password refused for %s on %s: the account has a second factor", email, protocol)
            raise Unauthenticated("invalid or expired credentials")
        await self._succeeded(email, client_ip)
        return await self._user_principal(user, client_ip)

    async def basic(
        self, username: str, secret: str, client_ip: str | None, protocol: Protocol = "api"
    ) -> Principal:
        """``address`` and a secret, as HTTP Basic, SMTP AUTH and nginx's mail proxy give them.

        The secret may be one of the user's API keys, an app password (only on the mail
        protocols it names: ``protocol`` says which one is asking; never on ``api``), or the
        password (only while the user has no second factor: none of these can carry one).
        """
        email = username.strip().lower()
        if secret.startswith(API_KEY_PREFIX + "_"):
            principal = await self.api_key(secret, client_ip)
            if principal.email is not None and principal.email != email:
                raise Unauthenticated("invalid or expired credentials")
            return principal
        if protocol != "api" and secret.startswith(APP_PASSWORD_PREFIX + "_"):
            return await self.app_password(email, secret, client_ip, protocol)
        return await self._password_without_second_factor(email, secret, client_ip, protocol)

    async def app_password(
        self, email: str, secret: str, client_ip: str | None, protocol: Protocol
    ) -> Principal:
        """An app password of ``email`` that names ``protocol``; checked in the database on
        every login (no cache), so a revoked one stops working at once."""
        guard = self.guard
        if guard is not None:
            await guard.check(email, client_ip)
        lookup_id = tokens.parse_secret(secret, APP_PASSWORD_PREFIX)
        row = user = None
        if lookup_id is not None:
            async with self.db.read() as tx:
                row = await identity.app_password_for_auth(tx, lookup_id)
                if row is not None:
                    user = await accounts.user_for_auth(tx, user_id=row.user_id)
        if (
            row is None
            or user is None
            or not tokens.matches(secret, row.digest)
            or not user.enabled
            or user.email != email
            or protocol not in row.protocols
        ):
            if guard is not None:
                await guard.failed(email, client_ip, secret)
            raise Unauthenticated("invalid or expired credentials")
        now = self.clock.now()
        last = row.last_used_at
        if last is None or row.last_ip != client_ip or (now - last).total_seconds() >= TOUCH_INTERVAL_SECONDS:
            try:
                async with self.db.write() as tx:
                    await identity.touch_app_password(tx, row.id, now, client_ip)
            except Exception:  # bookkeeping must not fail the login
                log.warning("could not record last use of app password %s", row.id)
        await self._succeeded(email, client_ip)
        principal = await self._user_principal(user, client_ip)
        return replace(principal, app_password_id=row.id)

    @staticmethod
    def anonymous(client_ip: str | None) -> Principal:
        return anonymous(client_ip)
