"""Threading golden tests: each folder of ``threads/`` is a sequence of .eml files delivered in
name order to one mailbox, and ``expected.json`` names the threads they must form.

``received`` (optional) gives arrival times; the others arrive a minute apart.
``order_independent`` cases are also delivered in reverse order and must group the same.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.mailhelpers import create_user

from mailroom.bootstrap import Mailroom
from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.store import labels as label_store
from mailroom.store import threads as thread_store
from mailroom.store.mail_schema import emails, thread_labels, threads
from mailroom.store.threads import ThreadRecord

pytestmark = pytest.mark.anyio

CASES = Path(__file__).with_name("threads")
BASE = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _cases() -> list[tuple[str, bool]]:
    out = []
    for case in sorted(p for p in CASES.iterdir() if p.is_dir()):
        expected = json.loads((case / "expected.json").read_text())
        out.append((case.name, False))
        if expected.get("order_independent"):
            out.append((case.name, True))
    return out


def _load(case: Path, reverse: bool) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    expected = json.loads((case / "expected.json").read_text())
    files = sorted(case.glob("*.eml"), reverse=reverse)
    return expected, [(f.name, f.read_bytes()) for f in files]


async def _deliver_case(mailroom: Mailroom, user_id: int, case: Path, reverse: bool) -> dict[str, int]:
    expected, files = _load(case, reverse)
    received = expected.get("received", {})
    target = Resolution("alice@example.org", "accepted", [LocalTarget(user_id, "alice@example.org")])
    thread_of: dict[str, int] = {}
    ids: dict[str, int] = {}
    for n, (name, raw) in enumerate(files):
        when = datetime.fromisoformat(received[name]) if name in received else BASE + timedelta(minutes=n)
        [result] = await ingest(
            mailroom.runtime,
            raw,
            mail_from="bob@example.net",
            recipients=[target],
            source="lmtp",
            options=IngestOptions(received_at=when),
        )
        assert result.code == 250, (name, result.reply)
        ids[name] = result.email_ids[0]
    async with mailroom.runtime.db.read() as tx:
        for name, email_id in ids.items():
            thread_of[name] = int(await tx.scalar(select(emails.c.thread_id).where(emails.c.id == email_id)))
    return thread_of


@pytest.mark.parametrize(("case", "reverse"), _cases())
async def test_threading_golden(mailroom: Mailroom, case: str, reverse: bool) -> None:
    user_id = await create_user(mailroom, "alice@example.org")
    thread_of = await _deliver_case(mailroom, user_id, CASES / case, reverse)
    groups: dict[int, set[str]] = {}
    for name, thread_id in thread_of.items():
        groups.setdefault(thread_id, set()).add(name)
    expected = _load(CASES / case, False)[0]["threads"]
    assert sorted(sorted(g) for g in groups.values()) == sorted(sorted(g) for g in expected)
    # The derived data agrees: no empty threads left behind by merges, and every thread's
    # summary and inbox row count its emails.
    async with mailroom.runtime.db.read() as tx:
        all_threads = await tx.all(select(threads.c.id, threads.c.n_emails, threads.c.n_unread))
        rows = await tx.all(select(thread_labels))
        inbox = (await label_store.ids_by_name(tx, user_id))["inbox"]
        listed = await thread_store.list_by_label(tx, user_id, inbox, limit=100)
    assert {t["id"] for t in all_threads} == set(groups)
    for t in all_threads:
        assert t["n_emails"] == len(groups[t["id"]]) == t["n_unread"]
    assert {(r["thread_id"], r["n_emails"]) for r in rows} == {(t, len(g)) for t, g in groups.items()}
    assert [t.id for t in listed] == [
        r.id for r in sorted(listed, key=lambda r: (r.last_date, r.id), reverse=True)
    ]


def _summary(row: ThreadRecord) -> tuple[Any, ...]:
    return (row.n_emails, row.latest_subject, [p["email"] for p in row.participants])


async def test_a_merged_thread_summarises_all_its_emails(mailroom: Mailroom) -> None:
    user_id = await create_user(mailroom, "alice@example.org")
    thread_of = await _deliver_case(mailroom, user_id, CASES / "late_parent_merges", reverse=False)
    [thread_id] = set(thread_of.values())
    async with mailroom.runtime.db.read() as tx:
        row = await thread_store.get(tx, user_id, thread_id)
        assert await thread_store.get(tx, user_id + 1, thread_id) is None
    assert row is not None
    assert _summary(row) == (4, "Budget", ["bob@example.net"])
