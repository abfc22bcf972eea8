"""JMAP front-end (RFC 8620, 8621, 8887): session, API, blobs, push; see docs/jmap.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Route, WebSocketRoute

from mailroom.frontends.jmap._http import WELL_KNOWN, JmapHttp
from mailroom.frontends.jmap._push import EventSource, JmapWebSocket

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom


def jmap_http(mailroom: Mailroom) -> JmapHttp | None:
    """The JMAP HTTP endpoints (None when ``jmap`` is a disabled protocol)."""
    if "jmap" in mailroom.settings.disabled_protocols:
        return None
    return JmapHttp(mailroom)


def jmap_routes(mailroom: Mailroom, http: JmapHttp | None = None) -> list[BaseRoute]:
    """Every JMAP endpoint (none when ``jmap`` is a disabled protocol); ``http``: the
    endpoints to route to (made here when not given)."""
    if "jmap" in mailroom.settings.disabled_protocols:
        return []
    http = http or JmapHttp(mailroom)
    base = http.base
    events = EventSource(mailroom)
    return [
        Route(WELL_KNOWN, http.session, methods=["GET"]),
        Route(f"{base}/session", http.session, methods=["GET"]),
        Route(f"{base}/api", http.api, methods=["POST"]),
        Route(f"{base}/upload/{{account}}/", http.upload, methods=["POST"]),
        Route(f"{base}/upload/{{account}}", http.upload, methods=["POST"]),
        Route(f"{base}/download/{{account}}/{{blob}}/{{name}}", http.download, methods=["GET"]),
        Route(f"{base}/eventsource/", events.endpoint, methods=["GET"]),
        Route(f"{base}/eventsource", events.endpoint, methods=["GET"]),
        WebSocketRoute(f"{base}/ws", JmapWebSocket(mailroom, http.processor).endpoint),
    ]


__all__ = ["JmapHttp", "jmap_http", "jmap_routes"]
