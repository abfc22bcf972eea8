"""GET /domains/{d}/dns tells the truth (issue 11 §7): records only for what is served, on the
ports it is reachable on, a warning for a placeholder host name or SMTP off port 25, and a
DMARC record that starts at p=none with reports."""

from __future__ import annotations

from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import httpx
import pytest

from tests.conftest import Actor

pytestmark = pytest.mark.anyio

URL = "/api/v1/domains/example.org/dns"


def txt(value: str) -> str:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, value)
    return b"".join(rdata.strings).decode()  # type: ignore[attr-defined]


async def records(client: httpx.AsyncClient, admin: Actor, make_domain: Any) -> list[dict[str, Any]]:
    await make_domain("example.org")
    r = await client.get(URL, headers=admin.headers)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()
    return result


async def test_the_reproduction_with_default_settings(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any
) -> None:
    found = await records(client, admin, make_domain)
    names = {(x["name"], x["type"]) for x in found}
    # No autoconfig/autodiscover without an HTTPS public_url.
    for name in ("autoconfig", "autodiscover"):
        assert not [n for n, _ in names if n.startswith(name + ".")], name
    assert not [n for n, _ in names if n.startswith("_autodiscover.")]
    # Every client listener (RFC 6186, RFC 8314) on the port it listens on, not a made-up
    # 587, 993 or 995.
    assert [(x["name"], x["value"]) for x in found if x["type"] == "SRV"] == [
        ("_imaps._tcp.example.org.", "0 1 2993 mail.example.org."),
        ("_imap._tcp.example.org.", "0 1 2143 mail.example.org."),
        ("_pop3s._tcp.example.org.", "0 1 2995 mail.example.org."),
        ("_pop3._tcp.example.org.", "0 1 2110 mail.example.org."),
        ("_submission._tcp.example.org.", "0 1 2587 mail.example.org."),
    ]
    # The MX names the placeholder host: it says so, and that port 25 is not where SMTP listens.
    (mx,) = [x for x in found if x["type"] == "MX"]
    assert mx["value"] == "10 mail.example.org."
    assert "Warning: mail.example.org is a placeholder: set the hostname setting" in mx["purpose"]
    assert (
        "Warning: other servers deliver only to port 25, and inbound SMTP is reachable on 2525"
        in mx["purpose"]
    )
    # DMARC for a new domain: monitoring, with aggregate reports to the domain's postmaster.
    (dmarc,) = [x for x in found if x["name"] == "_dmarc.example.org."]
    assert txt(dmarc["value"]) == "v=DMARC1; p=none; adkim=s; aspf=s; rua=mailto:postmaster@example.org"
    assert "tighten p= to quarantine, then reject" in dmarc["purpose"]
    # Reports stay in the domain: no authorisation record for another zone.
    assert not [x for x in found if "._report._dmarc." in x["name"]]
    # ... and nobody receives them yet: the helper says so until the address exists.
    assert "Warning: postmaster@example.org receives no mail here yet" in dmarc["purpose"]
    r = await client.post(
        "/api/v1/aliases",
        json={"address": "postmaster@example.org", "destinations": ["ops@elsewhere.example"]},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    now = (await client.get(URL, headers=admin.headers)).json()
    (dmarc,) = [x for x in now if x["name"] == "_dmarc.example.org."]
    assert "Warning" not in dmarc["purpose"]


@pytest.mark.parametrize(
    "settings_overrides",
    [{"hostname": "mail.mailhost.net", "public_smtp_port": 25, "public_submission_port": 587}],
)
async def test_public_ports_and_a_real_host_name(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any
) -> None:
    found = await records(client, admin, make_domain)
    (srv,) = [x for x in found if x["name"] == "_submission._tcp.example.org."]
    assert srv["value"] == "0 1 587 mail.mailhost.net."
    (mx,) = [x for x in found if x["type"] == "MX"]
    assert mx["value"] == "10 mail.mailhost.net."
    assert "Warning" not in mx["purpose"]
    # The zone file says the same.
    zone = (await client.get(URL + "/zone", headers=admin.headers)).text
    assert "_submission._tcp  3600  IN  SRV  0 1 587 mail.mailhost.net.\n" in zone


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "hostname": "mail.mailhost.net",
            "submission_port": 0,
            "smtp_port": 0,
            "imap_port": 0,
            "imaps_port": 0,
            "pop3_port": 0,
            "pop3s_port": 0,
            "public_url": "https://mail.mailhost.net/",
        }
    ],
)
async def test_listeners_turned_off_are_not_advertised(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any
) -> None:
    found = await records(client, admin, make_domain)
    assert [(x["name"], x["type"]) for x in found] == [
        ("example.org.", "MX"),
        ("example.org.", "TXT"),
        ("_dmarc.example.org.", "TXT"),
    ]
    # With mailroom's own SMTP off, the MX is the MTA in front, which hands mail over LMTP.
    assert "LMTP" in found[0]["purpose"]


@pytest.mark.parametrize(
    ("settings_overrides", "expected"),
    [
        (
            {"dmarc_policy": "quarantine"},
            "v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:postmaster@example.org",
        ),
        (
            {"dmarc_policy": "reject", "dmarc_rua": "dmarc"},
            "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@example.org",
        ),
        ({"dmarc_rua": ""}, "v=DMARC1; p=none; adkim=s; aspf=s"),
        (
            {"dmarc_rua": "mailto:Reports@Reports.Example.net"},
            "v=DMARC1; p=none; adkim=s; aspf=s; rua=mailto:reports@reports.example.net",
        ),
    ],
)
async def test_dmarc_settings(
    client: httpx.AsyncClient, admin: Actor, make_domain: Any, expected: str
) -> None:
    found = await records(client, admin, make_domain)
    (dmarc,) = [x for x in found if x["name"] == "_dmarc.example.org."]
    assert txt(dmarc["value"]) == expected
