"""Method specifications: one per registry method, built once at declaration time.

A method is an ``async def`` whose first parameter is the call :class:`Context` and whose
other parameters and return value are typed. From the signature we build, once:

* a pydantic model of the parameters (``extra="forbid"``), used by the runner to validate
  every call from every protocol with the same messages;
* a ``TypeAdapter`` for the return value, used to serialise results and to publish schemas.
"""

from __future__ import annotations

import base64
import inspect
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import Base64Bytes, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, create_model

from mailroom.registry._access import Access

#: ``<api>.<object>.<verb>`` for mailroom's own methods; a bare name (``subtract``) is allowed
#: for interoperability methods whose names are fixed by other specifications.
METHOD_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)*$")
PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")

Implementation = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class HttpBinding:
    """Where a method lives in the REST API. ``status`` is the success status; ``also``
    lists other success statuses the method may choose (``ctx.call.status``), such as 202
    for a sign-up that joins the waitlist instead of creating the account (201)."""

    verb: str
    path: str
    status: int = 200
    also: tuple[int, ...] = ()

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(PATH_PARAM.findall(self.path))


def GET(path: str, status: int = 200) -> HttpBinding:
    return HttpBinding("GET", path, status)


def POST(path: str, status: int = 200, also: tuple[int, ...] = ()) -> HttpBinding:
    return HttpBinding("POST", path, status, also)


def PUT(path: str, status: int = 200) -> HttpBinding:
    return HttpBinding("PUT", path, status)


def PATCH(path: str, status: int = 200) -> HttpBinding:
    return HttpBinding("PATCH", path, status)


def DELETE(path: str, status: int = 204) -> HttpBinding:
    return HttpBinding("DELETE", path, status)


@dataclass(frozen=True, slots=True)
class Download:
    """A non-JSON result (a raw message, an attachment): bytes with their media type.

    REST sends the bytes as they are; the RPC protocols send them base64-encoded with the
    type and file name beside them.
    """

    content: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None


def _raw_as_base64(value: Any) -> Any:
    """Bytes are the content itself (XML-RPC ``<base64>``, in-process callers); text is base64."""
    return base64.b64encode(value) if isinstance(value, bytes | bytearray) else value


class Upload(BaseModel):
    """A file a method takes (an attachment upload): bytes with a media type and a name.

    REST fills it from a ``multipart/form-data`` part or from the raw body (the type from
    ``Content-Type``, the name from ``Content-Disposition`` or a ``filename`` query
    parameter); the RPC protocols send ``{"content_base64", "filename", "content_type"}``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    content: Annotated[Base64Bytes, BeforeValidator(_raw_as_base64)] = Field(
        alias="content_base64", description="The bytes, base64-encoded."
    )
    filename: str | None = Field(default=None, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """Everything the runner and the front-ends know about one method."""

    name: str
    api: str
    func: Implementation
    access: Access
    doc: str
    http: HttpBinding | None
    cost: int
    params_model: type[BaseModel]
    param_names: tuple[str, ...]
    required: frozenset[str]
    returns: Any
    return_adapter: TypeAdapter[Any]
    provider: str = "builtin"
    since: str | None = None
    deprecated: str | None = None
    mutating: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)
    examples: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        return self.doc.strip().split("\n", 1)[0] if self.doc else self.name

    @property
    def upload_param(self) -> str | None:
        """The parameter typed :class:`Upload`, which REST fills from a file upload."""
        for name in self.param_names:
            if self.params_model.model_fields[name].annotation is Upload:
                return name
        return None

    @property
    def body_param(self) -> str | None:
        """The parameter that *is* the REST body: the single model-typed non-path parameter."""
        path = set(self.http.path_params) if self.http else set()
        rest = [n for n in self.param_names if n not in path]
        if len(rest) == 1:
            annotation = self.params_model.model_fields[rest[0]].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                return rest[0]
        return None

    def with_implementation(self, func: Implementation, provider: str) -> MethodSpec:
        """The same contract served by another provider (the per-method override)."""
        return replace(self, func=func, provider=provider)


def build_spec(
    name: str,
    func: Implementation,
    *,
    api: str,
    access: Access,
    http: HttpBinding | None = None,
    cost: int = 1,
    provider: str = "builtin",
    since: str | None = None,
    deprecated: str | None = None,
    mutating: bool | None = None,
    examples: tuple[dict[str, Any], ...] = (),
) -> MethodSpec:
    """Inspect ``func`` once and build its spec; errors here are programming errors."""
    if not METHOD_NAME.match(name):
        raise ValueError(f"method name {name!r} is not <api>.<object>.<verb>")
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{name}: implementation must be 'async def'")
    hints = typing.get_type_hints(func, include_extras=True)
    signature = inspect.signature(func)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].name != "ctx":
        raise TypeError(f"{name}: first parameter must be 'ctx: Context'")
    fields: dict[str, Any] = {}
    required: set[str] = set()
    for param in parameters[1:]:
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise TypeError(f"{name}: parameter {param.name} must be a plain named parameter")
        if param.name not in hints:
            raise TypeError(f"{name}: parameter {param.name} needs a type hint")
        if param.default is inspect.Parameter.empty:
            fields[param.name] = (hints[param.name], ...)
            required.add(param.name)
        else:
            fields[param.name] = (hints[param.name], param.default)
    model_name = "".join(part.capitalize() for part in re.split(r"[._]", name)) + "Params"
    params_model = create_model(model_name, __base__=_Params, **fields)
    if http is not None:
        missing = set(http.path_params) - set(fields)
        if missing:
            raise TypeError(f"{name}: path parameters {sorted(missing)} are not method parameters")
    returns = hints.get("return", type(None))
    if mutating is None:
        mutating = http is not None and http.verb != "GET"
    return MethodSpec(
        name=name,
        api=api,
        func=func,
        access=access,
        doc=inspect.cleandoc(func.__doc__ or ""),
        http=http,
        cost=cost,
        params_model=params_model,
        param_names=tuple(fields),
        required=frozenset(required),
        returns=returns,
        return_adapter=TypeAdapter(returns),
        provider=provider,
        since=since,
        deprecated=deprecated,
        mutating=mutating,
        examples=examples,
    )
