"""The ``mail`` API object every mail module declares its methods on."""

from __future__ import annotations

from mailroom.registry import Api

api = Api(
    "mail",
    title="Mail client API",
    description=(
        "What a mail client uses: sign-up and sessions, threads, labels and search, compose and send, "
        "batch actions, uploads, settings, contacts and OpenPGP keys, push; and message import."
    ),
)
