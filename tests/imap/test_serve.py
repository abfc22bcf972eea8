"""``mailroom serve`` binds IMAP and IMAPS once for all its workers and lists them in its banner."""

from __future__ import annotations

import imaplib
import poplib
import ssl
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve_listeners import _free_ports, _ports, serving


@pytest.mark.slow
def test_serve_runs_imap_and_imaps_for_every_worker(tmp_path: Path) -> None:
    imap_port, imaps_port = _free_ports(2)
    env = {"MAILROOM_IMAP_PORT": str(imap_port), "MAILROOM_IMAPS_PORT": str(imaps_port)}
    with serving(tmp_path / "data", _ports(), workers=2, env=env) as server:
        banner = server.stderr()
        assert f"127.0.0.1:{imap_port}" in banner
        assert f"127.0.0.1:{imaps_port}" in banner
        headers = {"Authorization": f"Bearer {server.key}"}
        r = httpx.post(f"{server.base}/api/v1/domains", json={"name": "example.org"}, headers=headers)
        assert r.status_code == 201, r.text
        user = {"email": "alice@example.org", "password": "correct horse battery"}
        r = httpx.post(f"{server.base}/api/v1/users", json=user, headers=headers)
        assert r.status_code == 201, r.text
        for _ in range(4):  # the kernel spreads the connections over both workers
            conn = imaplib.IMAP4("127.0.0.1", imap_port, timeout=10)
            conn.login("alice@example.org", "correct horse battery")
            assert conn.select("INBOX") == ("OK", [b"0"])
            conn.logout()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with imaplib.IMAP4_SSL("127.0.0.1", imaps_port, ssl_context=context, timeout=10) as secure:
            secure.login("alice@example.org", "correct horse battery")


@pytest.mark.slow
def test_serve_flags_set_the_imap_and_pop3_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--imap-port``/``--imaps-port``/``--pop3-port``/``--pop3s-port`` as the other ports' flags:
    they win over the environment (which switches all four off here) and reach every worker."""
    from tests.cli import test_serve_listeners as listeners

    imap_port, pop3_port = _free_ports(2)
    command = listeners._serve_command
    flags = ["--imap-port", str(imap_port), "--imaps-port", "0", "--pop3-port", str(pop3_port)]
    monkeypatch.setattr(
        listeners, "_serve_command", lambda *args: [*command(*args), *flags, "--pop3s-port", "0"]
    )
    with serving(tmp_path / "data", _ports(), workers=1) as server:
        banner = server.stderr()
        assert f"127.0.0.1:{imap_port}" in banner
        assert f"127.0.0.1:{pop3_port}" in banner
        conn = imaplib.IMAP4("127.0.0.1", imap_port, timeout=10)
        assert b"IMAP4rev2" in conn.capability()[1][0]
        conn.logout()
        pop = poplib.POP3("127.0.0.1", pop3_port, timeout=10)
        assert pop.getwelcome().startswith(b"+OK")
        pop.quit()
