"""Mail client set-up over HTTP: Thunderbird's autoconfig and Outlook's autodiscover (POX).

Both are views of one registry method, ``mail.clientconfig.get`` (protocol ``autoconfig``:
``disabled_protocols = ["autoconfig"]`` turns them off), rendered as the XML each client
reads:

- autoconfig: ``GET /mail/config-v1.1.xml`` (at ``autoconfig.<domain>``) and
  ``GET /.well-known/autoconfig/mail/config-v1.1.xml``, with ``?emailaddress=``; without it
  the domain comes from an ``autoconfig.<domain>`` Host. The ``clientConfig`` 1.1 format of
  Thunderbird (draft-ietf-mailmaint-autoconfig).
- autodiscover: ``POST /autodiscover/autodiscover.xml`` with the POX request
  (``<Request><EMailAddress>``), and ``GET`` with ``?emailaddress=``; the Outlook response
  schema 2006a, one ``Protocol`` per served listener.

Both are public: credentials a client sends along are ignored, and the answer depends on the
address's domain only. Request bodies are parsed with defusedxml, at most
:data:`MAX_REQUEST_BYTES` (413 above); anything that is not a POX request is a 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, SubElement, tostring

import defusedxml.ElementTree
from defusedxml import DefusedXmlException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailroom.domain.names import normalize_address, normalize_domain
from mailroom.errors import BadRequest
from mailroom.frontends.http_auth import client_ip
from mailroom.frontends.http_body import read_body
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

METHOD = "mail.clientconfig.get"
PROTOCOL = "autoconfig"
AUTOCONFIG_PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")
# Outlook asks both spellings; routes are case-sensitive.
AUTODISCOVER_PATHS = ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml")
#: A POX request is a few hundred bytes.
MAX_REQUEST_BYTES = 16 * 1024

_MS = "http://schemas.microsoft.com/exchange/autodiscover"
RESPONSE_NS = f"{_MS}/responseschema/2006"
OUTLOOK_NS = f"{_MS}/outlook/responseschema/2006a"
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def autoconfig_routes(mailroom: Mailroom) -> list[BaseRoute]:
    """The autoconfig and autodiscover routes, unless the method or the protocol is switched off."""
    spec = mailroom.registry.get(METHOD)
    if spec is None or not mailroom.registry.remote_allowed(spec, PROTOCOL):
        return []

    async def client_config(request: Request, domain: str) -> dict[str, Any]:
        ip = client_ip(request)
        info = CallInfo(protocol=PROTOCOL, client_ip=ip, headers=request.headers)
        principal = mailroom.authenticator.anonymous(ip)
        result: dict[str, Any] = await mailroom.runner.invoke(METHOD, {"domain": domain}, principal, info)
        return result

    async def autoconfig(request: Request) -> Response:
        address = request.query_params.get("emailaddress")
        if address:
            domain = _address(address).rpartition("@")[2]
        else:
            host = request.headers.get("host", "").lower().rsplit(":", 1)[0]
            if not host.startswith("autoconfig."):
                raise BadRequest("give the address: ?emailaddress=user@example.org")
            domain = _domain(host.removeprefix("autoconfig."))
        body = autoconfig_xml(await client_config(request, domain))
        return Response(body, media_type="application/xml")

    async def autodiscover(request: Request) -> Response:
        if request.method == "POST":
            address = parse_pox_request(await read_body(request, MAX_REQUEST_BYTES))
        else:
            given = request.query_params.get("emailaddress") or request.query_params.get("email")
            if not given:
                raise BadRequest("POST a POX request, or GET with ?emailaddress=user@example.org")
            address = _address(given)
        config = await client_config(request, address.rpartition("@")[2])
        return Response(autodiscover_xml(config, address), media_type="text/xml")

    return [
        *(Route(path, autoconfig, methods=["GET"]) for path in AUTOCONFIG_PATHS),
        *(Route(path, autodiscover, methods=["GET", "POST"]) for path in AUTODISCOVER_PATHS),
    ]


def _address(value: str) -> str:
    try:
        return normalize_address(value.strip())
    except ValueError as exc:
        raise BadRequest(f"not a mail address: {exc}") from None


def _domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except ValueError as exc:
        raise BadRequest(f"not a domain name: {exc}") from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_pox_request(body: bytes) -> str:
    """The normalised ``EMailAddress`` of a POX autodiscover request; BadRequest otherwise."""
    if not body.strip():
        raise BadRequest("the body is empty: POST a POX autodiscover request")
    try:
        root = defusedxml.ElementTree.fromstring(body)
    except (defusedxml.ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise BadRequest(f"the body is not a POX autodiscover request: {exc}") from None
    if _local(root.tag) != "Autodiscover":
        raise BadRequest("the body is not a POX autodiscover request (<Autodiscover> expected)")
    request = next((e for e in root if _local(e.tag) == "Request"), None)
    if request is None:
        raise BadRequest("the POX request has no <Request>")
    fields = {_local(e.tag): (e.text or "").strip() for e in request}
    schema = fields.get("AcceptableResponseSchema")
    if schema and not schema.endswith("/outlook/responseschema/2006a"):
        raise BadRequest(f"only the Outlook response schema (2006a) is served, not {schema}")
    address = fields.get("EMailAddress")
    if not address:
        raise BadRequest("the POX request has no <EMailAddress>")
    return _address(address)


def _text(parent: Element, tag: str, text: str) -> None:
    SubElement(parent, tag).text = text


def _serialise(root: Element) -> bytes:
    return tostring(root, encoding="unicode").encode("utf-8")


def autoconfig_xml(config: dict[str, Any]) -> bytes:
    """Thunderbird's ``clientConfig`` version 1.1 for a ``ClientConfig``."""
    root = Element("clientConfig", version="1.1")
    provider = SubElement(root, "emailProvider", id=config["display_name"])
    _text(provider, "domain", config["domain"])
    _text(provider, "displayName", config["display_name"])
    _text(provider, "displayShortName", config["display_name"])
    for server in config["servers"]:
        tag = "outgoingServer" if server["protocol"] == "smtp" else "incomingServer"
        element = SubElement(provider, tag, type=server["protocol"])
        _text(element, "hostname", server["hostname"])
        _text(element, "port", str(server["port"]))
        _text(element, "socketType", server["socket_type"])
        _text(element, "username", server["username"])
        _text(element, "authentication", server["authentication"])
    return _XML_DECLARATION + _serialise(root)


def autodiscover_xml(config: dict[str, Any], address: str) -> bytes:
    """The POX autodiscover response (Outlook schema 2006a) for ``address``."""
    local = address.rpartition("@")[0]
    root = Element("Autodiscover", xmlns=RESPONSE_NS)
    response = SubElement(root, "Response", xmlns=OUTLOOK_NS)
    account = SubElement(response, "Account")
    _text(account, "AccountType", "email")
    _text(account, "Action", "settings")
    for server in config["servers"]:
        protocol = SubElement(account, "Protocol")
        _text(protocol, "Type", server["protocol"].upper())
        _text(protocol, "Server", server["hostname"])
        _text(protocol, "Port", str(server["port"]))
        _text(protocol, "DomainRequired", "off")
        login = server["username"].replace("%EMAILADDRESS%", address).replace("%EMAILLOCALPART%", local)
        _text(protocol, "LoginName", login)
        _text(protocol, "SPA", "off")  # absent means on: NTLM, which mailroom does not speak
        _text(protocol, "SSL", "on")
        # Encryption overrides SSL: TLS is STARTTLS on a plain port, SSL is implicit TLS.
        _text(protocol, "Encryption", "TLS" if server["socket_type"] == "STARTTLS" else "SSL")
        _text(protocol, "AuthRequired", "on")
        if server["protocol"] == "smtp":
            _text(protocol, "UsePOPAuth", "off")
            _text(protocol, "SMTPLast", "off")
    return _XML_DECLARATION + _serialise(root)
