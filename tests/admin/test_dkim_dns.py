"""admin.dkim.* and admin.dns.* over REST: keys that really sign, records, zone file, access."""

from __future__ import annotations

from typing import Any

import dkim
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.store import dkim as dkim_store
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

MESSAGE = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: signed\r\n"
    b"Date: Thu, 01 Jan 2026 12:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello, Bob.\r\n"
)
SOA_AND_NS = (
    "@  3600  IN  SOA  ns1.example.net. hostmaster.example.net. 1 7200 3600 1209600 3600\n"
    "@  3600  IN  NS   ns1.example.net.\n"
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "hostname": "mx.mailhost.example",
        "dmarc_rua": "dmarc@example.org",
        "dmarc_ruf": "forensic@reports.example.net",
    }


def key_url(domain: str = "example.org") -> str:
    return f"/api/v1/domains/{domain}/dkim"


def txt_data(value: str) -> bytes:
    """What a resolver hands out for a TXT value written as in a zone file."""
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, value)
    return b"".join(rdata.strings)  # type: ignore[attr-defined]


async def private_key(mailroom: Mailroom, domain: str = "example.org") -> dkim_store.SigningKey | None:
    async with mailroom.runtime.db.read() as tx:
        return await dkim_store.private_key(tx, domain)


def sign_and_verify(private_pem: str, selector: str, record_name: str, record_value: str) -> bool:
    """Sign MESSAGE as example.org with the key and verify it against the published record."""
    signature = dkim.sign(MESSAGE, selector.encode(), b"example.org", private_pem.encode())

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return txt_data(record_value) if name.decode() == record_name else None

    return bool(dkim.verify(signature + MESSAGE, dnsfunc=dnsfunc))


async def test_generated_key_signs_mail_that_verifies_with_the_published_record(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, mailroom: Mailroom
) -> None:
    await make_domain("example.org")
    r = await client.post(key_url(), headers=admin.headers)
    assert r.status_code == 201, r.text
    info = r.json()
    assert set(info) == {"domain", "selector", "bits", "public_key", "record_name", "record_value"}
    assert info["domain"] == "example.org"
    assert info["selector"] == "dkim"  # the dkim_selector setting
    assert info["bits"] == 2048
    assert info["record_name"] == "dkim._domainkey.example.org."
    assert txt_data(info["record_value"]) == f"v=DKIM1; k=rsa; p={info['public_key']}".encode()

    stored = await private_key(mailroom)
    assert stored is not None
    assert stored.selector == "dkim"
    assert stored.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert sign_and_verify(stored.private_key, "dkim", info["record_name"], info["record_value"])

    r = await client.get(key_url(), headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == info
    r = await client.get("/api/v1/domains/example.org", headers=admin.headers)
    assert r.json()["dkim_selector"] == "dkim"


async def test_regenerating_replaces_the_key(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, mailroom: Mailroom
) -> None:
    await make_domain("example.org")
    first = (await client.post(key_url(), headers=admin.headers)).json()
    old = await private_key(mailroom)
    assert old is not None

    r = await client.post(key_url(), json={"selector": " Mail2026 ", "bits": 1024}, headers=admin.headers)
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["selector"] == "mail2026"
    assert second["bits"] == 1024
    assert second["record_name"] == "mail2026._domainkey.example.org."
    assert second["public_key"] != first["public_key"]
    assert (await client.get(key_url(), headers=admin.headers)).json() == second

    new = await private_key(mailroom)
    assert new is not None
    assert new.selector == "mail2026"
    assert new.private_key != old.private_key
    assert sign_and_verify(new.private_key, "mail2026", second["record_name"], second["record_value"])
    # The old key does not match the new record: the published record follows the stored key.
    assert not sign_and_verify(old.private_key, "mail2026", second["record_name"], second["record_value"])


async def test_delete(client: httpx.AsyncClient, admin: Actor, make_domain: Any, mailroom: Mailroom) -> None:
    await make_domain("example.org")
    r = await client.get(key_url(), headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == "domain example.org has no DKIM key"
    assert (await client.delete(key_url(), headers=admin.headers)).status_code == 404

    await client.post(key_url(), headers=admin.headers)
    r = await client.delete(key_url(), headers=admin.headers)
    assert r.status_code == 204
    assert r.content == b""
    assert (await client.get(key_url(), headers=admin.headers)).status_code == 404
    assert await private_key(mailroom) is None
    assert (await client.get("/api/v1/domains/example.org", headers=admin.headers)).json()[
        "dkim_selector"
    ] is None
    records = (await client.get("/api/v1/domains/example.org/dns", headers=admin.headers)).json()
    assert not [x for x in records if "_domainkey" in x["name"]]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"bits": 512}, "bits"),
        ({"bits": 3072}, "bits"),
        ({"bits": "2048 bits"}, "bits"),
        ({"selector": "bad selector"}, "selector"),
        ({"selector": "_dkim"}, "selector"),
        ({"selector": "-dkim"}, "selector"),
        ({"selector": "a" * 64}, "selector"),
        ({"selector": ""}, "selector"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----"}, "private_key"),
    ],
)
async def test_generate_validation(
    client: httpx.AsyncClient,
    admin: Actor,
    make_domain: Any,
    mailroom: Mailroom,
    body: dict[str, Any],
    loc: str,
) -> None:
    await make_domain("example.org")
    r = await client.post(key_url(), json=body, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]]
    assert (await client.get(key_url(), headers=admin.headers)).status_code == 404
    assert await private_key(mailroom) is None


async def test_missing_domain(client: httpx.AsyncClient, admin: Actor) -> None:
    for method, url in [
        ("POST", key_url("nowhere.example")),
        ("GET", key_url("nowhere.example")),
        ("DELETE", key_url("nowhere.example")),
        ("GET", "/api/v1/domains/nowhere.example/dns"),
        ("GET", "/api/v1/domains/nowhere.example/dns/zone"),
    ]:
        r = await client.request(method, url, headers=admin.headers)
        assert r.status_code == 404, (method, url)
        assert r.json()["detail"] == "domain nowhere.example not found"


async def test_dns_records(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org")
    await client.post(
        "/api/v1/domains/example.org/alternatives", json={"name": "example.net"}, headers=admin.headers
    )
    r = await client.get("/api/v1/domains/example.org/dns", headers=admin.headers)
    assert r.status_code == 200
    records = r.json()
    assert all(set(x) == {"name", "type", "value", "ttl", "purpose"} for x in records)
    assert all(x["ttl"] == 3600 and x["purpose"] for x in records)
    pairs = [(x["name"], x["type"], x["value"]) for x in records]
    assert pairs == [
        ("example.org.", "MX", "10 mx.mailhost.example."),
        ("example.org.", "TXT", '"v=spf1 mx a:mx.mailhost.example ~all"'),
        (
            "_dmarc.example.org.",
            "TXT",
            '"v=DMARC1; p=none; adkim=s; aspf=s; rua=mailto:dmarc@example.org; '
            'ruf=mailto:forensic@reports.example.net"',
        ),
        ("example.org._report._dmarc.reports.example.net.", "TXT", '"v=DMARC1"'),
        # Only what is served, on the port it listens on (no public_*_port here).
        ("_imaps._tcp.example.org.", "SRV", "0 1 2993 mx.mailhost.example."),
        ("_imap._tcp.example.org.", "SRV", "0 1 2143 mx.mailhost.example."),
        ("_pop3s._tcp.example.org.", "SRV", "0 1 2995 mx.mailhost.example."),
        ("_pop3._tcp.example.org.", "SRV", "0 1 2110 mx.mailhost.example."),
        ("_submission._tcp.example.org.", "SRV", "0 1 2587 mx.mailhost.example."),
        ("example.net.", "MX", "10 mx.mailhost.example."),
        ("example.net.", "TXT", '"v=spf1 mx a:mx.mailhost.example ~all"'),
    ]

    key = (await client.post(key_url(), headers=admin.headers)).json()
    records = (await client.get("/api/v1/domains/example.org/dns", headers=admin.headers)).json()
    (dkim_record,) = [x for x in records if "_domainkey" in x["name"]]
    assert dkim_record["name"] == key["record_name"]
    assert dkim_record["type"] == "TXT"
    assert dkim_record["value"] == key["record_value"]
    assert len(records) == len(pairs) + 1


async def test_zone_download(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("bücher.example")
    await client.post(
        "/api/v1/domains/xn--bcher-kva.example/alternatives",
        json={"name": "example.net"},
        headers=admin.headers,
    )
    await client.post(key_url("xn--bcher-kva.example"), headers=admin.headers)
    records = (await client.get("/api/v1/domains/xn--bcher-kva.example/dns", headers=admin.headers)).json()

    r = await client.get("/api/v1/domains/bücher.example/dns/zone", headers=admin.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert 'filename="xn--bcher-kva.example.zone"' in r.headers["content-disposition"]
    assert r.headers["content-disposition"].startswith("attachment;")

    origin = "xn--bcher-kva.example."
    zone = dns.zone.from_text(r.text + SOA_AND_NS, origin=origin, relativize=False)
    in_zone = [x for x in records if x["name"] == origin or x["name"].endswith("." + origin)]
    elsewhere = [x for x in records if x not in in_zone]
    assert {x["name"] for x in elsewhere} == {
        "example.net.",  # the alternative's MX and SPF
        "xn--bcher-kva.example._report._dmarc.example.org.",  # the report addresses' domains consent
        "xn--bcher-kva.example._report._dmarc.reports.example.net.",
    }
    for record in in_zone:
        rdtype = dns.rdatatype.from_text(record["type"])
        expected = dns.rdata.from_text(dns.rdataclass.IN, rdtype, record["value"])
        assert expected in zone.find_rdataset(record["name"], rdtype), record
    assert sum(len(rdataset) for _, rdataset in zone.iterate_rdatasets()) == len(in_zone) + 2  # + SOA, NS
    # Records for other zones are there to copy, as comments.
    for record in elsewhere:
        assert f";   {record['name']}  {record['ttl']}  IN  {record['type']}  {record['value']}\n" in r.text


async def test_private_key_is_never_returned(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, mailroom: Mailroom
) -> None:
    await make_domain("example.org")
    texts = [(await client.post(key_url(), headers=admin.headers)).text]
    stored = await private_key(mailroom)
    assert stored is not None
    secret_lines = [line for line in stored.private_key.splitlines() if "PRIVATE KEY" not in line]
    for url in [
        key_url(),
        "/api/v1/domains/example.org",
        "/api/v1/domains",
        "/api/v1/domains/example.org/dns",
        "/api/v1/domains/example.org/dns/zone",
        "/api/v1/openapi.json",
    ]:
        r = await client.get(url, headers=admin.headers)
        assert r.status_code == 200, url
        texts.append(r.text + str(r.headers))
    for text in texts:
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in secret_lines)


async def test_authorisation(client: httpx.AsyncClient, admin: Actor, make_user: Any) -> None:
    user = await make_user("alice@one.example")
    manager = await make_user("mgr@one.example", manages=("one.example",))
    other = await make_user("mgr@two.example", manages=("two.example",))
    paths = [("POST", "dkim"), ("GET", "dkim"), ("GET", "dns"), ("GET", "dns/zone"), ("DELETE", "dkim")]

    for method, tail in paths:
        url = f"/api/v1/domains/one.example/{tail}"
        assert (await client.request(method, url)).status_code == 401, url
        assert (await client.request(method, url, headers=user.headers)).status_code == 403, url
        hidden = await client.request(method, url, headers=other.headers)
        missing = await client.request(method, f"/api/v1/domains/ghost.example/{tail}", headers=admin.headers)
        assert hidden.status_code == missing.status_code == 404, url
        assert hidden.json()["detail"].replace("one.example", "X") == missing.json()["detail"].replace(
            "ghost.example", "X"
        )

    # The manager of the domain may do everything; nothing the others tried made a key.
    assert (await client.get(key_url("one.example"), headers=manager.headers)).status_code == 404
    r = await client.post(key_url("one.example"), json={"bits": 1024}, headers=manager.headers)
    assert r.status_code == 201
    assert (await client.get(key_url("one.example"), headers=manager.headers)).json() == r.json()
    assert (await client.get("/api/v1/domains/one.example/dns", headers=manager.headers)).status_code == 200
    assert (
        await client.get("/api/v1/domains/one.example/dns/zone", headers=manager.headers)
    ).status_code == 200
    assert (await client.delete(key_url("one.example"), headers=manager.headers)).status_code == 204
    # Admins too.
    assert (
        await client.post(key_url("two.example"), json={"bits": 1024}, headers=admin.headers)
    ).status_code == 201
