"""The brute-force guard: one for every way a password is tried (REST, Basic on RPC, SMTP AUTH).

:meth:`Authenticator.password <mailroom.auth.authenticate.Authenticator.password>` asks
:meth:`LoginGuard.check` before it verifies anything, and reports each failure and success:

* failures are counted per client network (IPv4 /24, IPv6 /48; default 5 per hour) and per
  account (default 50 per day), in sliding windows on the shared counters (memory or Redis);
* the same wrong password for the same account counts once (a phone retrying an old
  password is not an attack); the password is kept only as an HMAC under the server secret;
* a successful login exempts its network from the network lockout, and that account from the
  account lockout when it logs in from that network, for ``login_exemption_seconds``;
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

log = logging.getLogger("mailroom.auth.guard")

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
        prefix_v4: int = 24,
        prefix_v6: int = 48,
        metrics: Metrics | None = None,
    ) -> None:
        self.counters = counters
        self.network_item: RateLimitItem = parse_limit(per_network)
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

    async def _exempt(self, key: str) -> bool:
        return await self.counters.storage.get(key) > 0

    def _net_exempt_key(self, network: str) -> str:
        return f"login-exempt/net/{network}"

    def _account_exempt_key(self, account: str, network: str) -> str:
        return f"login-exempt/acct/{self._digest(account, network)}"

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
        if (
            network is not None
            and not await self._exempt(self._net_exempt_key(network))
            and not await limiter.test(self.network_item, "login-net", network)
        ):
            await self._locked("network", self.network_item, "login-net", network)
        if network is not None and await self._exempt(self._account_exempt_key(account, network)):
            return
        if not await limiter.test(self.account_item, "login-acct", account):
            await self._locked("account", self.account_item, "login-acct", account)

    async def _locked(self, scope: str, item: RateLimitItem, *identity: str) -> None:
        stats = await self.counters.limiter.get_window_stats(item, *identity)
        retry_after = max(1, math.ceil(stats.reset_time - self.counters.now()))
        if self.metrics is not None:
            self.metrics.login_lockouts.labels(scope).inc()
        raise RateLimited(LOCKED_MESSAGE, retry_after=retry_after)

    async def failed(self, account: str, client_ip: str | None, password: str) -> None:
        """Count a failure, unless this account already failed with this very password."""
        try:
            network = self.network(client_ip)
            window = max(int(self.account_item.get_expiry()), int(self.network_item.get_expiry()))
            seen = f"login-seen/{self._digest(account, password)}"
            if await self.counters.storage.incr(seen, window) > 1:
                return
            if self.metrics is not None:
                self.metrics.login_failures.inc()
            limiter = self.counters.limiter
            if network is not None:
                await limiter.hit(self.network_item, "login-net", network)
            await limiter.hit(self.account_item, "login-acct", account)
        except Exception:
            log.exception("login guard counters unavailable; failure not counted")

    async def succeeded(self, account: str, client_ip: str | None) -> None:
        """Exempt the network (and this account from it) for ``exemption_seconds``."""
        network = self.network(client_ip)
        if network is None or self.exemption_seconds <= 0:
            return
        try:
            storage = self.counters.storage
            for key in (self._net_exempt_key(network), self._account_exempt_key(account, network)):
                await storage.clear(key)  # restart the exemption's clock
                await storage.incr(key, self.exemption_seconds)
        except Exception:
            log.exception("login guard counters unavailable; success not recorded")
