"""XCLIENT (Postfix's XCLIENT_README) on the SMTP and submission listeners.

A trusted proxy (``smtp_trusted_proxies``: here 127.0.0.1 only) names its client, and that
client's address is what the ``Received`` line, the guard and the rate limits see; on the
submission listener ``LOGIN`` names the user nginx authenticated. Anyone else (a client on
127.0.0.2, outside the trusted network) gets ``550 5.7.0``. The clients are smtplib sending
XCLIENT themselves, and a real nginx mail proxy (``xclient on``) in front of submission.
"""

from __future__ import annotations

import asyncio
import signal
import smtplib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.frontends.smtp.xclient import XClientError, networks, parse, trusted
from mailroom.web import build_app
from tests.conftest import Actor
from tests.mailhelpers import message
from tests.mta.test_nginx import MAIL_MODULE, _start_nginx, free_port, needs_nginx
from tests.rpc.conftest import serve
from tests.smtp.test_trace_headers import TRACE, ids_of, raw_of

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"smtp_trusted_proxies": ["127.0.0.1/32"]}


@pytest.fixture
async def users(make_user: Callable[..., Awaitable[Actor]]) -> tuple[Actor, Actor]:
    return await make_user("alice@example.org", password=PASSWORD), await make_user("carol@example.org")


@pytest.fixture
async def submission(mailroom: Mailroom) -> AsyncIterator[Listeners]:
    running = await start_submission(mailroom, bind=("127.0.0.1", 0))
    try:
        yield running
    finally:
        await running.close()


def _connect(port: int, source: str = "127.0.0.1") -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0))


def test_parse_reads_xtext_and_unknown_values() -> None:
    got = parse(
        "ADDR=IPV6:2001:db8::1 PORT=4711 NAME=[UNAVAILABLE] HELO=a.example LOGIN=ann+40x.org proto=esmtp"
    )
    assert (got.addr, got.port, got.name, got.helo, got.login, got.proto) == (
        "2001:db8::1",
        4711,
        "",
        "a.example",
        "ann@x.org",
        "ESMTP",
    )
    for bad in ("", "FOO=1", "ADDR=not-an-ip", "PORT=70000", "PROTO=UUCP", "HELO=a<b", "ADDR"):
        with pytest.raises(XClientError) as caught:
            parse(bad)
        assert caught.value.reply.startswith("501 5.5.4")
    allowed = networks(["127.0.0.1/32", "10.0.0.0/8"])
    assert trusted("10.1.2.3", allowed)
    assert trusted("::ffff:127.0.0.1", allowed)
    assert not trusted("127.0.0.2", allowed)
    assert not trusted(None, allowed)
    assert not trusted("x", allowed)
    assert not trusted("127.0.0.1", networks([]))


async def test_trusted_proxy_names_the_client_of_an_inbound_message(
    mailroom: Mailroom, listeners: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    alice, _ = users

    def send() -> tuple[str, tuple[int, bytes], tuple[int, bytes]]:
        conn = _connect(listeners.ports["smtp"])
        try:
            conn.ehlo("proxy.test")
            advertised = conn.ehlo_resp.decode() if conn.ehlo_resp else ""
            xclient = conn.docmd("XCLIENT", "ADDR=192.0.2.7 PORT=40000 NAME=client.example HELO=x PROTO=SMTP")
            conn.ehlo("client.example")  # EHLO again after the new greeting, as the README says
            conn.sendmail("bob@example.net", ["alice@example.org"], message())
            again = conn.docmd("XCLIENT", "ADDR=192.0.2.8")  # still the proxy's connection
            return advertised, xclient, again
        finally:
            conn.quit()

    advertised, xclient, again = await asyncio.to_thread(send)
    assert "XCLIENT ADDR PORT NAME HELO LOGIN PROTO" in advertised
    assert xclient[0] == 220
    assert xclient[1].startswith(mailroom.settings.hostname.encode())
    assert again[0] == 220
    [email_id] = await ids_of(mailroom, alice.principal.user_id or 0)
    match = TRACE.match(await raw_of(client, alice, email_id))
    assert match is not None
    assert (match["helo"], match["ip"], match["protocol"]) == (b"client.example", b"192.0.2.7", b"SMTP")


async def test_xclient_from_an_untrusted_client_is_refused(
    listeners: Listeners, submission: Listeners, users: tuple[Actor, Actor]
) -> None:
    def attempt(port: int, tls: bool) -> tuple[str, tuple[int, bytes]]:
        conn = _connect(port, source="127.0.0.2")
        try:
            conn.ehlo("client.test")
            if tls:  # submission wants STARTTLS before anything else (530 5.7.0 until then)
                assert conn.docmd("XCLIENT", "ADDR=192.0.2.7")[0] == 530
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                conn.starttls(context=context)
                conn.ehlo("client.test")
            advertised = conn.ehlo_resp.decode() if conn.ehlo_resp else ""
            return advertised, conn.docmd("XCLIENT", "ADDR=192.0.2.7 LOGIN=alice@example.org")
        finally:
            conn.quit()

    for port, tls in ((listeners.ports["smtp"], False), (submission.ports["submission"], True)):
        advertised, reply = await asyncio.to_thread(attempt, port, tls)
        assert "XCLIENT" not in advertised
        assert reply[0] == 550
        assert reply[1].startswith(b"5.7.0")


async def test_xclient_refused_inside_a_transaction_and_for_bad_attributes(
    listeners: Listeners, users: tuple[Actor, Actor]
) -> None:
    def attempt() -> list[tuple[int, bytes]]:
        conn = _connect(listeners.ports["smtp"])
        try:
            conn.ehlo("proxy.test")
            bad = conn.docmd("XCLIENT", "ADDR=300.1.1.1")
            conn.mail("bob@example.net")
            busy = conn.docmd("XCLIENT", "ADDR=192.0.2.7")
            return [bad, busy]
        finally:
            conn.quit()

    bad, busy = await asyncio.to_thread(attempt)
    assert bad[0] == 501
    assert busy[0] == 503


async def test_submission_xclient_login_sends_as_that_user_with_the_client_address(
    mailroom: Mailroom, submission: Listeners, client: httpx.AsyncClient, users: tuple[Actor, Actor]
) -> None:
    _, carol = users
    port = submission.ports["submission"]

    def send() -> dict[str, Any]:
        out: dict[str, Any] = {}
        conn = _connect(port)
        try:
            conn.ehlo("proxy.test")
            out["before"] = conn.mail("alice@example.org")  # no LOGIN yet: authentication required
            out["unknown"] = conn.docmd("XCLIENT", "LOGIN=nobody@example.org")
            out["xclient"] = conn.docmd(
                "XCLIENT", "ADDR=198.51.100.9 LOGIN=Alice@Example.org NAME=laptop.example"
            )
            conn.ehlo("laptop.example")
            out["not_hers"] = conn.mail("carol@example.org")
            conn.rset()
            conn.sendmail("alice@example.org", ["carol@example.org"], message(sender="alice@example.org"))
        finally:
            conn.quit()
        return out

    out = await asyncio.to_thread(send)
    assert out["before"][0] == 530
    assert out["unknown"][0] == 535
    assert out["xclient"][0] == 220
    assert out["not_hers"][0] == 553
    [email_id] = await ids_of(mailroom, carol.principal.user_id or 0)
    match = TRACE.match(await raw_of(client, carol, email_id))
    assert match is not None
    assert (match["helo"], match["ip"], match["protocol"]) == (b"laptop.example", b"198.51.100.9", b"ESMTPSA")


# -- through a real nginx mail proxy -------------------------------------------------------


def nginx_smtp_conf(prefix: Path, http_url: str, port: int) -> str:
    return f"""
load_module {MAIL_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
mail {{
    server_name mail.example.org;
    auth_http {http_url.removeprefix("http://")}/internal/auth/email;
    proxy_pass_error_message on;
    xclient on;
    server {{ listen 127.0.0.1:{port}; protocol smtp; smtp_auth plain login; }}
}}
"""


@needs_nginx
async def test_nginx_mail_proxy_passes_the_client_and_login_by_xclient(
    mailroom: Mailroom,
    client: httpx.AsyncClient,
    users: tuple[Actor, Actor],
    tmp_path: Path,
    settings_overrides: dict[str, Any],
) -> None:
    _, carol = users
    running = await start_submission(mailroom, bind=("127.0.0.1", 0))
    # auth_http names the back-end: this test's submission listener.
    mailroom.settings.proxy_smtp_backend = f"127.0.0.1:{running.ports['submission']}"
    try:
        async with serve(build_app(mailroom)) as url:
            port = free_port()
            proc = await asyncio.to_thread(
                _start_nginx, tmp_path, nginx_smtp_conf(tmp_path, url, port), (port,)
            )
            try:

                def session() -> tuple[Any, Any]:
                    conn = _connect(port, source="127.0.0.2")
                    try:
                        conn.ehlo("laptop.example")
                        try:
                            conn.login("alice@example.org", "wrong password")
                            wrong: Any = None
                        except smtplib.SMTPAuthenticationError as error:
                            wrong = (error.smtp_code, error.smtp_error)
                    finally:
                        conn.close()
                    conn = _connect(port, source="127.0.0.2")
                    try:
                        conn.ehlo("laptop.example")
                        conn.login("alice@example.org", PASSWORD)
                        refused = conn.sendmail(
                            "alice@example.org", ["carol@example.org"], message(sender="alice@example.org")
                        )
                    finally:
                        conn.quit()
                    return wrong, refused

                wrong, refused = await asyncio.to_thread(session)
            finally:
                proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(proc.wait, 15)
    finally:
        await running.close()
    assert wrong is not None, "a wrong password must be refused"
    assert wrong[0] == 535, wrong
    assert refused == {}
    [email_id] = await ids_of(mailroom, carol.principal.user_id or 0)
    match = TRACE.match(await raw_of(client, carol, email_id))
    assert match is not None
    # The client's own address (127.0.0.2), not nginx's (127.0.0.1), and its HELO.
    assert (match["helo"], match["ip"], match["protocol"]) == (b"laptop.example", b"127.0.0.2", b"ESMTPSA")


def _auth_as(port: int, addr: str, password: str) -> int:
    """AUTH on submission after the trusted proxy named client ``addr`` (STARTTLS first)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with _connect(port) as conn:
        conn.ehlo("proxy.test")
        conn.starttls(context=context)
        conn.ehlo("proxy.test")
        assert conn.docmd("XCLIENT", f"ADDR={addr}")[0] == 220
        conn.ehlo("client.test")
        conn.user, conn.password = "alice@example.org", password
        try:
            code, _ = conn.auth("PLAIN", conn.auth_plain)
        except smtplib.SMTPAuthenticationError as error:
            code = error.smtp_code
        return int(code)


async def test_the_guard_counts_failures_against_the_client_xclient_names(
    submission: Listeners, users: tuple[Actor, Actor]
) -> None:
    port = submission.ports["submission"]
    codes = [await asyncio.to_thread(_auth_as, port, "203.0.113.5", f"wrong {i}") for i in range(8)]
    assert codes[0] == 535
    assert codes[-1] == 454, codes  # that client is locked out ...
    assert await asyncio.to_thread(_auth_as, port, "203.0.113.5", PASSWORD) == 454
    # ... while another client of the same proxy logs in: the guard did not count the proxy.
    assert await asyncio.to_thread(_auth_as, port, "198.51.100.7", PASSWORD) == 235
