"""Hostile and random input to POP3: never a crash, every line answered ``+OK`` or ``-ERR``.

The wire helpers are fuzzed on their own (any bytes: a command or :class:`CommandError`;
stuffing undone gives the message back), then a live server on loopback gets random bytes
and hypothesis-built command sequences, in and out of a logged-in session; after each, a
fresh connection still logs in (nothing crashed, no lock was left behind).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.frontends.pop3 import Pop3Listeners
from mailroom.frontends.pop3._wire import CommandError, multiline, normalise, parse_command, top
from mailroom.frontends.smtp import Listeners
from tests.conftest import Actor
from tests.mailhelpers import lmtp_send, message

PASSWORD = "correct horse battery staple"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_any_line_is_a_command_or_a_command_error(line: bytes) -> None:
    try:
        command = parse_command(line)
    except CommandError:
        return
    assert command.keyword.isalpha()
    assert command.keyword.isupper()
    assert 3 <= len(command.keyword) <= 4


def _unstuff(lines: bytes) -> bytes:
    assert lines.endswith(b".\r\n")
    body = lines[:-3]
    out = [line[1:] if line.startswith(b".") else line for line in body.split(b"\r\n")]
    return b"\r\n".join(out)


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_stuffing_is_undone_by_the_client_rule(raw: bytes) -> None:
    data = normalise(raw)
    assert data == b"" or data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    wire = multiline(data)
    # No line of the answer is a lone "." before the end: the answer cannot end early.
    assert b"\r\n.\r\n" not in b"\r\n" + wire[:-3]
    assert _unstuff(wire) == data


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=50))
@settings(max_examples=300, deadline=None)
def test_top_is_a_prefix_with_the_whole_header(raw: bytes, lines: int) -> None:
    data = normalise(raw)
    head = top(data, lines)
    assert data.startswith(head)
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        assert len(head) >= end + 4
        assert head[end + 4 :].count(b"\r\n") <= lines


# -- a live server -------------------------------------------------------------------------------


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Random PASS commands are failed logins: the guard must not lock the real one out here.
    return {"login_failures_per_network": "100000/hour", "login_failures_per_account": "100000/day"}


KEYWORDS = ["USER", "PASS", "AUTH", "CAPA", "STLS", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "NOOP"]
KEYWORDS += ["RSET", "APOP", "XYZZY", "list", "Retr"]
ARGUMENTS = st.one_of(
    st.integers(min_value=-5, max_value=12).map(str),
    st.sampled_from(["0", "99999999999", "1.5", "", "*", "=", "PLAIN", "AGFsaWNl", "alice@example.org"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=20),
)
COMMAND = st.builds(
    lambda k, a: " ".join([k, *a]).encode("utf-8"), st.sampled_from(KEYWORDS), st.lists(ARGUMENTS, max_size=3)
)
MULTILINE = {"CAPA", "LIST", "UIDL", "RETR", "TOP", "AUTH"}


class Conversation:
    """A blocking POP3 connection that reads one answer per line sent."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"+OK")

    def send(self, line: bytes) -> bytes | None:
        """The status line answering ``line`` (its multi-line body read and dropped); None
        when the server closed the connection."""
        try:
            self.sock.sendall(line + b"\r\n")
            status = self.file.readline()
        except OSError:
            return None
        if not status:
            return None
        assert status.startswith((b"+OK", b"-ERR", b"+ ")), (line, status)
        if status.startswith(b"+ "):  # a SASL continuation: cancel it
            self.sock.sendall(b"*\r\n")
            cancelled = self.file.readline()
            assert cancelled.startswith(b"-ERR"), cancelled
            return cancelled
        words = line.split(b" ")
        keyword = words[0].decode("utf-8", "replace").upper()
        has_body = keyword in MULTILINE and (
            keyword in ("RETR", "TOP", "CAPA")
            or (keyword in ("LIST", "UIDL") and len([w for w in words[1:] if w]) == 0)
            or (keyword == "AUTH" and len([w for w in words[1:] if w]) == 0)
        )
        if status.startswith(b"+OK") and has_body:
            while (body := self.file.readline()) != b".\r\n":
                assert body, "connection closed inside a multi-line answer"
        return status

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _still_serves(address: tuple[str, int]) -> None:
    talk = Conversation(address)
    try:
        assert talk.send(b"USER alice@example.org") == b"+OK send the password\r\n"
        answer = talk.send(f"PASS {PASSWORD}".encode())
        assert answer is not None, "closed"
        assert answer.startswith(b"+OK maildrop locked"), answer
        assert talk.send(b"QUIT") is not None
    finally:
        talk.close()


@pytest.mark.anyio
async def test_random_bytes_and_built_commands_on_a_live_server(
    pop3: Pop3Listeners, listeners: Listeners, make_user: Any
) -> None:
    alice: Actor = await make_user("alice@example.org", password=PASSWORD)
    assert alice.email
    for i in range(3):
        raw = message(message_id=f"<f{i}@example.net>", body=".dot\r\n..\r\n.\r\nend\r\n")
        await asyncio.to_thread(lmtp_send, listeners.ports["lmtp"], "b@example.net", [alice.email], raw)
    address = pop3.address("pop3")

    @FUZZ
    @given(st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=8))
    def random_lines(lines: list[bytes]) -> None:
        talk = Conversation(address)
        try:
            for line in lines:
                if talk.send(line) is None:
                    break
        finally:
            talk.close()

    @FUZZ
    @given(st.booleans(), st.lists(COMMAND, min_size=1, max_size=12))
    def built_commands(logged_in: bool, commands: list[bytes]) -> None:
        talk = Conversation(address)
        try:
            if logged_in:
                talk.send(b"USER alice@example.org")
                answer = talk.send(f"PASS {PASSWORD}".encode())
                assert answer is not None, "closed"
                assert answer.startswith(b"+OK"), answer
            for command in commands:
                if command.upper().startswith((b"QUIT", b"STLS")):
                    continue  # these end the conversation or change its transport
                if talk.send(command) is None:
                    break  # too many failed logins close it; that is an answer too
        finally:
            talk.close()
        _still_serves(address)

    await asyncio.to_thread(random_lines)
    await asyncio.to_thread(built_commands)
    await asyncio.to_thread(_still_serves, address)


@pytest.mark.parametrize("space", ["\xa0", "\x85", "\u2003"])
def test_only_a_space_separates_arguments(space: str) -> None:
    # The live fuzz found "LIST \xa0" answered with a listing (str.split() took the
    # no-break space for a separator): the client, reading one status line, then took the
    # listing's "1 373" for the answer to its next command.
    command = parse_command(f"LIST {space}".encode())
    assert command.args == (space,)
    assert parse_command(f"TOP  1{space}2 ".encode()).args == (f"1{space}2",)
