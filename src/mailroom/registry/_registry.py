"""The registry: named APIs, their methods, which provider serves each, and who may reach them.

An :class:`Api` is a named collection of methods declared with :meth:`Api.method`. A
*provider* is whatever offers implementations: the built-in modules, a plugin (Python entry
point ``mailroom.providers``), or a remote mailroom. Configuration routes an API or single
methods (globs) to another provider; the contract (name, parameters, access) stays, only
the implementation changes — the Horde per-method override.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, TypeVar

from mailroom.auth.principal import SYSTEM, Principal
from mailroom.registry._access import Access
from mailroom.registry._context import CallInfo
from mailroom.registry._spec import HttpBinding, Implementation, MethodSpec, build_spec

if TYPE_CHECKING:
    from mailroom.registry._runner import Runner

F = TypeVar("F", bound=Implementation)

#: Protocols that are never "remote": the process itself and its command line.
LOCAL_PROTOCOLS = frozenset({"inprocess", "cli"})


class Api:
    """A named API (``admin``, ``mail``, ...) and the methods a provider offers for it."""

    def __init__(self, name: str, *, title: str, description: str = "", provider: str = "builtin") -> None:
        self.name = name
        self.title = title
        self.description = description
        self.provider = provider
        self.specs: dict[str, MethodSpec] = {}

    def method(
        self,
        name: str,
        *,
        access: Access,
        http: HttpBinding | None = None,
        cost: int = 1,
        since: str | None = None,
        deprecated: str | None = None,
        mutating: bool | None = None,
        examples: Sequence[dict[str, Any]] = (),
    ) -> Callable[[F], F]:
        """Declare ``func`` as the method ``name``; the parameter model is built here, once."""

        def decorate(func: F) -> F:
            if name in self.specs:
                raise ValueError(f"method {name} declared twice")
            self.specs[name] = build_spec(
                name,
                func,
                api=self.name,
                access=access,
                http=http,
                cost=cost,
                provider=self.provider,
                since=since,
                deprecated=deprecated,
                mutating=mutating,
                examples=tuple(examples),
            )
            return func

        return decorate


@dataclass(frozen=True, slots=True)
class ApiInfo:
    name: str
    title: str
    description: str


@dataclass(frozen=True, slots=True)
class RemoteSwitch:
    """``protocol`` is ``*`` or a protocol name; ``pattern`` a method glob."""

    protocol: str
    pattern: str

    @classmethod
    def parse(cls, text: str) -> RemoteSwitch:
        protocol, sep, pattern = text.partition(":")
        return cls(protocol, pattern) if sep else cls("*", text)

    def matches(self, spec: MethodSpec, protocol: str) -> bool:
        if self.protocol not in ("*", protocol):
            return False
        return fnmatchcase(spec.name, self.pattern) or self.pattern == spec.api


class Registry:
    """All methods by name, with routing to providers and remote-access switches."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}
        self._apis: dict[str, ApiInfo] = {}
        self._runner: Runner | None = None
        self.disabled_protocols: frozenset[str] = frozenset()
        self.remote_switches: tuple[RemoteSwitch, ...] = ()

    # -- assembling -------------------------------------------------------------------
    def include(self, api: Api) -> None:
        """Add every method of ``api``; a name may be declared by one API only."""
        self._apis.setdefault(api.name, ApiInfo(api.name, api.title, api.description))
        for name, spec in api.specs.items():
            if name in self._specs:
                raise ValueError(f"method {name} is already provided by {self._specs[name].provider}")
            self._specs[name] = spec

    def override(
        self, pattern: str, implementations: Mapping[str, Implementation], provider: str
    ) -> list[str]:
        """Serve every method matching ``pattern`` (a glob or an API name) from ``provider``.

        Methods matched by the pattern that ``implementations`` lacks are an error: a
        half-routed API would fail at call time, so it fails at start-up instead.
        """
        matched = [s for s in self._specs.values() if fnmatchcase(s.name, pattern) or s.api == pattern]
        if not matched:
            raise ValueError(f"provider route {pattern!r} matches no method")
        missing = [s.name for s in matched if s.name not in implementations]
        if missing:
            raise ValueError(f"provider {provider!r} does not implement {', '.join(sorted(missing))}")
        for spec in matched:
            self._specs[spec.name] = spec.with_implementation(implementations[spec.name], provider)
        return sorted(s.name for s in matched)

    def configure_remote_access(self, disabled_protocols: Iterable[str], switches: Iterable[str]) -> None:
        self.disabled_protocols = frozenset(disabled_protocols)
        self.remote_switches = tuple(RemoteSwitch.parse(s) for s in switches)

    def bind(self, runner: Runner) -> None:
        self._runner = runner

    # -- reading ----------------------------------------------------------------------
    def get(self, name: str) -> MethodSpec | None:
        return self._specs.get(name)

    def methods(self, api: str | None = None) -> list[MethodSpec]:
        specs = sorted(self._specs.values(), key=lambda s: s.name)
        return [s for s in specs if api is None or s.api == api]

    def apis(self) -> list[ApiInfo]:
        return sorted(self._apis.values(), key=lambda a: a.name)

    def remote_allowed(self, spec: MethodSpec, protocol: str) -> bool:
        """Switched-off methods stay callable in-process and from the CLI only."""
        if protocol in LOCAL_PROTOCOLS:
            return True
        if protocol in self.disabled_protocols:
            return False
        return not any(s.matches(spec, protocol) for s in self.remote_switches)

    def visible(self, protocol: str) -> list[MethodSpec]:
        return [s for s in self.methods() if self.remote_allowed(s, protocol)]

    def describe(self, name: str) -> dict[str, Any]:
        """A method's contract as plain data (CLI help, introspection)."""
        spec = self._specs[name]
        return {
            "name": spec.name,
            "api": spec.api,
            "summary": spec.summary,
            "description": spec.doc,
            "access": spec.access.describe(),
            "params": spec.params_model.model_json_schema(),
            "returns": spec.return_adapter.json_schema(),
            "http": None if spec.http is None else {"method": spec.http.verb, "path": spec.http.path},
            "provider": spec.provider,
            "cost": spec.cost,
            "since": spec.since,
            "deprecated": spec.deprecated,
        }

    # -- calling ----------------------------------------------------------------------
    @property
    def runner(self) -> Runner:
        if self._runner is None:
            raise RuntimeError("registry is not bound to a runner yet")
        return self._runner

    async def call(
        self,
        name: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        principal: Principal = SYSTEM,
        protocol: str = "inprocess",
    ) -> Any:
        """In-process call through the same runner every protocol uses."""
        return await self.runner.invoke(name, params, principal, CallInfo(protocol=protocol))
