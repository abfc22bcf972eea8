"""rspamd's verdicts at ingest, from a real rspamd (Debian's) on loopback.

rspamd is started once for the module with its own folder (tests/mta/daemons.py): its DNS
is a loopback server holding the test domains' SPF, DMARC, MX and PTR records, so SPF and
DMARC give real results and nothing is asked off the machine. Mail reaches mailroom's SMTP
listener through XCLIENT from a trusted proxy (127.0.0.1), which names the outside client
address rspamd should judge (192.0.2.10 is the SPF-allowed host of sender.test; 198.51.100.66
is not).
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.delivery.rspamd import Verdict, authentication_results, strip_filter_headers
from mailroom.frontends.smtp import Listeners
from tests.conftest import Actor
from tests.mailhelpers import lmtp_send, message
from tests.mta.daemons import GTUBE, LoopbackDns, Rspamd, free_port, needs_rspamd, records_for, run_rspamd
from tests.smtp.test_trace_headers import ids_of, raw_of

pytestmark = [pytest.mark.anyio, needs_rspamd]

ALLOWED_IP = "192.0.2.10"
FORGING_IP = "198.51.100.66"


def dns_records() -> dict[tuple[str, str], list[str]]:
    records = records_for(
        "sender.test", {"spf": f"v=spf1 ip4:{ALLOWED_IP} -all", "dmarc": "v=DMARC1; p=reject"}
    )
    records |= records_for(
        "careful.test", {"spf": f"v=spf1 ip4:{ALLOWED_IP} -all", "dmarc": "v=DMARC1; p=quarantine"}
    )
    records |= {
        ("10.2.0.192.in-addr.arpa", "PTR"): ["mx.sender.test."],
        ("mx.sender.test", "A"): [ALLOWED_IP],
        ("sender.test", "MX"): ["10 mx.sender.test."],
        ("sender.test", "A"): [ALLOWED_IP],
        ("careful.test", "MX"): ["10 mx.sender.test."],
        ("careful.test", "A"): [ALLOWED_IP],
    }
    return records


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rspamd]:
    dns = LoopbackDns(dns_records())
    try:
        with run_rspamd(tmp_path_factory.mktemp("rspamd"), dns) as daemon:
            yield daemon
    finally:
        dns.close()


@pytest.fixture
def settings_overrides(rspamd: Rspamd) -> dict[str, Any]:
    return {"rspamd_url": rspamd.url, "smtp_trusted_proxies": ["127.0.0.1/32"]}


@pytest.fixture
async def users(make_user: Callable[..., Awaitable[Actor]]) -> tuple[Actor, Actor]:
    return await make_user("alice@example.org", spam_threshold=1.0), await make_user("carol@example.org")


def clean(sender: str = "Ann <ann@sender.test>", headers: dict[str, str] | None = None) -> bytes:
    return message(
        sender=sender,
        to="Alice <alice@example.org>",
        subject="Lunch on Friday?",
        message_id="<lunch-1@sender.test>",
        body="Hello Alice,\r\nshall we have lunch on Friday at noon?\r\nAnn\r\n",
        headers={"MIME-Version": "1.0", "Content-Type": "text/plain; charset=utf-8", **(headers or {})},
    )


def send_via_proxy(
    port: int, client_ip: str, mail_from: str, recipients: list[str], raw: bytes, name: str = "[UNAVAILABLE]"
) -> tuple[int, bytes]:
    """One message as a trusted proxy hands it over: XCLIENT names the outside client (and
    its reverse name, when the proxy verified one)."""
    conn = smtplib.SMTP("127.0.0.1", port, timeout=60)
    try:
        conn.ehlo("proxy.test")
        assert conn.docmd("XCLIENT", f"ADDR={client_ip} NAME={name}")[0] == 220
        conn.ehlo("mx.sender.test")
        assert conn.mail(mail_from)[0] == 250
        for rcpt in recipients:
            assert conn.rcpt(rcpt)[0] == 250
        return conn.data(raw)
    finally:
        conn.quit()


async def stored(client: httpx.AsyncClient, mailroom: Mailroom, who: Actor) -> list[tuple[list[str], bytes]]:
    out = []
    for email_id in await ids_of(mailroom, who.principal.user_id or 0):
        r = await client.get(f"/api/v1/emails/{email_id}", headers=who.headers)
        assert r.status_code == 200, r.text
        out.append((list(r.json()["labels"]), await raw_of(client, who, email_id)))
    return out


def head(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode()


async def test_a_clean_message_gets_the_verdict_headers_and_each_mailbox_its_threshold(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, carol = users
    reply = await asyncio.to_thread(
        send_via_proxy,
        listeners.ports["smtp"],
        ALLOWED_IP,
        "ann@sender.test",
        ["alice@example.org", "carol@example.org"],
        clean(),
    )
    assert reply[0] == 250, reply
    [(carol_labels, carol_raw)] = await stored(client, mailroom, carol)
    [(alice_labels, _)] = await stored(client, mailroom, alice)
    headers = head(carol_raw)
    assert f"Authentication-Results: {mailroom.settings.hostname};" in headers
    assert "spf=pass smtp.mailfrom=ann@sender.test" in headers
    assert "dmarc=pass header.from=sender.test" in headers
    assert "X-Spam-Action: no action" in headers
    assert "X-Spam-Flag: NO" in headers
    score = float(headers.split("X-Spam-Score: ")[1].split("\r\n")[0])
    assert 1.0 <= score < 5.0, headers  # rspamd's real score for this message (HFILTER, no rDNS name)
    # The same verdict, two thresholds: carol's default 5 keeps it, alice's 1.0 calls it spam.
    assert carol_labels == ["inbox"]
    assert alice_labels == ["spam"]


async def test_the_reverse_name_xclient_gives_reaches_rspamd(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    _, carol = users
    reply = await asyncio.to_thread(
        send_via_proxy,
        listeners.ports["smtp"],
        ALLOWED_IP,
        "ann@sender.test",
        ["carol@example.org"],
        clean(),
        "mx.sender.test",
    )
    assert reply[0] == 250
    [(labels, raw)] = await stored(client, mailroom, carol)
    headers = head(raw)
    assert "HFILTER_HOSTNAME_UNKNOWN" not in headers  # rspamd knew the client's name
    assert "R_SPF_ALLOW" in headers
    assert labels == ["inbox"]


async def test_gtube_is_refused_at_data(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    _, carol = users
    raw = message(sender="ann@sender.test", to="carol@example.org", body=f"{GTUBE}\r\n")

    def send() -> tuple[int, bytes]:
        try:
            return send_via_proxy(
                listeners.ports["smtp"], ALLOWED_IP, "ann@sender.test", ["carol@example.org"], raw
            )
        except smtplib.SMTPDataError as error:
            return error.smtp_code, error.smtp_error

    code, text = await asyncio.to_thread(send)
    assert (code, text) == (554, b"5.7.1 Message refused as spam")
    assert await stored(client, mailroom, carol) == []


async def test_dmarc_reject_is_refused_and_quarantine_goes_to_spam(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    _, carol = users

    def send(sender: str) -> tuple[int, bytes]:
        try:
            return send_via_proxy(
                listeners.ports["smtp"], FORGING_IP, sender, ["carol@example.org"], clean(sender=sender)
            )
        except smtplib.SMTPDataError as error:
            return error.smtp_code, error.smtp_error

    code, text = await asyncio.to_thread(send, "ann@sender.test")
    assert code == 550
    assert text.startswith(b"5.7.1 Message refused: DMARC")
    assert await stored(client, mailroom, carol) == []
    code, _ = await asyncio.to_thread(send, "bob@careful.test")
    assert code == 250
    [(labels, raw)] = await stored(client, mailroom, carol)
    assert labels == ["spam"]  # quarantine: spam whatever carol's threshold says
    headers = head(raw)
    assert "spf=fail smtp.mailfrom=bob@careful.test" in headers
    assert "dmarc=fail (p=quarantine) header.from=careful.test" in headers
    assert "X-Spam-Flag: YES" in headers
    assert "X-Spam-Score" not in headers


async def test_forged_filter_headers_of_untrusted_hosts_are_removed(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, _ = users
    forged = clean(
        headers={
            "Authentication-Results": "mail.example.org;\r\n\tdkim=pass header.d=sender.test",
            "X-Spam-Score": "-50",
            "X-Spam-Flag": "NO",
            "X-Rspamd-Score": "-50",
        }
    )
    reply = await asyncio.to_thread(
        send_via_proxy, listeners.ports["smtp"], ALLOWED_IP, "ann@sender.test", ["alice@example.org"], forged
    )
    assert reply[0] == 250
    [(labels, raw)] = await stored(client, mailroom, alice)
    headers = head(raw)
    assert "-50" not in headers
    assert "dkim=pass" not in headers
    assert headers.count("Authentication-Results:") == 1
    assert labels == ["spam"]  # alice's threshold 1.0 against rspamd's own score


async def test_trusted_hosts_keep_their_headers_and_are_not_scanned_again(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    _, carol = users
    mailroom.settings.spam_trusted_hosts = ["127.0.0.1/32"]  # Postfix with rspamd as its milter
    raw = clean(headers={"Authentication-Results": "mx.example.org; dmarc=pass", "X-Spam-Score": "9.5"})
    out = await asyncio.to_thread(
        lmtp_send, listeners.ports["lmtp"], "ann@sender.test", ["carol@example.org"], raw
    )
    assert out.data[0][0] == 250
    [(labels, stored_raw)] = await stored(client, mailroom, carol)
    headers = head(stored_raw)
    assert "Authentication-Results: mx.example.org; dmarc=pass" in headers
    assert "X-Spam-Action" not in headers  # not asked again
    assert labels == ["spam"]


@pytest.mark.parametrize("policy", ["tempfail", "accept"])
async def test_rspamd_down_follows_the_failure_policy(
    mailroom: Mailroom,
    listeners: Listeners,
    client: httpx.AsyncClient,
    users: tuple[Actor, Actor],
    policy: str,
) -> None:
    _, carol = users
    mailroom.settings.rspamd_url = f"http://127.0.0.1:{free_port()}"  # nobody listens
    mailroom.settings.rspamd_failure = policy  # type: ignore[assignment]
    out = await asyncio.to_thread(
        lmtp_send, listeners.ports["lmtp"], "ann@sender.test", ["carol@example.org"], clean()
    )
    if policy == "tempfail":
        assert out.data[0][0] == 451
        assert "4.7.1" in out.data[0][1]
        assert await stored(client, mailroom, carol) == []
    else:
        assert out.data[0][0] == 250
        [(_, raw)] = await stored(client, mailroom, carol)
        assert "X-Spam-Status: unscanned" in head(raw)


def test_headers_from_a_verdict_and_stripping_only_touches_the_header_block() -> None:
    verdict = Verdict.from_json(
        {
            "score": 3.5,
            "required_score": 15,
            "action": "no action",
            "symbols": {
                "R_SPF_SOFTFAIL": {"score": 0.5, "options": []},
                "R_DKIM_ALLOW": {"score": -0.2, "options": ["sender.test:s=mail"]},
                "DMARC_POLICY_ALLOW": {"score": -0.5, "options": ["sender.test", "none"]},
            },
        }
    )
    assert authentication_results(verdict, authserv_id="mx.example.org", mail_from="a@sender.test") == (
        "mx.example.org;\r\n\tdkim=pass header.d=sender.test;\r\n\tspf=softfail smtp.mailfrom=a@sender.test;"
        "\r\n\tdmarc=pass header.from=sender.test"
    )
    raw = (
        b"X-Spam-Flag: YES\r\nSubject: hi\r\nX-Rspamd-Score: 1\r\n\tfolded\r\n"
        b"\r\nX-Spam-Score: 5 stays in the body\r\n"
    )
    assert strip_filter_headers(raw) == b"Subject: hi\r\n\r\nX-Spam-Score: 5 stays in the body\r\n"


def test_rspamd_is_installed_in_ci() -> None:
    import os

    if os.environ.get("CI") == "true":
        assert Path("/usr/bin/rspamd").exists(), "CI must install rspamd"
