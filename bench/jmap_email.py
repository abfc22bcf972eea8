"""JMAP Email benchmark: Email/query + Email/get of a page, and Email/changes, in a big mailbox.

    PYTHONPATH=src .venv/bin/python bench/jmap_email.py                    # 100,000 messages
    PYTHONPATH=src .venv/bin/python bench/jmap_email.py --messages 10000   # smaller, quicker

1. The mailbox of bench/mailbox.py, measured on a copy of its database. ``--base`` messages
   (default 10,000) are filled once through ingest and cached in ``bench/results/mailbox-<base>``
   (the same cache that benchmark uses); a bigger mailbox is made from it in bulk, in SQL,
   in seconds (``bench/results/mailbox-<messages>``): each further copy of the base's
   threads, emails, labels, keywords and message ids is shifted 800 days further back, with
   new ids, Message-IDs and dedup keys; the triggers give it UIDs and change-log rows as
   ingest would; then the labels' kept counts are counted again (and checked). Through
   ingest (parsing, threading, full-text indexing every message) a 100,000-message fill
   takes most of an hour on this shared machine. The copies are not in the full-text index
   (nothing here searches).
2. Before the servers start, in-process: the account's state S is read and 100 new messages
   are delivered through ingest (what a client that was away finds).
3. ``mailroom`` (uvicorn, 1 worker, uvloop, httptools) and the bare ASGI app of
   bench/bare_asgi.py under the same settings; one keep-alive httpx client each, one request
   at a time, interleaved rounds:
   - **page**: one JMAP request of ``Email/query`` (inbox, newest first, ``collapseThreads``,
     ``limit`` 50) and ``Email/get`` of its ``#ids`` with the summary properties (id,
     threadId, mailboxIds, keywords, from, subject, receivedAt, preview, hasAttachment, size);
   - **changes**: ``Email/changes`` since S (100 created);
   - **bare**: ``GET /`` on the bare app.
4. Targets (issue 14): page p99 < 10 ms, changes p99 < 5 ms. Exit code 1 when missed.

Not run by CI. Results go to bench/results/ (ignored by git).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from mailbox import (  # noqa: E402
    OWNER,
    Series,
    _settings,
    fill,
    fresh_copy,
    label_counts_drift,
    log,
    servers,
    timed,
)

from admin_api import RESULTS, expect, percentile  # noqa: E402

PAGE_TARGET_MS = 10.0
CHANGES_TARGET_MS = 5.0
SUMMARY = ["id", "threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "preview",
           "hasAttachment", "size"]  # fmt: skip
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


#: How far back each bulk copy of the base mailbox is moved.
SHIFT_DAYS = 800


def _shifted(column: str, days: int) -> str:
    """SQL for a ``YYYY-MM-DD HH:MM:SS.ffffff+00:00`` column ``days`` earlier (same format)."""
    moved = f"datetime(substr({column}, 1, 19), '-{days} days') || substr({column}, 20)"
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {moved} END"


#: After the copies: threads and labels' kept counts from the rows (argument: the user id).
RECOUNT = (
    """DELETE FROM threads WHERE user_id = ?
       AND NOT EXISTS (SELECT 1 FROM emails WHERE emails.thread_id = threads.id)""",
    """UPDATE thread_labels SET
         n_emails = (SELECT count(*) FROM emails e JOIN email_labels el ON el.email_id = e.id
                     WHERE e.thread_id = thread_labels.thread_id AND el.label_id = thread_labels.label_id),
         n_unread = (SELECT count(*) FROM emails e JOIN email_labels el ON el.email_id = e.id
                     WHERE e.thread_id = thread_labels.thread_id AND el.label_id = thread_labels.label_id
                       AND NOT e.is_read)
       WHERE user_id = ?""",
    "DELETE FROM thread_labels WHERE user_id = ? AND n_emails = 0",
    """UPDATE labels SET
         threads_total = (SELECT count(*) FROM thread_labels tl WHERE tl.label_id = labels.id),
         threads_unread = (SELECT count(*) FROM thread_labels tl
                           WHERE tl.label_id = labels.id AND tl.n_unread > 0),
         emails_total = (SELECT coalesce(sum(n_emails), 0) FROM thread_labels tl
                         WHERE tl.label_id = labels.id),
         emails_unread = (SELECT coalesce(sum(n_unread), 0) FROM thread_labels tl
                          WHERE tl.label_id = labels.id)
       WHERE user_id = ?""",
    """UPDATE users SET quota_bytes_used =
         (SELECT coalesce(sum(size), 0) FROM emails WHERE user_id = users.id) WHERE id = ?""",
)


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in db.execute(f'PRAGMA table_info("{table}")')]


def _select(db: sqlite3.Connection, table: str, replace: dict[str, str]) -> tuple[str, str]:
    names = _columns(db, table)
    return ", ".join(f'"{c}"' for c in names), ", ".join(replace.get(c, f'"{c}"') for c in names)


def bulk_copy(base_dir: Path, data_dir: Path, messages: int, base_meta: dict[str, Any]) -> dict[str, Any]:
    """``data_dir``: the base mailbox copied in SQL until it holds ``messages`` emails."""
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(base_dir / "mailroom.db")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy2(base_dir / "mailroom.db", data_dir / "mailroom.db")
    (data_dir / "blobs").symlink_to((base_dir / "blobs").resolve())
    t0 = time.perf_counter()
    db = sqlite3.connect(data_dir / "mailroom.db", isolation_level=None)
    try:
        db.execute("PRAGMA foreign_keys = ON")
        user_id = int(base_meta["user_id"])
        emails_max, emails_n = db.execute(
            "SELECT max(id), count(*) FROM emails WHERE user_id = ?", (user_id,)
        ).fetchone()
        threads_max = db.execute("SELECT max(id) FROM threads").fetchone()[0]
        copies = -(-messages // emails_n)
        db.execute("BEGIN")
        for k in range(1, copies):
            left = messages - k * emails_n
            e_off, t_off, days = k * emails_max, k * threads_max, k * SHIFT_DAYS
            # Threads first (emails point at them), then emails, then what hangs on them.
            cols, values = _select(db, "threads", {
                "id": f"id + {t_off}", "created_at": _shifted("created_at", days),
                "last_date": _shifted("last_date", days), "latest_email_id": f"latest_email_id + {e_off}",
                "postponed_until": _shifted("postponed_until", days),
            })  # fmt: skip
            db.execute(f"INSERT INTO threads ({cols}) SELECT {values} FROM threads "
                       "WHERE id <= ? AND user_id = ?", (threads_max, user_id))  # fmt: skip
            cols, values = _select(db, "emails", {
                "id": f"id + {e_off}", "thread_id": f"thread_id + {t_off}",
                "message_id": f"CASE WHEN message_id IS NULL THEN NULL ELSE message_id || '.{k}' END",
                "date": _shifted("date", days), "received_at": _shifted("received_at", days),
                "dedup": f"substr(dedup, 1, 56) || '-{k}'",
            })  # fmt: skip
            db.execute(f"INSERT INTO emails ({cols}) SELECT {values} FROM emails "
                       "WHERE id <= ? AND user_id = ? ORDER BY id LIMIT ?",
                       (emails_max, user_id, left))  # fmt: skip
            db.execute("INSERT INTO email_labels (email_id, label_id) "
                       f"SELECT el.email_id + {e_off}, el.label_id FROM email_labels el "
                       f"WHERE el.email_id <= ? AND el.email_id + {e_off} IN "
                       f"(SELECT id FROM emails WHERE id > {e_off}) ORDER BY el.email_id",
                       (emails_max,))  # fmt: skip
            db.execute(f"INSERT INTO email_keywords (email_id, keyword) SELECT email_id + {e_off}, keyword "
                       f"FROM email_keywords WHERE email_id <= ? AND email_id + {e_off} IN "
                       f"(SELECT id FROM emails WHERE id > {e_off})", (emails_max,))  # fmt: skip
            cols, values = _select(db, "thread_labels", {
                "thread_id": f"thread_id + {t_off}", "last_date": _shifted("last_date", days),
            })  # fmt: skip
            db.execute(f"INSERT INTO thread_labels ({cols}) SELECT {values} FROM thread_labels "
                       f"WHERE thread_id <= ? AND user_id = ?", (threads_max, user_id))  # fmt: skip
            db.execute(f"INSERT INTO thread_message_ids (user_id, message_id, thread_id) "
                       f"SELECT user_id, message_id || '.{k}', thread_id + {t_off} FROM thread_message_ids "
                       f"WHERE thread_id <= ? AND user_id = ?", (threads_max, user_id))  # fmt: skip
        # The last copy may be cut short: its threads without emails go, then every thread's
        # and label's kept counts are counted from the rows.
        for statement in RECOUNT:
            db.execute(statement, (user_id,))
        broken = db.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            sys.exit(f"the bulk copy broke foreign keys: {broken[:5]}")
        db.execute("COMMIT")
        stored = int(db.execute("SELECT count(*) FROM emails WHERE user_id = ?", (user_id,)).fetchone()[0])
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    seconds = time.perf_counter() - t0
    drift = label_counts_drift(data_dir, user_id)
    if drift:
        sys.exit("label counts drift after the bulk copy: " + "; ".join(drift))
    log(f"bulk copy: {stored} messages in {seconds:.1f} s ({(stored - emails_n) / seconds:.0f} msgs/s)")
    meta = {**base_meta, "stored": stored, "messages": messages, "bulk_from": base_meta["stored"],
            "bulk_seconds": round(seconds, 1),
            "db_bytes": (data_dir / "mailroom.db").stat().st_size}  # fmt: skip
    (data_dir / "bench.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


async def _deliver_new(data_dir: Path, n: int) -> str:
    """Deliver ``n`` new messages in-process; the account's state before them."""
    from tests.mailhelpers import message

    from mailroom import bootstrap
    from mailroom.delivery.ingest import ingest
    from mailroom.delivery.resolve import resolve
    from mailroom.store import changelog

    app = await bootstrap.start(_settings(data_dir))
    try:
        rt = app.runtime
        async with rt.db.read() as tx:
            target = await resolve(tx, OWNER)
            user_id = target.local[0].user_id
            before = (await changelog.state(tx, user_id)).modseq
        now = datetime.now(UTC)
        for i in range(n):
            raw = message(
                subject=f"New while away {i}",
                message_id=f"<away-{i}-{now.timestamp()}@bench.example>",
                date=now + timedelta(seconds=i),
                pad_to=4000,
            )
            [result] = await ingest(
                rt, raw, mail_from="someone@example.net", recipients=[target], source="lmtp"
            )
            if not result.ok:
                sys.exit(f"delivery failed: {result.reply}")
    finally:
        await app.close()
    return str(before)


def measure(args: argparse.Namespace, data_dir: Path, meta: dict[str, Any], since: str) -> dict[str, Any]:
    bare, mailroom = servers(data_dir, "uvicorn")
    auth = {"Authorization": f"Bearer {meta['key']}"}
    series = {
        "bare": Series("bare ASGI hello"),
        "page": Series("Email/query inbox 50 + Email/get"),
        "changes": Series("Email/changes after 100 new"),
    }
    try:
        log(f"starting {mailroom.name}")
        mailroom.start("/.well-known/jmap", auth)
        bare.start("/")
        with (
            httpx.Client(base_url=mailroom.base, headers=auth, timeout=60) as mc,
            httpx.Client(base_url=bare.base, timeout=60) as bc,
        ):
            session = expect(mc.get("/.well-known/jmap"), 200).json()
            api = httpx.URL(session["apiUrl"]).path
            account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]

            def call(calls: list[list[Any]], s: Series | None) -> list[Any]:
                r = expect(timed(mc, s, "POST", api, json={"using": USING, "methodCalls": calls}), 200)
                responses: list[Any] = r.json()["methodResponses"]
                if any(name == "error" for name, _, _ in responses):
                    sys.exit(f"JMAP error: {responses}")
                return responses

            [[_, boxes, _]] = call(
                [["Mailbox/query", {"accountId": account, "filter": {"role": "inbox"}}, "0"]], None
            )
            inbox = boxes["ids"][0]
            page_calls = [
                ["Email/query", {"accountId": account, "filter": {"inMailbox": inbox},
                                 "sort": [{"property": "receivedAt", "isAscending": False}],
                                 "collapseThreads": True, "limit": 50}, "q"],
                ["Email/get", {"accountId": account, "properties": SUMMARY,
                               "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"],
            ]  # fmt: skip
            changes_calls = [
                ["Email/changes", {"accountId": account, "sinceState": since, "maxChanges": 500}, "c"]
            ]
            got = call(page_calls, None)
            if len(got[1][1]["list"]) != 50:
                sys.exit(f"the page has {len(got[1][1]['list'])} emails, not 50")
            created = call(changes_calls, None)[0][1]["created"]
            if len(created) != 100:
                sys.exit(f"Email/changes gave {len(created)} created, not 100")

            def one(key: str) -> None:
                if key == "bare":
                    expect(timed(bc, series[key], "GET", "/"), 200)
                else:
                    call(page_calls if key == "page" else changes_calls, series[key])

            log("warming up (not counted)")
            for key in series:
                for _ in range(200):
                    one(key)
                series[key].ms.clear()
            for r in range(args.rounds):
                for key, s in series.items():
                    server = bare if key == "bare" else mailroom
                    cpu0 = server.cpu_seconds()
                    for _ in range(args.requests // args.rounds):
                        one(key)
                    s.cpu_s += server.cpu_seconds() - cpu0
                log(f"  round {r + 1}: " + "  ".join(
                    f"{k} p50 {percentile(s.ms, 50):.2f} p99 {percentile(s.ms, 99):.2f} ms"
                    for k, s in series.items()))  # fmt: skip
    finally:
        mailroom.stop()
        bare.stop()
    return {k: {"title": s.title, **s.stats()} for k, s in series.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--base", type=int, default=10_000, help="messages filled through ingest")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--refill", action="store_true")
    parser.add_argument("--fill-in", default="auto")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="per scenario, over the rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = min(args.base, args.messages)
    base_dir = RESULTS / f"mailbox-{base}"
    data_dir = args.data_dir or RESULTS / f"mailbox-{args.messages}"
    if args.refill or not (base_dir / "bench.json").exists():
        meta = fill(argparse.Namespace(**{**vars(args), "messages": base}), base_dir)
    else:
        meta = json.loads((base_dir / "bench.json").read_text())
        log(f"using the cached mailbox {base_dir} ({meta['stored']} messages)")
    if data_dir != base_dir:
        if args.refill or not (data_dir / "bench.json").exists():
            meta = bulk_copy(base_dir, data_dir, args.messages, meta)
        else:
            meta = json.loads((data_dir / "bench.json").read_text())
            log(f"using the cached mailbox {data_dir} ({meta['stored']} messages)")
    copy, meta = fresh_copy(data_dir, meta, analyze=False)
    since = asyncio.run(_deliver_new(copy, 100))
    (copy / "jmap-since").write_text(since + "\n")  # for bench/jmap_profile.py
    stats = measure(args, copy, meta, since)
    lines = [f"mailbox: {meta['stored']} messages; {args.requests} requests per scenario, one at a time",
             f"{'':<36}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'CPU ms':>9}"]  # fmt: skip
    for s in stats.values():
        lines.append(f"{s['title']:<36}{s['n']:>6}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['p99']:>9.2f}"
                     f"{s['cpu_ms_per_request']:>9.2f}")  # fmt: skip
    ok = stats["page"]["p99"] < PAGE_TARGET_MS and stats["changes"]["p99"] < CHANGES_TARGET_MS
    lines.append(f"targets: page p99 < {PAGE_TARGET_MS} ms, changes p99 < {CHANGES_TARGET_MS} ms: "
                 + ("met" if ok else "MISSED"))  # fmt: skip
    text = "\n".join(lines)
    print(text)
    (RESULTS / f"jmap-email-{args.messages}.txt").write_text(text + "\n")
    (RESULTS / f"jmap-email-{args.messages}.json").write_text(
        json.dumps({"meta": meta, "stats": stats}, indent=2)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
