"""The runner: every call from every protocol goes through :meth:`Runner.invoke`.

Order of work: lookup → remote-access switch → authentication required? → API-key scope →
validation → authorisation (the method's access policy) → filters (rate limits, accounting,
idempotency, audit: issue-specific, added by configuration) → the call → serialisation.

Filters are ``async (call, proceed) -> result`` callables wrapped around the method, like
ASGI middleware: they can time, refuse, replay or record a call without knowing its protocol.
A filter added with ``when=`` (a test of the method's spec) wraps only the methods it is for:
each method gets its own chain, built on its first call, so a read never passes through the
frames of filters that only act on changes (idempotency, audit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mailroom.auth.principal import Principal
from mailroom.errors import (
    FieldError,
    Forbidden,
    InternalError,
    InvalidParams,
    MailroomError,
    MethodNotFound,
    Unauthenticated,
)
from mailroom.registry._context import CallInfo, Context
from mailroom.registry._spec import Download, MethodSpec

if TYPE_CHECKING:
    from mailroom.registry._registry import Registry
    from mailroom.runtime import Runtime

log = logging.getLogger("mailroom.runner")


@dataclass(slots=True)
class Call:
    """One call on its way through the filters."""

    spec: MethodSpec
    params: BaseModel
    raw_params: Mapping[str, Any]
    principal: Principal
    info: CallInfo
    started: float = field(default_factory=time.perf_counter)

    @property
    def name(self) -> str:
        return self.spec.name


Proceed = Callable[[Call], Awaitable[Any]]
Filter = Callable[[Call, Proceed], Awaitable[Any]]
#: Which methods a filter wraps: decided once per method spec.
FilterWhen = Callable[[MethodSpec], bool]
#: Told of every call refused before the filters ran (unknown method, authentication, scope,
#: validation, access policy), so that accounting counts those calls too.
RejectionObserver = Callable[[str, Principal, CallInfo, MailroomError], None]


def validation_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as our field errors: one vocabulary for every protocol."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "params"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        out.append(FieldError(loc=loc, message=message, type=err["type"]))
    return out


def _step(f: Filter, proceed: Proceed) -> Proceed:
    # A plain function handing back the filter's coroutine: no coroutine frame of its own.
    def step(call: Call) -> Awaitable[Any]:
        return f(call, proceed)

    return step


class Runner:
    """Validates, authorises, filters and calls registry methods."""

    def __init__(self, registry: Registry, runtime: Runtime, filters: Sequence[Filter] = ()) -> None:
        self.registry = registry
        self.runtime = runtime
        self._filters: list[tuple[Filter, FilterWhen | None]] = [(f, None) for f in filters]
        #: Per method name: the spec the chain was built for, and the chain.
        self._chains: dict[str, tuple[MethodSpec, Proceed]] = {}
        self.rejection_observers: list[RejectionObserver] = []

    @property
    def filters(self) -> list[Filter]:
        """Every filter, outermost first (whatever methods each wraps)."""
        return [f for f, _ in self._filters]

    def add_filter(self, f: Filter, *, when: FilterWhen | None = None) -> None:
        """Wrap ``f`` inside the filters added before it; with ``when``, only around the
        methods whose spec it accepts."""
        self._filters.append((f, when))
        self._chains.clear()

    def _chain(self, spec: MethodSpec) -> Proceed:
        """The filters around one method, built on its first call rather than per call."""
        cached = self._chains.get(spec.name)
        if cached is not None and cached[0] is spec:
            return cached[1]
        proceed: Proceed = self._call
        for f, when in reversed(self._filters):
            if when is None or when(spec):
                proceed = _step(f, proceed)
        self._chains[spec.name] = (spec, proceed)
        return proceed

    def lookup(self, name: str, protocol: str) -> MethodSpec:
        spec = self.registry.get(name)
        if spec is None or not self.registry.remote_allowed(spec, protocol):
            raise MethodNotFound(f"unknown method {name!r}", method=name)
        return spec

    def bind_positional(self, spec: MethodSpec, args: Sequence[Any]) -> dict[str, Any]:
        """Positional parameters map onto the method's parameters in declaration order."""
        if len(args) > len(spec.param_names):
            raise InvalidParams(
                [FieldError("params", f"at most {len(spec.param_names)} positional parameters", "too_many")]
            )
        return dict(zip(spec.param_names, args, strict=False))

    async def invoke(
        self,
        name: str,
        params: Mapping[str, Any] | Sequence[Any] | None,
        principal: Principal,
        info: CallInfo | None = None,
    ) -> Any:
        """Run one call and return its result as JSON-compatible data."""
        info = info or CallInfo(protocol="inprocess")
        try:
            call = self._admit(name, params, principal, info)
        except MailroomError as exc:
            for observe in self.rejection_observers:
                observe(name, principal, info, exc)
            raise
        return await self._chain(call.spec)(call)

    def _admit(
        self,
        name: str,
        params: Mapping[str, Any] | Sequence[Any] | None,
        principal: Principal,
        info: CallInfo,
    ) -> Call:
        """Lookup, authentication required, scope, validation and access: the call, or an error."""
        spec = self.lookup(name, info.protocol)
        if params is None:
            params = {}
        elif not isinstance(params, Mapping):
            if isinstance(params, (str, bytes)):
                raise InvalidParams([FieldError("params", "must be an object or an array", "type")])
            params = self.bind_positional(spec, params)
        if not spec.access.public and not principal.is_authenticated:
            raise Unauthenticated()
        if not principal.allows_method(spec.name):
            # A key's scope refuses the method the same way on every protocol.
            raise Forbidden(f"this API key's scopes do not include {spec.name}")
        try:
            model = spec.params_model.model_validate(params)
        except ValidationError as exc:
            raise InvalidParams(validation_errors(exc)) from None
        spec.access.check(principal, model)
        return Call(spec=spec, params=model, raw_params=params, principal=principal, info=info)

    async def _call(self, call: Call) -> Any:
        spec = call.spec
        ctx = Context(principal=call.principal, rt=self.runtime, call=call.info, registry=self.registry)
        kwargs = {n: getattr(call.params, n) for n in spec.param_names}
        try:
            result = await spec.func(ctx, **kwargs)
        except MailroomError:
            raise
        except OverflowError:
            # A number too large for what it met (a database column, a date): the caller's
            # input, so a validation error, not a 500. The bounded types of
            # domain/numbers.py should have refused it first: the log says where they did not.
            log.warning("method %s: a value was out of range", spec.name, exc_info=True)
            raise InvalidParams([FieldError("params", "a value is out of range", "range")]) from None
        except Exception:
            log.exception("method %s failed", spec.name)
            raise InternalError() from None
        if result is None or isinstance(result, Download):
            return result
        if call.info.serialise is not None:
            return call.info.serialise(result, spec.return_adapter)
        return spec.return_adapter.dump_python(result, mode="json", by_alias=True)
