"""A client that stops in the middle of its request body (a broken chunked body, a dropped
upload) is not a server error: a real ``mailroom serve`` answers what it can and logs no
traceback. Before, every HTTP front-end let Starlette's ``ClientDisconnect`` escape: the
REST router logged "unexpected error" with a traceback and answered 500, the others
(RPC, JMAP, the key server, autodiscover) made uvicorn log "Exception in ASGI application".
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import stop_group

MAILROOM = Path(sys.executable).with_name("mailroom")
PATHS = [
    "/api/v1/domains",
    "/api/v1/uploads",
    "/rpc/json",
    "/rpc/xml",
    "/jmap/api",
    "/jmap/upload/u1/",
    "/pks/add",
    "/autodiscover/autodiscover.xml",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, str, Path]]:
    http = _free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    command = [
        str(MAILROOM), "serve", "--data-dir", str(tmp_path / "data"), "--port", str(http),
        "--smtp-port", "0", "--lmtp-port", "0", "--submission-port", "0", "--imap-port", "0",
        "--imaps-port", "0", "--pop3-port", "0", "--pop3s-port", "0",
    ]  # fmt: skip
    with log.open("wb") as err:
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True
        )
    try:
        assert proc.stdout is not None
        key = proc.stdout.readline().strip()
        assert key.startswith("mr_"), log.read_text()
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{http}/health", timeout=2).status_code < 500:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield http, key, log
    finally:
        stop_group(proc, timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def broken_body(port: int, path: str, key: str) -> bytes:
    """POST a chunked body whose second chunk size is not hex; what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            '5\r\n{"a":\r\nzz\r\n'.encode()
        )
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def test_a_body_cut_short_is_no_server_error(server: tuple[int, str, Path]) -> None:
    port, key, log = server
    for path in PATHS:
        answer = broken_body(port, path, key)
        assert not answer.startswith(b"HTTP/1.1 5"), (path, answer[:200])
    # Still serving, and the log has no traceback and no error for any of them.
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    time.sleep(0.5)
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "ERROR" not in text, text
