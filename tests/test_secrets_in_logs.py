"""No credential reaches any log line: a real ``mailroom serve`` at its most verbose.

The reproduction: with ``access_log = false`` the server log still showed
``"WebSocket /api/v1/events?token=ms_…" [accepted]`` (uvicorn logs every WebSocket it
accepts). Here the server runs with ``log_level = trace`` and the access log on, so uvicorn,
aiosmtpd (every SMTP line), websockets (every frame) and mailroom log all they can; the test
then does everything that carries a credential — password login, a wrong password, API
keys, session and refresh tokens, tokens in WebSocket and SSE URLs and in a WebSocket's
first message, HTTP Basic, JSON-RPC, SMTP AUTH PLAIN and LOGIN on submission (right and
wrong), POP3 USER/PASS and AUTH PLAIN, IMAP LOGIN and AUTHENTICATE PLAIN (right and wrong),
a password change — and looks for every secret it made, in clear and in the encodings the
protocols carry them in, in the whole captured log.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import json
import os
import poplib
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.processes import stop_group

pytestmark = pytest.mark.slow

MAILROOM = Path(sys.executable).with_name("mailroom")
PASSWORD = "Log-Secret-Pa55phrase-4419"
NEW_PASSWORD = "Log-Secret-Changed-Pa55-8812"
WRONG = ["Wrong-Guess-Pa55-0031", "Wrong-Smtp-Guess-0032", "Wrong-Pop3-Guess-0033", "Wrong-Imap-Guess-0034"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, http: int, submission: int, log: Path, admin_key: str) -> None:
        self.base = f"http://127.0.0.1:{http}"
        self.ws = f"ws://127.0.0.1:{http}"
        self.submission = submission
        self.pop3 = 0
        self.imap = 0
        self.log = log
        self.admin_key = admin_key


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    http, submission, pop3, imap = _free_port(), _free_port(), _free_port(), _free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(
        MAILROOM_LOG_LEVEL="trace",  # the most verbose there is
        MAILROOM_ACCESS_LOG="true",
        MAILROOM_PUSH_HEARTBEAT_SECONDS="1",
        MAILROOM_ARGON2_TIME_COST="1",
        MAILROOM_ARGON2_MEMORY_COST="8",
        MAILROOM_ARGON2_PARALLELISM="1",
        MAILROOM_POP3_PORT=str(pop3),
        MAILROOM_POP3S_PORT="0",
        MAILROOM_IMAP_PORT=str(imap),
        MAILROOM_IMAPS_PORT="0",
    )
    command = [
        str(MAILROOM), "serve", "--data-dir", str(tmp_path / "data"), "--port", str(http),
        "--workers", "1", "--smtp-port", "0", "--lmtp-port", "0", "--submission-port", str(submission),
    ]  # fmt: skip
    with log.open("wb") as err:
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True
        )
    try:
        assert proc.stdout is not None
        admin_key = proc.stdout.readline().strip()  # printed once, before serving starts
        assert admin_key.startswith("mr_"), log.read_text()
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{http}/health", timeout=2).status_code < 500:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        running = Server(http, submission, log, admin_key)
        running.pop3 = pop3
        running.imap = imap
        yield running
    finally:
        stop_group(proc, timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def _smtp(port: int) -> smtplib.SMTP:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.ehlo("client.test")
    client.starttls(context=context)
    client.ehlo("client.test")
    return client


def _smtp_auth(port: int, user: str, secret: str, mechanism: str) -> int:
    with _smtp(port) as client:
        client.user, client.password = user, secret
        method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        try:
            code, _ = client.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
        except smtplib.SMTPAuthenticationError as exc:
            code = exc.smtp_code
        return code


def _encodings(secret: str, user: str) -> set[str]:
    """A secret as it is sent: in clear, its random part, and base64 as SMTP AUTH and Basic carry it."""
    b64 = lambda raw: base64.b64encode(raw.encode()).decode()  # noqa: E731
    forms = {
        secret,
        b64(secret),  # AUTH LOGIN answers
        b64(f"\0{user}\0{secret}"),  # AUTH PLAIN
        b64(f"{user}:{secret}"),  # HTTP Basic
        json.dumps(secret)[1:-1],
    }
    parts = secret.split("_", 2)
    if len(parts) == 3 and len(parts[2]) >= 32:
        forms.add(parts[2])  # an issued secret's random part alone
    return forms


def test_no_secret_in_any_log_line(server: Server) -> None:
    user = "alice@example.org"
    secrets: dict[str, str] = {"admin key": server.admin_key}
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=f"{server.base}/api/v1", timeout=20) as api:
        assert api.post("/domains", json={"name": "example.org"}, headers=admin).status_code == 201
        r = api.post("/users", json={"email": user, "password": PASSWORD}, headers=admin)
        assert r.status_code == 201, r.text
        secrets["password"] = PASSWORD
        r = api.post("/apikeys", json={"name": "mua", "owner": user}, headers=admin)
        assert r.status_code == 201, r.text
        key = secrets["api key"] = r.json()["key"]

        # A wrong password, then the right one: a session and its refresh token.
        assert api.post("/login", json={"username": user, "password": WRONG[0]}).status_code == 401
        secrets["wrong password"] = WRONG[0]
        login = api.post("/login", json={"username": user, "password": PASSWORD}).json()
        secrets["session token"], secrets["refresh token"] = login["token"], login["refresh_token"]
        renewed = api.post("/sessions/refresh", json={"refresh_token": login["refresh_token"]}).json()
        token = secrets["renewed token"] = renewed["token"]
        secrets["renewed refresh token"] = renewed["refresh_token"]

        # Credentials in headers, and in the query string where browsers leave no choice.
        assert api.get(f"/users/{user}", auth=(user, PASSWORD)).status_code == 200
        assert api.get("/me/sessions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert api.get(f"/users/{user}", params={"token": key}).status_code == 401
        reply = api.post(
            f"{server.base}/rpc/json",
            json={"jsonrpc": "2.0", "id": 1, "method": "mail.sessions.list"},
            auth=(user, PASSWORD),
        ).json()
        assert "result" in reply, reply
        for query, headers in (
            (f"?token={token}", {}),
            (f"?token={key}", {}),
            ("", {"Authorization": f"Bearer {token}"}),
        ):
            with api.stream(
                "GET", f"/events{query}", headers={"Accept": "text/event-stream", **headers}
            ) as stream:
                assert stream.status_code == 200
                next(stream.iter_raw())

    # WebSockets: the token in the URL (what a browser does), and in the first message.
    with connect(f"{server.ws}/api/v1/events?token={token}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"type": "subscribed"}
    with connect(f"{server.ws}/api/v1/events", open_timeout=10) as ws:
        ws.send(json.dumps({"token": key}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "subscribed"}

    # SMTP AUTH on submission: PLAIN and LOGIN, with the password and with the API key.
    assert _smtp_auth(server.submission, user, PASSWORD, "PLAIN") == 235
    assert _smtp_auth(server.submission, user, PASSWORD, "LOGIN") == 235
    assert _smtp_auth(server.submission, user, key, "PLAIN") == 235
    assert _smtp_auth(server.submission, user, WRONG[1], "LOGIN") == 535
    secrets["wrong smtp password"] = WRONG[1]
    with _smtp(server.submission) as client:  # a password where base64 was expected
        client.putcmd("AUTH", "LOGIN")
        assert client.getreply()[0] == 334
        client.putcmd(PASSWORD)
        assert client.getreply()[0] == 501

    # POP3: USER/PASS and AUTH PLAIN, right and wrong (plaintext is allowed on loopback).
    pop = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
    pop.user(user)
    with pytest.raises(poplib.error_proto):
        pop.pass_(WRONG[2])
    secrets["wrong pop3 password"] = WRONG[2]
    plain = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
    assert pop._shortcmd(f"AUTH PLAIN {plain}").startswith(b"+OK")
    pop.quit()
    pop = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
    pop.user(user)
    assert pop.pass_(PASSWORD).startswith(b"+OK")
    pop.quit()

    # IMAP: LOGIN and AUTHENTICATE PLAIN, right and wrong (plaintext is allowed on loopback).
    with imaplib.IMAP4("127.0.0.1", server.imap, timeout=10) as imap:
        assert imap.login(user, PASSWORD)[0] == "OK"
        imap.logout()
    with imaplib.IMAP4("127.0.0.1", server.imap, timeout=10) as imap:
        assert imap.authenticate("PLAIN", lambda _: f"\0{user}\0{PASSWORD}".encode())[0] == "OK"
        imap.logout()
    with imaplib.IMAP4("127.0.0.1", server.imap, timeout=10) as imap, pytest.raises(imaplib.IMAP4.error):
        imap.login(user, WRONG[3])
    secrets["wrong imap password"] = WRONG[3]

    # A password change carries two passwords in a JSON body.
    with httpx.Client(base_url=f"{server.base}/api/v1", timeout=20) as api:
        r = api.put(
            "/me/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
    secrets["new password"] = NEW_PASSWORD

    time.sleep(0.5)  # let the last lines reach the log
    log = server.log.read_text(errors="replace")
    # The log did record where the secrets travelled (else this test could not fail) ...
    assert '"WebSocket /api/v1/events?token=[redacted]" [accepted]' in log
    assert "GET /api/v1/events?token=[redacted] HTTP/1.1" in log
    assert ">> b'AUTH PLAIN [redacted]'" in log  # aiosmtpd, line by line
    assert "250-AUTH LOGIN PLAIN" in log  # (what is no secret stays)
    assert "can't decode base64: [redacted]" in log
    assert "websockets" in log or "TEXT" in log  # WebSocket frames
    # ... and holds none of them.
    leaks = [
        f"{name} ({form!r})"
        for name, secret in secrets.items()
        for form in _encodings(secret, user)
        if form in log
    ]
    assert not leaks, "secrets in the server log: " + ", ".join(leaks)
