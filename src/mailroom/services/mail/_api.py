"""The ``mail`` API object every mail module declares its methods on."""

from __future__ import annotations

from mailroom.registry import Api

api = Api(
    "mail",
    title="Mail client API",
    description="The mail store: delivery (SMTP/LMTP ingest), imports, threads, labels and search.",
)
