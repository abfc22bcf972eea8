"""Autoconfig (Thunderbird) and autodiscover (Outlook POX) over HTTP, and mail.clientconfig.get.

The bodies are read back with xml.etree, checked against the documented formats: Thunderbird's
``clientConfig`` 1.1 (draft-ietf-mailmaint-autoconfig) and Microsoft's POX autodiscover
request and response (schema 2006 / outlook 2006a).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mailroom.clock import FakeClock
from mailroom.settings import Settings
from mailroom.web import build_app
from tests.conftest import Actor, problem, started

pytestmark = pytest.mark.anyio

AUTOCONFIG = "/mail/config-v1.1.xml"
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
AUTODISCOVER = "/autodiscover/autodiscover.xml"
REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
A = f"{{{OUTLOOK_NS}}}"  # the Outlook response's elements


def pox_request(address: str, schema: str = OUTLOOK_NS) -> bytes:
    """An autodiscover request as Outlook POSTs it."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{REQUEST_NS}"><Request>'
        f"<EMailAddress>{address}</EMailAddress>"
        f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema>"
        "</Request></Autodiscover>"
    ).encode()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "hostname": "mail.mailhost.net",
        "submission_port": 2587,
        "public_submission_port": 587,
        "public_url": "https://mail.mailhost.net/",
    }


@pytest.fixture
async def domains(make_domain: Any, client: httpx.AsyncClient, admin: Actor) -> None:
    await make_domain("example.org")
    r = await client.post(
        "/api/v1/domains/example.org/alternatives", json={"name": "example.net"}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/relays", json={"name": "relayed.example"}, headers=admin.headers)
    assert r.status_code == 201, r.text


def servers(root: ET.Element) -> list[dict[str, Any]]:
    """The servers of a clientConfig, as (kind, type) and their child elements' text."""
    (provider,) = root.findall("emailProvider")
    return [
        {"kind": element.tag, "type": element.get("type"), **{child.tag: child.text for child in element}}
        for element in provider
        if element.tag in ("incomingServer", "outgoingServer")
    ]


def protocols(root: ET.Element) -> list[dict[str, str | None]]:
    """The Protocol elements of an autodiscover response, each as {child: text}."""
    assert root.tag == f"{{{RESPONSE_NS}}}Autodiscover"
    (response,) = root.findall(f"{A}Response")
    (account,) = response.findall(f"{A}Account")
    assert account.findtext(f"{A}AccountType") == "email"
    assert account.findtext(f"{A}Action") == "settings"
    return [
        {child.tag.removeprefix(A): child.text for child in protocol}
        for protocol in account.findall(f"{A}Protocol")
    ]


def incoming(kind: str, port: int, socket_type: str, username: str = "%EMAILADDRESS%") -> dict[str, Any]:
    return {
        "kind": "incomingServer",
        "type": kind,
        "hostname": "mail.mailhost.net",
        "port": str(port),
        "socketType": socket_type,
        "username": username,
        "authentication": "password-cleartext",
    }


#: The reading listeners on by default (their listening ports: no public_* port is set).
INCOMING = [
    incoming("imap", 2993, "SSL"),
    incoming("imap", 2143, "STARTTLS"),
    incoming("pop3", 2995, "SSL"),
    incoming("pop3", 2110, "STARTTLS"),
]
NO_READING = {"imap_port": 0, "imaps_port": 0, "pop3_port": 0, "pop3s_port": 0}

SUBMISSION_SERVER = {
    "kind": "outgoingServer",
    "type": "smtp",
    "hostname": "mail.mailhost.net",
    "port": "587",  # the public port, not the listening 2587
    "socketType": "STARTTLS",
    "username": "%EMAILADDRESS%",
    "authentication": "password-cleartext",
}


@pytest.mark.usefixtures("domains")
async def test_autoconfig_lists_what_is_served_on_its_public_port(client: httpx.AsyncClient) -> None:
    r = await client.get(AUTOCONFIG, params={"emailaddress": "alice@example.org"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/xml"
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(r.content)
    assert root.tag == "clientConfig"
    assert root.get("version") == "1.1"
    (provider,) = root.findall("emailProvider")
    assert provider.get("id") == "example.org"
    assert [e.text for e in provider.findall("domain")] == ["example.org"]
    assert provider.findtext("displayName") == "example.org"
    # Every client listener that is on, reading ones first (IMAPS, IMAP, POP3S, POP3).
    assert servers(root) == [*INCOMING, SUBMISSION_SERVER]
    # The same document at the domain's well-known address.
    well_known = await client.get(WELL_KNOWN, params={"emailaddress": "alice@example.org"})
    assert well_known.status_code == 200
    assert well_known.content == r.content


@pytest.mark.usefixtures("domains")
async def test_autoconfig_never_tells_whether_an_address_exists(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    await make_user("alice@example.org")
    existing = await client.get(AUTOCONFIG, params={"emailaddress": "alice@example.org"})
    missing = await client.get(AUTOCONFIG, params={"emailaddress": "nobody.here@example.org"})
    assert existing.status_code == missing.status_code == 200
    assert existing.content == missing.content
    pox = [
        (await client.post(AUTODISCOVER, content=pox_request(a), headers={"Content-Type": "text/xml"}))
        for a in ("alice@example.org", "nobody.here@example.org")
    ]
    assert [p.status_code for p in pox] == [200, 200]
    assert pox[0].content.replace(b"alice", b"X") == pox[1].content.replace(b"nobody.here", b"X")


@pytest.mark.usefixtures("domains")
async def test_autoconfig_finds_the_domain_from_the_autoconfig_host(client: httpx.AsyncClient) -> None:
    by_address = await client.get(AUTOCONFIG, params={"emailaddress": "alice@example.org"})
    by_host = await client.get(AUTOCONFIG, headers={"Host": "autoconfig.example.org"})
    assert by_host.status_code == 200, by_host.text
    assert by_host.content == by_address.content
    problem(await client.get(AUTOCONFIG), 400, "bad_request")


@pytest.mark.usefixtures("domains")
async def test_an_alternative_domain_logs_in_at_its_domain(client: httpx.AsyncClient) -> None:
    r = await client.get(AUTOCONFIG, params={"emailaddress": "alice@example.net"})
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    assert root.find("emailProvider/domain").text == "example.net"  # type: ignore[union-attr]
    assert {s["username"] for s in servers(root)} == {"%EMAILLOCALPART%@example.org"}
    r = await client.post(AUTODISCOVER, content=pox_request("Alice@Example.NET"))
    assert {p["LoginName"] for p in protocols(ET.fromstring(r.content))} == {"alice@example.org"}


@pytest.mark.usefixtures("domains")
async def test_unknown_relay_and_invalid_domains(client: httpx.AsyncClient) -> None:
    for address in ("alice@elsewhere.example", "alice@relayed.example"):
        problem(await client.get(AUTOCONFIG, params={"emailaddress": address}), 404, "not_found")
        problem(await client.post(AUTODISCOVER, content=pox_request(address)), 404, "not_found")
    for address in ("not an address", "a@b@example.org", "alice@-bad-.example"):
        problem(await client.get(AUTOCONFIG, params={"emailaddress": address}), 400, "bad_request")
        problem(await client.get(AUTODISCOVER, params={"emailaddress": address}), 400, "bad_request")


@pytest.mark.usefixtures("domains")
@pytest.mark.parametrize("path", [AUTODISCOVER, "/Autodiscover/Autodiscover.xml"])
async def test_autodiscover_pox_response(client: httpx.AsyncClient, path: str) -> None:
    # Outlook sends its Windows credentials along: they are ignored, not refused.
    r = await client.post(
        path,
        content=pox_request("alice@example.org"),
        headers={"Content-Type": "text/xml; charset=utf-8", "Authorization": "Basic YWxpY2U6d3Jvbmc="},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/xml")
    listed = protocols(ET.fromstring(r.content))
    assert [(p["Type"], p["Port"], p["Encryption"]) for p in listed[:4]] == [
        ("IMAP", "2993", "SSL"),
        ("IMAP", "2143", "TLS"),
        ("POP3", "2995", "SSL"),
        ("POP3", "2110", "TLS"),
    ]
    assert all("SMTPLast" not in p and p["LoginName"] == "alice@example.org" for p in listed[:4])
    assert listed[4:] == [
        {
            "Type": "SMTP",
            "Server": "mail.mailhost.net",
            "Port": "587",
            "DomainRequired": "off",
            "LoginName": "alice@example.org",
            "SPA": "off",
            "SSL": "on",
            "Encryption": "TLS",  # STARTTLS on the submission port
            "AuthRequired": "on",
            "UsePOPAuth": "off",
            "SMTPLast": "off",
        }
    ]
    # GET, as some clients ask.
    got = await client.get(path, params={"emailaddress": "alice@example.org"})
    assert got.status_code == 200
    assert got.content == r.content


@pytest.mark.usefixtures("domains")
@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"<Autodiscover", 400),  # not well-formed
        (b"<html><body>hi</body></html>", 400),  # not a POX request
        (f'<Autodiscover xmlns="{REQUEST_NS}"><Request/></Autodiscover>'.encode(), 400),  # no address
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "alice@example.org">]>'
            b"<Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>",
            400,  # entities are refused (defusedxml): no billion laughs, no external files
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b"<Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>",
            400,
        ),
        (
            pox_request(
                "alice@example.org",
                schema="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006",
            ),
            400,  # ActiveSync is not served
        ),
        (pox_request("alice@example.org") + b" " * 20_000, 413),
    ],
)
async def test_autodiscover_refuses_bad_bodies(client: httpx.AsyncClient, body: bytes, status: int) -> None:
    r = await client.post(AUTODISCOVER, content=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_client_config_method_over_rest(
    client: httpx.AsyncClient, domains: None, mailroom: Any
) -> None:
    r = await client.get("/api/v1/clientconfig/example.org")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(s["protocol"], s["port"], s["socket_type"]) for s in body["servers"][:4]] == [
        ("imap", 2993, "SSL"),
        ("imap", 2143, "STARTTLS"),
        ("pop3", 2995, "SSL"),
        ("pop3", 2110, "STARTTLS"),
    ]
    body["servers"] = body["servers"][4:]
    assert body == {
        "domain": "example.org",
        "display_name": "example.org",
        "servers": [
            {
                "protocol": "smtp",
                "hostname": "mail.mailhost.net",
                "port": 587,
                "socket_type": "STARTTLS",
                "username": "%EMAILADDRESS%",
                "authentication": "password-cleartext",
            }
        ],
    }
    problem(await client.get("/api/v1/clientconfig/elsewhere.example"), 404, "not_found")


@pytest.mark.parametrize("settings_overrides", [{"disabled_protocols": ["autoconfig"]}])
async def test_the_autoconfig_protocol_can_be_switched_off(
    client: httpx.AsyncClient, make_domain: Any
) -> None:
    await make_domain("example.org")
    for path in (AUTOCONFIG, WELL_KNOWN, AUTODISCOVER):
        r = await client.get(path, params={"emailaddress": "alice@example.org"})
        assert r.status_code == 404, path


@pytest.mark.parametrize("settings_overrides", [{"submission_port": 0, **NO_READING}])
async def test_nothing_served_nothing_configured(client: httpx.AsyncClient, make_domain: Any) -> None:
    await make_domain("example.org")
    r = await client.get(AUTOCONFIG, params={"emailaddress": "alice@example.org"})
    assert problem(r, 404, "not_found")["detail"].startswith("this server runs no mail client service")


# -- a public port setting, where one exists, is what clients are told ---------------------------


class WithImaps(Settings):
    """Settings with a public IMAPS port (a proxy or NAT maps 993 to the listener)."""

    public_imaps_port: int | None = None


@pytest.fixture
async def imaps_client(
    settings: Settings, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Actor]]:
    values = dict(settings) | NO_READING | {"imaps_port": 10993}
    extended = WithImaps(**values, public_imaps_port=993)
    async with started(extended, clock) as app:
        await app.registry.call("admin.domains.create", {"domain": {"name": "example.org"}})
        created = await app.registry.call("admin.apikeys.create", {"key": {"name": "a", "admin": True}})
        principal = await app.authenticator.bearer(created["key"], "127.0.0.1")
        transport = httpx.ASGITransport(app=build_app(app), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://mailroom.test") as c:
            yield c, Actor("admin", principal, key=created["key"])


async def test_only_the_listeners_that_are_on_are_advertised_on_their_public_ports(
    imaps_client: tuple[httpx.AsyncClient, Actor],
) -> None:
    client, admin = imaps_client
    r = await client.get(AUTOCONFIG, params={"emailaddress": "alice@example.org"})
    assert servers(ET.fromstring(r.content)) == [
        {
            "kind": "incomingServer",
            "type": "imap",
            "hostname": "mail.mailhost.net",
            "port": "993",
            "socketType": "SSL",
            "username": "%EMAILADDRESS%",
            "authentication": "password-cleartext",
        },
        SUBMISSION_SERVER,
    ]
    r = await client.post(AUTODISCOVER, content=pox_request("alice@example.org"))
    imap, smtp = protocols(ET.fromstring(r.content))
    assert (imap["Type"], imap["Port"], imap["SSL"], imap["Encryption"]) == ("IMAP", "993", "on", "SSL")
    assert "SMTPLast" not in imap
    assert (smtp["Type"], smtp["Port"], smtp["Encryption"]) == ("SMTP", "587", "TLS")

    # Something to read mail with, and HTTPS at public_url: now the DNS helper advertises it all.
    records = (await client.get("/api/v1/domains/example.org/dns", headers=admin.headers)).json()
    published = {(x["name"], x["type"]): x["value"] for x in records}
    assert published["_imaps._tcp.example.org.", "SRV"] == "0 1 993 mail.mailhost.net."
    for off in ("_imap._tcp", "_pop3._tcp", "_pop3s._tcp"):
        assert (f"{off}.example.org.", "SRV") not in published
    assert published["_submission._tcp.example.org.", "SRV"] == "0 1 587 mail.mailhost.net."
    assert published["autoconfig.example.org.", "CNAME"] == "mail.mailhost.net."
    assert published["autodiscover.example.org.", "CNAME"] == "mail.mailhost.net."
    assert published["_autodiscover._tcp.example.org.", "SRV"] == "0 1 443 mail.mailhost.net."
    # ... and what it advertises is served there.
    r = await client.get(AUTOCONFIG, headers={"Host": "autoconfig.example.org"})
    assert r.status_code == 200
