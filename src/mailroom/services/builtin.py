"""The APIs mailroom provides itself (the ``builtin`` provider)."""

from __future__ import annotations

from mailroom.registry import Api
from mailroom.settings import Settings


def apis(settings: Settings) -> list[Api]:
    from mailroom.services import admin, jmap, mail, system

    out = [admin.api, system.api, mail.api, jmap.api]
    if settings.interop_api:
        from mailroom.services import interop

        out.append(interop.api)
    return out
