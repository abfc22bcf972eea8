"""``mailroom serve`` binds POP3 and POP3S once, lists them in its banner and serves them in
every worker; the maildrop lock holds across workers (it is in the database)."""

from __future__ import annotations

import poplib
import re
import ssl
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve_listeners import _free_ports, _ports, serving
from tests.mailhelpers import lmtp_send, message

PASSWORD = "correct horse battery staple"


@pytest.mark.slow
def test_serve_runs_pop3_and_pop3s_for_every_worker(tmp_path: Path, database_url: str) -> None:
    pop3_port, pop3s_port = _free_ports(2)
    env = {"MAILROOM_POP3_PORT": str(pop3_port), "MAILROOM_POP3S_PORT": str(pop3s_port)}
    ports = _ports()
    url = None if database_url.startswith("sqlite") else database_url
    with serving(tmp_path / "data", ports, workers=2, env=env, database_url=url) as server:
        banner = server.stderr()
        assert re.search(rf"^  pop3 +127\.0\.0\.1:{pop3_port}$", banner, re.MULTILINE), banner
        assert re.search(rf"^  pop3s +127\.0\.0\.1:{pop3s_port}$", banner, re.MULTILINE), banner
        headers = {"Authorization": f"Bearer {server.key}"}
        for path, body in (
            ("/api/v1/domains", {"name": "example.org"}),
            ("/api/v1/users", {"email": "alice@example.org", "password": PASSWORD}),
        ):
            r = httpx.post(f"{server.base}{path}", json=body, headers=headers, timeout=30)
            assert r.status_code == 201, r.text
        raw = message(body="Hello\r\n.hidden dot\r\n")
        assert lmtp_send(ports["lmtp"], "bob@example.net", ["alice@example.org"], raw).data[0][0] == 250

        holder = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
        holder.user("alice@example.org")
        assert holder.pass_(PASSWORD).startswith(b"+OK maildrop locked: 1 messages")
        # Whichever worker the kernel gives them to, other sessions find the maildrop in use.
        for _ in range(6):
            other = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
            other.user("alice@example.org")
            with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
                other.pass_(PASSWORD)
            other.quit()
        lines = holder.retr(1)[1]
        assert b"\r\n".join(lines).endswith(raw.rstrip(b"\r\n"))
        assert holder.quit().startswith(b"+OK")

        context = ssl.create_default_context(cafile=str(tmp_path / "data" / "tls" / "cert.pem"))
        context.check_hostname = False
        secure = poplib.POP3_SSL("127.0.0.1", pop3s_port, timeout=10, context=context)
        secure.user("alice@example.org")
        secure.pass_(PASSWORD)
        assert secure.stat()[0] == 1  # QUIT without DELE kept it
        secure.quit()
