"""The injected boundaries every method reaches through ``ctx.rt``: the composition root.

Every part is a typed field. Those set at start-up are None until they are (and stay None
in a process that does not run them, a CLI tool say); those made on first use by the code
that needs them are kept here so that the process has one of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailroom.auth.passwords import PasswordHasher
from mailroom.clock import Clock
from mailroom.events import Broker
from mailroom.settings import Settings
from mailroom.store.blobs import FileBlobStore
from mailroom.store.engine import Database

if TYPE_CHECKING:
    # The layers above the runtime (lint-imports ignores type-checking imports).
    from mailroom.accounting.sending import SendingLimit
    from mailroom.accounting.setup import Accounting
    from mailroom.auth.authenticate import Authenticator
    from mailroom.delivery.ingest import InFlight
    from mailroom.delivery.queue import OutboundQueue
    from mailroom.services.housekeeping import Housekeeping
    from mailroom.store.group_commit import GroupCommit
    from mailroom.store.users import UserCache


@dataclass(slots=True)
class Runtime:
    """Settings, database, clock, password hasher, blob store, event broker and the later
    boundaries (outbound mail), built once at start-up by :mod:`mailroom.bootstrap`."""

    settings: Settings
    db: Database
    clock: Clock
    passwords: PasswordHasher
    blobs: FileBlobStore
    events: Broker
    #: Set by ``bootstrap.start``: credentials of every kind.
    authenticator: Authenticator | None = None
    #: Set by ``accounting.setup.install``: counters, metrics, usage, rate limits, guard.
    accounting: Accounting | None = None
    #: Set by the ASGI lifespan, in each serving worker.
    outbound_queue: OutboundQueue | None = None
    housekeeping: Housekeeping | None = None
    #: Made on first use (``services/admin/users.user_cache``): users by row version.
    user_cache: UserCache | None = None
    #: Made on first use (``services/mail/maps``): the per-user sending limit.
    sending_limit: SendingLimit | None = None
    #: Made on first use (``delivery/ingest``): the process's one committer of deliveries.
    group_commit: GroupCommit[Any, Any] | None = None
    #: Made on first use (``delivery/ingest``): the deliveries under way, for a clean close.
    ingest_in_flight: InFlight | None = None
