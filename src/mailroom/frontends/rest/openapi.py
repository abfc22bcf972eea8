"""The OpenAPI 3.1 document of the REST API, derived from the registry; nothing here is hand-kept.

Every method REST can reach becomes one operation, unpacked exactly as
:mod:`mailroom.frontends.rest.app` unpacks a request (:func:`path_and_query`,
:func:`body_schema`). Schemas come from pydantic in one batch, so a model used both as input
and as output with different shapes gets two names (``Model-Input``, ``Model-Output``) instead
of one wrong one; every definition lands in ``components/schemas``.

Error responses are listed by what the front-end and the runner can produce for a method:
any call may fail authentication (bad credentials are refused even on public methods),
validation (unknown query parameters too), rate limits, or the server; non-public methods may
be refused (403, also by API-key scopes); methods with a body may be malformed (400) or too
large (413); methods naming an object in their path, and writes, may meet a missing object
(404); writes may conflict (409).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import orjson
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import mailroom
from mailroom.errors import ERRORS, MailroomError
from mailroom.frontends.http_body import JSON
from mailroom.frontends.rest.app import API_PREFIX, path_and_query
from mailroom.frontends.rest.conditional import PARAM as IF_VERSION
from mailroom.frontends.rest.docs import docs_routes
from mailroom.frontends.rest.problems import PROBLEM, problem_type
from mailroom.registry import Download, MethodSpec, Registry

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

OPENAPI_VERSION = "3.1.0"
OPENAPI_PATH = API_PREFIX + "/openapi.json"
SCHEMA_REF = "#/components/schemas/{model}"
PROBLEM_SCHEMA = "Problem"
FIELD_ERROR_SCHEMA = "ProblemFieldError"
SECURED: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"basicAuth": []}]
#: What a ``Download`` is documented as unless its annotation names a type.
DOWNLOAD_MEDIA_TYPE = Download(b"").content_type
#: Protocols that serve the registry besides REST, as the descriptions name them.
OTHER_PROTOCOLS = {"jsonrpc": "JSON-RPC", "xmlrpc": "XML-RPC"}

DESCRIPTION = """\
mailroom's REST API: domains, users, aliases, API keys, DKIM and DNS, and the mail client API.

Every operation is a method of mailroom's registry; its `operationId` is the method name, and
the same method answers over JSON-RPC and XML-RPC with the same parameters and errors.

Authenticate with `Authorization: Bearer mr_...` (an API key) or HTTP Basic (a user's address
and password). Errors are RFC 9457 problem details (`application/problem+json`) whose `code`
is stable: switch on it, not on the message. Lists take `offset` and `limit` and answer
`{items, total, offset, limit}` in a stable order.
"""


def openapi_document(
    registry: Registry, *, protocol: str = "rest", server_url: str | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the methods ``protocol`` can reach over HTTP."""
    specs = [s for s in registry.visible(protocol) if s.http is not None]
    schemas = _Schemas(specs)
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        assert spec.http is not None
        item = paths.setdefault(spec.http.path, {})
        verb = spec.http.verb.lower()
        if verb in item:
            raise ValueError(
                f"{spec.name} and {item[verb]['operationId']} share {spec.http.verb} {spec.http.path}"
            )
        item[verb] = _operation(registry, spec, schemas)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "mailroom",
            "version": mailroom.__version__,
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": server_url or API_PREFIX}],
        "security": SECURED,
        "tags": _tags(registry, specs),
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {},
            "responses": _error_responses(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "mr_<id>_<secret>",
                    "description": "An API key (`mr_...`), or a session token.",
                },
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A user's full address and password.",
                },
            },
        },
    }
    document["components"]["schemas"] = schemas.published(document)
    return document


# -- schemas ----------------------------------------------------------------------------------


class _Schemas:
    """Every params model (validation) and result (serialization) of ``specs``, in one batch."""

    def __init__(self, specs: list[MethodSpec]) -> None:
        inputs: list[tuple[tuple[str, str], Any, TypeAdapter[Any]]] = []
        for spec in specs:
            inputs.append(((spec.name, "params"), "validation", TypeAdapter(spec.params_model)))
            if _result_kind(spec) == "json":
                inputs.append(((spec.name, "result"), "serialization", spec.return_adapter))
        generated, definitions = TypeAdapter.json_schemas(
            inputs, ref_template=SCHEMA_REF, schema_generator=_SchemaGenerator
        )
        self._generated: dict[tuple[str, str], dict[str, Any]] = {key: v for (key, _), v in generated.items()}
        self.definitions: dict[str, Any] = definitions.get("$defs", {})
        for name in (PROBLEM_SCHEMA, FIELD_ERROR_SCHEMA):
            if name in self.definitions:
                raise ValueError(f"a model is named {name}, which the OpenAPI document keeps for errors")

    def params(self, spec: MethodSpec) -> tuple[dict[str, Any], set[str]]:
        """The params model's properties and required names."""
        model = self._resolve(self._generated[(spec.name, "params")])
        return model.get("properties", {}), set(model.get("required", ()))

    def result(self, spec: MethodSpec) -> dict[str, Any]:
        return copy.deepcopy(self._generated[(spec.name, "result")])

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return copy.deepcopy(self.definitions[ref.rsplit("/", 1)[1]])
        return copy.deepcopy(schema)

    def published(self, document: dict[str, Any]) -> dict[str, Any]:
        """The definitions ``document`` references (params models are only unpacked), plus errors."""
        pool = {
            **self.definitions,
            PROBLEM_SCHEMA: _problem_schema(),
            FIELD_ERROR_SCHEMA: _field_error_schema(),
        }
        keep: set[str] = set()
        pending = list(_refs(document))
        while pending:
            name = pending.pop()
            if name in keep or name not in pool:
                continue
            keep.add(name)
            pending.extend(_refs(pool[name]))
        return {name: pool[name] for name in sorted(keep)}


class _SchemaGenerator(GenerateJsonSchema):
    """pydantic's generator, minus ``default: null`` on fields whose schema refuses null.

    ``X | SkipJsonSchema[None] = None`` means "absent: leave unchanged"; there is no default to
    publish, and a ``null`` default that the schema itself rejects makes the document invalid.
    """

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None and not _allows_null(json_schema):
            del json_schema["default"]
        return json_schema


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    branches = [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
    return any(isinstance(b, dict) and _allows_null(b) for b in branches)


def _refs(node: Any) -> Iterator[str]:
    """Names of the component schemas referenced anywhere under ``node``."""
    prefix = SCHEMA_REF.split("{", 1)[0]
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(prefix):
                yield value[len(prefix) :]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _result_kind(spec: MethodSpec) -> str:
    """``none``, ``download`` or ``json``."""
    if spec.returns is None or spec.returns is type(None):
        return "none"
    if _download_media_type(spec.returns) is not None:
        return "download"
    return "json"


def _download_media_type(annotation: Any) -> str | None:
    """``Download``'s media type: ``Annotated[Download, "message/rfc822"]`` names it."""
    if annotation is Download:
        return DOWNLOAD_MEDIA_TYPE
    if get_origin(annotation) is Annotated:
        base, *metadata = get_args(annotation)
        if base is Download:
            named = [m for m in metadata if isinstance(m, str) and "/" in m]
            return named[0] if named else DOWNLOAD_MEDIA_TYPE
    return None


# -- operations -------------------------------------------------------------------------------


def _operation(registry: Registry, spec: MethodSpec, schemas: _Schemas) -> dict[str, Any]:
    assert spec.http is not None
    properties, required = schemas.params(spec)
    path_names, query_names, body_names = path_and_query(spec)
    # Parameters are named on the wire by their alias (``from`` for a ``from_`` parameter).
    fields = spec.params_model.model_fields
    query_names = [fields[n].alias or n for n in query_names]
    body_names = [fields[n].alias or n for n in body_names]
    examples = [_example(e) for e in spec.examples]
    operation: dict[str, Any] = {
        "operationId": spec.name,
        "summary": _markdown(spec.summary),
        "description": _description(registry, spec),
        "tags": _operation_tags(spec),
        "x-access": spec.access.describe(),
    }
    if spec.since:
        operation["x-since"] = spec.since
    if spec.deprecated:
        operation["deprecated"] = True
        operation["x-deprecated"] = spec.deprecated
    operation["security"] = [] if spec.access.public else SECURED
    parameters = [_parameter(n, "path", properties[n], True, examples) for n in path_names]
    parameters += [_parameter(n, "query", properties[n], n in required, examples) for n in query_names]
    if IF_VERSION in spec.param_names:  # frontends/rest/conditional.py
        parameters.append(IF_MATCH_PARAMETER)
    if parameters:
        operation["parameters"] = parameters
    if body_names:
        operation["requestBody"] = _request_body(spec, properties, required, body_names, examples)
    operation["responses"] = {**_success(spec, schemas, examples), **_errors(spec, bool(body_names))}
    return operation


def _description(registry: Registry, spec: MethodSpec) -> str:
    parts = []
    rest = spec.doc.strip().partition("\n")[2].strip()
    if rest:
        parts.append(_markdown(rest))
    if spec.deprecated:
        parts.append(f"**Deprecated:** {spec.deprecated}")
    if spec.since:
        parts.append(f"Since: {spec.since}")
    parts.append(f"Access: {spec.access.describe()}")
    others = [label for proto, label in OTHER_PROTOCOLS.items() if registry.remote_allowed(spec, proto)]
    also = f" (also over {' and '.join(others)})" if others else ""
    parts.append(f"Method: `{spec.name}`{also}")
    return "\n\n".join(parts)


def _markdown(text: str) -> str:
    """Docstrings write literals the reStructuredText way (````x````); OpenAPI text is Markdown."""
    return text.replace("``", "`")


def _operation_tags(spec: MethodSpec) -> list[str]:
    tags = [spec.api]
    parts = spec.name.split(".")
    if len(parts) >= 3:
        tags.append(".".join(parts[:-1]))
    tags.extend(t for t in spec.tags if t not in tags)
    return tags


def _tags(registry: Registry, specs: list[MethodSpec]) -> list[dict[str, Any]]:
    used = {t for s in specs for t in _operation_tags(s)}
    out: list[dict[str, Any]] = []
    for api in registry.apis():
        if api.name in used:
            text = f"{api.title}: {api.description}" if api.description else api.title
            out.append({"name": api.name, "description": text})
    names = {t["name"] for t in out}
    out.extend({"name": t} for t in sorted(used - names))
    return out


def _example(raw: dict[str, Any]) -> dict[str, Any]:
    """``spec.examples`` items: ``{"summary", "params", "result"}`` or a bare params mapping."""
    if "params" in raw and isinstance(raw["params"], dict):
        return raw
    return {"params": raw}


def _examples_for(examples: list[dict[str, Any]], pick: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, example in enumerate(examples, 1):
        value = pick(example)
        if value is not _MISSING:
            entry: dict[str, Any] = {"value": value}
            if example.get("summary"):
                entry["summary"] = example["summary"]
            out[f"example{i}"] = entry
    return out


_MISSING = object()


#: ``If-Match``, which REST maps onto a method's ``if_version`` (frontends/rest/conditional.py).
IF_MATCH_PARAMETER: dict[str, Any] = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'The ETag the email was read with ("3"; W/"3" counts as "3"; * for no check): '
    "the same as if_version. Stale: 412 precondition_failed.",
    "schema": {"type": "string", "pattern": r'^(\*|(W/)?"[0-9]{1,18}")$'},
}


def _parameter(
    name: str, where: str, schema: dict[str, Any], required: bool, examples: list[dict[str, Any]]
) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required}
    description = schema.pop("description", None)
    if description:
        parameter["description"] = description
    schema.pop("title", None)
    parameter["schema"] = schema
    found = _examples_for(examples, lambda e: e["params"].get(name, _MISSING))
    if found:
        parameter["examples"] = found
    return parameter


def _request_body(
    spec: MethodSpec,
    properties: dict[str, Any],
    required: set[str],
    body_names: list[str],
    examples: list[dict[str, Any]],
) -> dict[str, Any]:
    body: dict[str, Any]
    if spec.body_param is not None:
        name = spec.body_param
        schema = copy.deepcopy(properties[name])
        schema.pop("title", None)
        body = {"required": name in required}
        if schema.get("description"):
            body["description"] = schema.pop("description")
        found = _examples_for(examples, lambda e: e["params"].get(name, _MISSING))
    else:
        schema = {
            "type": "object",
            "properties": {n: properties[n] for n in body_names},
            "additionalProperties": False,
        }
        wanted = [n for n in body_names if n in required]
        if wanted:
            schema["required"] = wanted
        body = {"required": bool(wanted)}

        def pick(example: dict[str, Any]) -> Any:
            values = {n: example["params"][n] for n in body_names if n in example["params"]}
            return values or _MISSING

        found = _examples_for(examples, pick)
    media: dict[str, Any] = {"schema": schema}
    if found:
        media["examples"] = found
    body["content"] = {JSON: media}
    if spec.upload_param is not None:
        # The file itself, as a form part or as the whole body (frontends/rest/app.py read_upload).
        file = {"type": "string", "format": "binary"}
        body["content"] = {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": file}, "required": ["file"]}
            },
            "application/octet-stream": {"schema": file},
            JSON: media,
        }
        body["description"] = (
            "One file: a multipart/form-data part, or the raw body (any Content-Type; its name in "
            "Content-Disposition or a `filename` query parameter), or JSON with the content base64."
        )
    return body


def _success(spec: MethodSpec, schemas: _Schemas, examples: list[dict[str, Any]]) -> dict[str, Any]:
    assert spec.http is not None
    status = spec.http.status
    response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if spec.deprecated:
        response["headers"] = {
            "Deprecation": {
                "description": "Present: this method is deprecated.",
                "schema": {"type": "string"},
            }
        }
    kind = _result_kind(spec)
    if status == 204:
        return {"204": response}
    if kind == "download":
        media = _download_media_type(spec.returns) or DOWNLOAD_MEDIA_TYPE
        response["content"] = {media: {"schema": {"type": "string", "format": "binary"}}}
        response.setdefault("headers", {})["Content-Disposition"] = {
            "description": "The file name, when the content has one.",
            "schema": {"type": "string"},
        }
        return {str(status): response}
    media_type: dict[str, Any] = {"schema": {"type": "null"} if kind == "none" else schemas.result(spec)}
    found = _examples_for(examples, lambda e: e.get("result", _MISSING))
    if found:
        media_type["examples"] = found
    response["content"] = {JSON: media_type}
    out = {str(status): response}
    for other in spec.http.also:
        out[str(other)] = {**response, "description": HTTPStatus(other).phrase}
    return out


# -- errors -----------------------------------------------------------------------------------


def _response_name(status: int) -> str:
    return "".join(word.capitalize() for word in HTTPStatus(status).phrase.replace("-", " ").split())


def _error_statuses() -> dict[int, list[str]]:
    statuses: dict[int, list[str]] = {}
    for error in ERRORS:
        statuses.setdefault(error.status, []).append(error.code)
    return dict(sorted(statuses.items()))


def _error_responses() -> dict[str, Any]:
    """One shared response per error status, naming the codes it carries."""
    out: dict[str, Any] = {}
    for status, codes in _error_statuses().items():
        described = "; ".join(f"`{e.code}`: {_first_line(e)}" for e in ERRORS if e.code in codes)
        response: dict[str, Any] = {
            "description": f"{HTTPStatus(status).phrase} ({described})",
            "content": {PROBLEM: {"schema": {"$ref": SCHEMA_REF.format(model=PROBLEM_SCHEMA)}}},
        }
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if status == 429:
            response["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
        out[_response_name(status)] = response
    return out


def _first_line(error: type[MailroomError]) -> str:
    """The class's own docstring (not an inherited one), else its title."""
    own = error.__dict__.get("__doc__") or ""
    return own.strip().split("\n", 1)[0].rstrip(".") or error.title


def _errors(spec: MethodSpec, has_body: bool) -> dict[str, Any]:
    assert spec.http is not None
    wanted = {401, 422, 429, 500, 503}
    if has_body:
        wanted |= {400, 413}
    if not spec.access.public:
        wanted.add(403)
    if spec.http.path_params or spec.mutating:
        wanted.add(404)
    if spec.mutating:
        wanted.add(409)
    known = _error_statuses()
    return {
        str(status): {"$ref": f"#/components/responses/{_response_name(status)}"}
        for status in sorted(wanted)
        if status in known
    }


def _problem_schema() -> dict[str, Any]:
    codes = [e.code for e in ERRORS]
    return {
        "type": "object",
        "title": "Problem",
        "description": "An RFC 9457 problem detail. Switch on `code`; `detail` is for people.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri",
                "description": "`urn:mailroom:problem:<code>`.",
                "examples": [problem_type("not_found")],
            },
            "title": {"type": "string", "description": "A short summary of the kind of problem."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What went wrong with this request."},
            "code": {
                "type": "string",
                "description": "The stable error code: " + ", ".join(f"`{c}`" for c in codes) + ".",
                "examples": codes,
            },
            "instance": {"type": "string", "description": "The request's path."},
            "errors": {
                "type": "array",
                "description": "With `invalid_params`: one entry per bad field.",
                "items": {"$ref": SCHEMA_REF.format(model=FIELD_ERROR_SCHEMA)},
            },
            "data": {
                "type": "object",
                "description": "Structured, non-secret details (the conflicting name, a limit, ...).",
                "additionalProperties": True,
            },
        },
    }


def _field_error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "ProblemFieldError",
        "required": ["loc", "message", "type"],
        "properties": {
            "loc": {"type": "string", "description": "Where: a dotted path such as `domain.name`."},
            "message": {"type": "string"},
            "type": {
                "type": "string",
                "description": "A machine-readable kind (`missing`, `extra_forbidden`...).",
            },
        },
    }


# -- routes -----------------------------------------------------------------------------------


class _CachedDocument:
    """The document, built on first use and then served as the same bytes."""

    def __init__(self, registry: Registry, server_url: str | None) -> None:
        self._registry = registry
        self._server_url = server_url
        self._body: bytes | None = None
        self._etag = ""

    def get(self) -> tuple[bytes, str]:
        if self._body is None:
            self._body = orjson.dumps(openapi_document(self._registry, server_url=self._server_url))
            self._etag = '"' + hashlib.sha256(self._body).hexdigest()[:32] + '"'
        return self._body, self._etag


def openapi_routes(mailroom: Mailroom) -> list[BaseRoute]:
    """``GET /api/v1/openapi.json`` and the human docs at ``/api/docs``.

    The document's server is ``public_url`` + ``/api/v1`` when that setting is given, else the
    relative ``/api/v1`` (the host the document was fetched from).
    """
    public_url = mailroom.settings.public_url
    cached = _CachedDocument(mailroom.registry, public_url.rstrip("/") + API_PREFIX if public_url else None)

    async def openapi_json(request: Request) -> Response:
        body, etag = cached.get()
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=JSON, headers=headers)

    return [Route(OPENAPI_PATH, openapi_json, methods=["GET"]), *docs_routes(OPENAPI_PATH)]
