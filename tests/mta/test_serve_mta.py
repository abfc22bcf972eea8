"""``mailroom serve`` runs the socketmap (TCP and UNIX) and Dovecot dict listeners it is asked
for, binds them once for all its workers, lists them in its banner, and a second server on
the same socket stops at start."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailroom.frontends.socketmap import encode
from tests.cli.test_serve_listeners import _environment, _free_ports, _ports, serving

POSTMAP = shutil.which("postmap") or "/usr/sbin/postmap"


@pytest.fixture
def sockets_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))  # short: sun_path is 108 bytes
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ask(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(encode(request))
    data = b""
    while not data.endswith(b","):
        chunk = sock.recv(4096)
        assert chunk, "connection closed"
        data += chunk
    return data.partition(b":")[2][:-1]


@pytest.mark.slow
def test_serve_runs_the_mta_listeners_for_every_worker(tmp_path: Path, sockets_dir: Path) -> None:
    [socketmap_port] = _free_ports(1)
    unix_map, dovecot = sockets_dir / "map.sock", sockets_dir / "dict.sock"
    env = {
        "MAILROOM_SOCKETMAP_PORT": str(socketmap_port),
        "MAILROOM_SOCKETMAP_PATH": str(unix_map),
        "MAILROOM_DOVECOT_DICT_PATH": str(dovecot),
    }
    with serving(tmp_path / "data", _ports(), workers=2, env=env) as server:
        banner = server.stderr()
        assert f"socketmap       127.0.0.1:{socketmap_port}" in banner
        assert f"socketmap-unix  unix:{unix_map}" in banner
        assert f"dovecot-dict    unix:{dovecot}" in banner
        assert oct(unix_map.stat().st_mode & 0o777) == "0o660"
        headers = {"Authorization": f"Bearer {server.key}"}
        r = httpx.post(f"{server.base}/api/v1/domains", json={"name": "example.org"}, headers=headers)
        assert r.status_code == 201, r.text
        # Many connections: the kernel spreads them over both workers, all answer alike.
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", socketmap_port)) as tcp:
                assert ask(tcp, b"domain example.org") == b"OK example.org"
        with socket.socket(socket.AF_UNIX) as unix:
            unix.connect(str(unix_map))
            assert ask(unix, b"domain example.org") == b"OK example.org"
        with socket.socket(socket.AF_UNIX) as dict_client:
            dict_client.connect(str(dovecot))
            dict_client.sendall(b"H3\t2\t0\t\tmailroom\nLshared/userdb/nobody@example.org\n")
            assert dict_client.recv(100) == b"N\n"
        if Path(POSTMAP).exists():
            found = subprocess.run(
                [POSTMAP, "-q", "example.org", f"socketmap:unix:{unix_map}:domain"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert found.stdout.strip() == "example.org", found.stderr
        # A second server on the same UNIX socket stops at start, creating nothing.
        other = tmp_path / "other"
        command = [sys.executable, "-m", "mailroom", "serve", "--data-dir", str(other)]
        command += ["--port", str(_free_ports(1)[0]), "--smtp-port", "0", "--lmtp-port", "0"]
        second = subprocess.run(
            [*command, "--submission-port", "0"],
            env=_environment() | {"MAILROOM_DOVECOT_DICT_PATH": str(dovecot)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode != 0
        assert f"cannot listen for dovecot-dict on unix:{dovecot}: in use" in " ".join(second.stderr.split())
        assert not other.exists()
    # The parent removes its socket files when it stops.
    assert not unix_map.exists()
    assert not dovecot.exists()
