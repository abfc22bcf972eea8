"""A router for the registry's REST bindings that does not slow down as methods are added.

Starlette's router tries every route's regular expression in turn; with a hundred methods
the last one pays for a hundred matches on every request. Here routes are bucketed by the
number of path segments and their first segment, so a request tries the few templates that
could match it. Templates are the registry's (``/domains/{name}/users``): a parameter
matches one whole segment.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote as _unquote

from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from mailroom.errors import MailroomError, NotFound
from mailroom.frontends.rest.problems import problem_response, unexpected_error_response
from mailroom.frontends.rest.request import ApiRequest


class _Reply(Protocol):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


Endpoint = Callable[[ApiRequest], Awaitable[_Reply]]


#: Path segments are percent-decoded in pure Python (~2 µs for ``alice%40example.org``);
#: the same few (addresses, ids) come back again and again.
unquote = functools.lru_cache(maxsize=4096)(_unquote)


class MethodNotAllowed(MailroomError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


@dataclass(frozen=True, slots=True)
class _Template:
    segments: tuple[str | None, ...]  # None: a parameter
    names: tuple[str, ...]

    @classmethod
    def parse(cls, path: str) -> _Template:
        segments: list[str | None] = []
        names: list[str] = []
        for part in path.strip("/").split("/"):
            if part.startswith("{") and part.endswith("}"):
                segments.append(None)
                names.append(part[1:-1])
            elif "{" in part or "}" in part:
                raise ValueError(f"a path parameter must be a whole segment: {path}")
            else:
                segments.append(part)
        return cls(tuple(segments), tuple(names))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        names = iter(self.names)
        for want, got in zip(self.segments, parts, strict=True):
            if want is None:
                if not got:
                    return None
                params[next(names)] = unquote(got)
            elif want != got:
                return None
        return params


class RegistryRouter:
    """ASGI app dispatching ``{prefix}/...`` requests to registry endpoints."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/")
        self._buckets: dict[tuple[int, str | None], list[tuple[_Template, dict[str, Endpoint]]]] = {}
        self._exact: dict[str, list[BaseRoute]] = {}

    def add_route(self, route: BaseRoute) -> None:
        """A Starlette route at an exact path under the prefix (OpenAPI document, events).

        It is looked up before the registry's templates, so this router can sit first in the
        app and spare every API request Starlette's scan of the other routes.
        """
        path = getattr(route, "path", None)
        if not isinstance(path, str) or not path.startswith(self.prefix + "/") or "{" in path:
            raise ValueError(f"only exact paths under {self.prefix} can be added, not {path!r}")
        self._exact.setdefault(path, []).append(route)

    def add(self, verb: str, path: str, endpoint: Endpoint) -> None:
        template = _Template.parse(path)
        key = (len(template.segments), template.segments[0])
        bucket = self._buckets.setdefault(key, [])
        for existing, verbs in bucket:
            if existing.segments == template.segments:
                if verb in verbs:
                    raise ValueError(f"two methods bound to {verb} {path}")
                verbs[verb] = endpoint
                return
        # Templates with more literal segments first: /users/me beats /users/{email}.
        bucket.append((template, {verb: endpoint}))
        bucket.sort(key=lambda item: sum(s is None for s in item[0].segments))

    def resolve(self, verb: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        parts = path[len(self.prefix) :].strip("/").split("/")
        allowed: set[str] = set()
        for key in ((len(parts), parts[0]), (len(parts), None)):
            for template, verbs in self._buckets.get(key, ()):
                params = template.match(parts)
                if params is None:
                    continue
                endpoint = verbs.get(verb) or (verbs.get("GET") if verb == "HEAD" else None)
                if endpoint is not None:
                    return endpoint, params
                allowed.update(verbs)
        if allowed:
            raise MethodNotAllowed(
                f"{verb} is not allowed here; use {', '.join(sorted(allowed))}", allowed=sorted(allowed)
            )
        raise NotFound(f"no API endpoint at {path}")

    def serves(self, path: str) -> bool:
        """Whether :meth:`serve` answers ``path``: a registry method's, not an added route's."""
        return path.startswith(self.prefix) and path not in self._exact

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer an HTTP request for a registry method, errors included, without Starlette's
        middleware and routing around it: the app sends API requests here first
        (:func:`mailroom.web.build_app`); everything else goes through Starlette."""
        try:
            endpoint, params = self.resolve(scope["method"], scope["path"])
            scope["path_params"] = params
            reply = await endpoint(ApiRequest(scope, receive))
        except MailroomError as exc:
            reply = problem_response(exc, instance=scope["path"])
        except Exception as exc:  # a bug: logged, a 500 problem without details
            reply = unexpected_error_response(exc, instance=scope["path"])
        await reply(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exact = self._exact.get(scope["path"])
        if exact:
            # The mount set root_path to the prefix; these routes match the whole path.
            # Several may share a path (WebSocket and SSE events): a full match wins.
            scope = {**scope, "root_path": scope.get("app_root_path", "")}
            partial: tuple[BaseRoute, Scope] | None = None
            for route in exact:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    await route.handle({**scope, **child}, receive, send)
                    return
                if match is Match.PARTIAL and partial is None:
                    partial = (route, child)
            if partial is not None:
                await partial[0].handle({**scope, **partial[1]}, receive, send)
                return
        if scope["type"] != "http":
            await WebSocketClose()(scope, receive, send)
            return
        await self.serve(scope, receive, send)
