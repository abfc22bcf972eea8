"""The Dovecot dict-proxy listener: the wire protocol, and a real Dovecot from Debian using it
for passdb, userdb, user iteration and quota_clone (``doveadm auth test``, ``doveadm user``,
``doveadm save``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailroom.bootstrap import Mailroom
from mailroom.frontends.dovecot import start_dovecot_dict, tabescape, tabunescape
from mailroom.services.mail.dovecot import dovecot_password
from tests.mailhelpers import create_user

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
needs_dovecot = pytest.mark.skipif(
    not Path(DOVECOT).exists() and os.environ.get("CI") != "true",
    reason="Dovecot is not installed (.ci/run installs dovecot-core)",
)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Dovecot's own processes (not root) must reach the socket and the mail homes.
    folder = Path(tempfile.mkdtemp(prefix="mailroom-dict-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def settings_overrides(socket_dir: Path) -> dict[str, Any]:
    return {"dovecot_home": f"{socket_dir}/vmail/%d/%n"}


@pytest.fixture
async def dict_socket(mailroom: Mailroom, socket_dir: Path) -> AsyncIterator[Path]:
    path = socket_dir / "dict.sock"
    server = await start_dovecot_dict(mailroom, path=str(path))
    path.chmod(0o666)
    try:
        yield path
    finally:
        server.close()
        await server.wait_closed()


async def converse(path: Path, *lines: str, replies: int) -> list[str]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write("".join(line + "\n" for line in lines).encode())
        await writer.drain()
        out = []
        for _ in range(replies):
            out.append((await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n"))
        return out
    finally:
        writer.close()


HELLO = "H3\t2\t0\t\tmailroom"


async def test_passdb_and_userdb_lookups(mailroom: Mailroom, dict_socket: Path, socket_dir: Path) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD, quota_bytes=10_000_000)
    await create_user(mailroom, "nopop@example.org", password=PASSWORD, enable_pop=False)
    await create_user(mailroom, "off@example.org", password=PASSWORD, enabled=False)
    replies = await converse(
        dict_socket,
        HELLO,
        "Lshared/passdb/alice@example.org\talice@example.org",
        "Lshared/userdb/Alice@Example.org\talice@example.org",
        "Lshared/passdb/nobody@example.org",
        "Lshared/passdb/off@example.org",
        "Lshared/passdb/pop3/nopop@example.org",
        "Lshared/passdb/imap/nopop@example.org",
        "Lpriv/something",
        replies=7,
    )
    passdb = orjson.loads(tabunescape(replies[0][1:]))
    assert replies[0][0] == "O"
    assert passdb["password"].startswith("{ARGON2ID}$argon2id$")
    assert replies[1][0] == "O"
    assert orjson.loads(tabunescape(replies[1][1:])) == {
        "home": f"{socket_dir}/vmail/example.org/alice",
        "quota_rule": "*:bytes=10000000",
    }
    assert replies[2:5] == ["N", "N", "N"]
    assert replies[5][0] == "O"
    assert replies[6] == "N"


@pytest.mark.parametrize("settings_overrides", [{"dovecot_nopassword": True}])
async def test_nopassword_when_a_proxy_checked_it(mailroom: Mailroom, dict_socket: Path) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    [reply] = await converse(dict_socket, HELLO, "Lshared/passdb/alice@example.org", replies=1)
    assert orjson.loads(reply[1:]) == {"nopassword": "y"}


async def test_iteration_lists_enabled_users_and_ends_with_an_empty_line(
    mailroom: Mailroom, dict_socket: Path
) -> None:
    for name in ("carol", "alice", "bob"):
        await create_user(mailroom, f"{name}@example.org", password=PASSWORD)
    await create_user(mailroom, "off@example.org", password=PASSWORD, enabled=False)
    replies = await converse(dict_socket, HELLO, "I1\t0\tshared/userdb/\t", replies=4)
    keys = [r[1:].split("\t")[0] for r in replies[:3]]
    assert keys == [f"shared/userdb/{n}@example.org" for n in ("alice", "bob", "carol")]
    assert replies[3] == ""
    limited = await converse(dict_socket, HELLO, "I9\t2\tshared/userdb/", replies=3)
    assert limited == ["Oshared/userdb/alice@example.org\t", "Oshared/userdb/bob@example.org\t", ""]


async def test_quota_clone_transaction_updates_the_usage(mailroom: Mailroom, dict_socket: Path) -> None:
    user_id = await create_user(mailroom, "alice@example.org", password=PASSWORD)
    replies = await converse(
        dict_socket,
        HELLO,
        "B1\talice@example.org",
        "S1\tpriv/quota/storage\t123456",
        "S1\tpriv/quota/messages\t7",
        "C1",
        "B2\talice@example.org",
        "R2",
        "C2",
        replies=2,
    )
    assert replies == ["O1", "N2"]
    user = await mailroom.registry.call("admin.users.get", {"email": "alice@example.org"})
    assert user["quota_bytes_used"] == 123456
    assert user_id


@pytest.mark.parametrize("line", ["X", "Ifoo", "S9\tk\tv", "H1\t0\t0\t\tx", "B1\nB1"])
async def test_protocol_errors_close_the_connection(mailroom: Mailroom, dict_socket: Path, line: str) -> None:
    reader, writer = await asyncio.open_unix_connection(str(dict_socket))
    try:
        writer.write((HELLO + "\n" + line + "\n").encode())
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_an_overlong_line_closes_the_connection(mailroom: Mailroom, dict_socket: Path) -> None:
    reader, writer = await asyncio.open_unix_connection(str(dict_socket))
    try:
        writer.write(b"L" + b"x" * 70_000)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


@given(st.text())
def test_tab_escaping_round_trips(value: str) -> None:
    escaped = tabescape(value)
    assert not any(c in escaped for c in "\t\r\n")
    assert tabunescape(escaped) == value


def test_dovecot_password_forms() -> None:
    assert dovecot_password("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA") == (
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    )
    assert dovecot_password("$6$salt$hash") == "{SHA512-CRYPT}$6$salt$hash"
    assert (
        dovecot_password("{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu")
        == "{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu"
    )
    assert dovecot_password("$pbkdf2-sha256$29000$c2FsdA$aGFzaA") is None
    assert dovecot_password("{PLAIN}secret") is None


# -- a real Dovecot ------------------------------------------------------------------------


def dovecot_conf(folder: Path, socket: Path) -> Path:
    (folder / "run").mkdir(exist_ok=True)
    (folder / "dict-auth.conf.ext").write_text(
        f"uri = proxy:{socket}:mailroom\n"
        "password_key = passdb/%u\n"
        "user_key = userdb/%u\n"
        "iterate_disable = no\n"
        "iterate_prefix = userdb/\n"
        "default_pass_scheme = ARGON2ID\n"
    )
    conf = folder / "dovecot.conf"
    conf.write_text(
        f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_plugins = quota quota_clone
plugin {{
  quota = count:User quota
  quota_vsizes = yes
  quota_clone_dict = proxy:{socket}:mailroom
}}
passdb {{
  driver = dict
  args = {folder}/dict-auth.conf.ext
}}
userdb {{
  driver = dict
  args = {folder}/dict-auth.conf.ext
}}
"""
    )
    return conf


@pytest.fixture
async def dovecot(dict_socket: Path, socket_dir: Path) -> AsyncIterator[Path]:
    conf = dovecot_conf(socket_dir, dict_socket)
    (socket_dir / "vmail").mkdir(mode=0o777)
    (socket_dir / "vmail").chmod(0o777)
    # Dovecot forks into the background: its output must not be a pipe we wait on.
    started = await asyncio.to_thread(
        subprocess.run, [DOVECOT, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = socket_dir / "dovecot.log"
    assert started.returncode == 0, log.read_text() if log.exists() else "dovecot failed to start"
    for _ in range(300):  # until its auth service listens
        if (socket_dir / "run" / "auth-userdb").exists():
            break
        await asyncio.sleep(0.05)
    try:
        yield conf
    finally:
        await asyncio.to_thread(subprocess.run, [DOVEADM, "-c", str(conf), "stop"], capture_output=True)


async def doveadm(conf: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [DOVEADM, "-c", str(conf), *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_dovecot
async def test_doveadm_auth_test_checks_our_hash(mailroom: Mailroom, dovecot: Path) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    ok = await doveadm(dovecot, "auth", "test", "alice@example.org", PASSWORD)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "auth succeeded" in ok.stdout
    bad = await doveadm(dovecot, "auth", "test", "alice@example.org", "wrong password")
    assert bad.returncode != 0
    assert "auth failed" in bad.stdout + bad.stderr
    nobody = await doveadm(dovecot, "auth", "test", "nobody@example.org", PASSWORD)
    assert nobody.returncode != 0


@needs_dovecot
async def test_doveadm_user_and_iteration(mailroom: Mailroom, dovecot: Path, socket_dir: Path) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD, quota_bytes=5_000_000)
    await create_user(mailroom, "bob@example.org", password=PASSWORD)
    one = await doveadm(dovecot, "user", "alice@example.org")
    assert one.returncode == 0, one.stdout + one.stderr
    assert f"{socket_dir}/vmail/example.org/alice" in one.stdout
    assert "quota_rule" in one.stdout
    every = await doveadm(dovecot, "user", "*")
    assert every.returncode == 0, every.stdout + every.stderr
    assert every.stdout.split() == ["alice@example.org", "bob@example.org"]


@needs_dovecot
async def test_quota_clone_reports_the_usage_dovecot_counted(mailroom: Mailroom, dovecot: Path) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    message = b"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hi\r\n\r\n" + b"x" * 5000 + b"\r\n"
    saved = await doveadm(dovecot, "save", "-u", "alice@example.org", stdin=message)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    for _ in range(100):
        user = await mailroom.registry.call("admin.users.get", {"email": "alice@example.org"})
        if user["quota_bytes_used"]:
            break
        await asyncio.sleep(0.05)
    assert user["quota_bytes_used"] >= len(message)


def test_dovecot_is_installed_in_ci() -> None:
    if os.environ.get("CI") == "true":
        assert Path(DOVECOT).exists(), "CI must install dovecot-core"
