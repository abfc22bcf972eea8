"""The ``admin`` API object every admin module declares its methods on."""

from __future__ import annotations

from mailroom.registry import Api

api = Api(
    "admin",
    title="Admin API",
    description="Domains, alternative domains, relays, users, aliases, managers, API keys, DKIM and DNS.",
)
