"""GET /domains/{d}/dns/check (admin.dns.check): each record to publish beside what DNS answers.

DNS is a loopback server (tests/loopback_dns.py) named by the ``dns_resolver`` setting: the
records are compared as DNS data (case, TXT string splits), and a name DNS fails on is an
``error``, not a crash. Managers check their own domains only.
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import httpx
import pytest

from tests.conftest import Actor, problem
from tests.loopback_dns import LoopbackDns, loopback_dns
from tests.rpc.conftest import fault_code, jsonrpc, xmlrpc_call

pytestmark = pytest.mark.anyio

URL = "/api/v1/domains/example.org/dns"


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    with loopback_dns() as server:
        yield server


@pytest.fixture
def settings_overrides(dns_server: LoopbackDns) -> dict[str, Any]:
    return {"dns_resolver": dns_server.address, "dns_timeout_seconds": 2.0}


def _split_txt(value: str) -> str:
    """The same TXT text as two strings, as a DNS host may publish a long record."""
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, value)
    text = b"".join(rdata.strings).decode()  # type: ignore[attr-defined]
    parts = [text[:10]] + [text[i : i + 250] for i in range(10, len(text), 250)]
    return " ".join(f'"{p}"' for p in parts)


async def _expected(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> list[dict[str, Any]]:
    await make_domain("example.org")
    r = await client.post("/api/v1/domains/example.org/dkim", headers=admin.headers)
    assert r.status_code == 201, r.text
    r = await client.get(URL, headers=admin.headers)
    assert r.status_code == 200, r.text
    records: list[dict[str, Any]] = r.json()
    return records


def _one(records: list[dict[str, Any]], type_: str, prefix: str = "") -> dict[str, Any]:
    return next(r for r in records if r["type"] == type_ and r["name"].startswith(prefix))


async def test_check_says_ok_different_missing_and_error(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, dns_server: LoopbackDns
) -> None:
    records = await _expected(client, admin, make_domain)
    mx = _one(records, "MX", "example.org.")
    spf = next(
        r for r in records if r["type"] == "TXT" and "spf1" in r["value"] and r["name"] == "example.org."
    )
    dkim = _one(records, "TXT", "dkim._domainkey.")
    dmarc = _one(records, "TXT", "_dmarc.")
    # MX as published, in other letters; SPF different; DKIM split into two strings; DMARC
    # refused by the server; the rest missing.
    dns_server.zone[(mx["name"], "MX")] = [mx["value"].upper()]
    dns_server.zone[(spf["name"], "TXT")] = ['"v=spf1 -all"', '"google-site-verification=x"']
    dns_server.zone[(dkim["name"], "TXT")] = [_split_txt(dkim["value"])]
    dns_server.servfail.add(dmarc["name"])
    r = await client.get(URL + "/check", headers=admin.headers)
    assert r.status_code == 200, r.text
    checks = {(c["name"], c["type"], c["expected"]): c for c in r.json()}
    assert len(checks) == len(records)  # one check per record to publish
    got = checks[(mx["name"], "MX", mx["value"])]
    assert got["status"] == "ok", got
    assert [f.lower() for f in got["found"]] == [mx["value"].lower()]
    got = checks[(spf["name"], "TXT", spf["value"])]
    assert got["status"] == "different", got
    assert sorted(got["found"]) == ['"google-site-verification=x"', '"v=spf1 -all"']
    assert checks[(dkim["name"], "TXT", dkim["value"])]["status"] == "ok"
    got = checks[(dmarc["name"], "TXT", dmarc["value"])]
    assert got["status"] == "error", got
    assert got["detail"], got
    others = [c for k, c in checks.items() if k[0] not in (mx["name"], dkim["name"], dmarc["name"])]
    assert all(c["status"] == "missing" and c["found"] == [] for c in others), others
    # It really asked the server named by the setting, for every record.
    assert {(r["name"], r["type"]) for r in records} <= set(dns_server.questions)


async def test_a_name_with_other_types_only_is_missing(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, dns_server: LoopbackDns
) -> None:
    records = await _expected(client, admin, make_domain)
    mx = _one(records, "MX", "example.org.")
    dns_server.zone[(mx["name"], "A")] = ["192.0.2.1"]  # the name exists, no MX
    r = await client.get(URL + "/check", headers=admin.headers)
    got = next(c for c in r.json() if c["type"] == "MX" and c["name"] == mx["name"])
    assert got["status"] == "missing", got
    assert got["found"] == [], got


async def test_validation(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> None:
    await make_domain("example.org")
    r = await client.get("/api/v1/domains/not a domain/dns/check", headers=admin.headers)
    problem(r, 422, "invalid_params")
    r = await client.get("/api/v1/domains/nowhere.example/dns/check", headers=admin.headers)
    problem(r, 404, "not_found")


async def test_authorisation(
    client: httpx.AsyncClient, make_user: Any, make_domain: Any, admin: Actor
) -> None:
    await make_domain("example.org")
    manager = await make_user("boss@example.org", manages=("example.org",))
    stranger = await make_user("carol@other.example", manages=("other.example",))
    user = await make_user("alice@example.org")
    assert (await client.get(URL + "/check", headers=manager.headers)).status_code == 200
    r = await client.get(URL + "/check", headers=stranger.headers)
    assert r.status_code in (403, 404), r.text
    r = await client.get(URL + "/check", headers=user.headers)
    assert r.status_code in (403, 404), r.text
    problem(await client.get(URL + "/check"), 401, "unauthenticated")


async def test_over_json_rpc_and_xml_rpc(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, make_user: Any
) -> None:
    await make_domain("example.org")
    reply = await jsonrpc(client, "admin.dns.check", {"domain": "example.org"}, headers=admin.headers)
    assert {c["status"] for c in reply["result"]} == {"missing"}
    reply = await jsonrpc(client, "admin.dns.check", {"domain": "-bad-"}, headers=admin.headers)
    assert reply["error"]["data"]["code"] == "invalid_params", reply
    result = await xmlrpc_call(client, "admin.dns.check", {"domain": "example.org"}, headers=admin.headers)
    assert result
    assert all(c["status"] == "missing" for c in result)
    with pytest.raises(xmlrpc.client.Fault) as info:
        await xmlrpc_call(client, "admin.dns.check", {"domain": "-bad-"}, headers=admin.headers)
    assert fault_code(info.value) == "invalid_params"
    user = await make_user("alice@example.org")
    reply = await jsonrpc(client, "admin.dns.check", {"domain": "example.org"}, headers=user.headers)
    assert reply["error"]["data"]["code"] in ("forbidden", "not_found"), reply
