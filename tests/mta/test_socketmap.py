"""The Postfix socketmap listener, over a real socket on loopback (and ``postmap -q``).

Every table answers from the same rules mailroom's own listeners apply; protocol errors
answer ``PERM`` (closing the connection when the stream is broken), a failing database
``TEMP``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.delivery import srs
from mailroom.frontends.socketmap import encode, start_socketmap
from tests.mailhelpers import create_user

pytestmark = pytest.mark.anyio

POSTMAP = shutil.which("postmap") or "/usr/sbin/postmap"


@pytest.fixture
async def socketmap(mailroom: Mailroom) -> AsyncIterator[int]:
    server = await start_socketmap(mailroom, host="127.0.0.1", port=0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def ask(port: int, *requests: bytes, raw: bytes | None = None) -> list[bytes]:
    """Send netstring requests (or ``raw`` bytes) on one connection; the replies, in order,
    until as many came as were asked or the server closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw if raw is not None else b"".join(encode(r) for r in requests))
        await writer.drain()
        replies: list[bytes] = []
        want = len(requests) or 1
        while len(replies) < want:
            try:
                length = await asyncio.wait_for(reader.readuntil(b":"), 5)
            except asyncio.IncompleteReadError:
                break
            size = int(length[:-1])
            body = await reader.readexactly(size + 1)
            assert body[-1:] == b","
            replies.append(body[:-1])
        return replies
    finally:
        writer.close()


async def one(port: int, table: str, key: str) -> bytes:
    [reply] = await ask(port, f"{table} {key}".encode())
    return reply


@pytest.fixture
async def mail_world(mailroom: Mailroom) -> Mailroom:
    registry = mailroom.registry
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "bob@example.org")
    await create_user(mailroom, "off@example.org", enabled=False)
    await create_user(
        mailroom,
        "fwd@example.org",
        forward_enabled=True,
        forward_destinations=["fwd@elsewhere.example"],
        forward_keep=True,
    )
    await registry.call(
        "admin.alternatives.create", {"domain": "example.org", "alternative": {"name": "example.net"}}
    )
    await registry.call(
        "admin.aliases.create",
        {
            "alias": {
                "address": "team@example.org",
                "destinations": ["alice@example.org", "bob@example.org", "carol@partner.example"],
            }
        },
    )
    await registry.call(
        "admin.aliases.create",
        {"alias": {"address": "sales-*@example.org", "wildcard": True, "destinations": ["bob@example.org"]}},
    )
    await registry.call(
        "admin.relays.create", {"relay": {"name": "partner.example", "smarthost": "mx.partner.example:2525"}}
    )
    await registry.call("admin.relays.create", {"relay": {"name": "direct.example"}})
    return mailroom


async def test_domain_table_knows_domains_and_alternatives_only(mail_world: Mailroom, socketmap: int) -> None:
    assert await one(socketmap, "domain", "example.org") == b"OK example.org"
    assert await one(socketmap, "domain", "EXAMPLE.NET") == b"OK example.net"
    assert await one(socketmap, "domain", "partner.example") == b"NOTFOUND "
    assert await one(socketmap, "domain", "nowhere.test") == b"NOTFOUND "
    assert await one(socketmap, "domain", "not a domain") == b"NOTFOUND "


async def test_mailbox_table_knows_enabled_mailboxes_in_any_spelling(
    mail_world: Mailroom, socketmap: int
) -> None:
    assert await one(socketmap, "mailbox", "alice@example.org") == b"OK alice@example.org"
    assert await one(socketmap, "mailbox", "Alice@EXAMPLE.org") == b"OK alice@example.org"
    assert await one(socketmap, "mailbox", "alice+news@example.org") == b"OK alice@example.org"
    assert await one(socketmap, "mailbox", "off@example.org") == b"NOTFOUND "
    assert await one(socketmap, "mailbox", "team@example.org") == b"NOTFOUND "
    assert await one(socketmap, "mailbox", "nobody@example.org") == b"NOTFOUND "
    assert await one(socketmap, "mailbox", "example.org") == b"NOTFOUND "


async def test_alias_table_expands_aliases_wildcards_alternatives_and_forwarding(
    mail_world: Mailroom, socketmap: int
) -> None:
    assert await one(socketmap, "alias", "team@example.org") == (
        b"OK alice@example.org,bob@example.org,carol@partner.example"
    )
    assert await one(socketmap, "alias", "sales-eu@example.org") == b"OK bob@example.org"
    assert await one(socketmap, "alias", "alice@example.net") == b"OK alice@example.org"
    # A tagged address of a mailbox is that mailbox: the mailbox table answers it.
    assert await one(socketmap, "alias", "alice+news@example.org") == b"NOTFOUND "
    assert await one(socketmap, "alias", "alice+news@example.net") == b"OK alice+news@example.org"
    assert await one(socketmap, "alias", "fwd@example.org") == b"OK fwd@example.org,fwd@elsewhere.example"
    # A plain mailbox is the mailbox table's; unknown and disabled addresses are nobody's.
    assert await one(socketmap, "alias", "alice@example.org") == b"NOTFOUND "
    assert await one(socketmap, "alias", "nobody@example.org") == b"NOTFOUND "
    assert await one(socketmap, "alias", "off@example.org") == b"NOTFOUND "
    assert await one(socketmap, "alias", "someone@partner.example") == b"NOTFOUND "


async def test_transport_table_sends_relayed_domains_to_their_smarthost_and_ours_to_lmtp(
    mail_world: Mailroom, socketmap: int
) -> None:
    lmtp = f"OK lmtp:inet:127.0.0.1:{mail_world.settings.lmtp_port}".encode()
    assert await one(socketmap, "transport", "example.org") == lmtp
    assert await one(socketmap, "transport", "example.net") == lmtp
    assert await one(socketmap, "transport", "partner.example") == b"OK smtp:[mx.partner.example]:2525"
    assert await one(socketmap, "transport", "direct.example") == b"OK smtp:"
    assert await one(socketmap, "transport", "elsewhere.example") == b"NOTFOUND "


async def test_sender_login_lists_who_may_send_as_an_address(mail_world: Mailroom, socketmap: int) -> None:
    assert await one(socketmap, "sender_login", "alice@example.org") == b"OK alice@example.org"
    assert await one(socketmap, "sender_login", "ALICE+x@example.org") == b"OK alice@example.org"
    assert await one(socketmap, "sender_login", "alice@example.net") == b"OK alice@example.org"
    assert await one(socketmap, "sender_login", "team@example.org") == b"OK alice@example.org,bob@example.org"
    assert await one(socketmap, "sender_login", "off@example.org") == b"NOTFOUND "
    assert await one(socketmap, "sender_login", "dave@cli.test") == b"NOTFOUND "
    # A send-as identity granted to bob: bob may use it, also beside the owner of a mailbox.
    await mail_world.registry.call(
        "admin.identities.create", {"email": "bob@example.org", "identity": {"address": "dave@cli.test"}}
    )
    assert await one(socketmap, "sender_login", "dave@cli.test") == b"OK bob@example.org"


async def test_recipient_table_reverses_our_srs_addresses_only(mail_world: Mailroom, socketmap: int) -> None:
    secret = mail_world.settings.secret_key.get_secret_value().encode()
    now = mail_world.runtime.clock.now()
    ours = srs.forward("bob@remote.example", "example.org", secret, now)
    assert await one(socketmap, "recipient", ours) == b"OK bob@remote.example"
    # SRS1 of ours around an SRS0 of ours: all the way back.
    wrapped = srs.forward(ours, "example.org", secret, now)
    assert wrapped.startswith("SRS1=")
    assert await one(socketmap, "recipient", wrapped) == b"OK bob@remote.example"
    forged = "SRS0=AAAA" + ours[9:]
    assert await one(socketmap, "recipient", forged) == b"NOTFOUND "
    theirs = srs.forward("bob@remote.example", "elsewhere.example", secret, now)
    assert await one(socketmap, "recipient", theirs) == b"NOTFOUND "
    old = srs.forward("bob@remote.example", "example.org", secret, datetime(2020, 1, 1, tzinfo=UTC))
    assert await one(socketmap, "recipient", old) == b"NOTFOUND "
    assert await one(socketmap, "recipient", "alice@example.org") == b"NOTFOUND "


@pytest.mark.parametrize("settings_overrides", [{"submission_rate_limit": "3/hour"}])
async def test_sender_access_answers_450_once_the_sending_limit_is_spent(
    mail_world: Mailroom, socketmap: int
) -> None:
    answers = await ask(socketmap, *[b"sender_access alice@example.org"] * 4)
    assert answers == [b"NOTFOUND "] * 3 + [b"OK 450 4.2.1 Sending rate limit exceeded, try again later"]
    # Another user's limit is their own; addresses of nobody are not limited here.
    assert await one(socketmap, "sender_access", "bob@example.org") == b"NOTFOUND "
    assert await one(socketmap, "sender_access", "dave@cli.test") == b"NOTFOUND "


async def test_many_requests_on_one_connection_are_answered_in_order(
    mail_world: Mailroom, socketmap: int
) -> None:
    requests = [b"mailbox alice@example.org", b"domain nowhere.test", b"domain example.org"] * 30
    replies = await ask(socketmap, *requests)
    assert replies == [b"OK alice@example.org", b"NOTFOUND ", b"OK example.org"] * 30


async def test_unknown_table_and_malformed_requests_are_perm(mailroom: Mailroom, socketmap: int) -> None:
    assert await one(socketmap, "virtual", "alice@example.org") == b"PERM unknown table 'virtual'"
    [reply] = await ask(socketmap, b"domain")
    assert reply.startswith(b"PERM malformed request")
    [reply] = await ask(socketmap, b"domain \xff\xfe")
    assert reply == b"PERM request is not UTF-8"
    [reply] = await ask(socketmap, b"mailbox " + b"a" * 2000 + b"@example.org")
    assert reply == b"PERM invalid key"
    # The connection goes on after a PERM of a well-formed netstring.
    replies = await ask(socketmap, b"nope x", b"domain nowhere.test")
    assert replies == [b"PERM unknown table 'nope'", b"NOTFOUND "]


@pytest.mark.parametrize(
    "raw",
    [b"abc:hello,", b"5:hello;", b"100001:", b"9999999999:x,", b"-1:x,", b"05:hello,", b"+5:hello,"],
)
async def test_a_broken_netstring_is_perm_and_closes_the_connection(
    mailroom: Mailroom, socketmap: int, raw: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", socketmap)
    try:
        writer.write(raw)
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    finally:
        writer.close()
    assert b":PERM " in rest
    assert rest.endswith(b",")


async def test_a_failing_database_is_temp(
    mail_world: Mailroom, socketmap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from mailroom.store import recipients

    async def down(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("database is down"))

    monkeypatch.setattr(recipients, "user", down)
    assert (await one(socketmap, "mailbox", "alice@example.org")).startswith(b"TEMP ")


async def test_unix_socket(mail_world: Mailroom, tmp_path: Path) -> None:
    path = tmp_path / "socketmap.sock"
    server = await start_socketmap(mail_world, path=str(path))
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(encode(b"mailbox bob@example.org"))
        await writer.drain()
        assert await reader.readuntil(b",") == b"18:OK bob@example.org,"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


# -- Postfix's own client -------------------------------------------------------------------


def postmap(port: int, table: str, key: str) -> tuple[int, str]:
    done = subprocess.run(
        [POSTMAP, "-q", key, f"socketmap:inet:127.0.0.1:{port}:{table}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout.strip()


@pytest.mark.skipif(
    not Path(POSTMAP).exists(), reason="Postfix's postmap is not installed (.ci/run installs it)"
)
async def test_postmap_queries_every_table(mail_world: Mailroom, socketmap: int) -> None:
    async def q(table: str, key: str) -> tuple[int, str]:
        return await asyncio.to_thread(postmap, socketmap, table, key)

    assert await q("domain", "example.org") == (0, "example.org")
    assert await q("mailbox", "alice@example.org") == (0, "alice@example.org")
    assert await q("alias", "team@example.org") == (
        0,
        "alice@example.org,bob@example.org,carol@partner.example",
    )
    assert await q("transport", "partner.example") == (0, "smtp:[mx.partner.example]:2525")
    assert await q("sender_login", "team@example.org") == (0, "alice@example.org,bob@example.org")
    # postmap -q exits 1 for "not found", and the same for a PERM (with a warning).
    assert (await q("mailbox", "nobody@example.org"))[0] == 1
    assert (await q("nosuchtable", "x"))[0] != 0


def test_postmap_is_installed_in_ci() -> None:
    import os

    if os.environ.get("CI") == "true":
        assert Path(POSTMAP).exists(), "CI must install postfix (postmap) for the socketmap tests"
