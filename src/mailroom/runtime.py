"""The injected boundaries every method reaches through ``ctx.rt``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailroom.auth.passwords import PasswordHasher
from mailroom.clock import Clock
from mailroom.events import Broker
from mailroom.settings import Settings
from mailroom.store.blobs import FileBlobStore
from mailroom.store.engine import Database


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
    extras: dict[str, Any] = field(default_factory=dict)
