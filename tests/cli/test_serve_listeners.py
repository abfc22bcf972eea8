"""One server per port: ``mailroom serve`` binds every listener once, before it creates anything,
and hands the sockets to its workers.

The servers here are real ``python -m mailroom serve`` processes on loopback, each on ports of
its own (never the defaults, which other servers on the machine may hold).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mailroom.frontends.listeners import ListenError, bind_all
from mailroom.settings import Settings
from tests.conftest import FAST_ARGON2
from tests.mailhelpers import lmtp_send, message, smtp_send
from tests.processes import stop_group

MAIL_LISTENERS = ("smtp", "lmtp", "submission")


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            held.append(s)
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def _environment(database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env |= {"MAILROOM_MODE": "test", **{f"MAILROOM_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()}}
    env |= {
        "MAILROOM_POP3_PORT": "0",
        "MAILROOM_POP3S_PORT": "0",
        "MAILROOM_IMAP_PORT": "0",
        "MAILROOM_IMAPS_PORT": "0",
    }
    if database_url is not None:
        env["MAILROOM_DATABASE_URL"] = database_url
    return env


@dataclass
class Server:
    """A running ``mailroom serve``; its standard error is collected as it comes."""

    proc: subprocess.Popen[str]
    ports: dict[str, int]
    key: str = ""
    err: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def stderr(self) -> str:
        return "".join(self.err)


def _serve_command(data_dir: Path, ports: dict[str, int], workers: int) -> list[str]:
    return [
        sys.executable, "-m", "mailroom", "serve", "--data-dir", str(data_dir), "--workers", str(workers),
        "--port", str(ports["http"]), "--smtp-port", str(ports["smtp"]),
        "--lmtp-port", str(ports["lmtp"]), "--submission-port", str(ports["submission"]),
    ]  # fmt: skip


@contextlib.contextmanager
def serving(
    data_dir: Path,
    ports: dict[str, int],
    *,
    workers: int = 1,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """A server started and answering HTTP and LMTP; stopped (SIGTERM) at the end. ``env``:
    more settings (``MAILROOM_*``) for it."""
    proc = subprocess.Popen(
        _serve_command(data_dir, ports, workers),
        env=_environment(database_url) | (env or {}),
        cwd=data_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    server = Server(proc, ports)
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None
    assert stderr is not None
    reader = threading.Thread(target=lambda: server.err.extend(iter(stderr.readline, "")), daemon=True)
    reader.start()
    try:
        server.key = stdout.readline().strip()
        assert server.key.startswith("mr_"), f"no key on standard output: {server.key!r}\n{server.stderr()}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"mailroom serve exited with {proc.returncode}:\n{server.stderr()}"
            with contextlib.suppress(httpx.TransportError, OSError):
                httpx.get(f"{server.base}/health", timeout=2)
                with socket.create_connection(("127.0.0.1", ports["lmtp"]), timeout=5) as s:
                    s.settimeout(10)
                    if s.recv(100).startswith(b"220"):
                        break
            assert time.monotonic() < deadline, f"mailroom serve did not answer:\n{server.stderr()}"
            time.sleep(0.2)
        yield server
    finally:
        stop_group(proc, timeout=60)
        reader.join(timeout=10)
        stdout.close()
        stderr.close()


def _ports() -> dict[str, int]:
    return dict(zip(("http", *MAIL_LISTENERS), _free_ports(4), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("taken", ["smtp", "lmtp", "submission", "http"])
def test_a_second_server_on_a_taken_port_stops_before_creating_anything(tmp_path: Path, taken: str) -> None:
    """The second server shares one port with the first (its other ports are free): it exits
    non-zero at once, naming the port and the listener, with nothing on standard output (no
    admin key) and no data folder, database or secret made."""
    first_ports = _ports()
    with serving(tmp_path / "first", first_ports) as first:
        assert f"http://127.0.0.1:{first_ports['http']}" in first.stderr()
        second_ports = _ports() | {taken: first_ports[taken]}
        second_dir = tmp_path / "second"
        started = time.monotonic()
        done = subprocess.run(
            _serve_command(second_dir, second_ports, workers=2),
            env=_environment(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
        assert done.returncode == 1, (done.returncode, done.stderr)
        assert f"port {first_ports[taken]} is in use" in done.stderr
        assert f"cannot listen for {taken} on 127.0.0.1:{first_ports[taken]}" in done.stderr
        assert done.stdout == ""
        assert not second_dir.exists(), sorted(p.name for p in second_dir.iterdir())
        # "At once": the time it takes to start the command, far from a migration and a start.
        assert elapsed < 30, elapsed
        # The first server still has its ports and its mail.
        assert (
            httpx.get(
                f"{first.base}/api/v1/domains", headers={"Authorization": f"Bearer {first.key}"}
            ).status_code
            == 200
        )


@pytest.mark.slow
def test_two_workers_serve_every_listener_into_one_database(tmp_path: Path, database_url: str) -> None:
    """With --workers 2 the banner lists every listener, and 20 LMTP and SMTP deliveries, each
    on its own connection, are all accepted and all stored in the one database."""
    ports = _ports()
    data_dir = tmp_path / "data"
    with serving(data_dir, ports, workers=2, database_url=database_url) as server:
        banner = server.stderr()
        assert "with 2 worker(s)" in banner
        for name, port in ports.items():
            line = next((ln for ln in banner.splitlines() if ln.strip().startswith(name + " ")), "")
            assert line.endswith(f"127.0.0.1:{port}"), (name, banner)
        admin = {"Authorization": f"Bearer {server.key}"}
        with httpx.Client(base_url=f"{server.base}/api/v1", headers=admin, timeout=30) as api:
            assert api.post("/domains", json={"name": "example.org"}).status_code == 201
            r = api.post("/users", json={"email": "alice@example.org", "password": "correct horse battery"})
            assert r.status_code == 201, r.text
            for i in range(20):
                raw = message(subject=f"note {i}", message_id=f"<n{i}@example.net>")
                send = lmtp_send if i % 2 else smtp_send
                port = ports["lmtp"] if i % 2 else ports["smtp"]
                sent = send(port, "bob@example.net", ["alice@example.org"], raw)
                assert [code for code, _ in sent.data] == [250], (i, sent)
            r = api.post("/apikeys", json={"name": "alice", "owner": "alice@example.org"})
            assert r.status_code == 201, r.text
            alice = {"Authorization": f"Bearer {r.json()['key']}"}
            r = api.get("/threads", params={"label": "inbox", "limit": 100}, headers=alice)
            assert r.status_code == 200, r.text
            assert sorted(t["subject"] for t in r.json()["threads"]) == sorted(f"note {i}" for i in range(20))


# -- the listeners' registry, in process ----------------------------------------------------------


def _settings(tmp_path: Path, **ports: int) -> Settings:
    """Settings with these ports; POP3 and IMAP off unless given (their defaults may be taken here)."""
    off = {"pop3_port": 0, "pop3s_port": 0, "imap_port": 0, "imaps_port": 0}
    return Settings(data_dir=tmp_path, mode="test", **(off | ports))


def test_bind_all_binds_each_listener_once_without_reuseport(tmp_path: Path) -> None:
    http, smtp, lmtp = _free_ports(3)
    settings = _settings(tmp_path, port=http, smtp_port=smtp, lmtp_port=lmtp, submission_port=0)
    bound = bind_all(settings)
    try:
        assert list(bound.sockets) == ["http", "smtp", "lmtp"]  # port 0 switches submission off
        for sock in bound.sockets.values():
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        assert bound.banner() == [
            f"http  http://127.0.0.1:{http}",
            f"smtp  127.0.0.1:{smtp}",
            f"lmtp  127.0.0.1:{lmtp}",
        ]
        # Another socket, even one asking for SO_REUSEPORT, cannot take the port.
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError):
                other.bind(("127.0.0.1", smtp))
        with pytest.raises(ListenError, match=rf"^port {lmtp} is in use: cannot listen for lmtp"):
            bind_all(_settings(tmp_path, port=0, smtp_port=0, lmtp_port=lmtp, submission_port=0))
    finally:
        bound.close()


def test_bind_all_leaves_nothing_bound_when_one_port_fails(tmp_path: Path) -> None:
    http, smtp = _free_ports(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", smtp))
        holder.listen()
        settings = _settings(tmp_path, port=http, smtp_port=smtp, lmtp_port=0, submission_port=0)
        with pytest.raises(ListenError, match=rf"port {smtp} is in use: cannot listen for smtp"):
            bind_all(settings)
    # The HTTP port bound before the failure was let go.
    with socket.socket() as again:
        again.bind(("127.0.0.1", http))


def test_two_listeners_on_one_port_are_refused_by_name(tmp_path: Path) -> None:
    (port,) = _free_ports(1)
    settings = _settings(tmp_path, port=0, smtp_port=port, lmtp_port=port, submission_port=0)
    with pytest.raises(ListenError, match=rf"port {port} is set for both smtp and lmtp"):
        bind_all(settings)
