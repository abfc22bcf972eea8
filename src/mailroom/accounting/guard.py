"""The brute-force guard: one for every way a password is tried (REST, Basic on RPC, SMTP AUTH).

:meth:`Authenticator.password <mailroom.auth.authenticate.Authenticator.password>` asks
:meth:`LoginGuard.check` before it verifies anything, and reports each failure and success:

* failures are counted per client network (IPv4 /24, IPv6 /48; default 5 per hour) and per
  account (default 50 per day), in sliding windows on the shared counters (memory or Redis);
* the same wrong password for the same account counts once (a phone retrying an old
  password is not an attack); the password is kept only as an HMAC under the server secret;
* a successful login makes that account *known* on that network for
  ``login_exemption_seconds``. A known account's attempts from there are judged against a
  raised network limit (default 50 per hour: password spraying from an office is still
  stopped) and against an account limit of their own (the same 50 per day, counted only for
  failures from there), so an attacker elsewhere cannot lock a user out of their usual
  network, and nobody on that network gets unlimited guesses at them. Other accounts on
  the same network get nothing from it: one user's login never lifts a limit for another;
* a locked-out attempt gets :class:`RateLimited` (429 with ``Retry-After``) before the password
  is even looked at, the same for accounts that exist and accounts that do not.

Accounts that do not exist are counted like any other, so the guard reveals nothing either.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math

from limits import RateLimitItem

from mailroom.accounting.counters import Counters, client_network, parse_limit
from mailroom.accounting.metrics import Metrics
from mailroom.errors import RateLimited

log = logging.getLogger("mailroom.accounting.guard")

LOCKED_MESSAGE = "too many failed logins; try again later"


class LoginGuard:
    """Counts failed password logins and refuses attempts from locked-out networks and accounts."""

    def __init__(
        self,
        counters: Counters,
        *,
        per_network: str,
        per_account: str,
        exemption_seconds: int,
        secret: bytes,
        per_known_network: str | None = None,
        prefix_v4: int = 24,
        prefix_v6: int = 48,
        metrics: Metrics | None = None,
    ) -> None:
        self.counters = counters
        self.network_item: RateLimitItem = parse_limit(per_network)
        #: The network limit for an account known there; never below the plain one.
        self.known_network_item: RateLimitItem = parse_limit(per_known_network or per_network)
        self.account_item: RateLimitItem = parse_limit(per_account)
        self.exemption_seconds = exemption_seconds
        self._secret = secret
        self.prefix_v4 = prefix_v4
        self.prefix_v6 = prefix_v6
        self.metrics = metrics

    def network(self, client_ip: str | None) -> str | None:
        return client_network(client_ip, self.prefix_v4, self.prefix_v6)

    def _digest(self, *parts: str) -> str:
        mac = hmac.new(self._secret, "\x00".join(parts).encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def _known_key(self, account: str, network: str) -> str:
        return f"login-exempt/acct/{self._digest(account, network)}"

    async def _known(self, account: str, network: str | None) -> bool:
        """Whether ``account`` logged in successfully from ``network`` lately."""
        if network is None:
            return False
        return await self.counters.storage.get(self._known_key(account, network)) > 0

    def _account_identity(self, account: str, network: str | None, known: bool) -> tuple[str, ...]:
        """The counter an attempt on ``account`` is judged by: its own, or, from a network
        where it is known, the one of that account on that network."""
        if known and network is not None:
            return ("login-acct-known", self._digest(account, network))
        return ("login-acct", account)

    async def check(self, account: str, client_ip: str | None) -> None:
        """Raise :class:`RateLimited` when the network or the account is locked out."""
        try:
            await self._check(account, client_ip)
        except RateLimited:
            raise
        except Exception:
            log.exception("login guard counters unavailable; login attempt allowed")

    async def _check(self, account: str, client_ip: str | None) -> None:
        limiter = self.counters.limiter
        network = self.network(client_ip)
        known = await self._known(account, network)
        if network is not None:
            item = self.known_network_item if known else self.network_item
            if not await limiter.test(item, "login-net", network):
                await self._locked("network", item, "login-net", network)
        identity = self._account_identity(account, network, known)
        if not await limiter.test(self.account_item, *identity):
            await self._locked("account", self.account_item, *identity)

    async def _locked(self, scope: str, item: RateLimitItem, *identity: str) -> None:
        stats = await self.counters.limiter.get_window_stats(item, *identity)
        retry_after = max(1, math.ceil(stats.reset_time - self.counters.now()))
        if self.metrics is not None:
            self.metrics.login_lockouts.labels(scope).inc()
        raise RateLimited(LOCKED_MESSAGE, retry_after=retry_after)

    async def failed(self, account: str, client_ip: str | None, password: str) -> None:
        """Count a failure, unless this account already failed with this very password.

        Every failure counts for the network (under both of its limits) and for the
        account; one from a network where the account is known counts for that pair too.
        """
        try:
            network = self.network(client_ip)
            window = max(
                int(self.account_item.get_expiry()),
                int(self.network_item.get_expiry()),
                int(self.known_network_item.get_expiry()),
            )
            seen = f"login-seen/{self._digest(account, password)}"
            if await self.counters.storage.incr(seen, window) > 1:
                return
            if self.metrics is not None:
                self.metrics.login_failures.inc()
            limiter = self.counters.limiter
            if network is not None:
                await limiter.hit(self.network_item, "login-net", network)
                if self.known_network_item != self.network_item:
                    await limiter.hit(self.known_network_item, "login-net", network)
            await limiter.hit(self.account_item, "login-acct", account)
            if await self._known(account, network):
                await limiter.hit(self.account_item, *self._account_identity(account, network, True))
        except Exception:
            log.exception("login guard counters unavailable; failure not counted")

    async def succeeded(self, account: str, client_ip: str | None) -> None:
        """Make ``account`` known on its network for ``exemption_seconds``."""
        network = self.network(client_ip)
        if network is None or self.exemption_seconds <= 0:
            return
        try:
            storage = self.counters.storage
            key = self._known_key(account, network)
            await storage.clear(key)  # restart the exemption's clock
            await storage.incr(key, self.exemption_seconds)
        except Exception:
            log.exception("login guard counters unavailable; success not recorded")
