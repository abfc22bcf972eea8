"""nginx's mail proxy (Debian's nginx with its mail module) asks /internal/auth/email.

A real nginx on loopback proxies IMAP and POP3; after auth_http says OK it logs in to the
back-end mailroom named (here a stand-in IMAP/POP3 server in the test that records what
reaches it: mailroom's own IMAP/POP3 listeners are another issue's work). The clients are
Python's imaplib and poplib.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import poplib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.web import build_app
from tests.mailhelpers import create_user
from tests.rpc.conftest import serve

pytestmark = pytest.mark.anyio

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MAIL_MODULE = Path("/usr/lib/nginx/modules/ngx_mail_module.so")
PASSWORD = "correct horse battery staple"

needs_nginx = pytest.mark.skipif(
    not (Path(NGINX).exists() and MAIL_MODULE.exists()) and os.environ.get("CI") != "true",
    reason="nginx with the mail module is not installed (.ci/run installs it)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    """A stand-in IMAP and POP3 back-end: records the logins nginx makes on it."""

    imap_port: int = field(default_factory=free_port)
    pop3_port: int = field(default_factory=free_port)
    logins: list[tuple[str, str, str]] = field(default_factory=list)

    async def imap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK stand-in IMAP ready\r\n")
        while line := await reader.readline():
            words: list[str] = []
            # nginx sends the credentials as literals: read each {n} after a continuation.
            while line.rstrip().endswith(b"}"):
                head, _, size = line.rstrip()[:-1].rpartition(b"{")
                words.extend(head.decode().split())
                writer.write(b"+ go ahead\r\n")
                await writer.drain()
                words.append((await reader.readexactly(int(size))).decode())
                line = await reader.readline()
            words.extend(line.decode().split())
            tag, command = words[0], words[1].upper()
            if command == "LOGIN":
                self.logins.append(("imap", words[2], words[3]))
                writer.write(f"{tag} OK LOGIN completed\r\n".encode())
            elif command == "LOGOUT":
                writer.write(f"* BYE\r\n{tag} OK LOGOUT completed\r\n".encode())
                await writer.drain()
                break
            else:
                writer.write(f"{tag} OK {command} completed\r\n".encode())
            await writer.drain()
        writer.close()

    async def pop3(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+OK stand-in POP3 ready\r\n")
        user = ""
        while line := await reader.readline():
            command, _, arg = line.decode().rstrip("\r\n").partition(" ")
            if command.upper() == "USER":
                user = arg
            elif command.upper() == "PASS":
                self.logins.append(("pop3", user, arg))
            elif command.upper() == "QUIT":
                writer.write(b"+OK bye\r\n")
                await writer.drain()
                break
            writer.write(b"+OK\r\n")
            await writer.drain()
        writer.close()


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def settings_overrides(backend: Backend) -> dict[str, Any]:
    return {
        "proxy_imap_backend": f"127.0.0.1:{backend.imap_port}",
        "proxy_pop3_backend": f"127.0.0.1:{backend.pop3_port}",
        "proxy_wait_attempts": 1,
    }


@dataclass
class Nginx:
    imap_port: int
    pop3_port: int
    log: Path


def nginx_conf(prefix: Path, http_url: str, imap_port: int, pop3_port: int) -> str:
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
    server {{ listen 127.0.0.1:{imap_port}; protocol imap; imap_auth plain login; }}
    server {{ listen 127.0.0.1:{pop3_port}; protocol pop3; pop3_auth plain; }}
}}
"""


def _start_nginx(prefix: Path, conf: str, ports: tuple[int, int]) -> subprocess.Popen[bytes]:
    (prefix / "nginx.conf").write_text(conf)
    errors = prefix / "error.log"
    proc = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(errors)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {errors.read_text() if errors.exists() else ''}")
        try:
            for port in ports:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError("nginx did not start")


@pytest.fixture
async def nginx(mailroom: Mailroom, backend: Backend, tmp_path: Path) -> AsyncIterator[Nginx]:
    imap_server = await asyncio.start_server(backend.imap, "127.0.0.1", backend.imap_port)
    pop3_server = await asyncio.start_server(backend.pop3, "127.0.0.1", backend.pop3_port)
    async with serve(build_app(mailroom)) as url:
        ports = (free_port(), free_port())
        proc = await asyncio.to_thread(_start_nginx, tmp_path, nginx_conf(tmp_path, url, *ports), ports)
        try:
            yield Nginx(ports[0], ports[1], tmp_path / "error.log")
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 15)
    for server in (imap_server, pop3_server):
        server.close()
        await server.wait_closed()


def imap_login(port: int, user: str, password: str) -> str:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=15)
    try:
        typ, data = client.login(user, password)
        client.logout()
        return f"{typ} {data[0].decode()}"
    except imaplib.IMAP4.error as error:
        client.shutdown()
        return f"NO {error}"


def pop3_login(port: int, user: str, password: str) -> str:
    client = poplib.POP3("127.0.0.1", port, timeout=15)
    try:
        client.user(user)
        reply = client.pass_(password).decode()
        client.quit()
        return reply
    except poplib.error_proto as error:
        client.close()
        return str(error)


@needs_nginx
async def test_imap_through_nginx_logs_in_to_the_backend_auth_http_names(
    mailroom: Mailroom, nginx: Nginx, backend: Backend
) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    reply = await asyncio.to_thread(imap_login, nginx.imap_port, "alice@example.org", PASSWORD)
    assert reply.startswith("OK")
    assert backend.logins == [("imap", "alice@example.org", PASSWORD)]


@needs_nginx
async def test_imap_wrong_password_is_refused_by_nginx_with_our_message(
    mailroom: Mailroom, nginx: Nginx, backend: Backend
) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    reply = await asyncio.to_thread(imap_login, nginx.imap_port, "alice@example.org", "not the password")
    assert reply.startswith("NO")
    assert "Invalid login or password" in reply
    assert backend.logins == []


@needs_nginx
async def test_pop3_through_nginx_and_the_enable_pop_flag(
    mailroom: Mailroom, nginx: Nginx, backend: Backend
) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    await create_user(mailroom, "nopop@example.org", password=PASSWORD, enable_pop=False)
    assert (await asyncio.to_thread(pop3_login, nginx.pop3_port, "alice@example.org", PASSWORD)).startswith(
        "+OK"
    )
    refused = await asyncio.to_thread(pop3_login, nginx.pop3_port, "nopop@example.org", PASSWORD)
    assert refused.startswith("b'-ERR") or refused.startswith("-ERR")
    assert "disabled" in refused
    assert backend.logins == [("pop3", "alice@example.org", PASSWORD)]


def test_nginx_is_installed_in_ci() -> None:
    if os.environ.get("CI") == "true":
        assert Path(NGINX).exists()
        assert MAIL_MODULE.exists(), "CI must install libnginx-mod-mail"
