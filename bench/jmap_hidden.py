"""A/B of the \\Deleted rule (docs/jmap.md): JMAP's Email/query page SQL (inbox, newest 50)
with and without the VISIBLE condition every JMAP email read carries, and the hidden_counts
read of Mailbox/get, on a SQLite mailbox of N emails (the real schema, by the migrations;
a third have $answered, six of the newest $deleted). CPU medians of 300 runs, 3 rounds.

    PYTHONPATH=src python bench/jmap_hidden.py [N] [directory]
"""

import asyncio
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.dialects import sqlite as sqlite_dialect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.jmap.test_migration import _fill

from mailroom.store import migrate
from mailroom.store.engine import open_database
from mailroom.store.jmap_emails import _HIDDEN, VISIBLE
from mailroom.store.mail_schema import email_labels, emails

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
path = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp") / f"jmap_hidden_{N}.db"
if not path.exists():

    async def mk():
        db = open_database(f"sqlite:///{path}")
        await migrate.upgrade(db)
        await db.close()

    asyncio.run(mk())
    db = sqlite3.connect(path)
    _fill(db, "domain_names", name="example.org", kind="domain")
    _fill(db, "domains", name="example.org")
    _fill(db, "addresses", address="a@example.org", kind="user", domain="example.org")
    _fill(db, "users", id=1, email="a@example.org", domain="example.org", quota_bytes=1 << 30)
    _fill(db, "labels", id=1, user_id=1, name="inbox", kind="system")
    _fill(db, "blobs", sha="0" * 64, size=1)
    for i in range(1, N // 2 + 1):
        _fill(
            db,
            "threads",
            id=i,
            user_id=1,
            created_at="2026-01-01T00:00:00.000000+00:00",
            last_date="2026-01-01T00:00:00.000000+00:00",
            latest_from="[]",
            participants="[]",
        )
    for i in range(1, N + 1):
        ts = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.{i:06d}+00:00"
        row = dict(
            id=i,
            user_id=1,
            thread_id=1 + (i - 1) // 2,
            blob_sha="0" * 64,
            in_reply_to="[]",
            references="[]",
            subject="",
            from_addrs="[]",
            to_addrs="[]",
            cc_addrs="[]",
            bcc_addrs="[]",
            reply_to_addrs="[]",
            received_at=ts,
            size=1,
            snippet="",
            has_attachments=0,
            attachments="[]",
            encryption="none",
            is_read=0,
            is_starred=0,
            is_draft=0,
            source="api",
            dedup=str(i),
            version=1,
        )
        db.execute(
            "INSERT INTO emails ("
            + ", ".join(f'"{k}"' for k in row)
            + ") VALUES ("
            + ", ".join("?" for _ in row)
            + ")",
            list(row.values()),
        )
        db.execute("INSERT INTO email_labels (email_id, label_id) VALUES (?, 1)", (i,))
        if i % 3 == 0:
            db.execute("INSERT INTO email_keywords (email_id, keyword) VALUES (?, '$answered')", (i,))
    for i in range(N - 5, N + 1):  # six hidden among the newest
        db.execute("INSERT INTO email_keywords (email_id, keyword) VALUES (?, '$deleted')", (i,))
    db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()

db = sqlite3.connect(path)


def sql(stmt):
    return str(stmt.compile(dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}))


inbox = exists().where(email_labels.c.email_id == emails.c.id, email_labels.c.label_id == 1)
base = (
    select(emails.c.id, emails.c.thread_id)
    .order_by(emails.c.received_at.desc(), emails.c.id.desc())
    .limit(50)
)
A = sql(base.where(emails.c.user_id == 1, inbox))
B = sql(base.where(emails.c.user_id == 1, inbox, VISIBLE))
H = sql(_HIDDEN.stmt.params(user_id=1))


def t(q, n=300):
    out = []
    for _ in range(n):
        s = time.process_time()
        db.execute(q).fetchall()
        out.append(time.process_time() - s)
    return statistics.median(out) * 1000


for rnd in range(3):
    a, b, h = t(A), t(B), t(H)
    print(
        f"round {rnd}: page without VISIBLE {a:.3f} ms CPU, with {b:.3f} ms ({b / a:.2f}x);"
        f" hidden_counts {h:.3f} ms"
    )
