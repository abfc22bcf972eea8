"""The HTTP application: every HTTP front-end mounted on one Starlette app.

This is a composition root like :mod:`mailroom.bootstrap`: it may import every front-end.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from mailroom.bootstrap import Mailroom
from mailroom.errors import MailroomError
from mailroom.frontends.compression import CompressionMiddleware
from mailroom.frontends.metrics import metrics_routes
from mailroom.frontends.push import push_routes
from mailroom.frontends.rest.app import (
    API_PREFIX,
    health_routes,
    mailroom_error_handler,
    registry_router,
    unexpected_error_handler,
)
from mailroom.frontends.rest.openapi import openapi_routes
from mailroom.frontends.rpc import rpc_routes


def build_app(mailroom: Mailroom) -> Starlette:
    """The ASGI app for a started :class:`Mailroom`."""
    api = registry_router(mailroom)
    others: list[BaseRoute] = []
    for route in [
        *health_routes(mailroom),
        *metrics_routes(mailroom),
        *openapi_routes(mailroom),
        *rpc_routes(mailroom),
        *push_routes(mailroom),
    ]:
        # Routes under /api/v1 (openapi.json, events) are served by the registry's router,
        # which comes first: an API request then costs one prefix match, not a scan.
        if getattr(route, "path", "").startswith(API_PREFIX + "/"):
            api.add_route(route)
        else:
            others.append(route)
    routes: list[BaseRoute] = [Mount(API_PREFIX, app=api), *others]
    middleware: list[Middleware] = [
        Middleware(
            CompressionMiddleware,
            minimum_size=mailroom.settings.gzip_min_bytes,
            max_decompressed=mailroom.settings.max_decompressed_bytes,
        )
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={MailroomError: mailroom_error_handler, Exception: unexpected_error_handler},
    )
    app.state.mailroom = mailroom
    return app
