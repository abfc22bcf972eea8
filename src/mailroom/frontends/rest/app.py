"""The REST front-end: routes come from the registry's HTTP bindings; none is written by hand.

A request is unpacked (path, query, JSON body, credentials) into a registry call, handed to
the runner, and the result or the domain error is packed as JSON or problem+json.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, get_args, get_origin
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailroom.errors import BadRequest, MailroomError, PayloadTooLarge
from mailroom.frontends.http_auth import authenticate_headers
from mailroom.frontends.http_body import JSON, parse_json_body, read_body
from mailroom.frontends.rest.conditional import PARAM as IF_VERSION
from mailroom.frontends.rest.conditional import apply_if_match
from mailroom.frontends.rest.problems import problem_response, unexpected_error_response
from mailroom.frontends.rest.records import RecordJSON
from mailroom.frontends.rest.request import ApiRequest
from mailroom.frontends.rest.router import RegistryRouter
from mailroom.registry import CallInfo, Download, MethodSpec, Upload

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

API_PREFIX = "/api/v1"

Endpoint = Callable[[ApiRequest], Awaitable["Response | Reply"]]


_JSON_TYPE = (b"content-type", JSON.encode())


class Reply:
    """A response sent straight as two ASGI messages: what a registry call answers.

    Starlette's ``Response`` builds a header object and a ``MutableHeaders`` view per
    response; an API reply needs a status, a few header pairs and bytes.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @classmethod
    def json(cls, content: Any, status: int, extra: dict[str, str]) -> Reply:
        body = orjson.dumps(content)
        headers = [_JSON_TYPE, (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        return cls(status, body, headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == JSON or media.endswith("+json")


#: What a multipart body may carry beyond the file itself (boundaries, part headers).
MULTIPART_OVERHEAD = 64 * 1024


async def read_upload(request: ApiRequest, limit: int) -> Upload:
    """The file of an upload request: the one file part of a ``multipart/form-data`` body,
    or the raw body (``Content-Type``; name from ``Content-Disposition`` or ``?filename=``).
    More than ``limit`` bytes of content is a 413, refused before it is all read."""
    content_type = request.headers.get("content-type") or "application/octet-stream"
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        raw = await read_body(request, limit + MULTIPART_OVERHEAD)
        return await _multipart_upload(request, raw, limit)
    if media == "application/x-www-form-urlencoded":
        raise BadRequest("a form without a file: send the file as multipart/form-data or as the raw body")
    content = await read_body(request, limit)
    filename = _disposition_filename(request.headers.get("content-disposition"))
    filename = filename or request.query_params.get("filename")
    return Upload.model_construct(content=content, filename=filename or None, content_type=media)


async def _multipart_upload(request: ApiRequest, raw: bytes, limit: int) -> Upload:
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream() -> AsyncGenerator[bytes, None]:
        yield raw

    parser = MultiPartParser(Headers(scope=request.scope), stream(), max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"malformed multipart body: {exc.message}") from None
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if len(files) != 1:
            raise BadRequest("send exactly one file part in the multipart body")
        upload = files[0]
        content = await upload.read()
        if len(content) > limit:
            raise PayloadTooLarge(f"the file is larger than {limit} bytes", limit=limit)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        filename = upload.filename or fields.get("filename") or request.query_params.get("filename")
        media = (upload.content_type or "application/octet-stream").split(";", 1)[0].strip().lower()
        return Upload.model_construct(content=content, filename=filename or None, content_type=media)
    finally:
        await form.close()


def _disposition_filename(header: str | None) -> str | None:
    """``filename*=UTF-8''...`` or ``filename="..."`` of a Content-Disposition header."""
    if not header:
        return None
    from email.message import Message

    message = Message()
    message["content-disposition"] = header
    name = message.get_filename()
    return name.strip() if name else None


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_list(a) for a in get_args(annotation) if a is not type(None))


def list_params(spec: MethodSpec) -> frozenset[str]:
    """The parameters of a method that take a list (from a query string: repeats, commas)."""
    return frozenset(n for n, f in spec.params_model.model_fields.items() if _is_list(f.annotation))


def query_params(lists: frozenset[str], query_string: bytes) -> dict[str, Any]:
    """Query parameters; those named in ``lists`` accept repeats and comma-separated values,
    any other repeated one keeps its last value."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in lists:
            out.setdefault(key, []).extend(x for x in value.split(",") if x)
        else:
            out[key] = value
    return out


def deprecation_header(deprecated: str) -> str:
    """RFC 9745 ``Deprecation``: ``@<unix time>`` when ``deprecated`` starts with an ISO date
    (the day it takes effect), else ``true`` (the earlier drafts' form: deprecated, date unknown)."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(deprecated.split()[0].rstrip(".,;"))
    except (ValueError, IndexError):
        return "true"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return f"@{int(when.timestamp())}"


def make_endpoint(mailroom: Mailroom, spec: MethodSpec, records: RecordJSON | None = None) -> Endpoint:
    assert spec.http is not None
    binding = spec.http
    body_param = spec.body_param
    takes_body = binding.verb in ("POST", "PUT", "PATCH")
    limit = mailroom.settings.max_body_bytes
    runner = mailroom.runner
    deprecation = {"Deprecation": deprecation_header(spec.deprecated)} if spec.deprecated else {}

    upload_param = spec.upload_param if takes_body else None
    lists = list_params(spec)
    conditional = IF_VERSION in spec.param_names

    async def endpoint(request: ApiRequest) -> Response | Reply:
        principal = await authenticate_headers(mailroom, request.headers, request.client_ip)
        query = request.scope.get("query_string")
        params: dict[str, Any] = query_params(lists, query) if query else {}
        if upload_param is not None and not _is_json(request.headers.get("content-type")):
            # A file: multipart or the raw body (JSON still works: the RPC form, base64).
            if "filename" not in spec.param_names:
                params.pop("filename", None)  # the file's name, read by read_upload
            params[upload_param] = await read_upload(request, mailroom.settings.upload_max_bytes)
        elif takes_body:
            body = parse_json_body(await read_body(request, limit), request.headers.get("content-type"))
            if body_param is not None:
                params[body_param] = body if body is not None else {}
            elif body is not None:
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object")
                params.update(body)
        params.update(request.path_params)
        if conditional:
            apply_if_match(params, request.headers.get("if-match"))
        info = CallInfo(
            protocol="rest",
            client_ip=principal.client_ip or request.client_ip,
            headers=request.headers,
            request_id=request.headers.get("x-request-id"),
            serialise=records,
        )
        result = await runner.invoke(spec.name, params, principal, info)
        headers = {**deprecation, **info.response_headers}
        status = info.status or binding.status
        if isinstance(result, Download):
            if result.filename:
                headers["Content-Disposition"] = _disposition(result.filename)
            return Response(
                result.content, status_code=status, media_type=result.content_type, headers=headers
            )
        if status == 204 and result is None:
            return Response(status_code=204, headers=headers)
        return Reply.json(result, status, headers)

    endpoint.__name__ = spec.name
    return endpoint


def _disposition(filename: str) -> str:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def registry_router(mailroom: Mailroom) -> RegistryRouter:
    """Every method with an HTTP binding that REST may reach, under ``/api/v1``."""
    router = RegistryRouter(API_PREFIX)
    records = RecordJSON(mailroom.settings.render_cache_entries)
    for spec in mailroom.registry.visible("rest"):
        if spec.http is not None:
            router.add(spec.http.verb, spec.http.path, make_endpoint(mailroom, spec, records))
    return router


def health_routes(mailroom: Mailroom) -> list[BaseRoute]:
    """``GET /health`` outside the versioned prefix, for load balancers."""
    spec = mailroom.registry.get("system.health.get")
    if spec is None or not mailroom.registry.remote_allowed(spec, "rest"):
        return []
    endpoint = make_endpoint(mailroom, spec)

    async def health(request: Request) -> Any:
        return await endpoint(ApiRequest(request.scope, request.receive))

    return [Route("/health", health, methods=["GET", "HEAD"])]


async def mailroom_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MailroomError)
    return problem_response(exc, instance=request.url.path)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    return unexpected_error_response(exc, instance=request.url.path)


def body_schema(spec: MethodSpec) -> type[BaseModel] | None:
    """The model of a method's REST body (for OpenAPI)."""
    if spec.body_param is None:
        return None
    annotation = spec.params_model.model_fields[spec.body_param].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def path_and_query(spec: MethodSpec) -> tuple[list[str], list[str], list[str]]:
    """(path params, query params, body fields) of a method's REST binding."""
    assert spec.http is not None
    path = list(spec.http.path_params)
    rest = [n for n in spec.param_names if n not in path]
    if spec.http.verb in ("GET", "DELETE"):
        return path, rest, []
    if spec.body_param is not None:
        return path, [], [spec.body_param]
    return path, [], rest
