"""Rate limits: configured rules and API keys' own limits, checked by a runner filter.

A rule (``Settings.rate_limits``) says how much (``100/minute``) whom (``per``) may spend on
which methods (``methods`` glob, optionally one ``api``). A call spends its method's cost
(``MethodSpec.cost``, overridden by ``Settings.method_costs``) on every rule that applies;
it is refused when any of them has not enough left. Windows slide (``limits``' moving
window): a refused call spends nothing.

Replies carry the IETF draft's headers (draft-ietf-httpapi-ratelimit-headers):
``RateLimit-Policy: "default";q=100;w=60`` and ``RateLimit: "default";r=37;t=20`` — on
success in ``call.info.response_headers``, on refusal in ``RateLimited.headers`` beside
``Retry-After``. RPC protocols carry ``retry_after`` and ``policy`` in the error's data.

Calls made by the process itself (in-process, CLI, MTA lookups) are never limited.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from limits import RateLimitItem

from mailroom.accounting.counters import Counters, client_network, parse_limit
from mailroom.accounting.metrics import Metrics
from mailroom.auth.principal import Principal
from mailroom.errors import RateLimited
from mailroom.registry import Call, MethodSpec, Proceed
from mailroom.settings import RateLimitRule, Settings
from mailroom.store import keylimits
from mailroom.store.engine import Database

log = logging.getLogger("mailroom.ratelimit")

#: Protocols and principals a limit never applies to: the process itself.
EXEMPT_PROTOCOLS = frozenset({"inprocess", "cli"})
EXEMPT_KINDS = frozenset({"system", "internal"})
#: How long a key's own limits are cached per process (changes made here apply at once).
KEY_LIMITS_TTL = 30.0


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled rule."""

    name: str
    item: RateLimitItem
    methods: str
    api: str | None
    per: str

    @property
    def quota(self) -> int:
        return int(self.item.amount)

    @property
    def window(self) -> int:
        return int(self.item.get_expiry())

    def applies(self, spec: MethodSpec) -> bool:
        if self.api is not None and spec.api != self.api:
            return False
        return fnmatchcase(spec.name, self.methods)

    def header(self) -> str:
        return f'"{self.name}";q={self.quota};w={self.window}'


def compile_rules(rules: Sequence[RateLimitRule]) -> list[Policy]:
    """Settings' rules as policies; a lone unnamed rule is ``default``, others ``rule<N>``."""
    out: list[Policy] = []
    for i, rule in enumerate(rules, start=1):
        name = rule.name or ("default" if len(rules) == 1 else f"rule{i}")
        out.append(Policy(name, parse_limit(rule.limit), rule.methods, rule.api, rule.per))
    return out


def key_policies(key_id: str, limits: list[keylimits.KeyLimitRecord]) -> list[Policy]:
    """A key's own limits: per key, named ``key`` (``key<N>`` when it has several)."""
    out = []
    for i, limit in enumerate(limits, start=1):
        name = "key" if len(limits) == 1 else f"key{i}"
        out.append(Policy(name, parse_limit(limit.limit), limit.methods, None, "key"))
    return out


@dataclass(slots=True)
class _Applied:
    policy: Policy
    identity: str


class RateLimiter:
    """Decides whether a call may run, and says how much is left."""

    def __init__(
        self, settings: Settings, counters: Counters, db: Database, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.counters = counters
        self.db = db
        self.metrics = metrics
        self.policies = compile_rules(settings.rate_limits)
        self._costs = list(settings.method_costs.items())
        self._by_method: dict[str, tuple[list[Policy], int]] = {}
        self._key_limits: dict[str, tuple[float, list[Policy]]] = {}

    # -- what applies -------------------------------------------------------------------
    def _method(self, spec: MethodSpec) -> tuple[list[Policy], int]:
        found = self._by_method.get(spec.name)
        if found is None:
            cost = spec.cost
            for pattern, value in self._costs:
                if fnmatchcase(spec.name, pattern):
                    cost = value
                    break
            found = ([p for p in self.policies if p.applies(spec)], cost)
            self._by_method[spec.name] = found
        return found

    def cost(self, spec: MethodSpec) -> int:
        return self._method(spec)[1]

    def identity(self, per: str, principal: Principal, client_ip: str | None) -> str | None:
        """Whose counter a call spends from under ``per``; None when the rule does not apply."""
        if per == "global":
            return "all"
        if per == "key":
            return f"key:{principal.key_id}" if principal.key_id else None
        if per == "user":
            return f"user:{principal.user_id}" if principal.user_id is not None else None
        network = client_network(
            client_ip or principal.client_ip,
            self.settings.client_network_prefix_v4,
            self.settings.client_network_prefix_v6,
        )
        if per == "ip":
            return f"net:{network}" if network else None
        # per principal
        if principal.user_id is not None:
            return f"user:{principal.user_id}"
        if principal.key_id is not None:
            return f"key:{principal.key_id}"
        if principal.session_id is not None:
            return f"session:{principal.session_id}"
        return f"net:{network}" if network else "anonymous"

    async def key_policies(self, key_id: str) -> list[Policy]:
        now = time.monotonic()
        cached = self._key_limits.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.db.read() as tx:
            limits = await keylimits.get(tx, key_id)
        policies = key_policies(key_id, limits)
        self._key_limits[key_id] = (now + KEY_LIMITS_TTL, policies)
        return policies

    def forget_key(self, key_id: str) -> None:
        """A key's limits changed: read them again on its next call."""
        self._key_limits.pop(key_id, None)

    async def applied(self, call: Call) -> list[_Applied]:
        principal = call.principal
        if call.info.protocol in EXEMPT_PROTOCOLS or principal.kind in EXEMPT_KINDS:
            return []
        policies, _ = self._method(call.spec)
        out = []
        for policy in policies:
            identity = self.identity(policy.per, principal, call.info.client_ip)
            if identity is not None:
                out.append(_Applied(policy, identity))
        if principal.key_id is not None:
            for policy in await self.key_policies(principal.key_id):
                if policy.applies(call.spec):
                    out.append(_Applied(policy, f"key:{principal.key_id}"))
        return out

    # -- deciding -----------------------------------------------------------------------
    async def check(self, call: Call) -> None:
        """Spend the call's cost, or raise :class:`RateLimited` (nothing is spent then)."""
        applied = await self.applied(call)
        if not applied:
            return
        cost = self.cost(call.spec)
        limiter = self.counters.limiter
        try:
            refused: _Applied | None = None
            if len(applied) == 1:
                a = applied[0]
                if not await limiter.hit(a.policy.item, a.policy.name, a.identity, cost=cost):
                    refused = a
            else:
                # Test all first, so that a refusal by one rule spends nothing on the others.
                for a in applied:
                    if not await limiter.test(a.policy.item, a.policy.name, a.identity, cost=cost):
                        refused = a
                        break
                if refused is None:
                    for a in applied:
                        if not await limiter.hit(a.policy.item, a.policy.name, a.identity, cost=cost):
                            refused = a
                            break
            headers = await self._headers(applied)
        except Exception:
            # A counter store that is down must not take the API down with it.
            log.exception("rate-limit counters unavailable; call %s allowed", call.name)
            return
        if refused is not None:
            retry_after = await self._retry_after(refused)
            if self.metrics is not None:
                self.metrics.rate_limited.labels(refused.policy.name, call.spec.api).inc()
            exc = RateLimited(
                f"rate limit {refused.policy.name!r} ({refused.policy.quota} per "
                f"{refused.policy.window} s) exceeded; retry after {retry_after} s",
                retry_after=retry_after,
                policy=refused.policy.name,
            )
            exc.headers.update(headers)
            raise exc
        call.info.response_headers.update(headers)

    async def _headers(self, applied: list[_Applied]) -> dict[str, str]:
        now = self.counters.now()
        policies: list[str] = []
        states: list[str] = []
        for a in applied:
            stats = await self.counters.limiter.get_window_stats(a.policy.item, a.policy.name, a.identity)
            remaining = max(0, int(stats.remaining))
            reset = max(0, math.ceil(stats.reset_time - now)) if remaining < a.policy.quota else 0
            policies.append(a.policy.header())
            states.append(f'"{a.policy.name}";r={remaining};t={reset}')
        return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}

    async def _retry_after(self, a: _Applied) -> int:
        stats = await self.counters.limiter.get_window_stats(a.policy.item, a.policy.name, a.identity)
        return max(1, math.ceil(stats.reset_time - self.counters.now()))

    # -- the filter ---------------------------------------------------------------------
    def filter(self, call: Call, proceed: Proceed) -> Awaitable[Any]:
        if self._nothing_applies(call):
            return proceed(call)  # the common case: no frame of its own
        return self._checked(call, proceed)

    async def _checked(self, call: Call, proceed: Proceed) -> Any:
        await self.check(call)
        return await proceed(call)

    def _nothing_applies(self, call: Call) -> bool:
        """Whether, without waiting for anything, no limit can apply to this call: no rule
        for its method (or none that counts it) and its key's limits known to be none."""
        principal = call.principal
        if call.info.protocol in EXEMPT_PROTOCOLS or principal.kind in EXEMPT_KINDS:
            return True
        if self._method(call.spec)[0]:
            return False
        if principal.key_id is None:
            return True
        cached = self._key_limits.get(principal.key_id)
        return cached is not None and cached[0] > time.monotonic() and not cached[1]
