"""LDAP connections are kept and reused (auth/directory.py), against a real slapd.

One connection serves many logins (counted on our side and as established TCP connections on
slapd's port); concurrent logins open at most ``ldap_max_connections``; a wrong password or
another user's login on a kept connection leaves it fit for the next; after slapd restarts,
the next login reconnects by itself; an idle connection past its age is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mailroom.auth import directory as directory_module
from mailroom.auth.directory import Directory
from mailroom.bootstrap import Mailroom
from mailroom.errors import Unauthenticated, Unavailable
from tests.identity import test_ldap
from tests.identity.test_ldap import ALICE_PASSWORD, BOB_PASSWORD
from tests.ldap_server import Slapd

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# The directory of tests/identity/test_ldap.py: slapd with alice and bob, mailroom set up for it.
slapd = test_ldap.slapd
settings_overrides = test_ldap.settings_overrides
domain = test_ldap.domain


def established(port: int) -> int:
    """TCP connections established to ``port`` on loopback (slapd's side of them)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rpartition(":")[2], 16)
            if local_port == port and fields[3] == "01":
                count += 1
    return count


def directory_of(app: Mailroom) -> Directory:
    found = app.authenticator.directory
    assert found is not None
    return found


ALICE = ("alice@example.org", ALICE_PASSWORD)
BOB = ("bob@example.org", BOB_PASSWORD)
Login = Callable[[str, str], Awaitable[Any]]


@pytest.fixture
def imap_login(mailroom: Mailroom) -> Login:
    async def login(email: str, password: str) -> Any:
        return await mailroom.authenticator.basic(email, password, "127.0.0.1", "imap")

    return login


async def test_one_connection_serves_many_logins(
    mailroom: Mailroom, slapd: Slapd, domain: None, imap_login: Login
) -> None:
    directory = directory_of(mailroom)
    for n in range(30):
        if n % 5 == 4:
            with pytest.raises(Unauthenticated):  # a wrong password on the kept connection
                await imap_login("alice@example.org", "wrong-" + ALICE_PASSWORD)
        who = ("alice@example.org", ALICE_PASSWORD) if n % 2 else ("bob@example.org", BOB_PASSWORD)
        assert (await imap_login(*who)).email == who[0]
    assert directory.opened == 1
    assert established(slapd.tls_port) == 1


async def test_concurrent_logins_open_at_most_the_pool(
    mailroom: Mailroom, slapd: Slapd, domain: None, imap_login: Login
) -> None:
    directory = directory_of(mailroom)
    await imap_login("alice@example.org", ALICE_PASSWORD)  # provisioned once, not 16 times at once
    await imap_login("bob@example.org", BOB_PASSWORD)
    for _ in range(3):
        done = await asyncio.gather(
            *(
                imap_login(
                    *(("alice@example.org", ALICE_PASSWORD) if n % 2 else ("bob@example.org", BOB_PASSWORD))
                )
                for n in range(16)
            )
        )
        assert len(done) == 16
    limit = mailroom.settings.ldap_max_connections
    assert 1 <= directory.opened <= limit
    assert established(slapd.tls_port) <= limit


async def test_slapd_restarts_and_the_next_login_reconnects(
    mailroom: Mailroom, slapd: Slapd, domain: None, imap_login: Login
) -> None:
    directory = directory_of(mailroom)
    assert (await imap_login("alice@example.org", ALICE_PASSWORD)).email == "alice@example.org"
    assert directory.opened == 1
    slapd.stop()
    with pytest.raises(Unavailable):
        await imap_login("alice@example.org", ALICE_PASSWORD)
    slapd.start()
    assert (await imap_login("alice@example.org", ALICE_PASSWORD)).email == "alice@example.org"
    assert (await imap_login("bob@example.org", BOB_PASSWORD)).email == "bob@example.org"
    # Opened: the first; one tried while slapd was down (the kept one had failed: one retry);
    # one after the restart, then reused for bob.
    assert directory.opened == 3
    assert established(slapd.tls_port) == 1


async def test_a_restart_while_connections_wait_is_invisible_to_the_next_login(
    mailroom: Mailroom, slapd: Slapd, domain: None, imap_login: Login
) -> None:
    directory = directory_of(mailroom)
    await asyncio.gather(*(imap_login("alice@example.org", ALICE_PASSWORD) for _ in range(4)))
    kept = directory.opened
    slapd.stop()
    slapd.start()
    # The kept connections are dead; the login retries once on a new one and succeeds.
    assert (await imap_login("alice@example.org", ALICE_PASSWORD)).email == "alice@example.org"
    assert directory.opened == kept + 1


async def test_an_idle_connection_past_its_age_is_replaced(
    mailroom: Mailroom, slapd: Slapd, domain: None, imap_login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = directory_of(mailroom)
    await imap_login("alice@example.org", ALICE_PASSWORD)
    monkeypatch.setattr(directory_module, "MAX_IDLE_SECONDS", 0.2)
    await asyncio.sleep(0.3)
    await imap_login("alice@example.org", ALICE_PASSWORD)
    assert directory.opened == 2
    await asyncio.sleep(0.05)
    assert established(slapd.tls_port) == 1  # the old one was closed
