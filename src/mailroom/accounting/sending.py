"""The per-user sending limit of the submission listener, in the shared counters.

``submission_rate_limit`` (``200/hour``) messages per user per sliding window, counted with
the same moving-window limiter and storage as the API's rate limits (accounting/counters.py):
in this process's memory by default, in Redis with ``redis_url``, so the limit holds for the
user across every worker and host. MAIL FROM asks :meth:`SendingLimit.allowed` (spends
nothing); a message counts once it was taken (:meth:`SendingLimit.record` after DATA).
Concurrent sessions of one user in several workers can each pass the check before either
records, so a burst may overshoot by the number of sessions in flight, never more.

A counter store that is down must not stop mail: the check then allows (and logs).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from limits import RateLimitItem

from mailroom.accounting.counters import Counters, open_counters, parse_limit

if TYPE_CHECKING:
    from mailroom.runtime import Runtime  # not at run time: the SMTP front-end imports this module

log = logging.getLogger("mailroom.submission")

#: The counters' namespace for this limit (beside the API rules' names).
NAMESPACE = "submission"


def counters_of(runtime: Runtime) -> Counters | None:
    """The shared counters the accounting set up (``runtime.accounting``), if any."""
    return runtime.accounting.counters if runtime.accounting is not None else None


class SendingLimit:
    """At most ``limit`` (``200/hour``) messages per user per sliding window."""

    def __init__(self, limit: str, counters: Counters) -> None:
        self.item: RateLimitItem = parse_limit(limit)
        self.counters = counters

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> SendingLimit:
        """On the accounting's counters (shared through Redis when configured); without
        them, counters of its own in this process."""
        counters = counters_of(runtime) or open_counters(runtime.settings, runtime.clock)
        return cls(runtime.settings.submission_rate_limit, counters)

    @property
    def backend(self) -> str:
        return self.counters.backend

    @staticmethod
    def _who(user_id: int) -> str:
        return f"user:{user_id}"

    async def allowed(self, user_id: int) -> bool:
        """Whether the user may send one more message now (spends nothing)."""
        try:
            return bool(await self.counters.limiter.test(self.item, NAMESPACE, self._who(user_id)))
        except Exception:
            log.exception("sending-limit counters unavailable; user %s allowed", user_id)
            return True

    async def record(self, user_id: int) -> None:
        """Count one message the user sent."""
        try:
            await self.counters.limiter.hit(self.item, NAMESPACE, self._who(user_id))
        except Exception:
            log.exception("sending-limit counters unavailable; message of user %s not counted", user_id)
