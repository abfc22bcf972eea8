"""The production layout of deploy/, booted whole with the real daemons from Debian.

Postfix (a private instance: its own config_directory, ``postfix -c DIR start``), nginx with
its mail module, rspamd (as Postfix's milter) and ``mailroom serve`` run from exactly the
files in deploy/, with only what cannot be the same on a test machine replaced: ports
(loopback ports instead of 25/587/465/443/80/2424/2587/2600/8025/10025/11332-4), paths (a
temporary folder instead of /var, /etc/letsencrypt, /run), and for Postfix the remote MX
(``relayhost`` is an aiosmtpd sink on loopback standing in for every remote MX, and DNS is
off). Each replacement must find its text, so the files and the test cannot drift apart.

Then, as the issue asks: an outside client (127.0.0.2) sends to a user through Postfix:25 and
the message shows in the user's threads with rspamd's Authentication-Results; an unknown
user is refused by Postfix at RCPT; a user submits through nginx on 587 with AUTH (a wrong
password is refused by mailroom's guard); mail to an external address leaves Postfix for the
sink, DKIM-signed by mailroom; the sink's bounce to the SRS address of a forwarded message
comes back through Postfix to the original sender.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim
import httpx
import pytest
from aiosmtpd.controller import Controller

from mailroom.frontends.smtp.certificate import generate_self_signed
from tests.cli.test_serve_listeners import _environment
from tests.mta.daemons import GTUBE, RSPAMD, LoopbackDns, free_port, records_for, run_rspamd
from tests.mta.test_nginx import MAIL_MODULE, NGINX
from tests.processes import stop_group

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
PASSWORD = "correct horse battery staple"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CI") != "true"
        and not (
            Path(POSTFIX).exists() and Path(RSPAMD).exists() and MAIL_MODULE.exists() and os.geteuid() == 0
        ),
        reason="needs root, Postfix, rspamd and nginx's mail module (.ci/run installs them)",
    ),
]


def substitute(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"deploy/ no longer says {old!r}: update the layout test"
        text = text.replace(old, new)
    return text


# -- the remote MX: an aiosmtpd sink --------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Sink:
    messages: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        self.arrived.set()
        return "250 2.0.0 OK"

    def wait(self, count: int, seconds: float = 30) -> list[Received]:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count and time.monotonic() < deadline:
            self.arrived.wait(0.2)
            self.arrived.clear()
        assert len(self.messages) >= count, f"the sink got {len(self.messages)} messages, wanted {count}"
        return self.messages


# -- the layout ---------------------------------------------------------------------------


@dataclass
class Layout:
    root: Path
    ports: dict[str, int]
    key: str = ""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = httpx.request(
            method, f"{self.api}{path}", headers={"Authorization": f"Bearer {self.key}"}, timeout=30, **kwargs
        )
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def logs(self) -> str:
        out = []
        for path in ("postfix.log", "nginx-error.log", "mailroom.err"):
            with contextlib.suppress(OSError):
                out.append(f"--- {path}\n" + (self.root / path).read_text(errors="replace")[-4000:])
        return "\n".join(out)


def _ports() -> dict[str, int]:
    names = [
        "http",
        "lmtp",
        "submission",
        "socketmap",
        "relay",
        "smtp",
        "nginx587",
        "nginx465",
        "https",
        "sink",
    ]
    return {name: free_port() for name in names}


def _start_mailroom(layout: Layout) -> subprocess.Popen[str]:
    p = layout.ports
    toml = substitute(
        (DEPLOY / "mailroom" / "mailroom.toml").read_text(),
        {
            'mode = "production"': 'mode = "test"',
            'data_dir = "/var/lib/mailroom"': f'data_dir = "{layout.root / "mailroom"}"',
            "port = 8025": f"port = {p['http']}",
            "workers = 2": "workers = 1",
            "lmtp_port = 2424": f"lmtp_port = {p['lmtp']}",
            "socketmap_port = 2600": f"socketmap_port = {p['socketmap']}",
            "submission_port = 2587": f"submission_port = {p['submission']}",
            "relay_port = 10025": f"relay_port = {p['relay']}",
        },
    )
    toml += "queue_poll_seconds = 0.5\nqueue_retry_base_seconds = 1\n"
    (layout.root / "mailroom.toml").write_text(toml)
    env = _environment() | {"MAILROOM_CONFIG": str(layout.root / "mailroom.toml")}
    with open(layout.root / "mailroom.err", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailroom", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    assert proc.stdout is not None
    layout.key = proc.stdout.readline().strip()
    proc.stdout.close()  # the key is all it prints there
    assert layout.key.startswith("mr_"), layout.logs()
    _wait_for(proc, p["lmtp"], layout)
    _wait_for(proc, p["socketmap"], layout)
    return proc


def _wait_for(proc: subprocess.Popen[Any] | None, port: int, layout: Layout, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc is None or proc.poll() is None, layout.logs()
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}\n{layout.logs()}")


def _start_postfix(layout: Layout, milter: str, cert: Path, key: Path) -> Path:
    p, folder = layout.ports, layout.root / "postfix"
    folder.mkdir()
    main = substitute(
        (DEPLOY / "postfix" / "main.cf").read_text(),
        {
            "inet_interfaces = all": "inet_interfaces = 127.0.0.1",
            "inet_protocols = all": "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8 [::1]/128": "mynetworks = 127.0.0.1/32",
            "maillog_file = /var/log/postfix.log": f"maillog_file = {layout.root / 'postfix.log'}",
            "/etc/letsencrypt/live/mail.example.org/fullchain.pem": str(cert),
            "/etc/letsencrypt/live/mail.example.org/privkey.pem": str(key),
            "socketmap:inet:127.0.0.1:2600": f"socketmap:inet:127.0.0.1:{p['socketmap']}",
            "lmtp:inet:127.0.0.1:2424": f"lmtp:inet:127.0.0.1:{p['lmtp']}",
            "inet:127.0.0.1:11332": milter,
        },
    )
    # What a test machine cannot have: its own queue, and remote MXs (the sink stands in).
    main += (
        f"\nqueue_directory = {folder / 'queue'}\ndata_directory = {folder / 'data'}\n"
        f"maillog_file_prefixes = {layout.root}\n"
        f"relayhost = [127.0.0.1]:{p['sink']}\nsmtp_dns_support_level = disabled\n"
        "smtpd_peername_lookup = no\nsmtp_tls_security_level = none\n"
        # Every test client is on loopback, which rspamd never judges (SPF, DMARC): the
        # "outside" one (127.0.0.2) names a documentation address by Postfix's XCLIENT.
        "smtpd_authorized_xclient_hosts = 127.0.0.2\n"
    )
    master = substitute(
        (DEPLOY / "postfix" / "master.cf").read_text(),
        {
            "\nsmtp      inet  n": f"\n127.0.0.1:{p['smtp']} inet n",
            "127.0.0.1:10025 inet": f"127.0.0.1:{p['relay']} inet",
            "-o mynetworks=127.0.0.0/8": "-o mynetworks=127.0.0.1/32",
        },
    )
    (folder / "main.cf").write_text(main)
    (folder / "master.cf").write_text(master)
    (folder / "queue").mkdir()
    (folder / "data").mkdir()
    shutil.chown(folder / "data", "postfix")
    started = subprocess.run(
        [POSTFIX, "-c", str(folder), "start"], capture_output=True, text=True, check=False
    )
    assert started.returncode == 0, started.stderr + layout.logs()
    _wait_for(None, p["smtp"], layout)
    _wait_for(None, p["relay"], layout)
    return folder


def _start_nginx(layout: Layout, cert: Path, key: Path) -> subprocess.Popen[bytes]:
    p, root = layout.ports, layout.root
    conf = substitute(
        (DEPLOY / "nginx" / "nginx.conf").read_text(),
        {
            "user www-data;": "user root;",
            "worker_processes auto;": "worker_processes 1;",
            "pid /run/nginx.pid;": f"pid {root / 'nginx.pid'};",
            "/var/log/nginx/error.log": str(root / "nginx-error.log"),
            "/var/log/nginx/access.log": str(root / "nginx-access.log"),
            "/etc/letsencrypt/live/mail.example.org/fullchain.pem": str(cert),
            "/etc/letsencrypt/live/mail.example.org/privkey.pem": str(key),
            "127.0.0.1:8025": f"127.0.0.1:{p['http']}",
            "listen 80;\n        listen [::]:80;": f"listen 127.0.0.1:{free_port()};",
            "listen 443 ssl http2;\n        listen [::]:443 ssl http2;": (
                f"listen 127.0.0.1:{p['https']} ssl http2;"
            ),
            "listen 587;\n        listen [::]:587;": f"listen 127.0.0.1:{p['nginx587']};",
            "listen 465 ssl;\n        listen [::]:465 ssl;": f"listen 127.0.0.1:{p['nginx465']} ssl;",
        },
    )
    (root / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(root),
            "-c",
            str(root / "nginx.conf"),
            "-e",
            str(root / "nginx-error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for port in (p["https"], p["nginx587"], p["nginx465"]):
        _wait_for(proc, port, layout)
    return proc


def _stop_postfix(folder: Path) -> None:
    """``postfix stop``; when that hangs (once, on a loaded machine, its logging daemon stopped
    reading and every Postfix program blocked on its log socket), the instance's processes are
    killed: a teardown must never hang the suite."""
    stop = subprocess.Popen(
        [POSTFIX, "-c", str(folder), "stop"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        stop.wait(60)
        return
    except subprocess.TimeoutExpired:
        os.killpg(stop.pid, signal.SIGKILL)
        stop.wait()
    with contextlib.suppress(OSError, ValueError, IndexError):
        master = int((folder / "queue" / "pid" / "master.pid").read_text().split()[0])
        os.killpg(os.getpgid(master), signal.SIGKILL)  # the master leads its own session


@pytest.fixture
def layout() -> Iterator[Layout]:
    root = Path(tempfile.mkdtemp(prefix="mr-deploy-", dir="/tmp"))
    root.chmod(0o755)  # Postfix's own user walks into its queue below it
    layout = Layout(root, _ports())
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=layout.ports["sink"])
    # strict.test publishes SPF (192.0.2.10 only) and DMARC p=reject; nothing else exists.
    dns = LoopbackDns(
        records_for("strict.test", {"spf": "v=spf1 ip4:192.0.2.10 -all", "dmarc": "v=DMARC1; p=reject"})
    )
    cert, key = root / "tls" / "cert.pem", root / "tls" / "key.pem"
    generate_self_signed(cert, key, "mail.example.org")
    stack = contextlib.ExitStack()
    try:
        controller.start()
        stack.callback(controller.stop)
        stack.callback(dns.close)
        mailroom = _start_mailroom(layout)
        stack.callback(stop_group, mailroom, 60)
        rspamd = stack.enter_context(run_rspamd(root / "rspamd", dns, layout=DEPLOY / "rspamd"))
        postfix = _start_postfix(layout, rspamd.milter, cert, key)
        stack.callback(_stop_postfix, postfix)
        nginx = _start_nginx(layout, cert, key)
        stack.callback(stop_group, nginx, 15)
        layout.sink = sink  # type: ignore[attr-defined]
        yield layout
    finally:
        stack.close()
        shutil.rmtree(root, ignore_errors=True)


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _outside(port: int, addr: str = "192.0.2.25") -> smtplib.SMTP:
    """A client on the Internet (127.0.0.2: not in Postfix's mynetworks) talking to port 25,
    with the address ``addr`` for rspamd (Postfix's XCLIENT)."""
    conn = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=("127.0.0.2", 0))
    conn.ehlo("mx.outside.test")
    assert conn.docmd("XCLIENT", f"ADDR={addr} NAME=mx.outside.test")[0] == 220
    conn.ehlo("mx.outside.test")
    conn.starttls(context=_tls())
    conn.ehlo("mx.outside.test")
    return conn


def _threads(layout: Layout, user_key: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{layout.api}/api/v1/threads",
        params={"label": "inbox"},
        headers={"Authorization": f"Bearer {user_key}"},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["threads"])


def _wait(predicate: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_the_deploy_layout_carries_mail_both_ways(layout: Layout) -> None:
    started = time.monotonic()
    sink: Sink = layout.sink  # type: ignore[attr-defined]
    layout.call("POST", "/api/v1/domains", json={"name": "example.org"})
    dkim_key = layout.call("POST", "/api/v1/domains/example.org/dkim", json={"bits": 1024})
    for email, extra in (
        ("alice@example.org", {}),
        ("carol@example.org", {"forward_enabled": True, "forward_destinations": ["bob@remote.test"]}),
    ):
        layout.call("POST", "/api/v1/users", json={"email": email, "password": PASSWORD, **extra})
    alice_key = layout.call("POST", "/api/v1/apikeys", json={"name": "test", "owner": "alice@example.org"})[
        "key"
    ]

    # 1. From outside through Postfix:25 (rspamd as milter, LMTP to mailroom) to alice.
    conn = _outside(layout.ports["smtp"])
    try:
        code, text = conn.rcpt("nobody@example.org") if conn.mail("ann@outside.test")[0] == 250 else (0, b"")
        assert code == 550, text  # 2. an unknown user: Postfix refuses at RCPT (socketmap said no)
        assert b"5.1.1" in text
        conn.rset()
        raw = (
            "From: Ann <ann@outside.test>\r\nTo: alice@example.org\r\nSubject: Hello from outside\r\n"
            "Message-ID: <outside-1@outside.test>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
            "\r\nHi Alice!\r\n"
        )
        assert conn.sendmail("ann@outside.test", ["alice@example.org"], raw) == {}
    finally:
        conn.quit()
    threads = _wait(
        lambda: [t for t in _threads(layout, alice_key) if t.get("subject") == "Hello from outside"]
    )
    assert threads, layout.logs()
    r = httpx.get(
        f"{layout.api}/api/v1/threads/{threads[0]['thread_id']}",
        headers={"Authorization": f"Bearer {alice_key}"},
    )
    [email] = r.json()["emails"]
    raw_stored = httpx.get(
        f"{layout.api}/api/v1/emails/{email['email_id']}/raw",
        headers={"Authorization": f"Bearer {alice_key}"},
    ).content
    head = raw_stored.split(b"\r\n\r\n", 1)[0].decode()
    assert "Authentication-Results: mail.example.org;" in head, head
    # rspamd's own verdict on the outside client: outside.test publishes no SPF.
    assert re.search(r"spf=none \([^)]*192\.0\.2\.25\) smtp\.mailfrom=ann@outside\.test", head), head
    assert "X-Spam-Score: " in head, head
    assert "by mail.example.org (Postfix)" in head, head

    # rspamd judges as Postfix's milter: the GTUBE test string is refused in the dialogue.
    conn = _outside(layout.ports["smtp"])
    try:
        with pytest.raises(smtplib.SMTPDataError) as spam:
            conn.sendmail("ann@outside.test", ["alice@example.org"], raw.replace("Hi Alice!", GTUBE))
        assert spam.value.smtp_code == 554, spam.value
    finally:
        conn.close()
    # ... and so is mail that fails the DMARC p=reject of its From domain (dmarc.conf).
    conn = _outside(layout.ports["smtp"])
    try:
        forged = raw.replace("ann@outside.test", "ann@strict.test")
        with pytest.raises(smtplib.SMTPDataError) as dmarc:
            conn.sendmail("ann@strict.test", ["alice@example.org"], forged)
        assert dmarc.value.smtp_code in (550, 554), dmarc.value
    finally:
        conn.close()
    conn = _outside(layout.ports["smtp"], addr="192.0.2.10")  # strict.test's own server: accepted
    try:
        assert conn.sendmail("ann@strict.test", ["alice@example.org"], forged) == {}
    finally:
        conn.quit()

    # nginx in front of HTTP: the API answers through it, the daemons' /internal/ never does.
    https = f"https://127.0.0.1:{layout.ports['https']}"
    assert httpx.get(f"{https}/health", verify=False, timeout=30).status_code == 200
    assert httpx.get(f"{https}/internal/auth/email", verify=False, timeout=30).status_code == 404
    implicit = smtplib.SMTP_SSL("127.0.0.1", layout.ports["nginx465"], timeout=60, context=_tls())
    try:
        assert implicit.ehlo("laptop.test")[0] == 250
        assert implicit.has_extn("auth")
    finally:
        implicit.quit()

    # 3. Submission on 587 through nginx: a wrong password is refused by mailroom's guard.
    conn = smtplib.SMTP("127.0.0.1", layout.ports["nginx587"], timeout=60)
    try:
        conn.ehlo("laptop.test")
        conn.starttls(context=_tls())
        conn.ehlo("laptop.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            conn.login("alice@example.org", "not her password")
        assert refused.value.smtp_code == 535
    finally:
        conn.close()
    # 4. ... the right one sends: to an external address (leaves Postfix, DKIM-signed) and to
    # carol, who forwards to bob@remote.test (an SRS sender).
    conn = smtplib.SMTP("127.0.0.1", layout.ports["nginx587"], timeout=60)
    try:
        conn.ehlo("laptop.test")
        conn.starttls(context=_tls())
        conn.ehlo("laptop.test")
        conn.login("alice@example.org", PASSWORD)
        out = (
            "From: Alice <alice@example.org>\r\nTo: dave@remote.test\r\nSubject: Out into the world\r\n"
            "Message-ID: <out-1@example.org>\r\nDate: Sat, 05 Dec 2026 10:01:00 +0000\r\n\r\nHello Dave!\r\n"
        )
        assert conn.sendmail("alice@example.org", ["dave@remote.test"], out) == {}
        fwd = out.replace("dave@remote.test", "carol@example.org").replace("out-1@", "fwd-1@")
        assert conn.sendmail("alice@example.org", ["carol@example.org"], fwd) == {}
    finally:
        conn.quit()
    messages = sink.wait(2)
    direct = next(m for m in messages if m.rcpt_tos == ["dave@remote.test"])
    assert direct.mail_from == "alice@example.org"
    record = "".join(re.findall(r'"([^"]*)"', dkim_key["record_value"])).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == dkim_key["record_name"].encode() else b""

    assert dkim.verify(direct.content, dnsfunc=dns), direct.content[:600]
    assert b"by mail.example.org (Postfix)" in direct.content  # it went through Postfix
    forwarded = next(m for m in messages if m.rcpt_tos == ["bob@remote.test"])
    assert forwarded.mail_from.startswith("SRS0="), forwarded.mail_from
    assert forwarded.mail_from.endswith("@example.org")

    # 5. The remote MX bounces the forwarded copy to its SRS sender: through Postfix:25
    # (recipient_canonical over socketmap) back to alice, the original sender.
    conn = _outside(layout.ports["smtp"])
    try:
        bounce = (
            "From: MAILER-DAEMON@remote.test\r\nTo: " + forwarded.mail_from + "\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@remote.test>\r\n"
            "Date: Sat, 05 Dec 2026 10:02:00 +0000\r\n\r\nbob@remote.test: mailbox full\r\n"
        )
        assert conn.sendmail("<>", [forwarded.mail_from], bounce) == {}
    finally:
        conn.quit()
    back = _wait(
        lambda: [
            t
            for t in _threads(layout, alice_key)
            if t.get("subject") == "Undelivered Mail Returned to Sender"
        ]
    )
    assert back, layout.logs()
    assert time.monotonic() - started < 60
