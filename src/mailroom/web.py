"""The HTTP application: every HTTP front-end mounted on one Starlette app.

This is a composition root like :mod:`mailroom.bootstrap`: it may import every front-end.
"""

from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from mailroom.bootstrap import Mailroom
from mailroom.errors import MailroomError
from mailroom.frontends.autoconfig import autoconfig_routes
from mailroom.frontends.compression import CompressionMiddleware
from mailroom.frontends.internal import internal_routes
from mailroom.frontends.jmap import jmap_http, jmap_routes
from mailroom.frontends.keyserver import keyserver_routes
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
from mailroom.frontends.rest.router import RegistryRouter
from mailroom.frontends.rpc import rpc_routes
from mailroom.frontends.web import web_routes


def build_app(mailroom: Mailroom) -> App:
    """The ASGI app for a started :class:`Mailroom`."""
    api = registry_router(mailroom)
    jmap = jmap_http(mailroom)
    others: list[BaseRoute] = []
    for route in [
        *health_routes(mailroom),
        *metrics_routes(mailroom),
        *openapi_routes(mailroom),
        *rpc_routes(mailroom),
        *push_routes(mailroom),
        *jmap_routes(mailroom, jmap),
        *internal_routes(mailroom),
        *keyserver_routes(mailroom),
        *autoconfig_routes(mailroom),
        *web_routes(mailroom),  # last: the web app serves / and /admin
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
    fast = CompressionMiddleware(
        api.serve,
        minimum_size=mailroom.settings.gzip_min_bytes,
        max_decompressed=mailroom.settings.max_decompressed_bytes,
    )
    # The JMAP API endpoint the same way: one exact path and method, straight to its handler.
    posts: dict[str, ASGIApp] = {}
    if jmap is not None:
        posts[jmap.api_path] = CompressionMiddleware(
            jmap.serve_api,
            minimum_size=mailroom.settings.gzip_min_bytes,
            max_decompressed=mailroom.settings.max_decompressed_bytes,
        )
    return App(app, api, fast, posts)


class App:
    """The ASGI entry: registry methods straight to their router, the rest to Starlette.

    An API call needs none of Starlette's routing or exception middleware (the registry's
    router answers its own errors as problem+json); sparing it those layers is about a
    quarter of the CPU of a small request. Compression applies to both paths alike.
    """

    def __init__(
        self,
        starlette: Starlette,
        api: RegistryRouter,
        api_app: ASGIApp,
        posts: dict[str, ASGIApp] | None = None,
    ) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self._api = api
        self._api_app = api_app
        #: ``POST`` to these exact paths goes straight to their app (the JMAP API endpoint).
        self._posts = posts or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._api.serves(scope["path"]):
                await self._api_app(scope, receive, send)
                return
            if scope["method"] == "POST" and (post := self._posts.get(scope["path"])) is not None:
                with contextlib.suppress(ClientDisconnect):  # as below
                    await post(scope, receive, send)
                return
        with contextlib.suppress(ClientDisconnect):  # answered and logged at INFO: not a bug
            await self.starlette(scope, receive, send)
