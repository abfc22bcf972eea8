"""The OpenRPC 1.3 document of the methods JSON-RPC can reach, built from the registry.

Parameter and result schemas come from the same pydantic models the runner validates
with, generated in one pass so that shared models appear once under
``components/schemas``. Errors are listed once under ``components/errors`` (keyed by
stable code) and referenced by each method. ``since`` and ``deprecated`` show as the
method's ``deprecated`` flag, ``x-since``/``x-deprecated`` and a line of its description.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from mailroom.errors import ERRORS
from mailroom.frontends.rpc.errors import RPC_CODES, SERVER_ERROR, STANDARD_MESSAGES
from mailroom.registry import Download, MethodSpec, Registry

OPENRPC_VERSION = "1.3.2"
REF_TEMPLATE = "#/components/schemas/{model}"

#: What a ``Download`` result looks like over JSON-RPC.
DOWNLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Download",
    "properties": {
        "content_base64": {"type": "string", "contentEncoding": "base64"},
        "content_type": {"type": "string"},
        "filename": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["content_base64", "content_type", "filename"],
}

#: Errors any method may answer with; public methods cannot fail authentication.
_EVERY_METHOD = ("invalid_params", "rate_limited", "unavailable", "internal_error")
_AUTHENTICATED = ("unauthenticated", "forbidden")
_SERVICE = (
    "bad_request",
    "not_found",
    "conflict",
    "precondition_failed",
    "limit_exceeded",
    "payload_too_large",
)


def lifecycle_note(spec: MethodSpec) -> str:
    """``Since 0.2. Deprecated: 2026-06-30.``: shown in descriptions and methodHelp."""
    parts = []
    if spec.since:
        parts.append(f"Since {spec.since}.")
    if spec.deprecated:
        parts.append(f"Deprecated: {spec.deprecated}.")
    return " ".join(parts)


def _returns_nothing(spec: MethodSpec) -> bool:
    return spec.returns is None or spec.returns is type(None)


def _returns_download(spec: MethodSpec) -> bool:
    return isinstance(spec.returns, type) and issubclass(spec.returns, Download)


def error_components() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for cls in ERRORS:
        number = RPC_CODES.get(cls.code, SERVER_ERROR)
        out[cls.code] = {
            "code": number,
            "message": STANDARD_MESSAGES.get(number, cls.title),
            "data": {"code": cls.code},
        }
    return out


def build_document(
    registry: Registry, *, protocol: str = "jsonrpc", title: str, version: str
) -> dict[str, Any]:
    """The document without ``servers`` (added per request: they depend on the URL used)."""
    specs = registry.visible(protocol)
    inputs: list[tuple[tuple[str, str], Any, TypeAdapter[Any]]] = []
    for spec in specs:
        inputs.append((("params", spec.name), "validation", TypeAdapter(spec.params_model)))
        if not _returns_nothing(spec) and not _returns_download(spec):
            inputs.append((("result", spec.name), "serialization", spec.return_adapter))
    generated, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    params_models: set[str] = set()

    def params_of(spec: MethodSpec) -> list[dict[str, Any]]:
        schema = generated[(("params", spec.name), "validation")]
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rpartition("/")[2]
            params_models.add(name)
            schema = schemas[name]
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out = []
        for name in spec.param_names:
            prop = dict(properties.get(name, {}))
            descriptor: dict[str, Any] = {"name": name, "required": name in required, "schema": prop}
            if isinstance(prop.get("description"), str):
                descriptor["description"] = prop["description"]
            out.append(descriptor)
        return out

    methods = []
    for spec in specs:
        if _returns_nothing(spec):
            result_schema: dict[str, Any] = {"type": "null"}
        elif _returns_download(spec):
            result_schema = DOWNLOAD_SCHEMA
        else:
            result_schema = generated[(("result", spec.name), "serialization")]
        description = spec.doc or spec.summary
        note = lifecycle_note(spec)
        if note:
            description = f"{description}\n\n{note}"
        errors = list(_EVERY_METHOD + _SERVICE)
        if not spec.access.public:
            errors[1:1] = _AUTHENTICATED
        method: dict[str, Any] = {
            "name": spec.name,
            "summary": spec.summary,
            "description": description,
            "tags": [{"name": spec.api}],
            "paramStructure": "either",
            "params": params_of(spec),
            "result": {"name": "result", "schema": result_schema},
            "errors": [{"$ref": f"#/components/errors/{code}"} for code in errors],
            "x-access": spec.access.describe(),
        }
        if spec.since:
            method["x-since"] = spec.since
        if spec.deprecated:
            method["deprecated"] = True
            method["x-deprecated"] = spec.deprecated
        methods.append(method)
    for name in params_models:
        schemas.pop(name, None)
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "Every method of the mailroom registry that JSON-RPC may reach. "
            "Parameters may be given by name (an object) or by position (an array, in the order listed).",
        },
        "methods": methods,
        "components": {"schemas": schemas, "errors": error_components()},
    }
