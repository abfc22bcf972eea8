"""Open connections are cut when their access ends (docs/auth.md, "Everywhere").

Real clients over real sockets hold connections on one worker (IMAP IDLE with imaplib,
poplib, smtplib, the push WebSocket and SSE, the JMAP WebSocket and EventSource); the change
is made through another worker: with Redis (``MAILROOM_TEST_REDIS_URL``) a second mailroom
on the same database, reached through the broker's fan-out; without it, the same worker
(the in-process broker reaches only its own process). Every connection must be closed within
about a second, the way its protocol says, and only the connections the change concerns.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import imaplib
import os
import poplib
import smtplib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.frontends.imap import start_imap
from mailroom.frontends.listeners import listening_socket
from mailroom.frontends.pop3 import start_pop3
from mailroom.frontends.smtp.submission import start_submission
from mailroom.settings import Settings
from mailroom.web import build_app
from tests.conftest import Actor, started
from tests.identity.conftest import PASSWORD
from tests.lifespan import served

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("MAILROOM_TEST_REDIS_URL", "")
#: How long a cut may take (the target is "within about a second").
CUT_SECONDS = 1.5


@pytest.fixture(
    params=[
        "one-worker",
        pytest.param(
            "two-workers",
            marks=[
                pytest.mark.redis,
                pytest.mark.skipif(not REDIS_URL, reason="MAILROOM_TEST_REDIS_URL is not set"),
            ],
        ),
    ]
)
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides(topology: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "imap_allow_plaintext_loopback": True,
        "pop3_allow_plaintext_loopback": True,
        "submission_allow_plaintext_loopback": True,
        # Long: a cut must come from the revocation, not from a heartbeat's token check.
        "push_heartbeat_seconds": 30,
    }
    if topology == "two-workers":
        values |= {"redis_url": REDIS_URL, "redis_key_prefix": f"kick-{uuid.uuid4().hex[:12]}"}
    return values


@dataclass
class Worker:
    """The worker holding the connections: its listeners' ports."""

    app: Mailroom
    imap: int
    pop3: int
    submission: int
    http: str


@pytest.fixture
async def holder(
    topology: str, settings: Settings, clock: FakeClock, mailroom: Mailroom
) -> AsyncIterator[Worker]:
    """The worker the clients connect to: ``mailroom`` itself, or another one (Redis)."""
    async with contextlib.AsyncExitStack() as stack:
        app = mailroom
        if topology == "two-workers":
            app = await stack.enter_async_context(started(settings, clock))
        sock = listening_socket("127.0.0.1", 0)
        imap = await start_imap(app, sock=sock, implicit_tls=False, tls_context=None)
        stack.callback(imap.close)
        pop3 = await start_pop3(app, pop3=("127.0.0.1", 0))
        stack.push_async_callback(pop3.close)
        smtp = await start_submission(app, bind=("127.0.0.1", 0))
        stack.push_async_callback(smtp.close)
        port = await stack.enter_async_context(served(build_app(app)))
        yield Worker(
            app, sock.getsockname()[1], pop3.address("pop3")[1], smtp.ports["submission"], f"127.0.0.1:{port}"
        )


# -- the clients (blocking ones run in threads) -----------------------------------------------

#: Every blocking client a test opened, closed after it (the server may have closed first).
_OPENED: list[Any] = []


@pytest.fixture(autouse=True)
def close_clients() -> Any:
    yield
    while _OPENED:
        conn = _OPENED.pop()
        with contextlib.suppress(Exception):
            if isinstance(conn, imaplib.IMAP4):
                conn.shutdown()
            else:
                conn.close()


class Imap:
    """An imaplib session logged in and IDLE in INBOX."""

    def __init__(self, port: int, user: str, secret: str) -> None:
        self.conn = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        _OPENED.append(self.conn)
        self.conn.login(user, secret)
        self.conn.select("INBOX")

    def idle(self) -> None:
        self.conn.send(b"K1 IDLE\r\n")
        assert self.conn.readline().startswith(b"+")

    def cut(self, wait: float) -> tuple[bytes, float]:
        """The next line the server sends (or b"" at EOF) and how long it took."""
        started = time.monotonic()
        assert self.conn.sock is not None
        self.conn.sock.settimeout(wait)
        try:
            line = self.conn.readline()
        except TimeoutError:
            line = b"(nothing)"
        return line, time.monotonic() - started

    def still_open(self) -> bool:
        try:
            self.conn.send(b"DONE\r\n")
            self.conn.sock.settimeout(5)
            while True:
                line = self.conn.readline()
                if line.startswith(b"K1 "):
                    break
                if not line or line.startswith(b"* BYE"):
                    return False
            return self.conn.noop()[0] == "OK"
        except (imaplib.IMAP4.abort, OSError):
            return False


def pop3_open(port: int, user: str, secret: str) -> poplib.POP3:
    conn = poplib.POP3("127.0.0.1", port, timeout=10)
    _OPENED.append(conn)
    conn.user(user)
    conn.pass_(secret)
    return conn


def pop3_cut(conn: poplib.POP3, wait: float) -> tuple[bytes, float]:
    started = time.monotonic()
    conn.sock.settimeout(wait)
    try:
        line = conn.file.readline()
    except TimeoutError:
        line = b"(nothing)"
    return line, time.monotonic() - started


def smtp_open(port: int, user: str, secret: str) -> smtplib.SMTP:
    conn = smtplib.SMTP("127.0.0.1", port, timeout=10)
    _OPENED.append(conn)
    conn.ehlo("client.example")
    conn.login(user, secret)
    return conn


def smtp_next(conn: smtplib.SMTP) -> int:
    """The reply code to the next command (a NOOP)."""
    try:
        return conn.noop()[0]
    except smtplib.SMTPServerDisconnected:
        return -1


async def run(func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(func, *args)


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


async def push_ws(host: str, token: str) -> ClientConnection:
    ws = await connect(f"ws://{host}/api/v1/events?token={token}", open_timeout=5)
    assert orjson.loads(await ws.recv()) == {"type": "subscribed"}
    return ws


async def jmap_ws(host: str, authorization: str) -> ClientConnection:
    return await connect(
        f"ws://{host}/jmap/ws",
        subprotocols=["jmap"],  # type: ignore[list-item]
        additional_headers={"Authorization": authorization},
        open_timeout=5,
    )


async def ws_closed(ws: ClientConnection, wait: float) -> tuple[int | None, float]:
    """The close code once the server closes (None: still open after ``wait``)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(wait):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else 1006), time.monotonic() - started
    except TimeoutError:
        return None, time.monotonic() - started


class Stream:
    """An SSE stream read in the background: it records when it ended."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self.ready = asyncio.Event()
        self.ended_at: float | None = None
        self.lines: list[str] = []
        self.task = asyncio.create_task(self._read(client, url, headers))

    async def _read(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        async with client.stream("GET", url, headers={"Accept": "text/event-stream", **headers}) as r:
            assert r.status_code == 200, await r.aread()
            async for line in r.aiter_lines():
                self.lines.append(line)
                self.ready.set()
        self.ended_at = time.monotonic()

    async def ended(self, wait: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.task), wait)
        return self.ended_at is not None

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


async def login_token(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post("/api/v1/login", json={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def app_password(
    call: Callable[..., Awaitable[Any]], who: Actor, protocols: list[str]
) -> dict[str, Any]:
    made: dict[str, Any] = await call(
        "mail.app_passwords.create", {"app_password": {"name": "Phone", "protocols": protocols}}, as_=who
    )
    return made


# -- the tests ----------------------------------------------------------------------------------


async def test_disabling_a_user_cuts_every_open_connection_on_every_worker(
    make_user: Callable[..., Awaitable[Actor]], call: Callable[..., Awaitable[Any]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    bob = await make_user("bob@example.org", password=PASSWORD)
    assert alice.key is not None
    imap = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(imap.idle)
    bob_imap = await run(Imap, holder.imap, bob.email, PASSWORD)
    await run(bob_imap.idle)
    pop = await run(pop3_open, holder.pop3, alice.email, PASSWORD)
    smtp = await run(smtp_open, holder.submission, alice.email, PASSWORD)
    async with httpx.AsyncClient(base_url=f"http://{holder.http}", timeout=10) as http:
        token = await login_token(http, alice.email)
        ws = await push_ws(holder.http, token)
        jws = await jmap_ws(holder.http, basic(alice.email, PASSWORD))
        sse = Stream(http, "/api/v1/events", {"Authorization": f"Bearer {alice.key}"})
        es = Stream(
            http,
            "/jmap/eventsource/?types=*&closeafter=no&ping=0",
            {"Authorization": basic(alice.email, PASSWORD)},
        )
        try:
            await asyncio.wait_for(sse.ready.wait(), 5)
            await asyncio.wait_for(es.ready.wait(), 5)
            assert holder.app.runtime.events.sessions.count() == 8

            started_at = time.monotonic()
            await call("admin.users.update", {"email": alice.email, "changes": {"enabled": False}})

            imap_line, imap_took, pop_line, pop_took, (ws_code, ws_took), (jws_code, jws_took) = (
                *await run(imap.cut, 5),
                *await run(pop3_cut, pop, 5),
                await ws_closed(ws, 5),
                await ws_closed(jws, 5),
            )
            assert imap_line.startswith(b"* BYE account disabled"), imap_line
            assert pop_line.startswith(b"-ERR [AUTH] account disabled"), pop_line
            assert ws_code == 4401
            assert jws_code == 1008
            assert await sse.ended(5)
            assert await es.ended(5)
            assert sse.ended_at is not None
            assert es.ended_at is not None
            for took in (imap_took, pop_took, ws_took, jws_took):
                assert took < CUT_SECONDS
            assert max(sse.ended_at, es.ended_at) - started_at < CUT_SECONDS * 2
            assert any("access ended" in line for line in sse.lines)
            # SMTP submission answers 421 at the next command and closes.
            assert await run(smtp_next, smtp) == 421
            assert await run(imap.cut, 2) == (b"", pytest.approx(0, abs=2))  # closed after the BYE
            # Bob, on the same worker, goes on.
            assert await run(bob_imap.still_open)
            assert holder.app.runtime.events.sessions.count() == 1
        finally:
            await sse.close()
            await es.close()
            await ws.close()
            await jws.close()


async def test_a_revoked_app_password_cuts_only_its_own_connections(
    make_user: Callable[..., Awaitable[Actor]], call: Callable[..., Awaitable[Any]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    app = await app_password(call, alice, ["imap", "smtp", "pop3"])
    other = await app_password(call, alice, ["imap"])
    by_app = await run(Imap, holder.imap, alice.email, app["password"])
    await run(by_app.idle)
    by_other = await run(Imap, holder.imap, alice.email, other["password"])
    await run(by_other.idle)
    by_password = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(by_password.idle)
    smtp_app = await run(smtp_open, holder.submission, alice.email, app["password"])
    smtp_password = await run(smtp_open, holder.submission, alice.email, PASSWORD)
    pop_app = await run(pop3_open, holder.pop3, alice.email, app["password"])

    await call("mail.app_passwords.revoke", {"id": app["id"]}, as_=alice)

    line, took = await run(by_app.cut, 5)
    assert line.startswith(b"* BYE app password revoked"), line
    assert took < CUT_SECONDS
    pop_line, _ = await run(pop3_cut, pop_app, 5)
    assert pop_line.startswith(b"-ERR [AUTH] app password revoked"), pop_line
    assert await run(smtp_next, smtp_app) == 421
    # The password's and the other app password's sessions are untouched.
    assert await run(smtp_next, smtp_password) == 250
    assert await run(by_other.still_open)
    assert await run(by_password.still_open)


async def test_turning_imap_off_cuts_imap_only(
    make_user: Callable[..., Awaitable[Actor]], call: Callable[..., Awaitable[Any]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    imap = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(imap.idle)
    pop = await run(pop3_open, holder.pop3, alice.email, PASSWORD)

    await call("admin.users.update", {"email": alice.email, "changes": {"enable_imap": False}})

    line, took = await run(imap.cut, 5)
    assert line.startswith(b"* BYE service disabled"), line
    assert took < CUT_SECONDS
    assert (await run(pop.stat))[0] == 0  # POP3 goes on

    await call("admin.users.update", {"email": alice.email, "changes": {"enable_pop": False}})
    pop_line, _ = await run(pop3_cut, pop, 5)
    assert pop_line.startswith(b"-ERR"), pop_line


async def test_a_password_change_cuts_password_sessions_and_other_sessions_streams(
    make_user: Callable[..., Awaitable[Actor]], call: Callable[..., Awaitable[Any]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    app = await app_password(call, alice, ["imap"])
    by_password = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(by_password.idle)
    by_app = await run(Imap, holder.imap, alice.email, app["password"])
    await run(by_app.idle)
    async with httpx.AsyncClient(base_url=f"http://{holder.http}", timeout=10) as http:
        current = await login_token(http, alice.email)
        other = await login_token(http, alice.email)
        ws_current = await push_ws(holder.http, current)
        ws_other = await push_ws(holder.http, other)
        r = await http.put(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "a whole new passphrase 42"},
            headers={"Authorization": f"Bearer {current}"},
        )
        assert r.status_code == 200, r.text
        line, _ = await run(by_password.cut, 5)
        assert line.startswith(b"* BYE password changed"), line
        assert (await ws_closed(ws_other, 5))[0] == 4401
        # The session that changed it, and the app password's connection, go on.
        assert (await ws_closed(ws_current, 1))[0] is None
        assert await run(by_app.still_open)
        await ws_current.close()


async def test_signing_a_session_out_ends_its_streams(
    make_user: Callable[..., Awaitable[Actor]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    async with httpx.AsyncClient(base_url=f"http://{holder.http}", timeout=10) as http:
        one = await login_token(http, alice.email)
        two = await login_token(http, alice.email)
        ws_one = await push_ws(holder.http, one)
        ws_two = await push_ws(holder.http, two)
        sessions = (await http.get("/api/v1/me/sessions", headers={"Authorization": f"Bearer {two}"})).json()
        [first] = [s for s in sessions if not s["current"]]
        r = await http.delete(
            f"/api/v1/me/sessions/{first['id']}", headers={"Authorization": f"Bearer {two}"}
        )
        assert r.status_code in (200, 204), r.text
        code, took = await ws_closed(ws_one, 5)
        assert code == 4401
        assert took < CUT_SECONDS
        assert (await ws_closed(ws_two, 0.5))[0] is None
        r = await http.delete("/api/v1/logout", headers={"Authorization": f"Bearer {two}"})
        assert r.status_code in (200, 204), r.text
        assert (await ws_closed(ws_two, 5))[0] == 4401


async def test_admins_and_managers_kick_a_user_on_demand(
    make_user: Callable[..., Awaitable[Actor]], mailroom: Mailroom, holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    manager = await make_user("boss@example.org", password=PASSWORD, manages=("example.org",))
    stranger = await make_user("eve@other.example", password=PASSWORD, manages=("other.example",))
    imap = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(imap.idle)
    pop = await run(pop3_open, holder.pop3, alice.email, PASSWORD)
    async with httpx.AsyncClient(base_url=f"http://{holder.http}", timeout=10) as http:
        r = await http.post(f"/api/v1/users/{alice.email}/kick", json={}, headers=stranger.headers)
        assert r.status_code == 404, r.text
        r = await http.post(f"/api/v1/users/{alice.email}/kick", json={}, headers=alice.headers)
        assert r.status_code == 403, r.text
        # Only IMAP, as asked.
        r = await http.post(
            f"/api/v1/users/{alice.email}/kick", json={"protocols": ["imap"]}, headers=manager.headers
        )
        assert r.status_code == 200, r.text
        line, took = await run(imap.cut, 5)
        assert line.startswith(b"* BYE disconnected by an administrator"), line
        assert took < CUT_SECONDS
        assert (await run(pop.stat))[0] == 0
        # The user may log in again at once: a kick is no lock-out.
        again = await run(Imap, holder.imap, alice.email, PASSWORD)
        await run(again.idle)
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "admin.users.kick", "params": {"email": alice.email}}
        r = await http.post("/rpc/json", json=rpc, headers=manager.headers)
        assert r.status_code == 200, r.text
        assert "result" in r.json(), r.text
        line, _ = await run(again.cut, 5)
        assert line.startswith(b"* BYE disconnected by an administrator"), line
        pop_line, _ = await run(pop3_cut, pop, 5)
        assert pop_line.startswith(b"-ERR"), pop_line
    entries = await mailroom.registry.call("admin.audit.list", {})
    assert any(e["method"] == "admin.users.kick" for e in entries["items"]), entries


async def test_deleting_a_domain_cuts_its_users(
    make_user: Callable[..., Awaitable[Actor]], call: Callable[..., Awaitable[Any]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    carol = await make_user("carol@example.net", password=PASSWORD)
    imap = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(imap.idle)
    kept = await run(Imap, holder.imap, carol.email, PASSWORD)
    await run(kept.idle)
    await call("admin.domains.delete", {"name": "example.org"})
    line, took = await run(imap.cut, 5)
    assert line.startswith(b"* BYE domain deleted"), line
    assert took < CUT_SECONDS
    assert await run(kept.still_open)


async def test_a_config_import_that_disables_a_user_cuts_them(
    make_user: Callable[..., Awaitable[Actor]], call: Callable[..., Awaitable[Any]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    imap = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(imap.idle)
    await call("admin.config.import", {"document": {"users": [{"email": alice.email, "enabled": False}]}})
    line, took = await run(imap.cut, 5)
    assert line.startswith(b"* BYE account disabled"), line
    assert took < CUT_SECONDS


async def test_signing_out_everywhere_else_ends_the_other_sessions_streams(
    make_user: Callable[..., Awaitable[Actor]], holder: Worker
) -> None:
    alice = await make_user("alice@example.org", password=PASSWORD)
    imap = await run(Imap, holder.imap, alice.email, PASSWORD)
    await run(imap.idle)
    async with httpx.AsyncClient(base_url=f"http://{holder.http}", timeout=10) as http:
        here, there, elsewhere = [await login_token(http, alice.email) for _ in range(3)]
        streams = {token: await push_ws(holder.http, token) for token in (here, there, elsewhere)}
        r = await http.delete("/api/v1/me/sessions", headers={"Authorization": f"Bearer {here}"})
        assert r.status_code == 200, r.text
        assert r.json() == {"revoked_sessions": 2}
        for token in (there, elsewhere):
            code, took = await ws_closed(streams[token], 5)
            assert code == 4401
            assert took < CUT_SECONDS
        assert (await ws_closed(streams[here], 0.5))[0] is None
        await streams[here].close()
        r = await http.get("/api/v1/me/sessions", headers={"Authorization": f"Bearer {there}"})
        assert r.status_code == 401
    # A mail client logged in with the password is no session: it goes on.
    assert await run(imap.still_open)
