"""The ``remote`` provider: methods served by another mailroom over its JSON-RPC endpoint.

Configuration routes an API or methods (globs) here::

    [[providers]]
    methods = "admin.domains.*"
    provider = "remote"
    url = "https://mx2.example.org/rpc/json"
    credentials = "mr_..."          # an API key of the other instance

The contract stays local: this instance validates the parameters and checks its own access
policy with its own principals before forwarding; the other instance runs the method as the
route's credentials and answers. Its domain errors (``data.code``) come back as the same
exception classes, so a client sees the same codes whichever instance did the work. A
remote ``unauthenticated`` means *this server's* route credentials were refused, which is
not the caller's fault: it becomes ``unavailable`` (and is logged).

The route's credentials, not the caller's identity, reach the other instance: route only
methods whose access is fully decided by their declared policy, or give the route a key
whose scopes and owner limit it to what every local caller may do.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from mailroom.errors import (
    ERRORS,
    BadRequest,
    FieldError,
    InternalError,
    InvalidParams,
    MailroomError,
    MethodNotFound,
    RateLimited,
    Unavailable,
)
from mailroom.registry import Context, Download
from mailroom.settings import ProviderRoute, Settings

log = logging.getLogger("mailroom.providers.remote")

Implementation = Callable[..., Any]
_BY_CODE: dict[str, type[MailroomError]] = {cls.code: cls for cls in ERRORS}
#: For answers without a stable code (not from a mailroom): the JSON-RPC standard numbers.
_BY_NUMBER: dict[int, type[MailroomError]] = {
    -32700: BadRequest,
    -32600: BadRequest,
    -32601: MethodNotFound,
    -32602: InvalidParams,
    -32603: InternalError,
}
_ids = itertools.count(1)


def _jsonable(value: Any) -> Any:
    """A validated parameter as JSON; models keep only the fields the caller set (PATCH)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return to_jsonable_python(value, by_alias=True)


def domain_error(error: Any) -> MailroomError:
    """A JSON-RPC error object from another mailroom back into the domain error it was."""
    if not isinstance(error, dict):
        return Unavailable("the remote provider sent a malformed answer")
    data: dict[str, Any] = error["data"] if isinstance(error.get("data"), dict) else {}
    number = error.get("code")
    code = data.get("code")
    cls = (
        _BY_CODE.get(code)
        if isinstance(code, str)
        else _BY_NUMBER.get(number)
        if isinstance(number, int)
        else None
    )
    detail = data.get("detail", error.get("message"))
    message = detail if isinstance(detail, str) else None
    extra = {k: v for k, v in data.items() if k not in ("code", "detail", "errors")}
    if cls is None:
        log.warning("remote error without a known code: %r", error)
        return InternalError()
    if cls is InternalError:
        return InternalError()
    if cls.code == "unauthenticated":
        log.error("the remote provider refused this server's credentials: %s", message)
        return Unavailable("the remote provider refused this server's credentials")
    if cls is InvalidParams:
        raw = data.get("errors")
        errors = [
            FieldError(str(e.get("loc", "params")), str(e.get("message", "")), str(e.get("type", "invalid")))
            for e in (raw if isinstance(raw, list) else [])
            if isinstance(e, dict)
        ]
        return InvalidParams(errors or [FieldError("params", message or "invalid")], message)
    if cls is RateLimited:
        retry_after = extra.pop("retry_after", 1)
        return RateLimited(message, retry_after=retry_after if isinstance(retry_after, int) else 1, **extra)
    return cls(message, **extra)


class RemoteClient:
    """Sends one JSON-RPC call to the other instance and returns its result or raises."""

    def __init__(self, route: ProviderRoute, settings: Settings) -> None:
        if not route.url:
            raise ValueError(f"provider route {route.methods!r}: a remote provider needs a url")
        self.url = route.url
        self.timeout = settings.remote_timeout_seconds
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if route.credentials is not None:
            self._headers["Authorization"] = f"Bearer {route.credentials.get_secret_value()}"

    async def call(self, method: str, params: dict[str, Any], request_id: str | None = None) -> Any:
        body = orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)})
        headers = self._headers | ({"X-Request-Id": request_id} if request_id else {})
        try:
            # A client per call: a provider has no shutdown hook to close a pool with.
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("remote provider %s: %s", self.url, exc)
            raise Unavailable("the remote provider does not answer") from None
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict) or "jsonrpc" not in answer:
            log.warning("remote provider %s answered HTTP %s", self.url, response.status_code)
            raise Unavailable("the remote provider sent a malformed answer")
        if "error" in answer:
            raise domain_error(answer["error"])
        return answer.get("result")


def _forwarder(client: RemoteClient, name: str) -> Implementation:
    async def forward(ctx: Context, **params: Any) -> Any:
        result = await client.call(name, {k: _jsonable(v) for k, v in params.items()}, ctx.call.request_id)
        spec = ctx.registry.get(name)
        if spec is None or result is None:
            return result
        if isinstance(spec.returns, type) and issubclass(spec.returns, Download):
            return _download(result)
        try:
            # From JSON text, so that strict models accept ISO dates and the like.
            return spec.return_adapter.validate_json(orjson.dumps(result))
        except ValidationError:
            log.warning(
                "remote provider %s: %s returned a result that does not fit its contract", client.url, name
            )
            raise Unavailable("the remote provider returned an unexpected result") from None

    forward.__name__ = forward.__qualname__ = f"remote:{name}"
    return forward


def _download(result: Any) -> Download:
    try:
        content = base64.b64decode(result["content_base64"], validate=True)
        return Download(content, str(result["content_type"]), result.get("filename"))
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise Unavailable("the remote provider returned a malformed download") from None


class RemoteMethods(dict[str, Implementation]):
    """A forwarder for any method name asked for, made on first use.

    The provider cannot know the registry's method names; the registry asks only for those
    the route's pattern matched (a glob, or an API name), so every name is answered.
    """

    def __init__(self, client: RemoteClient) -> None:
        super().__init__()
        self.client = client

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __missing__(self, name: str) -> Implementation:
        forwarder = _forwarder(self.client, name)
        self[name] = forwarder
        return forwarder


def remote_implementations(route: ProviderRoute, settings: Settings) -> dict[str, Implementation]:
    """``{method name: forwarder}`` for the methods ``route.methods`` names."""
    return RemoteMethods(RemoteClient(route, settings))
