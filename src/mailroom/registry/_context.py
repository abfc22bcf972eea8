"""The call context handed to every method as ``ctx``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailroom.auth.principal import Principal

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from mailroom.registry._registry import Registry
    from mailroom.runtime import Runtime


@dataclass(slots=True)
class CallInfo:
    """What the runner knows about the call beyond its parameters.

    ``protocol`` is ``rest``, ``jsonrpc``, ``xmlrpc``, ``inprocess``, ...; ``headers`` are
    the request's (lower-cased names) where the protocol has them. ``status`` and
    ``response_headers`` let a method or filter shape the protocol's reply without knowing it
    (a REST front-end uses them; the RPC ones ignore what does not apply).
    """

    protocol: str
    client_ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: How the front-end wants a method's typed result made JSON-shaped (``None``: the return
    #: type's adapter, ``dump_python(mode="json")``). A front-end that writes JSON with orjson
    #: may return ``orjson.Fragment`` parts (REST memoises immutable records' JSON).
    serialise: Callable[[Any, TypeAdapter[Any]], Any] | None = None


@dataclass(slots=True)
class Context:
    """``ctx``: the caller, the call and the injected boundaries (database, clock, ...)."""

    principal: Principal
    rt: Runtime
    call: CallInfo
    registry: Registry

    async def invoke(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call another registry method as the same principal (checks apply again)."""
        return await self.registry.call(name, params or {}, principal=self.principal, protocol="inprocess")
