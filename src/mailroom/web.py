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
    routes: list[BaseRoute] = []
    routes.extend(health_routes(mailroom))
    routes.extend(metrics_routes(mailroom))
    routes.extend(openapi_routes(mailroom))
    routes.extend(rpc_routes(mailroom))
    routes.extend(push_routes(mailroom))  # /api/v1/events: before the registry's mount
    # Registry methods last: explicit routes under /api/v1 (openapi.json) must win.
    routes.append(Mount(API_PREFIX, app=registry_router(mailroom)))
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
