"""Batch actions find rows by id, never by walking the mailbox (SQLite query plans).

Without planner statistics (mailroom never runs ANALYZE) SQLite takes ``user_id = ?`` on the
leading column of an index over ``id IN (...)``, and reads every email or thread of the
mailbox to find a few: 0.27 s of a 1,000-thread batch on 100,000 messages. The planner
decides the same on a small database, so this captures every statement a batch of each kind
runs (SQLite's trace callback) and checks its plan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.pool import Pool

from mailroom.bootstrap import Mailroom
from mailroom.store.engine import SQLiteDatabase
from mailroom.store.mail_schema import emails as email_rows
from tests.client_mail.conftest import Deliver, at, message
from tests.client_mail.test_batch import listing, ok
from tests.conftest import Actor

pytestmark = pytest.mark.anyio
A = "alice@example.org"
#: An index search on the mailbox alone, in a table that holds a row per email or thread.
_WALK = re.compile(r"SEARCH (emails|threads|thread_labels) USING (COVERING )?INDEX \w+ \(user_id=\?\)$")


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement run on connections opened from now on (with its values)."""
    captured: list[str] = []

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        if hasattr(dbapi_conn, "set_trace_callback"):
            dbapi_conn.set_trace_callback(captured.append)

    event.listen(Pool, "connect", on_connect)
    yield captured
    event.remove(Pool, "connect", on_connect)


async def test_no_batch_action_walks_the_mailbox(
    statements: list[str], mailroom: Mailroom, client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    db = mailroom.runtime.db
    if not isinstance(db, SQLiteDatabase):
        pytest.skip("SQLite query plan")
    for n in range(4):
        await deliver(message(subject=f"s{n}", message_id=f"<m{n}@x>"), A, received_at=at(n + 1))
    await client.post("/api/v1/labels", json={"name": "Receipts"}, headers=alice.headers)
    threads = sorted(await listing(client, alice, "inbox"))
    async with db.read() as tx:
        emails = sorted(int(i) for i in await tx.scalars(select(email_rows.c.id)))
    assert statements, "the trace callback is not on the connections"
    statements.clear()
    for kind, ids in (("threads", threads), ("emails", emails)):
        for action, extra in (
            ("archive", {}),
            ("unarchive", {}),
            ("read", {}),
            ("star", {}),
            ("spam", {}),
            ("not_spam", {}),
            ("move", {"label": "Receipts"}),
            ("mute", {}),
            ("unmute", {}),
            ("postpone", {"until": "2099-01-01T00:00:00Z"}),
            ("trash", {}),
            ("untrash", {}),
        ):
            await ok(client, alice, kind, ids[:2], action, **extra)
    await ok(client, alice, "threads", threads[:1], "trash")
    await ok(client, alice, "threads", threads[:1], "delete")
    walks: dict[str, str] = {}
    with db.sync_connection() as conn:
        for sql in dict.fromkeys(statements):
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
                continue
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql.replace("%", "%%")):
                if _WALK.search(row[3]):
                    walks[sql[:160]] = row[3]
    assert not walks, walks
