"""POP3 with Python's poplib over real loopback sockets against a started mailroom.

Mail arrives over LMTP (the real listener) and is read back over POP3 byte for byte; the
deletion at QUIT follows the user's ``pop3.deletion`` setting; the maildrop is locked per
user; credentials go through the authenticator and its brute-force guard.
"""

from __future__ import annotations

import asyncio
import base64
import poplib
import socket
from typing import Any

import pytest

from mailroom.bootstrap import Mailroom
from mailroom.errors import NotFound
from mailroom.frontends.pop3 import Pop3Listeners
from mailroom.frontends.smtp import Listeners
from tests.conftest import Actor
from tests.mailhelpers import lmtp_send, message
from tests.pop3.conftest import client_context, connect

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


async def deliver(listeners: Listeners, raw: bytes, to: str = "alice@example.org") -> None:
    out = await asyncio.to_thread(lmtp_send, listeners.ports["lmtp"], "bob@example.net", [to], raw)
    assert out.data, out
    assert out.data[0][0] == 250, out


async def raw_of(mailroom: Mailroom, actor: Actor, email_id: int) -> bytes:
    download = await mailroom.registry.call("mail.emails.raw", {"id": email_id}, principal=actor.principal)
    content: bytes = download.content
    return content


async def email(mailroom: Mailroom, actor: Actor, email_id: int) -> dict[str, Any]:
    result: dict[str, Any] = await mailroom.registry.call(
        "mail.emails.get", {"id": email_id}, principal=actor.principal
    )
    return result


def login(client: poplib.POP3, user: str = "alice@example.org", password: str = PASSWORD) -> bytes:
    client.user(user)
    return client.pass_(password)


def error_of(call: Any) -> str:
    with pytest.raises(poplib.error_proto) as info:
        call()
    return bytes(info.value.args[0]).decode()


@pytest.fixture
async def alice(make_user: Any) -> Actor:
    actor: Actor = await make_user("alice@example.org", password=PASSWORD)
    return actor


async def three_messages(listeners: Listeners) -> list[bytes]:
    raws = [
        message(
            subject=f"Message {i}", message_id=f"<m{i}@example.net>", body=f"Body {i}\r\n", pad_to=200 * i
        )
        for i in (1, 2, 3)
    ]
    for raw in raws:
        await deliver(listeners, raw)
    return raws


async def test_capabilities_before_and_after_login(pop3: Pop3Listeners, alice: Actor) -> None:
    def session() -> tuple[dict[str, list[str]], dict[str, list[str]], bytes]:
        client = connect(pop3)
        try:
            before = client.capa()
            login(client)
            after = client.capa()
            return before, after, client.quit()
        finally:
            client.close()

    before, after, bye = await asyncio.to_thread(session)
    for capability in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "STLS"):
        assert capability in before
    assert before["SASL"] == ["PLAIN"]
    assert "USER" not in after
    assert "STLS" not in after
    assert "SASL" not in after
    assert "UIDL" in after
    assert "TOP" in after
    assert bye.startswith(b"+OK")


async def test_stat_list_uidl_retr_top_dele_rset_quit(
    mailroom: Mailroom, listeners: Listeners, pop3: Pop3Listeners, alice: Actor
) -> None:
    await three_messages(listeners)
    threads = await mailroom.registry.call("mail.threads.list", {"label": "inbox"}, principal=alice.principal)
    assert len(threads["threads"]) == 3

    def session() -> dict[str, Any]:
        client = connect(pop3)
        try:
            out: dict[str, Any] = {"greeting": client.getwelcome(), "login": login(client)}
            out["stat"] = client.stat()
            out["list"] = client.list()
            out["list2"] = client.list(2)
            out["uidl"] = client.uidl()
            out["uidl3"] = client.uidl(3)
            out["retr1"] = client.retr(1)
            out["top2"] = client.top(2, 0)
            out["dele1"] = client.dele(1)
            out["dele1_again"] = error_of(lambda: client.dele(1))
            out["retr_deleted"] = error_of(lambda: client.retr(1))
            out["stat_after_dele"] = client.stat()
            out["rset"] = client.rset()
            out["stat_after_rset"] = client.stat()
            out["no_such"] = error_of(lambda: client.retr(4))
            out["bad_number"] = error_of(lambda: client.retr("x"))  # type: ignore[arg-type]
            out["noop"] = client.noop()
            client.dele(3)
            out["quit"] = client.quit()
            return out
        finally:
            client.close()

    out = await asyncio.to_thread(session)
    assert out["greeting"].startswith(b"+OK")
    assert out["login"].startswith(b"+OK maildrop locked: 3 messages")
    count, size = out["stat"]
    assert count == 3
    listing = [line.split() for line in out["list"][1]]
    assert [n for n, _ in listing] == [b"1", b"2", b"3"]
    assert sum(int(s) for _, s in listing) == size
    assert out["list2"] == b"+OK 2 " + listing[1][1]
    uids = [line.split() for line in out["uidl"][1]]
    assert [n for n, _ in uids] == [b"1", b"2", b"3"]
    assert len({u for _, u in uids}) == 3
    assert out["uidl3"] == b"+OK 3 " + uids[2][1]
    # RETR: the stored message (trace lines and all), its size as LIST said.
    first_id = int(uids[0][1])
    stored = await raw_of(mailroom, alice, first_id)
    assert b"\r\n".join(out["retr1"][1]) + b"\r\n" == stored
    assert int(listing[0][1]) == len(stored)
    assert b"Subject: Message 1" in stored
    # TOP 2 0: the header and the blank line, no body.
    top_lines = out["top2"][1]
    assert top_lines[-1] == b""
    assert b"Subject: Message 2" in top_lines
    assert b"Body 2" not in top_lines
    assert out["dele1"].startswith(b"+OK")
    assert out["dele1_again"].startswith("-ERR")
    assert out["retr_deleted"].startswith("-ERR")
    assert out["stat_after_dele"] == (2, size - int(listing[0][1]))
    assert out["stat_after_rset"] == (3, size)
    assert out["no_such"].startswith("-ERR")
    assert out["bad_number"].startswith("-ERR")
    assert out["noop"].startswith(b"+OK")
    assert out["quit"].startswith(b"+OK")
    assert b"2 messages left" in out["quit"]
    # The default deletion mode archives: message 3 left the inbox, still exists.
    third = await email(mailroom, alice, int(uids[2][1]))
    assert "archive" in third["labels"]
    assert "inbox" not in third["labels"]

    def again() -> tuple[tuple[int, int], list[bytes]]:
        client = connect(pop3)
        try:
            login(client)
            return client.stat(), client.uidl()[1]
        finally:
            client.quit()

    stat, uidl = await asyncio.to_thread(again)
    assert stat[0] == 2
    # UIDLs are stable across sessions: the same messages keep theirs.
    assert [line.split()[1] for line in uidl] == [uids[0][1], uids[1][1]]


async def test_lmtp_delivery_retrieved_byte_exact_with_dot_stuffing(
    mailroom: Mailroom, listeners: Listeners, pop3: Pop3Listeners, alice: Actor
) -> None:
    body = ".leading dot\r\n..two dots\r\n.\r\nmiddle\r\n. \r\nlast line\r\n"
    raw = message(subject="Dots", body=body)
    await deliver(listeners, raw)

    def wire() -> tuple[bytes, list[bytes]]:
        with socket.create_connection(pop3.address("pop3"), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"+OK")
            sock.sendall(f"USER alice@example.org\r\nPASS {PASSWORD}\r\nRETR 1\r\n".encode())
            assert reader.readline().startswith(b"+OK")
            assert reader.readline().startswith(b"+OK")
            lines = []
            first = reader.readline()
            while True:
                line = reader.readline()
                if line == b".\r\n":
                    break
                lines.append(line)
            sock.sendall(b"QUIT\r\n")
            return first, lines

    first, lines = await asyncio.to_thread(wire)
    stuffed = b"".join(lines)
    assert b"\r\n...two dots\r\n..\r\nmiddle\r\n.. \r\n" in stuffed
    assert b"\r\n..leading dot\r\n" in stuffed

    def retr() -> tuple[int, list[bytes]]:
        client = connect(pop3)
        try:
            login(client)
            return int(client.uidl(1).split()[2]), list(client.retr(1)[1])
        finally:
            client.quit()

    email_id, retrieved = await asyncio.to_thread(retr)
    stored = await raw_of(mailroom, alice, email_id)
    assert stored.endswith(raw)
    assert first == f"+OK {len(stored)} octets\r\n".encode()
    # poplib takes the stuffing off again: the message as stored, byte for byte.
    assert b"\r\n".join(retrieved) + b"\r\n" == stored


async def test_stls_and_pop3s_with_the_servers_certificate(
    mailroom: Mailroom, listeners: Listeners, pop3: Pop3Listeners, alice: Actor
) -> None:
    await deliver(listeners, message())
    context = client_context(mailroom)

    def over_stls() -> tuple[bytes, dict[str, list[str]], int, str]:
        client = connect(pop3)
        try:
            answer = client.stls(context)
            capa = client.capa()
            login(client)
            count = client.stat()[0]
            version = client.sock.version()  # type: ignore[attr-defined]
            again = error_of(lambda: client._shortcmd("STLS"))
            assert again.startswith("-ERR")
            return answer, capa, count, str(version)
        finally:
            client.quit()

    answer, capa, count, version = await asyncio.to_thread(over_stls)
    assert answer.startswith(b"+OK")
    assert "STLS" not in capa
    assert "USER" in capa
    assert count == 1
    assert version.startswith("TLS")

    def over_pop3s() -> int:
        client = connect(pop3, "pop3s", context=context)
        try:
            assert "STLS" not in client.capa()
            login(client)
            return int(client.stat()[0])
        finally:
            client.quit()

    assert await asyncio.to_thread(over_pop3s) == 1


@pytest.mark.parametrize("settings_overrides", [{"pop3_allow_plaintext_loopback": False}])
async def test_plaintext_login_needs_tls_when_loopback_is_not_trusted(
    mailroom: Mailroom, pop3: Pop3Listeners, alice: Actor
) -> None:
    def session() -> tuple[dict[str, list[str]], str, str, dict[str, list[str]], bytes]:
        client = connect(pop3)
        try:
            capa = client.capa()
            user = error_of(lambda: client.user("alice@example.org"))
            token = base64.b64encode(f"\0alice@example.org\0{PASSWORD}".encode()).decode()
            auth = error_of(lambda: client._shortcmd(f"AUTH PLAIN {token}"))
            client.stls(client_context(mailroom))
            return capa, user, auth, client.capa(), login(client)
        finally:
            client.quit()

    capa, user, auth, capa_tls, ok = await asyncio.to_thread(session)
    assert "USER" not in capa
    assert "SASL" not in capa
    assert "STLS" in capa
    assert user.startswith("-ERR [AUTH]")
    assert auth.startswith("-ERR [AUTH]")
    assert "USER" in capa_tls
    assert capa_tls["SASL"] == ["PLAIN"]
    assert ok.startswith(b"+OK")


async def test_auth_plain_with_and_without_initial_response(pop3: Pop3Listeners, alice: Actor) -> None:
    token = base64.b64encode(f"\0alice@example.org\0{PASSWORD}".encode()).decode()
    wrong = base64.b64encode(b"\0alice@example.org\0nope").decode()
    other = base64.b64encode(f"bob@example.org\0alice@example.org\0{PASSWORD}".encode()).decode()

    def initial() -> tuple[bytes, str, str, str]:
        client = connect(pop3)
        try:
            mechanisms = client._longcmd("AUTH")
            assert mechanisms[1] == [b"PLAIN"]
            bad = error_of(lambda: client._shortcmd(f"AUTH PLAIN {wrong}"))
            proxy = error_of(lambda: client._shortcmd(f"AUTH PLAIN {other}"))
            unknown = error_of(lambda: client._shortcmd("AUTH CRAM-MD5"))
            return client._shortcmd(f"AUTH PLAIN {token}"), bad, proxy, unknown
        finally:
            client.quit()

    ok, bad, proxy, unknown = await asyncio.to_thread(initial)
    assert ok.startswith(b"+OK maildrop locked")
    assert bad.startswith("-ERR [AUTH]")
    assert proxy.startswith("-ERR [AUTH]")
    assert unknown.startswith("-ERR [AUTH]")

    def continued() -> tuple[bytes, bytes, bytes, bytes]:
        client = connect(pop3)
        try:
            client._putcmd("AUTH PLAIN")
            challenge, _ = client._getline()
            client._putcmd("*")
            cancelled, _ = client._getline()
            client._putcmd("AUTH PLAIN")
            client._getline()
            client._putcmd(token)
            return challenge, cancelled, client._getresp(), client.uidl()[0]
        finally:
            client.quit()

    challenge, cancelled, ok, uidl = await asyncio.to_thread(continued)
    assert challenge == b"+ " or challenge == b"+"
    assert cancelled.startswith(b"-ERR")
    assert ok.startswith(b"+OK")
    assert uidl.startswith(b"+OK")


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_network": "3/hour"}])
async def test_wrong_passwords_reach_the_brute_force_guard(pop3: Pop3Listeners, alice: Actor) -> None:
    def attempts() -> list[str]:
        answers = []
        for i in range(2):  # a connection is closed after 3 failed logins: use two
            client = connect(pop3)
            try:
                for j in range(2):  # the same wrong password counts once: each is another
                    answers.append(error_of(lambda c=client, p=f"wrong {i} {j}": login(c, password=p)))
            finally:
                client.close()
        client = connect(pop3)
        try:
            answers.append(error_of(lambda: login(client)))  # the right password, locked out
        finally:
            client.close()
        return answers

    answers = await asyncio.to_thread(attempts)
    assert answers[0].startswith("-ERR [AUTH]")
    assert answers[-1].startswith("-ERR [SYS/TEMP]"), answers
    assert "secret" not in " ".join(answers)
    assert PASSWORD not in " ".join(answers)


async def test_a_connection_is_closed_after_three_failed_logins(pop3: Pop3Listeners, alice: Actor) -> None:
    def session() -> bytes:
        with socket.create_connection(pop3.address("pop3"), timeout=10) as sock:
            sock.sendall(b"".join(b"USER alice@example.org\r\nPASS no\r\n" for _ in range(3)))
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    data = await asyncio.to_thread(session)
    assert data.count(b"-ERR [AUTH]") == 3
    assert data.endswith(b"\r\n")


async def test_enable_pop_off_refuses_login(make_user: Any, pop3: Pop3Listeners) -> None:
    await make_user("carol@example.org", password=PASSWORD, enable_pop=False)

    def session() -> str:
        client = connect(pop3)
        try:
            return error_of(lambda: login(client, "carol@example.org"))
        finally:
            client.quit()

    answer = await asyncio.to_thread(session)
    assert answer.startswith("-ERR [AUTH]")
    assert "not enabled" in answer


async def test_app_password_for_pop3(mailroom: Mailroom, pop3: Pop3Listeners, alice: Actor) -> None:
    created = await mailroom.registry.call(
        "mail.app_passwords.create",
        {"app_password": {"name": "phone", "protocols": ["pop3"]}},
        principal=alice.principal,
    )

    def session() -> bytes:
        client = connect(pop3)
        try:
            return login(client, password=created["password"])
        finally:
            client.quit()

    assert (await asyncio.to_thread(session)).startswith(b"+OK")


@pytest.mark.parametrize("mode", ["archive", "trash", "delete"])
async def test_deletion_follows_the_users_setting(
    mailroom: Mailroom, listeners: Listeners, pop3: Pop3Listeners, alice: Actor, mode: str
) -> None:
    await three_messages(listeners)
    settings = await mailroom.registry.call(
        "mail.settings.update", {"changes": {"pop3": {"deletion": mode}}}, principal=alice.principal
    )
    assert settings["pop3"] == {"deletion": mode}

    def session() -> list[int]:
        client = connect(pop3)
        try:
            login(client)
            ids = [int(line.split()[1]) for line in client.uidl()[1]]
            client.dele(2)
            client.quit()
            return ids
        except BaseException:
            client.close()
            raise

    ids = await asyncio.to_thread(session)
    if mode == "delete":
        with pytest.raises(NotFound):
            await email(mailroom, alice, ids[1])
    else:
        labels = (await email(mailroom, alice, ids[1]))["labels"]
        assert mode in labels
        assert "inbox" not in labels
    for kept in (ids[0], ids[2]):
        assert "inbox" in (await email(mailroom, alice, kept))["labels"]


async def test_without_quit_nothing_is_deleted(
    mailroom: Mailroom, listeners: Listeners, pop3: Pop3Listeners, alice: Actor
) -> None:
    await three_messages(listeners)

    def dropped() -> None:
        client = connect(pop3)
        login(client)
        client.dele(1)
        client.close()  # no QUIT: RFC 1939 §6, no UPDATE state

    def count() -> int:
        client = connect(pop3)
        try:
            login(client)  # the lock went with the dropped connection
            return int(client.stat()[0])
        finally:
            client.quit()

    await asyncio.to_thread(dropped)
    await asyncio.sleep(0.2)
    assert await asyncio.to_thread(count) == 3


async def test_a_second_session_finds_the_maildrop_in_use(pop3: Pop3Listeners, alice: Actor) -> None:
    def sessions() -> tuple[str, bytes]:
        first = connect(pop3)
        try:
            login(first)
            second = connect(pop3)
            try:
                refused = error_of(lambda: login(second))
            finally:
                second.close()
        finally:
            first.quit()
        third = connect(pop3)
        try:
            return refused, login(third)
        finally:
            third.quit()

    refused, ok = await asyncio.to_thread(sessions)
    assert refused.startswith("-ERR [IN-USE]")
    assert ok.startswith(b"+OK")


@pytest.mark.parametrize("settings_overrides", [{"pop3_idle_timeout_seconds": 1}])
async def test_idle_connections_are_closed(pop3: Pop3Listeners, alice: Actor) -> None:
    def session() -> bytes:
        with socket.create_connection(pop3.address("pop3"), timeout=10) as sock:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    data = await asyncio.to_thread(session)
    assert data.startswith(b"+OK")
    assert b"-ERR autologout" in data


async def test_hostile_lines(pop3: Pop3Listeners, alice: Actor) -> None:
    def session(payload: bytes) -> bytes:
        with socket.create_connection(pop3.address("pop3"), timeout=10) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    too_long = await asyncio.to_thread(session, b"USER " + b"a" * 100_000 + b"\r\n")
    assert too_long.splitlines()[1] == b"-ERR line too long"
    junk = await asyncio.to_thread(session, b"\xff\xfe\r\nRETR 1\r\nLIST\r\n\x00\r\nSTAT 1 2 3\r\nUSER\r\n")
    replies = junk.split(b"\r\n")[1:-1]
    assert len(replies) == 6, replies
    assert all(r.startswith(b"-ERR") for r in replies), replies
    huge = await asyncio.to_thread(
        session,
        f"USER alice@example.org\r\nPASS {PASSWORD}\r\nRETR 99999999999999999999\r\nTOP 1 -1\r\n".encode(),
    )
    assert huge.split(b"\r\n")[3].startswith(b"-ERR")
    assert huge.split(b"\r\n")[4].startswith(b"-ERR")


async def test_commands_pipelined_behind_stls_are_refused(pop3: Pop3Listeners, alice: Actor) -> None:
    """Plaintext sent after STLS before the handshake would be read as if inside TLS (the
    STARTTLS command injection): the server refuses and closes."""

    def session() -> bytes:
        with socket.create_connection(pop3.address("pop3"), timeout=10) as sock:
            sock.sendall(b"STLS\r\nUSER alice@example.org\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    data = await asyncio.to_thread(session)
    lines = data.split(b"\r\n")
    assert lines[1] == b"-ERR nothing may follow STLS before the TLS handshake"
    assert lines[2:] == [b""]


async def test_pipelined_commands_are_answered_in_order(pop3: Pop3Listeners, alice: Actor) -> None:
    def session() -> list[bytes]:
        with socket.create_connection(pop3.address("pop3"), timeout=10) as sock:
            sock.sendall(f"USER alice@example.org\r\nPASS {PASSWORD}\r\nSTAT\r\nNOOP\r\nQUIT\r\n".encode())
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data.split(b"\r\n")

    lines = await asyncio.to_thread(session)
    assert lines[3] == b"+OK 0 0"
    assert lines[4] == b"+OK"
    assert lines[5].startswith(b"+OK mailroom POP3 server signing off")
