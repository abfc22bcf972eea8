"""The registry and runner: declaration rules, validation, order of checks, routing, switches."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from mailroom import bootstrap
from mailroom.auth.principal import ANONYMOUS, SYSTEM, Principal
from mailroom.bootstrap import Mailroom
from mailroom.errors import Forbidden, InvalidParams, MethodNotFound, NotFound, Unauthenticated
from mailroom.registry import GET, POST, Admin, Api, CallInfo, Context, Public, Registry, Runner
from mailroom.settings import ProviderRoute, Settings
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int = 1


def _toy_api() -> Api:
    api = Api("toy", title="Toy")

    @api.method("toy.things.echo", http=POST("/things"), access=Public())
    async def echo(ctx: Context, thing: Thing, times: int = 1) -> list[Thing]:
        """Echo a thing."""
        return [thing] * times

    @api.method("toy.things.secret", http=GET("/secret"), access=Admin())
    async def secret(ctx: Context, n: int) -> int:
        """Admins only."""
        return n * 2

    @api.method("toy.things.boom", access=Public())
    async def boom(ctx: Context) -> None:
        """Fails unexpectedly."""
        raise RuntimeError("database password is hunter2")

    return api


@pytest.fixture
def toy(mailroom: Mailroom) -> Runner:
    registry = Registry()
    registry.include(_toy_api())
    runner = Runner(registry, mailroom.runtime)
    registry.bind(runner)
    return runner


def test_declaration_rules() -> None:
    api = Api("bad", title="Bad")
    with pytest.raises(TypeError, match="async def"):
        api.method("bad.x.sync", access=Public())(lambda ctx: None)  # type: ignore[arg-type,return-value]

    async def no_ctx(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="ctx"):
        api.method("bad.x.noctx", access=Public())(no_ctx)

    async def untyped(ctx: Context, x) -> int:  # type: ignore[no-untyped-def]
        return 1

    with pytest.raises(TypeError, match="type hint"):
        api.method("bad.x.untyped", access=Public())(untyped)

    async def fine(ctx: Context, x: int) -> int:
        return x

    with pytest.raises(TypeError, match="path parameters"):
        api.method("bad.x.path", http=GET("/x/{y}"), access=Public())(fine)
    with pytest.raises(ValueError, match="method name"):
        api.method("bad name", access=Public())(fine)
    api.method("bad.x.fine", access=Public())(fine)
    with pytest.raises(ValueError, match="twice"):
        api.method("bad.x.fine", access=Public())(fine)


async def test_named_and_positional_params(toy: Runner) -> None:
    out = await toy.invoke("toy.things.echo", {"thing": {"name": "a"}, "times": 2}, ANONYMOUS)
    assert out == [{"name": "a", "size": 1}, {"name": "a", "size": 1}]
    assert await toy.invoke("toy.things.echo", [{"name": "b", "size": 3}], ANONYMOUS) == [
        {"name": "b", "size": 3}
    ]
    with pytest.raises(InvalidParams) as exc:
        await toy.invoke("toy.things.echo", [{"name": "b"}, 1, 2], ANONYMOUS)
    assert exc.value.errors[0].loc == "params"


async def test_validation_errors_name_every_field(toy: Runner) -> None:
    with pytest.raises(InvalidParams) as exc:
        await toy.invoke("toy.things.echo", {"thing": {"size": "big", "colour": 1}, "extra": 1}, ANONYMOUS)
    locs = {e.loc: e.message for e in exc.value.errors}
    assert locs["thing.name"] == "required"
    assert "thing.size" in locs
    assert locs["thing.colour"] == "unknown field"
    assert locs["extra"] == "unknown field"


async def test_authentication_is_checked_before_validation(toy: Runner) -> None:
    with pytest.raises(Unauthenticated):
        await toy.invoke("toy.things.secret", {"n": "not a number"}, ANONYMOUS)
    user = Principal(kind="user", user_id=1, email="u@example.org")
    with pytest.raises(Forbidden):
        await toy.invoke("toy.things.secret", {"n": 2}, user)
    assert await toy.invoke("toy.things.secret", {"n": 2}, SYSTEM) == 4


async def test_scopes_limit_keys(toy: Runner) -> None:
    scoped = Principal(kind="apikey", is_admin=True, key_id="k", scopes=("toy.things.e*",))
    assert await toy.invoke("toy.things.echo", {"thing": {"name": "a"}}, scoped) == [{"name": "a", "size": 1}]
    with pytest.raises(Forbidden, match="scopes"):
        await toy.invoke("toy.things.secret", {"n": 1}, scoped)


async def test_unknown_method_and_internal_errors(toy: Runner, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(MethodNotFound):
        await toy.invoke("toy.things.nope", {}, SYSTEM)
    with pytest.raises(Exception) as exc:
        await toy.invoke("toy.things.boom", {}, SYSTEM)
    assert exc.value.code == "internal_error"  # type: ignore[attr-defined]
    assert "hunter2" not in str(exc.value)


async def test_filters_wrap_calls_in_order(toy: Runner) -> None:
    seen: list[str] = []

    async def outer(call: Any, proceed: Any) -> Any:
        seen.append(f"outer:{call.name}:{call.info.protocol}")
        result = await proceed(call)
        seen.append("outer:after")
        return result

    async def refuse_secret(call: Any, proceed: Any) -> Any:
        if call.name == "toy.things.secret":
            raise Forbidden("refused by filter")
        return await proceed(call)

    toy.add_filter(outer)
    toy.add_filter(refuse_secret)
    await toy.invoke("toy.things.echo", {"thing": {"name": "a"}}, ANONYMOUS, CallInfo(protocol="jsonrpc"))
    assert seen == ["outer:toy.things.echo:jsonrpc", "outer:after"]
    with pytest.raises(Forbidden, match="filter"):
        await toy.invoke("toy.things.secret", {"n": 1}, SYSTEM)


async def test_a_filter_with_when_wraps_only_the_methods_it_accepts(toy: Runner) -> None:
    seen: list[str] = []

    async def everywhere(call: Any, proceed: Any) -> Any:
        seen.append(f"all:{call.name}")
        return await proceed(call)

    async def only_echo(call: Any, proceed: Any) -> Any:
        seen.append(f"echo-only:{call.name}")
        return await proceed(call)

    toy.add_filter(everywhere)
    toy.add_filter(only_echo, when=lambda spec: spec.name == "toy.things.echo")
    await toy.invoke("toy.things.echo", {"thing": {"name": "a"}}, ANONYMOUS)
    assert await toy.invoke("toy.things.secret", {"n": 1}, SYSTEM) == 2
    await toy.invoke("toy.things.echo", {"thing": {"name": "b"}}, ANONYMOUS)
    assert seen == [
        "all:toy.things.echo",
        "echo-only:toy.things.echo",
        "all:toy.things.secret",
        "all:toy.things.echo",
        "echo-only:toy.things.echo",
    ]
    assert toy.filters == [everywhere, only_echo]
    # A filter added later applies to methods whose chain was already built.
    seen.clear()

    async def late(call: Any, proceed: Any) -> Any:
        seen.append(f"late:{call.name}")
        return await proceed(call)

    toy.add_filter(late)
    assert await toy.invoke("toy.things.secret", {"n": 1}, SYSTEM) == 2
    assert seen == ["all:toy.things.secret", "late:toy.things.secret"]


async def test_remote_switches(toy: Runner) -> None:
    toy.registry.configure_remote_access(["xmlrpc"], ["rest:toy.things.secret", "toy.things.boom"])
    spec = toy.registry.get("toy.things.secret")
    assert spec is not None
    assert not toy.registry.remote_allowed(spec, "rest")
    assert toy.registry.remote_allowed(spec, "jsonrpc")
    assert toy.registry.remote_allowed(spec, "inprocess")
    with pytest.raises(MethodNotFound):
        await toy.invoke("toy.things.secret", {"n": 1}, SYSTEM, CallInfo(protocol="rest"))
    with pytest.raises(MethodNotFound):
        await toy.invoke("toy.things.echo", {"thing": {"name": "a"}}, SYSTEM, CallInfo(protocol="xmlrpc"))
    with pytest.raises(MethodNotFound):
        await toy.invoke("toy.things.boom", {}, SYSTEM, CallInfo(protocol="jsonrpc"))
    assert await toy.invoke("toy.things.secret", {"n": 1}, SYSTEM, CallInfo(protocol="cli")) == 2
    assert [s.name for s in toy.registry.visible("rest")] == ["toy.things.echo"]


async def test_introspection(mailroom: Mailroom, call: Any, admin: Actor) -> None:
    apis = await call("system.apis.list", as_=admin)
    names = {a["name"]: a for a in apis}
    assert "admin.domains.create" in names["admin"]["methods"]
    described = await call("system.methods.describe", {"name": "admin.domains.create"}, as_=admin)
    assert described["access"] == "admin"
    assert described["http"] == {"method": "POST", "path": "/domains"}
    assert "domain" in described["params"]["properties"]
    assert described["summary"].startswith("Create a mail domain")
    with pytest.raises(MethodNotFound):
        await call("system.methods.describe", {"name": "no.such.method"}, as_=admin)


async def test_one_method_overridden_by_another_provider(settings: Settings, clock: Any) -> None:
    routed = settings.model_copy(
        update={
            "providers": [
                ProviderRoute(methods="admin.domains.get", provider="tests.registry.alt_provider:api")
            ]
        }
    )
    app = await bootstrap.start(routed, clock=clock, run_migrations=False)
    try:
        assert app.registry.get("admin.domains.get").provider == "tests.registry.alt_provider:api"  # type: ignore[union-attr]
        assert app.registry.get("admin.domains.list").provider == "builtin"  # type: ignore[union-attr]
        # The overridden method answers from the other provider, with the same contract...
        got = await app.registry.call("admin.domains.get", {"name": "Anything.Example"})
        assert got["name"] == "anything.example"
        assert got["comment"] == "served by the alternative provider"
        # ...and the same validation and access rules.
        with pytest.raises(InvalidParams):
            await app.registry.call("admin.domains.get", {"name": "not a domain"})
        with pytest.raises(Unauthenticated):
            await app.registry.call("admin.domains.get", {"name": "x.example"}, principal=ANONYMOUS)
        # The rest of the API stays with the built-in provider.
        with pytest.raises(NotFound):
            await app.registry.call("admin.domains.update", {"name": "anything.example", "changes": {}})
        page = await app.registry.call("admin.domains.list", {})
        assert page["total"] == 0
    finally:
        await app.close()


async def test_provider_routes_must_be_complete(settings: Settings) -> None:
    routed = settings.model_copy(
        update={
            "providers": [
                ProviderRoute(methods="admin.domains.*", provider="tests.registry.alt_provider:api")
            ]
        }
    )
    with pytest.raises(ValueError, match="does not implement"):
        bootstrap.build_registry(routed)
    nothing = settings.model_copy(update={"providers": [ProviderRoute(methods="nope.*", provider="x:y")]})
    with pytest.raises((ValueError, ModuleNotFoundError)):
        bootstrap.build_registry(nothing)


async def test_rest_router_405_and_404(client: httpx.AsyncClient, admin: Actor) -> None:
    r = await client.put("/api/v1/domains", headers=admin.headers)
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]
    assert "POST" in r.headers["allow"]
    r = await client.get("/api/v1/no/such/thing", headers=admin.headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
