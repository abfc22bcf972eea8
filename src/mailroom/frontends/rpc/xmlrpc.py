"""XML-RPC over HTTP: ``POST /rpc/xml``.

Parameters: XML-RPC has positional parameters only. They map onto the method's parameters
in declaration order; a call whose only parameter is a struct whose member names are all
parameter names of the method is a call *by name* (how named parameters travel over
XML-RPC). So ``admin.domains.get("example.org")`` and ``admin.domains.get({"name":
"example.org"})`` are the same call, and ``admin.domains.create({"name": "example.org"})``
passes the struct as the ``domain`` parameter.

Faults are ``{faultCode, faultString}`` with the interoperability numbers (shared with
JSON-RPC, see :mod:`mailroom.frontends.rpc.errors`); ``faultString`` starts with the
stable code. Every answer, fault or not, is HTTP 200, as clients expect.

Introspection (``system.listMethods``, ``system.methodHelp``, ``system.methodSignature``,
``system.multicall``, ``system.getCapabilities``) belongs to the protocol and is answered
here, not by the registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mailroom.errors import FieldError, InternalError, InvalidParams, MailroomError, MethodNotFound
from mailroom.frontends.rpc import _xmlcodec as codec
from mailroom.frontends.rpc.detect import Credentials, RpcEndpoint, RpcProtocol
from mailroom.frontends.rpc.errors import INVALID_REQUEST, ProtocolError, unexpected, xmlrpc_fault
from mailroom.frontends.rpc.openrpc import lifecycle_note
from mailroom.registry import Download, MethodSpec

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

MEDIA_TYPES = ("text/xml", "application/xml")
XML = "text/xml"
WWW_AUTHENTICATE = 'Basic realm="mailroom", Bearer realm="mailroom"'

CAPABILITIES: dict[str, dict[str, Any]] = {
    "xmlrpc": {"specUrl": "http://www.xmlrpc.com/spec", "specVersion": 1},
    "introspection": {"specUrl": "http://xmlrpc-c.sourceforge.net/introspection.html", "specVersion": 1},
    "system.multicall": {"specUrl": "http://www.xmlrpc.com/discuss/msgReader$1208", "specVersion": 1},
    "faults_interop": {
        "specUrl": "http://xmlrpc-epi.sourceforge.net/specs/rfc.fault_codes.php",
        "specVersion": 20010516,
    },
}
NIL_CAPABILITY = {"nil": {"specUrl": "http://ontosys.com/xml-rpc/extensions.php", "specVersion": 20010518}}

#: The protocol's own methods: (signatures, help).
SYSTEM_METHODS: dict[str, tuple[list[list[str]], str]] = {
    "system.listMethods": ([["array"]], "The names of the methods this server offers over XML-RPC."),
    "system.methodHelp": ([["string", "string"]], "The documentation of a method."),
    "system.methodSignature": (
        [["array", "string"]],
        "The signatures of a method: each an array of the result type then the parameter types.",
    ),
    "system.multicall": (
        [["array", "array"]],
        "Run several calls in one request: an array of {methodName, params} structs in, an array out "
        "with a one-element array per result and a fault struct per failure, in order. "
        "system.multicall cannot be nested.",
    ),
    "system.getCapabilities": ([["struct"]], "The specifications this server implements."),
}


def sniff(first: bytes) -> bool:
    """An XML-RPC body is XML with a ``methodCall`` element near its start."""
    return first[:1] == b"<" and b"<methodCall" in first


def _returns_nothing(spec: MethodSpec) -> bool:
    return spec.returns is None or spec.returns is type(None)


def _returns_download(spec: MethodSpec) -> bool:
    return isinstance(spec.returns, type) and issubclass(spec.returns, Download)


class XmlRpcEndpoint(RpcEndpoint):
    protocol = "xmlrpc"

    def __init__(self, mailroom: Mailroom, media_types: tuple[str, ...]) -> None:
        super().__init__(mailroom, media_types)
        self.allow_none = mailroom.settings.xmlrpc_allow_none
        self.encoder = codec.Encoder(allow_none=self.allow_none)
        self.decoder = codec.Decoder(allow_none=self.allow_none, max_depth=mailroom.settings.rpc_max_depth)
        self._results: dict[str, codec.Schema | None] = {}
        self._params: dict[str, codec.Schema] = {}
        self._system: dict[str, Callable[[list[Any], Request, Credentials], Awaitable[str]]] = {
            "system.listMethods": self._list_methods,
            "system.methodHelp": self._method_help,
            "system.methodSignature": self._method_signature,
            "system.multicall": self._multicall,
            "system.getCapabilities": self._capabilities,
        }

    # -- HTTP ---------------------------------------------------------------------------
    async def handle(self, request: Request, body: bytes | None) -> Response:
        credentials = self.credentials(request)
        try:
            raw = await self.read(request, body)
            call = self.decoder.call(codec.parse_xml(raw, self.settings.rpc_max_depth))
            await credentials.principal()
            value = await self._invoke(call.name, call.params, request, credentials, nested=False)
        except MailroomError as exc:
            return self._fault(exc, credentials)
        except Exception as exc:
            return self._fault(unexpected(exc, "XML-RPC call"), credentials)
        return Response(codec.response(value), media_type=XML)

    def _fault(self, exc: MailroomError, credentials: Credentials) -> Response:
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if credentials.refused else None
        return Response(codec.fault(*xmlrpc_fault(exc)), media_type=XML, headers=headers)

    # -- calls --------------------------------------------------------------------------
    async def _invoke(
        self, name: str, params: list[Any], request: Request, credentials: Credentials, *, nested: bool
    ) -> str:
        """One call: the result as an encoded ``<value>``, or a raised domain error."""
        system = self._system.get(name)
        if system is not None:
            if nested and name == "system.multicall":
                raise ProtocolError(INVALID_REQUEST, "system.multicall cannot be nested")
            return await system(params, request, credentials)
        principal = await credentials.principal()
        spec = self.runner.lookup(name, self.protocol)
        if not self.allow_none and _returns_nothing(spec):
            # Refused before the call, so that nothing happens that the client cannot see.
            raise InternalError(
                f"{name} returns nothing (nil), which this server's XML-RPC does not send; "
                "the administrator can enable it with xmlrpc_allow_none"
            )
        bound = self.bind(spec, params)
        result = await self.runner.invoke(name, bound, principal, self.call_info(request, principal))
        try:
            return self._encode(spec, result)
        except codec.EncodeError as exc:
            raise InternalError(f"{name}: {exc}") from None

    @staticmethod
    def bind(spec: MethodSpec, params: list[Any]) -> Mapping[str, Any] | list[Any]:
        """Named (a lone struct of parameter names) or positional parameters."""
        if len(params) == 1 and isinstance(params[0], dict):
            keys = set(params[0])
            if keys <= set(spec.param_names) and (keys or not spec.required):
                return dict(params[0])
        return params

    def _encode(self, spec: MethodSpec, result: Any) -> str:
        if isinstance(result, Download):
            struct: dict[str, Any] = {"content": result.content, "content_type": result.content_type}
            if result.filename is not None:
                struct["filename"] = result.filename
            return self.encoder.value(struct)
        return self.encoder.value(result, self._result_schema(spec))

    def _result_schema(self, spec: MethodSpec) -> codec.Schema | None:
        if spec.name not in self._results:
            try:
                self._results[spec.name] = codec.Schema(spec.return_adapter.json_schema(mode="serialization"))
            except Exception:  # a type without a JSON schema: encode by value alone
                self._results[spec.name] = None
        return self._results[spec.name]

    # -- introspection ------------------------------------------------------------------
    def _visible(self, name: str) -> MethodSpec:
        spec = self.registry.get(name)
        if spec is None or not self.registry.remote_allowed(spec, self.protocol):
            raise MethodNotFound(f"unknown method {name!r}", method=name)
        return spec

    @staticmethod
    def _args(name: str, params: list[Any], *types: type) -> list[Any]:
        if len(params) != len(types) or not all(isinstance(p, t) for p, t in zip(params, types, strict=True)):
            expected = ", ".join(t.__name__ for t in types) or "no parameters"
            raise InvalidParams([FieldError("params", f"{name} takes {expected}", "type")])
        return params

    async def _list_methods(self, params: list[Any], request: Request, credentials: Credentials) -> str:
        self._args("system.listMethods", params)
        names = [s.name for s in self.registry.visible(self.protocol)] + sorted(SYSTEM_METHODS)
        return self.encoder.value(names)

    async def _method_help(self, params: list[Any], request: Request, credentials: Credentials) -> str:
        (name,) = self._args("system.methodHelp", params, str)
        if name in SYSTEM_METHODS:
            return self.encoder.value(SYSTEM_METHODS[name][1])
        spec = self._visible(name)
        text = spec.doc or spec.summary
        note = lifecycle_note(spec)
        return self.encoder.value(f"{text}\n\n{note}" if note else text)

    async def _method_signature(self, params: list[Any], request: Request, credentials: Credentials) -> str:
        (name,) = self._args("system.methodSignature", params, str)
        if name in SYSTEM_METHODS:
            return self.encoder.value(SYSTEM_METHODS[name][0])
        return self.encoder.value(self.signatures(self._visible(name)))

    def signatures(self, spec: MethodSpec) -> list[list[str]]:
        """One signature per accepted number of positional parameters."""
        if _returns_nothing(spec):
            returns = "nil"
        elif _returns_download(spec):
            returns = "struct"
        else:
            schema = self._result_schema(spec)
            returns = schema.type_name(schema.root) if schema else "mixed"
        if spec.name not in self._params:
            self._params[spec.name] = codec.Schema(spec.params_model.model_json_schema())
        params = self._params[spec.name]
        properties: Mapping[str, Any] = params.root.get("properties", {})
        types = [params.type_name(properties.get(n)) for n in spec.param_names]
        last_required = max((i + 1 for i, n in enumerate(spec.param_names) if n in spec.required), default=0)
        return [[returns, *types[:count]] for count in range(last_required, len(types) + 1)]

    async def _capabilities(self, params: list[Any], request: Request, credentials: Credentials) -> str:
        self._args("system.getCapabilities", params)
        capabilities = CAPABILITIES | (NIL_CAPABILITY if self.allow_none else {})
        return self.encoder.value(capabilities)

    async def _multicall(self, params: list[Any], request: Request, credentials: Credentials) -> str:
        (calls,) = self._args("system.multicall", params, list)
        limit = self.settings.jsonrpc_max_batch
        if len(calls) > limit:
            raise ProtocolError(
                INVALID_REQUEST, f"a multicall holds at most {limit} calls; this one has {len(calls)}"
            )
        out = ["<value><array><data>"]
        for index, call in enumerate(calls):
            try:
                if not isinstance(call, dict) or not isinstance(call.get("methodName"), str):
                    raise ProtocolError(INVALID_REQUEST, f"call {index} is not a struct with a methodName")
                inner = call.get("params", [])
                if not isinstance(inner, list):
                    raise ProtocolError(INVALID_REQUEST, f"call {index}: params is an array")
                value = await self._invoke(call["methodName"], inner, request, credentials, nested=True)
            except MailroomError as exc:
                out.append(codec.fault_value(*xmlrpc_fault(exc)))
            except Exception as exc:
                out.append(codec.fault_value(*xmlrpc_fault(unexpected(exc, "XML-RPC multicall"))))
            else:
                out.append(f"<value><array><data>{value}</data></array></value>")
        out.append("</data></array></value>")
        return "".join(out)


def _build(mailroom: Mailroom, media_types: tuple[str, ...]) -> RpcEndpoint:
    return XmlRpcEndpoint(mailroom, media_types)


PROTOCOL = RpcProtocol(name="xmlrpc", path="/rpc/xml", media_types=MEDIA_TYPES, sniff=sniff, endpoint=_build)
