"""The OpenAPI document: valid 3.1, complete, and saying what the API really does."""

from __future__ import annotations

import collections
import itertools
import re
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict

from mailroom.bootstrap import Mailroom
from mailroom.errors import ERRORS
from mailroom.frontends.rest import openapi
from mailroom.frontends.rest.openapi import openapi_document
from mailroom.registry import (
    GET,
    POST,
    Api,
    Authenticated,
    Context,
    Download,
    MethodSpec,
    Public,
    Registry,
)
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

VERBS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def document(mailroom: Mailroom) -> dict[str, Any]:
    return openapi_document(mailroom.registry)


def rest_specs(mailroom: Mailroom) -> list[MethodSpec]:
    return [s for s in mailroom.registry.visible("rest") if s.http is not None]


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for verb, operation in item.items():
            if verb in VERBS:
                yield path, verb, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for a schema taken out of the document, its ``#/components/...`` refs intact."""
    rooted = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(
        rooted, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


# -- the document as a whole --------------------------------------------------------------------


async def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)
    assert document["info"]["title"] == "mailroom"
    assert document["servers"] == [{"url": "/api/v1"}]


async def test_server_url_can_be_given(mailroom: Mailroom) -> None:
    doc = openapi_document(mailroom.registry, server_url="https://mail.example.org/api/v1")
    assert doc["servers"] == [{"url": "https://mail.example.org/api/v1"}]


@pytest.mark.parametrize("settings_overrides", [{"public_url": "https://mail.example.org/"}])
async def test_served_document_names_the_public_url(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/openapi.json")
    assert r.json()["servers"] == [{"url": "https://mail.example.org/api/v1"}]


async def test_every_http_method_appears_exactly_once(mailroom: Mailroom, document: dict[str, Any]) -> None:
    specs = rest_specs(mailroom)
    assert len(specs) > 10, "the running app should have the admin API"
    seen = collections.Counter(op["operationId"] for _, _, op in operations(document))
    assert {name: n for name, n in seen.items() if n != 1} == {}
    assert set(seen) == {s.name for s in specs}
    for spec in specs:
        assert spec.http is not None
        operation = document["paths"][spec.http.path][spec.http.verb.lower()]
        assert operation["operationId"] == spec.name
        assert operation["summary"] == spec.summary.replace("``", "`")
        assert f"Method: `{spec.name}`" in operation["description"]
        assert f"Access: {spec.access.describe()}" in operation["description"]
        assert operation["x-access"] == spec.access.describe()
        assert operation["tags"][0] == spec.api


async def test_methods_rest_cannot_reach_are_left_out(mailroom: Mailroom) -> None:
    mailroom.registry.configure_remote_access([], ["rest:admin.domains.*"])
    doc = openapi_document(mailroom.registry)
    ids = {op["operationId"] for _, _, op in operations(doc)}
    assert "admin.users.create" in ids
    assert not any(i.startswith("admin.domains.") for i in ids)
    validate(doc)


async def test_path_parameters_match_the_path(mailroom: Mailroom, document: dict[str, Any]) -> None:
    for spec in rest_specs(mailroom):
        assert spec.http is not None
        operation = document["paths"][spec.http.path][spec.http.verb.lower()]
        params = operation.get("parameters", [])
        in_path = [p["name"] for p in params if p["in"] == "path"]
        assert in_path == re.findall(r"{(\w+)}", spec.http.path) == list(spec.http.path_params)
        assert all(p["required"] for p in params if p["in"] == "path")
        for p in params:
            assert p["schema"], f"{spec.name}: parameter {p['name']} has no schema"


async def test_query_parameters_say_required_and_default(document: dict[str, Any]) -> None:
    params = {p["name"]: p for p in document["paths"]["/domains"]["get"]["parameters"]}
    assert params["offset"]["in"] == "query"
    assert params["offset"]["required"] is False
    assert params["offset"]["schema"]["default"] == 0
    assert params["limit"]["schema"]["maximum"] == 1000


async def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert found
    for ref in found:
        resolve(document, ref)


async def test_input_and_output_models_are_components(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    create = document["paths"]["/domains"]["post"]
    assert create["requestBody"]["required"] is True
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DomainCreate"
    }
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Domain"
    }
    assert schemas["DomainCreate"]["additionalProperties"] is False
    # The model's own examples flow through.
    assert schemas["DomainCreate"]["examples"][0]["name"] == "example.org"
    # Parameter models are unpacked into parameters and bodies, not published.
    assert not [name for name in schemas if name.endswith("Params")]


async def test_security_public_and_not(mailroom: Mailroom, document: dict[str, Any]) -> None:
    assert document["paths"]["/health"]["get"]["security"] == []
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["basicAuth"]["scheme"] == "basic"
    for spec in rest_specs(mailroom):
        assert spec.http is not None
        operation = document["paths"][spec.http.path][spec.http.verb.lower()]
        if spec.access.public:
            assert operation["security"] == []
            assert "403" not in operation["responses"]
        else:
            assert {"bearerAuth": []} in operation["security"], spec.name
            assert "403" in operation["responses"]


async def test_responses(mailroom: Mailroom, document: dict[str, Any]) -> None:
    for spec in rest_specs(mailroom):
        assert spec.http is not None
        responses = document["paths"][spec.http.path][spec.http.verb.lower()]["responses"]
        success = responses[str(spec.http.status)]
        if spec.http.status == 204:
            assert "content" not in success, spec.name
        else:
            assert success.get("content"), spec.name
        for status, response in responses.items():
            if int(status) >= 400:
                target = resolve(document, response["$ref"])
                assert target["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
        for status in ("401", "422", "429", "500"):
            assert status in responses, (spec.name, status)
        if (
            spec.http.verb in ("POST", "PUT", "PATCH")
            and "requestBody" in (document["paths"][spec.http.path][spec.http.verb.lower()])
        ):
            assert {"400", "413"} <= set(responses), spec.name
    assert "204" in document["paths"]["/domains/{name}"]["delete"]["responses"]


async def test_download_is_binary(document: dict[str, Any]) -> None:
    success = document["paths"]["/domains/{domain}/dns/zone"]["get"]["responses"]["200"]
    (media,) = success["content"].values()
    assert media["schema"] == {"type": "string", "format": "binary"}


async def test_every_error_status_has_a_shared_response(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    described = " ".join(r["description"] for r in responses.values())
    for error in ERRORS:
        assert f"`{error.code}`" in described
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "instance",
        "errors",
        "data",
    }


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def sample_registry() -> Registry:
    """Shapes the admin API does not use (yet): examples, deprecation, fields as body, downloads."""
    api = Api("sample", title="Sample")

    @api.method(
        "sample.things.get",
        http=GET("/things/{name}"),
        access=Public(),
        since="0.2",
        deprecated="use sample.things.list",
        examples=[{"summary": "by name", "params": {"name": "a"}, "result": {"name": "a"}}],
    )
    async def get_thing(ctx: Context, name: str) -> Thing:
        """Show a thing.

        More words.
        """
        return Thing(name=name)

    @api.method("sample.things.list", http=GET("/things"), access=Authenticated())
    async def list_things(ctx: Context, tags: list[str] | None = None) -> list[Thing]:
        """List things."""
        return []

    @api.method("sample.things.rename", http=POST("/things/{name}/rename"), access=Authenticated())
    async def rename(ctx: Context, name: str, to: str, force: bool = False) -> None:
        """Rename a thing (fields of a JSON object body)."""

    @api.method("sample.things.raw", http=GET("/things/{name}/raw"), access=Authenticated())
    async def raw(ctx: Context, name: str) -> Annotated[Download, "message/rfc822"]:
        """The thing as a message."""
        return Download(b"")

    registry = Registry()
    registry.include(api)
    return registry


async def test_shapes_beyond_the_admin_api() -> None:
    doc = openapi_document(sample_registry())
    validate(doc)
    get = doc["paths"]["/things/{name}"]["get"]
    assert get["deprecated"] is True
    assert get["x-deprecated"] == "use sample.things.list"
    assert get["x-since"] == "0.2"
    assert get["description"].startswith("More words.")
    assert "Method: `sample.things.get` (also over JSON-RPC and XML-RPC)" in get["description"]
    assert get["parameters"][0]["examples"]["example1"] == {"value": "a", "summary": "by name"}
    ok = get["responses"]["200"]
    assert ok["content"]["application/json"]["examples"]["example1"]["value"] == {"name": "a"}
    assert "Deprecation" in ok["headers"]
    assert get["tags"] == ["sample", "sample.things"]

    (tags,) = doc["paths"]["/things"]["get"]["parameters"]
    assert tags["in"] == "query"
    assert tags["required"] is False

    rename = doc["paths"]["/things/{name}/rename"]["post"]
    body = rename["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert schema["required"] == ["to"]
    assert set(schema["properties"]) == {"to", "force"}
    assert schema["additionalProperties"] is False
    assert rename["responses"]["200"]["content"]["application/json"]["schema"] == {"type": "null"}

    raw = doc["paths"]["/things/{name}/raw"]["get"]["responses"]["200"]["content"]
    assert raw == {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}


async def test_one_route_per_verb_and_path() -> None:
    api = Api("dup", title="Dup")

    @api.method("dup.a.get", http=GET("/same"), access=Public())
    async def a(ctx: Context) -> None:
        """A."""

    @api.method("dup.b.get", http=GET("/same"), access=Public())
    async def b(ctx: Context) -> None:
        """B."""

    registry = Registry()
    registry.include(api)
    with pytest.raises(ValueError, match="share GET /same"):
        openapi_document(registry)


async def test_real_responses_match_the_documented_schemas(
    client: httpx.AsyncClient, admin: Actor, document: dict[str, Any]
) -> None:
    create = document["paths"]["/domains"]["post"]["responses"]
    r = await client.post("/api/v1/domains", json={"name": "docs.example"}, headers=admin.headers)
    assert r.status_code == 201
    validator(document, create["201"]["content"]["application/json"]["schema"]).validate(r.json())

    r = await client.get("/api/v1/domains", headers=admin.headers)
    listed = document["paths"]["/domains"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator(document, listed).validate(r.json())

    problem = {"$ref": "#/components/schemas/Problem"}
    for request in (
        client.post("/api/v1/domains", json={"name": "docs.example"}, headers=admin.headers),  # 409
        client.post("/api/v1/domains", json={"surprise": 1}, headers=admin.headers),  # 422
        client.get("/api/v1/domains/missing.example", headers=admin.headers),  # 404
        client.get("/api/v1/domains"),  # 401
    ):
        r = await request
        assert r.status_code >= 400
        assert r.headers["content-type"] == "application/problem+json"
        validator(document, problem).validate(r.json())


# -- documented input rules agree with the API ---------------------------------------------------

_names = (f"n{i}.example" for i in itertools.count())

DOMAIN_BODIES: list[tuple[dict[str, Any] | list[Any], bool]] = [
    # (body, structural: the schema can tell) — "name" is replaced by a fresh name where present.
    ({"name": "X"}, True),
    ({"name": "X", "comment": "main", "max_users": 5, "signup_enabled": True}, True),
    ({"name": "X", "max_users": None}, True),
    ({}, True),
    ({"name": "X", "surprise": 1}, True),
    ({"name": "X", "max_users": -1}, True),
    ({"name": "X", "max_users": 1.5}, True),
    ({"name": 5}, True),
    ({"name": "X", "comment": "x" * 1001}, True),
    ({"name": "a" * 300 + ".org"}, True),
    ({"name": "X", "signup_enabled": None}, True),
    (["name"], True),
    # The published pattern says what a domain name is (issue 11 §3).
    ({"name": "no_dots"}, True),
    ({"name": "-bad-.org"}, True),
    ({"name": "under_score.org"}, True),
]

KEY_BODIES: list[tuple[dict[str, Any] | list[Any], bool]] = [
    ({"name": "k", "admin": True}, True),
    ({"name": "k", "admin": True, "scopes": ["admin.domains.*"], "expires_at": "2999-01-01T00:00:00Z"}, True),
    ({"name": "", "admin": True}, True),
    ({"name": "k" * 101, "admin": True}, True),
    ({"name": "k", "admin": "maybe"}, True),
    ({"name": "k", "admin": True, "scopes": "admin.*"}, True),
    ({"name": "k", "admin": True, "extra": 1}, True),
    ({"admin": True}, True),
    ({"name": "k", "admin": True, "allowed_networks": ["not a network"]}, False),
    ({"name": "k", "admin": True, "scopes": ["bad scope"]}, False),
]

UPDATE_BODIES: list[tuple[dict[str, Any] | list[Any], bool]] = [
    ({"comment": "books"}, True),
    ({"max_users": 3, "signup_enabled": True}, True),
    ({"max_users": -3}, True),
    ({"unknown": 1}, True),
    ({"max_aliases": "many"}, True),
    ({"comment": "x" * 1001}, True),
]


def body_schema(document: dict[str, Any], path: str, verb: str) -> dict[str, Any]:
    body = document["paths"][path][verb]["requestBody"]
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def fresh(body: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
    if isinstance(body, dict) and body.get("name") == "X":
        return {**body, "name": next(_names)}
    return body


async def check_agreement(
    document: dict[str, Any],
    schema: dict[str, Any],
    samples: list[tuple[dict[str, Any] | list[Any], bool]],
    send: Any,
    success: int,
) -> None:
    check = validator(document, schema)
    for sample, structural in samples:
        body = fresh(sample)
        documented_ok = check.is_valid(body)
        r = await send(body)
        assert r.status_code in (success, 422), (body, r.status_code, r.text)
        api_ok = r.status_code == success
        if structural:
            assert documented_ok == api_ok, (body, r.json())
        else:
            assert documented_ok, body
            assert not api_ok, body
        if not api_ok:
            assert r.json()["code"] == "invalid_params"


async def test_domain_create_schema_rejects_what_the_api_rejects(
    client: httpx.AsyncClient, admin: Actor, document: dict[str, Any]
) -> None:
    async def send(body: Any) -> httpx.Response:
        return await client.post("/api/v1/domains", json=body, headers=admin.headers)

    await check_agreement(document, body_schema(document, "/domains", "post"), DOMAIN_BODIES, send, 201)


async def test_apikey_create_schema_rejects_what_the_api_rejects(
    client: httpx.AsyncClient, admin: Actor, document: dict[str, Any]
) -> None:
    async def send(body: Any) -> httpx.Response:
        return await client.post("/api/v1/apikeys", json=body, headers=admin.headers)

    await check_agreement(document, body_schema(document, "/apikeys", "post"), KEY_BODIES, send, 201)


async def test_domain_update_schema_rejects_what_the_api_rejects(
    client: httpx.AsyncClient, admin: Actor, document: dict[str, Any]
) -> None:
    r = await client.post("/api/v1/domains", json={"name": "patch.example"}, headers=admin.headers)
    assert r.status_code == 201

    async def send(body: Any) -> httpx.Response:
        return await client.patch("/api/v1/domains/patch.example", json=body, headers=admin.headers)

    await check_agreement(
        document, body_schema(document, "/domains/{name}", "patch"), UPDATE_BODIES, send, 200
    )


# -- serving ------------------------------------------------------------------------------------


async def test_served_once_built_and_revalidated(
    client: httpx.AsyncClient, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    real = openapi.openapi_document

    def counting(*args: Any, **kwargs: Any) -> dict[str, Any]:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(openapi, "openapi_document", counting)
    r = await client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == document
    etag = r.headers["etag"]
    for _ in range(3):
        again = await client.get("/api/v1/openapi.json")
        assert again.content == r.content
    assert len(built) == 1
    r = await client.get("/api/v1/openapi.json", headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""


async def test_alternative_success_statuses_are_documented(mailroom: Mailroom) -> None:
    """Sign-up answers 201 (account created) or 202 (joined the waitlist): both are documented."""
    doc = openapi_document(mailroom.registry)
    responses = doc["paths"]["/signup"]["post"]["responses"]
    assert responses["201"]["content"] == responses["202"]["content"]
    assert responses["202"]["description"] == "Accepted"
