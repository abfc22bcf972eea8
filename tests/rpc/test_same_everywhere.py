"""Every side-effect-free method gives equal results and equal error codes over REST, JSON-RPC,
XML-RPC and in-process, for callers of every kind.

Parameters come from the method's examples, or are guessed from parameter names against a
small world (a domain, its manager, a user, an API key); a wrong guess still has to fail the
same way everywhere. XML-RPC dates carry whole seconds, so dates are compared to the second.
"""

from __future__ import annotations

import base64
import re
import xmlrpc.client
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from mailroom import bootstrap
from mailroom.auth.principal import ANONYMOUS
from mailroom.bootstrap import Mailroom
from mailroom.errors import MailroomError
from mailroom.registry import Download, MethodSpec
from mailroom.settings import Settings
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


def _side_effect_free() -> list[str]:
    settings = Settings(data_dir=Path("/nonexistent"), mode="test", secret_key="x" * 32, interop_api=True)
    return [s.name for s in bootstrap.build_registry(settings).methods() if not s.mutating]


METHODS = _side_effect_free()
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def normalise(value: Any) -> Any:
    """One form for every protocol: dates as UTC to the second, bytes as base64 text."""
    if isinstance(value, str) and _ISO.match(value):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, Download):
        return normalise(
            {"content": value.content, "content_type": value.content_type, "filename": value.filename}
        )
    if isinstance(value, dict):
        if "content_base64" in value and "content_type" in value:  # a JSON-RPC download
            value = {
                "content": value["content_base64"],
                **{k: v for k, v in value.items() if k != "content_base64"},
            }
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


Outcome = tuple[str, Any]


@dataclass
class World:
    mailroom: Mailroom
    client: httpx.AsyncClient
    actors: dict[str, Actor]
    key_id: str

    def params(self, spec: MethodSpec) -> dict[str, Any]:
        if spec.name == "system.methods.describe":
            return {"name": "admin.domains.get"}
        for example in spec.examples:
            if isinstance(example.get("params"), dict):
                return dict(example["params"])
        known = {
            "name": "example.org",
            "domain": "example.org",
            "email": "alice@example.org",
            "address": "alice@example.org",
            "user": "alice@example.org",
            "id": self.key_id,
        }
        return {n: known[n] for n in spec.param_names if n in known}


async def in_process(world: World, spec: MethodSpec, params: dict[str, Any], actor: Actor) -> Outcome:
    try:
        return "ok", normalise(
            await world.mailroom.registry.call(spec.name, params, principal=actor.principal)
        )
    except MailroomError as exc:
        return "error", exc.code


async def over_jsonrpc(world: World, spec: MethodSpec, params: dict[str, Any], actor: Actor) -> Outcome:
    body = {"jsonrpc": "2.0", "method": spec.name, "params": params, "id": 1}
    r = await world.client.post("/rpc/json", json=body, headers=actor.headers)
    reply = r.json()
    if "error" in reply:
        return "error", reply["error"]["data"]["code"]
    return "ok", normalise(reply["result"])


async def over_xmlrpc(world: World, spec: MethodSpec, params: dict[str, Any], actor: Actor) -> Outcome:
    args = (params,) if params else ()
    r = await world.client.post(
        "/rpc/xml", content=xmlrpc.client.dumps(args, spec.name, allow_none=True), headers=actor.headers
    )
    try:
        (result,), _ = xmlrpc.client.loads(r.content, use_builtin_types=True)
    except xmlrpc.client.Fault as fault:
        return "error", str(fault.faultString).split(":", 1)[0]
    return "ok", normalise(result)


async def over_rest(world: World, spec: MethodSpec, params: dict[str, Any], actor: Actor) -> Outcome | None:
    """None when the parameters cannot travel over the method's REST binding."""
    binding = spec.http
    if binding is None or any(p not in params for p in binding.path_params):
        return None
    path = binding.path
    for name in binding.path_params:
        path = path.replace("{" + name + "}", quote(str(params[name]), safe=""))
    rest = {k: v for k, v in params.items() if k not in binding.path_params}
    kwargs: dict[str, Any] = {"headers": actor.headers}
    if binding.verb in ("GET", "DELETE"):
        if any(isinstance(v, (dict, list)) for v in rest.values()):
            return None
        kwargs["params"] = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in rest.items()}
    else:
        kwargs["json"] = rest[spec.body_param] if spec.body_param and spec.body_param in rest else rest
    r = await world.client.request(binding.verb, "/api/v1" + path, **kwargs)
    if r.status_code >= 400:
        return "error", r.json()["code"]
    if r.status_code == 204:
        return "ok", None
    if not r.headers.get("content-type", "").startswith("application/json"):
        disposition = r.headers.get("content-disposition", "")
        filename = (
            disposition.split('filename="', 1)[1].split('"', 1)[0] if 'filename="' in disposition else None
        )
        content_type = r.headers["content-type"]
        return "ok", normalise(Download(r.content, content_type, filename))
    return "ok", normalise(r.json())


@pytest.fixture
async def world(mailroom: Mailroom, client: httpx.AsyncClient, admin: Actor, make_user: Any) -> World:
    manager: Actor = await make_user("alice@example.org", manages=("example.org",))
    user: Actor = await make_user("bob@example.org")
    scoped = await mailroom.registry.call(
        "admin.apikeys.create", {"key": {"name": "scoped", "admin": True, "scopes": ["system.health.get"]}}
    )
    scoped_actor = Actor(
        "scoped", await mailroom.authenticator.bearer(scoped["key"], "127.0.0.1"), key=scoped["key"]
    )
    actors = {
        "admin": admin,
        "manager": manager,
        "user": user,
        "scoped": scoped_actor,
        "anonymous": Actor("anonymous", ANONYMOUS),
    }
    assert admin.principal.key_id is not None
    return World(mailroom, client, actors, admin.principal.key_id)


@pytest.mark.parametrize("method", METHODS)
async def test_same_result_on_every_protocol(world: World, method: str) -> None:
    spec = world.mailroom.registry.get(method)
    assert spec is not None
    variants = [(name, world.params(spec)) for name in world.actors]
    if spec.required:
        variants.append(("admin", {}))  # missing parameters: invalid_params everywhere
    for actor_name, params in variants:
        actor = world.actors[actor_name]
        outcomes = {
            "in-process": await in_process(world, spec, params, actor),
            "jsonrpc": await over_jsonrpc(world, spec, params, actor),
            "xmlrpc": await over_xmlrpc(world, spec, params, actor),
        }
        rest = await over_rest(world, spec, params, actor)
        if rest is not None:
            outcomes["rest"] = rest
        expected = outcomes["in-process"]
        for protocol, outcome in outcomes.items():
            assert outcome == expected, (method, actor_name, params, protocol)


def test_the_methods_cover_every_kind() -> None:
    assert {"admin.domains.get", "admin.domains.list", "system.health.get", "subtract"} <= set(METHODS)
    assert "admin.domains.create" not in METHODS
