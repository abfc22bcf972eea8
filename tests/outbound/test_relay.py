"""The smarthost connection: AUTH with relay_username/relay_password, implicit TLS and STARTTLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from pydantic import SecretStr

from mailroom.bootstrap import Mailroom
from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from mailroom.frontends.smtp.certificate import generate_self_signed
from mailroom.store import outbound as store
from mailroom.store.outbound import QueuedRecipient
from tests.mailhelpers import message
from tests.outbound.conftest import Sink

pytestmark = pytest.mark.anyio


@pytest.fixture
def relay_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "relay-cert.pem", tmp_path / "relay-key.pem"
    generate_self_signed(cert, key, "relay.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class Credentials:
    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.seen.append((data.login, data.password))
        ok = data.login == b"relayuser" and data.password == b"relaypass"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


async def send_one(mailroom: Mailroom) -> int:
    result = await submit(
        mailroom.runtime,
        message(sender="x@example.org", to="bob@remote.example"),
        mail_from="x@example.org",
        recipients=["bob@remote.example"],
        source="api",
        sender_user_id=None,
    )
    assert result.queue_id is not None
    return result.queue_id


async def recipient(mailroom: Mailroom, queue_id: int) -> QueuedRecipient:
    async with mailroom.runtime.db.read() as tx:
        [row] = await store.recipients(tx, queue_id)
    return row


class TestAuthOverStarttls:
    @pytest.fixture
    def settings_overrides(self, relay_socket: socket.socket) -> dict[str, Any]:
        return {
            "relay_host": "127.0.0.1",
            "relay_port": relay_socket.getsockname()[1],
            "relay_tls": "starttls",
            "relay_verify_tls": False,
            "relay_username": "relayuser",
            "relay_password": "relaypass",
        }

    @pytest.fixture
    async def relay(
        self, relay_socket: socket.socket, tls_context: ssl.SSLContext
    ) -> AsyncIterator[tuple[Sink, Credentials]]:
        sink, credentials = Sink(), Credentials()
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(
                sink,
                hostname="relay.test",
                tls_context=tls_context,
                require_starttls=True,
                auth_required=True,
                authenticator=credentials,
            ),
            sock=relay_socket,
        )
        try:
            yield sink, credentials
        finally:
            server.close()
            await server.wait_closed()

    async def test_starttls_then_auth(
        self, mailroom: Mailroom, queue: OutboundQueue, relay: tuple[Sink, Credentials]
    ) -> None:
        sink, credentials = relay
        queue_id = await send_one(mailroom)
        await queue.run_once()
        assert credentials.seen == [(b"relayuser", b"relaypass")]
        assert [m.rcpt_tos for m in sink.messages] == [["bob@remote.example"]]
        assert (await recipient(mailroom, queue_id)).status == "delivered"

    async def test_a_wrong_relay_password_holds_the_mail(
        self, mailroom: Mailroom, queue: OutboundQueue, relay: tuple[Sink, Credentials]
    ) -> None:
        mailroom.runtime.settings = mailroom.settings.model_copy(
            update={"relay_password": SecretStr("wrong")}
        )
        queue_id = await send_one(mailroom)
        await queue.run_once()
        row = await recipient(mailroom, queue_id)
        assert row.status == "deferred"
        assert row.last_reply.startswith("451 4.7.0 authentication at 127.0.0.1:")
        assert "535" in row.last_reply
        assert relay[0].messages == []


class TestImplicitTls:
    @pytest.fixture
    def settings_overrides(self, relay_socket: socket.socket) -> dict[str, Any]:
        return {
            "relay_host": "127.0.0.1",
            "relay_port": relay_socket.getsockname()[1],
            "relay_tls": "tls",
            "relay_verify_tls": False,
        }

    @pytest.fixture
    async def relay(self, relay_socket: socket.socket, tls_context: ssl.SSLContext) -> AsyncIterator[Sink]:
        sink = Sink()
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(sink, hostname="relay.test"), sock=relay_socket, ssl=tls_context
        )
        try:
            yield sink
        finally:
            server.close()
            await server.wait_closed()

    async def test_implicit_tls(self, mailroom: Mailroom, queue: OutboundQueue, relay: Sink) -> None:
        queue_id = await send_one(mailroom)
        await queue.run_once()
        assert [m.rcpt_tos for m in relay.messages] == [["bob@remote.example"]]
        assert (await recipient(mailroom, queue_id)).status == "delivered"


class TestVerifiedTls:
    @pytest.fixture
    def settings_overrides(self, relay_socket: socket.socket) -> dict[str, Any]:
        return {
            "relay_host": "127.0.0.1",
            "relay_port": relay_socket.getsockname()[1],
            "relay_tls": "tls",
        }

    @pytest.fixture
    async def relay(self, relay_socket: socket.socket, tls_context: ssl.SSLContext) -> AsyncIterator[Sink]:
        sink = Sink()
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(sink, hostname="relay.test"), sock=relay_socket, ssl=tls_context
        )
        try:
            yield sink
        finally:
            server.close()
            await server.wait_closed()

    async def test_an_untrusted_certificate_is_refused_and_retried(
        self, mailroom: Mailroom, queue: OutboundQueue, relay: Sink
    ) -> None:
        queue_id = await send_one(mailroom)
        await queue.run_once()
        row = await recipient(mailroom, queue_id)
        assert row.status == "deferred"
        assert "certificate" in row.last_reply.lower()
        assert relay.messages == []
