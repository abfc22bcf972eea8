"""Mailbox benchmark: a 100,000-message mailbox, its thread list, search and batch archive.

    .venv/bin/python bench/mailbox.py              # fill once (minutes; cached), then measure
    .venv/bin/python bench/mailbox.py --refill     # rebuild the cached mailbox
    .venv/bin/python bench/mailbox.py --profile    # and profile the list and search in-process

What it does (see bench/README.md and docs/performance.md):

1. **Fill** (only when the cached data folder is missing, or with ``--refill``): one domain,
   one mailbox, an API key owned by it; then ``--messages`` generated messages (bench/_mailgen.py:
   realistic sizes, threads with In-Reply-To/References, senders, labels, attachments, spam)
   stored through ``mailroom.delivery.ingest.ingest`` in-process, ``--concurrency`` at a
   time (ingest's group commit batches them), in arrival order. By default the fill runs on
   /dev/shm (no fsync cost: minutes instead of most of an hour on this disk) and the result
   is copied to the cache folder, where everything is measured. The fill rate is reported.
2. **Query plans**: the list and a search called once in-process with SQLite's trace
   callback on, every statement shown with ``EXPLAIN QUERY PLAN`` and its own time;
   ``SCAN`` or ``USE TEMP B-TREE`` on a big table is flagged.
3. **Latency**: ``mailroom serve --workers 1`` and bench/bare_asgi.py (uvicorn, 1 worker,
   uvloop, httptools, access log on like serve), loopback, one keep-alive httpx client each,
   one request at a time. Warm-up first; then interleaved chunks (bare, list, search in
   inbox, search everywhere) over ``--rounds`` rounds: ``--list-requests`` list requests,
   ``--search-requests`` searches of each kind with varied 3-word queries (chosen so each
   matches 100–5,000 messages). p50/p95/p99 as the client sees them, and the server's CPU
   time per request.
4. **Batch**: ``--batch-rounds`` rounds of archive then unarchive of 1,000 inbox threads
   (``POST /threads/batch``) and of 1,000 inbox emails (``POST /emails/batch``).
5. Targets: list p99 < 10 ms, search (in inbox) p95 < 100 ms. Exit code 1 when missed.
   ``--profile`` (or a missed target) profiles the list, the searches and one batch
   archive of 1,000 threads in-process with cProfile (after the servers stopped), and
   counts the batch's SQL statements.

Not run by CI. Results go to bench/results/ (ignored by git).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _mailgen import MailGenerator  # noqa: E402
from admin_api import RESULTS, VENV_BIN, Server, cli_has_serve, expect, free_port, percentile  # noqa: E402

DOMAIN = "bench.example"
OWNER = f"bench@{DOMAIN}"
PASSWORD = "bench password, long enough"
LIST_P99_TARGET_MS = 10.0
SEARCH_P95_TARGET_MS = 100.0
BIG_TABLES = ("emails", "threads", "thread_labels", "email_labels", "thread_message_ids", "blobs")


def log(text: str) -> None:
    print(text, flush=True)


# -- fill ----------------------------------------------------------------------------------------


def _settings(data_dir: Path) -> Any:
    from mailroom.settings import load_settings

    return load_settings(data_dir=data_dir, smtp_port=0, lmtp_port=0, submission_port=0)


async def _fill(data_dir: Path, messages: int, seed: int, concurrency: int) -> dict[str, Any]:
    from mailroom import bootstrap
    from mailroom.delivery.ingest import IngestOptions, ingest
    from mailroom.delivery.resolve import resolve

    t0 = time.perf_counter()
    gen = MailGenerator(OWNER, messages, seed)
    log(f"  planned {len(gen.plan)} messages in {len(gen.conversations)} conversations "
        f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
    app = await bootstrap.start(_settings(data_dir))
    try:
        await app.registry.call("admin.domains.create", {"domain": {"name": DOMAIN}})
        await app.registry.call(
            "admin.users.create", {"user": {"email": OWNER, "password": PASSWORD, "quota_bytes": 0}}
        )
        key = (await app.registry.call("admin.apikeys.create", {"key": {"name": "bench", "owner": OWNER}}))[
            "key"
        ]
        rt = app.runtime
        async with rt.db.read() as tx:
            target = await resolve(tx, OWNER)
        if not target.accepted:
            sys.exit(f"{OWNER} does not resolve: {target.reply}")

        stream = gen.messages()
        stored = failed = 0
        total_bytes = 0
        gen_seconds = 0.0
        start = time.perf_counter()
        cpu_start = time.process_time()
        last = start

        async def worker() -> None:
            nonlocal stored, failed, total_bytes, gen_seconds, last
            while True:
                g0 = time.perf_counter()
                item = next(stream, None)
                gen_seconds += time.perf_counter() - g0
                if item is None:
                    return
                p, raw = item
                sender = OWNER if p.from_owner else gen.people[p.sender][1]
                options = IngestOptions(
                    labels=p.labels,
                    is_read=p.is_read,
                    is_starred=p.is_starred,
                    received_at=p.at + timedelta(seconds=3),
                )
                [result] = await ingest(
                    rt, raw, mail_from=sender, recipients=[target], source="import", options=options
                )
                if result.ok:
                    stored += 1
                    total_bytes += len(raw)
                else:
                    failed += 1
                    if failed <= 5:
                        log(f"  ingest refused message {p.conv}.{p.index}: {result.reply}")
                done = stored + failed
                if done % 5000 == 0:
                    now = time.perf_counter()
                    log(f"  {done:>7} messages  {5000 / (now - last):6.0f} msg/s now  "
                        f"{done / (now - start):6.0f} msg/s overall  {total_bytes / 1e9:.2f} GB")  # fmt: skip
                    last = now

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        from sqlalchemy import select

        from mailroom.store.schema import users

        async with rt.db.read() as tx:
            user_id = int(await tx.scalar(select(users.c.id).where(users.c.email == OWNER)))
    finally:
        await app.close()
    with contextlib.closing(sqlite3.connect(data_dir / "mailroom.db")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "messages": messages,
        "seed": seed,
        "stored": stored,
        "failed": failed,
        "bytes": total_bytes,
        "seconds": round(seconds, 1),
        "msgs_per_s": round(stored / seconds, 1),
        # CPU time of the filling process (all its threads): what a busy machine changes least.
        "cpu_seconds": round(cpu_seconds, 1),
        "msgs_per_cpu_s": round(stored / cpu_seconds, 1),
        "mb_per_s": round(total_bytes / seconds / 1e6, 2),
        "generation_seconds": round(gen_seconds, 1),
        "concurrency": concurrency,
        "user_id": user_id,
        "key": key,
        "conversations": len(gen.conversations),
    }


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def fill(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    where = args.fill_in
    if where == "auto":
        where = (
            "/dev/shm" if Path("/dev/shm").is_dir() and shutil.disk_usage("/dev/shm").free > 8e9 else "disk"
        )
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mailroom-mailbox-fill-", dir=where)) if where != "disk" else data_dir
    log(f"filling {work} with {args.messages} messages (seed {args.seed}, {args.concurrency} at a time)")
    meta = asyncio.run(_fill(work, args.messages, args.seed, args.concurrency))
    meta["filled_on"] = "tmpfs (/dev/shm: fsync costs nothing)" if where != "disk" else f"disk ({data_dir})"
    meta["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["db_bytes"] = (work / "mailroom.db").stat().st_size
    meta["blob_bytes"] = folder_bytes(work / "blobs")
    if work != data_dir:
        log(f"copying {work} → {data_dir}")
        t0 = time.perf_counter()
        partial = data_dir.with_name(data_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(work, partial)
        partial.rename(data_dir)
        shutil.rmtree(work)
        log(f"  copied in {time.perf_counter() - t0:.0f} s")
    (data_dir / "bench.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"filled: {meta['stored']} stored, {meta['failed']} refused, {meta['seconds']} s, "
        f"{meta['msgs_per_s']} msg/s, {meta['mb_per_s']} MB/s, {meta.get('msgs_per_cpu_s')} msg per CPU s; "
        f"database {meta['db_bytes'] / 1e9:.2f} GB, "
        f"blobs {meta['blob_bytes'] / 1e9:.2f} GB")  # fmt: skip
    return meta


def fresh_copy(data_dir: Path, meta: dict[str, Any], *, analyze: bool) -> tuple[Path, dict[str, Any]]:
    """A copy of the mailbox's database (blobs shared), optionally with ``ANALYZE`` run.

    The batch rounds change the mailbox; a copy keeps the cached one pristine (``--copy``).
    mailroom never runs ANALYZE; ``--analyze`` shows what planner statistics change. The
    copy is made afresh each time.
    """
    copy = data_dir.with_name(data_dir.name + ("-analyzed" if analyze else "-copy"))
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    with contextlib.closing(sqlite3.connect(data_dir / "mailroom.db")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy2(data_dir / "mailroom.db", copy / "mailroom.db")
    for name in os.listdir(data_dir):
        if name not in ("mailroom.db", "mailroom.db-wal", "mailroom.db-shm", "blobs"):
            shutil.copy2(data_dir / name, copy / name)
    (copy / "blobs").symlink_to(data_dir / "blobs")
    if not analyze:
        log(f"measuring {copy}: a copy of the database")
        return copy, meta
    t0 = time.perf_counter()
    with contextlib.closing(sqlite3.connect(copy / "mailroom.db")) as db:
        db.execute("ANALYZE")
        db.commit()
    log(f"measuring {copy}: a copy of the database with ANALYZE ({time.perf_counter() - t0:.1f} s)")
    return copy, {**meta, "analyzed": True}


def label_counts_drift(data_dir: Path, user_id: int) -> list[str]:
    """Labels whose kept counts differ from counting their ``thread_labels`` rows (none: exact)."""
    sql = (
        "SELECT l.name, l.threads_total, l.threads_unread, l.emails_total, l.emails_unread,"
        " count(tl.thread_id), coalesce(sum(tl.n_unread > 0), 0), coalesce(sum(tl.n_emails), 0),"
        " coalesce(sum(tl.n_unread), 0)"
        " FROM labels l LEFT JOIN thread_labels tl ON tl.label_id = l.id"
        " WHERE l.user_id = ? GROUP BY l.id ORDER BY l.id"
    )
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'mailroom.db'}?mode=ro", uri=True)) as db:
        rows = db.execute(sql, (user_id,)).fetchall()
    return [f"{r[0]}: kept {r[1:5]}, counted {r[5:9]}" for r in rows if tuple(r[1:5]) != tuple(r[5:9])]


# -- search words --------------------------------------------------------------------------------


def fts_count(db: sqlite3.Connection, user_id: int, words: list[str]) -> int:
    expr = f'mailbox : "u{user_id}" AND (' + " AND ".join(f'"{w}"' for w in words) + ")"
    return int(db.execute("SELECT count(*) FROM email_fts WHERE email_fts MATCH ?", (expr,)).fetchone()[0])


def choose_queries(data_dir: Path, meta: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` 3-word queries that each match 100–5,000 messages (cached in bench.json)."""
    cached = meta.get("queries") or []
    if len(cached) >= n:
        return list(cached[:n])
    gen_words = MailGenerator.__new__(MailGenerator)  # only the vocabulary: no plan
    gen_words.seed = meta["seed"]
    rng = random.Random(meta["seed"])
    vocab = gen_words._vocabulary(rng, 6000)
    candidates = vocab[150:2500]
    pick = random.Random(7)
    chosen: list[dict[str, Any]] = []
    tries = 0
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'mailroom.db'}?mode=ro", uri=True)) as db:
        while len(chosen) < n and tries < 50 * n:
            tries += 1
            words = pick.sample(candidates, 3)
            hits = fts_count(db, meta["user_id"], words)
            if 100 <= hits <= 5000:
                chosen.append({"q": " ".join(words), "messages": hits})
    meta["queries"] = chosen
    (data_dir / "bench.json").write_text(json.dumps(meta, indent=2) + "\n")
    return chosen


# -- query plans and in-process profile ----------------------------------------------------------


def _is_query(sql: str) -> bool:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")


def flag_plan(lines: list[str]) -> list[str]:
    flags = []
    for line in lines:
        m = re.search(r"\bSCAN (\w+)", line)
        if m and m.group(1) in BIG_TABLES:
            flags.append(f"SCAN of big table {m.group(1)}: {line.strip()}")
        if "USE TEMP B-TREE" in line:
            flags.append(f"temp b-tree: {line.strip()}")
    return flags


def explain(db: sqlite3.Connection, sql: str, runs: int = 15) -> dict[str, Any]:
    rows = db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    parents: dict[int, int] = {}
    lines = []
    for node, parent, _, detail in rows:
        depth = parents.get(parent, -1) + 1
        parents[node] = depth
        lines.append("  " * depth + detail)
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        db.execute(sql).fetchall()
        timings.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(timings)
    flags = flag_plan(lines)
    if ms > 1.0:
        flags.append(f"slow: {ms:.1f} ms in SQLite alone")
    return {"sql": sql, "plan": lines, "flags": flags, "ms": ms}


async def _capture_and_profile(
    data_dir: Path, user_id: int, queries: list[str], profile: bool
) -> dict[str, Any]:
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    from mailroom import bootstrap
    from mailroom.auth.principal import Principal

    captured: list[str] = []
    tracing = [False]

    def trace(sql: str) -> None:
        if tracing[0]:
            captured.append(sql)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(trace)

    event.listen(Pool, "connect", on_connect)
    app = await bootstrap.start(_settings(data_dir))
    principal = Principal(kind="user", user_id=user_id, email=OWNER)
    calls: dict[str, Callable[[int], Any]] = {
        "list": lambda i: app.registry.call(
            "mail.threads.list", {"label": "inbox", "limit": 50}, principal=principal
        ),
        "search": lambda i: app.registry.call(
            "mail.threads.list",
            {"label": "inbox", "q": queries[i % len(queries)], "limit": 50},
            principal=principal,
        ),
        "search_all": lambda i: app.registry.call(
            "mail.threads.list", {"q": queries[i % len(queries)], "limit": 50}, principal=principal
        ),
    }
    out: dict[str, Any] = {"statements": {}, "inprocess_ms": {}, "profiles": {}}
    try:
        for name, call in calls.items():
            await call(0)  # warm (prepared statements, caches)
            captured.clear()
            tracing[0] = True
            await call(0)
            tracing[0] = False
            out["statements"][name] = [s for s in captured if _is_query(s)]
        # In-process time per call: the service and SQL, no HTTP.
        for name, call in calls.items():
            n = 200 if name == "list" else 40
            times = []
            for i in range(n):
                t0 = time.perf_counter()
                await call(i)
                times.append((time.perf_counter() - t0) * 1000)
            out["inprocess_ms"][name] = {"p50": percentile(times, 50), "p95": percentile(times, 95), "n": n}
        if profile:
            for name, call in calls.items():
                n = 300 if name == "list" else 40
                prof = cProfile.Profile()
                prof.enable()
                for i in range(n):
                    await call(i)
                prof.disable()
                text = io.StringIO()
                stats = pstats.Stats(prof, stream=text)
                stats.strip_dirs()
                text.write(f"{n} calls of {name}, in-process (cProfile inflates Python-heavy code)\n")
                stats.sort_stats("tottime").print_stats(18)
                stats.sort_stats("cumulative").print_stats(30)
                out["profiles"][name] = text.getvalue()
            out["profiles"]["batch"] = await _profile_batch(app, principal, captured, tracing)
    finally:
        event.remove(Pool, "connect", on_connect)
        await app.close()
    return out


def _statement_kind(sql: str) -> str:
    """A traced statement without its values (the trace expands parameters), shortened."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"(?<![\w.])-?\d+(?:\.\d+)?", "?", sql)
    sql = re.sub(r"\(\?(?:, \?)+\)", "(?, ...)", re.sub(r"\s+", " ", sql))
    return sql[:100]


async def _profile_batch(app: Any, principal: Any, captured: list[str], tracing: list[bool]) -> str:
    """One threads/batch archive of 1,000 inbox threads: statements it runs and cProfile (then unarchive)."""
    ids: list[int] = []
    for offset in (0, 500):
        page = await app.registry.call(
            "mail.threads.list", {"label": "inbox", "limit": 500, "offset": offset}, principal=principal
        )
        ids += [t["thread_id"] for t in page["threads"]]
    prof = cProfile.Profile()
    captured.clear()
    tracing[0] = True
    t0 = time.perf_counter()
    prof.enable()
    result = await app.registry.call(
        "mail.threads.batch", {"ids": ids, "action": "archive"}, principal=principal
    )
    prof.disable()
    elapsed = (time.perf_counter() - t0) * 1000
    tracing[0] = False
    await app.registry.call("mail.threads.batch", {"ids": ids, "action": "unarchive"}, principal=principal)
    kinds = Counter(_statement_kind(sql) for sql in captured)
    text = io.StringIO()
    text.write(
        f"threads/batch archive of {len(ids)} threads in-process: {elapsed:.0f} ms under cProfile, "
        f"{result['n_ok']} ok, {len(captured)} SQL statements; the most frequent:\n"
    )
    text.writelines(f"  {n:6d}  {sql}\n" for sql, n in kinds.most_common(12))
    stats = pstats.Stats(prof, stream=text)
    stats.strip_dirs()
    stats.sort_stats("cumulative").print_stats(30)
    return text.getvalue()


def plans_and_profile(
    data_dir: Path, meta: dict[str, Any], queries: list[str], profile: bool
) -> dict[str, Any]:
    got = asyncio.run(_capture_and_profile(data_dir, meta["user_id"], queries, profile))
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'mailroom.db'}?mode=ro", uri=True)) as db:
        got["plans"] = {
            name: [explain(db, sql) for sql in statements] for name, statements in got["statements"].items()
        }
    return got


def plans_text(plans: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    titles = {"list": "thread list (label=inbox, limit 50)", "search": "search in inbox (3 words)",
              "search_all": "search everywhere (3 words)"}  # fmt: skip
    for name, items in plans.items():
        lines.append(f"\n== {titles.get(name, name)}: {len(items)} statements ==")
        for item in items:
            sql = re.sub(r"\s+", " ", item["sql"]).strip()
            lines.append(
                f"-- {item['ms']:.2f} ms (sqlite3, median)  {sql[:400]}{' ...' if len(sql) > 400 else ''}"
            )
            lines += [f"   {p}" for p in item["plan"]]
            lines += [f"   !! {f}" for f in item["flags"]]
    return "\n".join(lines)


# -- servers -------------------------------------------------------------------------------------


def servers(data_dir: Path, how: str) -> tuple[Server, Server]:
    bare_port, port = free_port(), free_port()
    # No access log on either side, as mailroom serve runs by default.
    common = ["--host", "127.0.0.1", "--workers", "1", "--loop", "uvloop", "--http", "httptools"]
    common.append("--no-access-log")
    bare = Server(
        "bare ASGI (1 worker)",
        [
            str(VENV_BIN / "python"),
            "-m",
            "uvicorn",
            "bare_asgi:app",
            "--app-dir",
            str(BENCH),
            "--port",
            str(bare_port),
            *common,
        ],
        dict(os.environ),
        bare_port,
        RESULTS / "mailbox-bare-server.log",
    )
    env = {
        **os.environ,
        "MAILROOM_DATA_DIR": str(data_dir),
        "MAILROOM_SMTP_PORT": "0",
        "MAILROOM_LMTP_PORT": "0",
        "MAILROOM_SUBMISSION_PORT": "0",
        # IMAP and POP3 off too: another server on the machine may hold their default ports.
        "MAILROOM_IMAP_PORT": "0",
        "MAILROOM_IMAPS_PORT": "0",
        "MAILROOM_POP3_PORT": "0",
        "MAILROOM_POP3S_PORT": "0",
        "MAILROOM_PORT": str(port),
        "MAILROOM_WORKERS": "1",
    }
    if how == "cli":
        argv = [str(VENV_BIN / "mailroom"), "serve", "--workers", "1", "--host", "127.0.0.1",
                "--port", str(port), "--smtp-port", "0", "--lmtp-port", "0"]  # fmt: skip
    else:
        argv = [str(VENV_BIN / "python"), "-m", "uvicorn", "mailroom.asgi:create_app", "--factory",
                "--port", str(port), *common]  # fmt: skip
    mailroom = Server(f"mailroom ({how}, 1 worker)", argv, env, port, RESULTS / "mailbox-mailroom-server.log")
    return bare, mailroom


class Series:
    def __init__(self, title: str) -> None:
        self.title = title
        self.ms: list[float] = []
        self.cpu_s = 0.0

    def stats(self) -> dict[str, float]:
        if not self.ms:
            return {"n": 0}
        return {
            "n": len(self.ms),
            "p50": percentile(self.ms, 50),
            "p95": percentile(self.ms, 95),
            "p99": percentile(self.ms, 99),
            "max": max(self.ms),
            "mean": statistics.fmean(self.ms),
            "cpu_ms_per_request": 1000 * self.cpu_s / len(self.ms),
        }


def timed(client: httpx.Client, series: Series | None, method: str, url: str, **kw: Any) -> httpx.Response:
    t0 = time.perf_counter_ns()
    response = client.request(method, url, **kw)
    if series is not None:
        series.ms.append((time.perf_counter_ns() - t0) / 1e6)
    return response


def measure(
    args: argparse.Namespace, data_dir: Path, meta: dict[str, Any], queries: list[str]
) -> dict[str, Any]:
    how = args.server if args.server != "auto" else ("cli" if cli_has_serve() else "uvicorn")
    bare, mailroom = servers(data_dir, how)
    auth = {"Authorization": f"Bearer {meta['key']}"}
    series = {
        "bare": Series("bare ASGI hello"),
        "list": Series("GET /threads?label=inbox (50)"),
        "search": Series("... &q=<3 words> (inbox)"),
        "search_all": Series("GET /threads?q=<3 words> (all)"),
    }
    batch: dict[str, Series] = {
        "threads_archive": Series("threads/batch archive 1,000"),
        "threads_unarchive": Series("threads/batch unarchive 1,000"),
        "emails_archive": Series("emails/batch archive 1,000"),
        "emails_unarchive": Series("emails/batch unarchive 1,000"),
    }
    notes: list[str] = []
    try:
        log(f"starting {mailroom.name}: {' '.join(mailroom.argv)}")
        mailroom.start("/api/v1/threads?label=inbox&limit=1", auth)
        log(f"starting {bare.name}")
        bare.start("/")
        with (
            httpx.Client(base_url=mailroom.base, headers=auth, timeout=60) as mc,
            httpx.Client(base_url=bare.base, timeout=60) as bc,
        ):
            page = expect(
                timed(mc, None, "GET", "/api/v1/threads", params={"label": "inbox", "limit": 50}), 200
            ).json()
            if len(page["threads"]) != 50:
                sys.exit(f"the inbox list gave {len(page['threads'])} threads, not 50")
            log(f"inbox: {page['n_threads']} threads")
            meta["inbox_threads"] = page["n_threads"]

            def one(key: str, i: int) -> None:
                if key == "bare":
                    expect(timed(bc, series[key], "GET", "/"), 200)
                elif key == "list":
                    expect(
                        timed(
                            mc, series[key], "GET", "/api/v1/threads", params={"label": "inbox", "limit": 50}
                        ),
                        200,
                    )
                else:
                    params = {"q": queries[i % len(queries)], "limit": 50}
                    if key == "search":
                        params["label"] = "inbox"
                    expect(timed(mc, series[key], "GET", "/api/v1/threads", params=params), 200)

            log("warming up (not counted)")
            for key, n in (("bare", 200), ("list", 200), ("search", 20), ("search_all", 20)):
                for i in range(n):
                    one(key, len(queries) - 1 - i)
                    series[key].ms.clear()
            plan = {"bare": args.list_requests, "list": args.list_requests,
                    "search": args.search_requests, "search_all": args.search_requests}  # fmt: skip
            counter = {k: 0 for k in plan}
            for r in range(args.rounds):
                for key, total in plan.items():
                    chunk = total // args.rounds + (1 if r < total % args.rounds else 0)
                    server = bare if key == "bare" else mailroom
                    cpu0 = server.cpu_seconds()
                    for _ in range(chunk):
                        one(key, counter[key])
                        counter[key] += 1
                    series[key].cpu_s += server.cpu_seconds() - cpu0
                log(f"  round {r + 1}: " + "  ".join(
                    f"{k} p50 {percentile(s.ms, 50):.2f} ms" for k, s in series.items() if s.ms))  # fmt: skip

            # Batch: 1,000 inbox threads, then 1,000 inbox emails.
            ids: list[int] = []
            for offset in range(0, 1000, 500):
                got = expect(
                    mc.get("/api/v1/threads", params={"label": "inbox", "limit": 500, "offset": offset}), 200
                )
                ids += [t["thread_id"] for t in got.json()["threads"]]
            with contextlib.closing(
                sqlite3.connect(f"file:{data_dir / 'mailroom.db'}?mode=ro", uri=True)
            ) as db:
                email_ids = [
                    int(r[0])
                    for r in db.execute(
                        "SELECT el.email_id FROM email_labels el JOIN labels l ON l.id = el.label_id "
                        "WHERE l.user_id = ? AND l.name = 'inbox' ORDER BY el.email_id DESC LIMIT 1000",
                        (meta["user_id"],),
                    )
                ]
            for kind, batch_ids in (("threads", ids), ("emails", email_ids)):
                if len(batch_ids) < 1000:
                    notes.append(f"only {len(batch_ids)} inbox {kind} for the batch")
                for r in range(args.batch_rounds):
                    for action in ("archive", "unarchive"):
                        s = batch[f"{kind}_{action}"]
                        cpu0 = mailroom.cpu_seconds()
                        resp = timed(
                            mc, s, "POST", f"/api/v1/{kind}/batch", json={"ids": batch_ids, "action": action}
                        )
                        s.cpu_s += mailroom.cpu_seconds() - cpu0
                        if resp.status_code == 404:
                            notes.append(f"POST /api/v1/{kind}/batch is not there (404): not measured")
                            s.ms.clear()
                            break
                        body = expect(resp, 200).json()
                        if body["n_ok"] != len(batch_ids):
                            notes.append(f"{kind} {action}: {body['n_ok']} of {len(batch_ids)} ok")
                    log(f"  batch {kind} round {r + 1}: archive {batch[kind + '_archive'].ms[-1]:.0f} ms, "
                        f"unarchive {batch[kind + '_unarchive'].ms[-1]:.0f} ms")  # fmt: skip
    finally:
        mailroom.stop()
        bare.stop()
    return {
        "server": mailroom.argv,
        "series": {k: {"title": s.title, **s.stats()} for k, s in {**series, **batch}.items()},
        "notes": notes,
    }


# -- report ---------------------------------------------------------------------------------------


def report_text(meta: dict[str, Any], run: dict[str, Any], queries: list[dict[str, Any]]) -> tuple[str, bool]:
    s = run["series"]
    bare = s["bare"]
    lines = [
        f"{'':<34}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'CPU ms/req':>12}{'p50-bare':>10}",
    ]
    for _key, row in s.items():
        if not row.get("n"):
            lines.append(f"{row['title']:<34}  not measured")
            continue
        lines.append(
            f"{row['title']:<34}{row['n']:>6}{row['p50']:>9.2f}{row['p95']:>9.2f}{row['p99']:>9.2f}"
            f"{row['max']:>9.2f}{row['cpu_ms_per_request']:>12.2f}{row['p50'] - bare['p50']:>10.2f}"
        )
    list_ok = bool(s["list"].get("n")) and s["list"]["p99"] < LIST_P99_TARGET_MS
    search_ok = bool(s["search"].get("n")) and s["search"]["p95"] < SEARCH_P95_TARGET_MS
    lines.append(
        f"targets: list p99 {s['list'].get('p99', float('nan')):.2f} ms < {LIST_P99_TARGET_MS:g} ms "
        f"{'ok' if list_ok else 'MISSED'}; search (inbox) p95 {s['search'].get('p95', float('nan')):.2f} ms "
        f"< {SEARCH_P95_TARGET_MS:g} ms {'ok' if search_ok else 'MISSED'}"
    )
    hits = sorted(q["messages"] for q in queries)
    lines.append(
        f"search queries: {len(queries)} distinct 3-word queries, matching {hits[0]}–{hits[-1]} messages "
        f"(median {statistics.median(hits):.0f})"
    )
    lines += [f"note: {n}" for n in run["notes"]]
    return "\n".join(lines), list_ok and search_ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--data-dir", type=Path, help="the cached mailbox (default bench/results/mailbox-<messages>)"
    )
    parser.add_argument("--refill", action="store_true", help="rebuild the cached mailbox")
    parser.add_argument("--fill-only", action="store_true")
    parser.add_argument(
        "--fill-in",
        default="auto",
        help="where to fill: a tmpfs folder (default /dev/shm when it has room) or 'disk'",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="ingest calls in flight while filling")
    parser.add_argument("--list-requests", type=int, default=1000)
    parser.add_argument("--search-requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved chunks of the latency scenarios")
    parser.add_argument("--batch-rounds", type=int, default=5)
    parser.add_argument("--server", choices=["auto", "cli", "uvicorn"], default="auto")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="measure a copy of the cached mailbox whose database has planner statistics (ANALYZE)",
    )
    parser.add_argument(
        "--copy",
        action="store_true",
        help="measure a fresh copy of the cached database (the batch rounds then leave the cache as filled)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile list and search in-process (cProfile)"
    )
    args = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    data_dir = (args.data_dir or RESULTS / f"mailbox-{args.messages}").resolve()
    meta_file = data_dir / "bench.json"
    if args.refill or not meta_file.exists():
        meta = fill(args, data_dir)
    else:
        meta = json.loads(meta_file.read_text())
        log(f"reusing {data_dir} (filled {meta['date']}: {meta['stored']} messages, "
            f"{meta['msgs_per_s']} msg/s on {meta['filled_on']}); --refill to rebuild")  # fmt: skip
    drift = label_counts_drift(data_dir, meta["user_id"])
    log("label counts after the fill: " + ("exact" if not drift else "DRIFT " + "; ".join(drift)))
    if args.fill_only:
        return 0 if not drift else 1
    if args.analyze or args.copy:
        data_dir, meta = fresh_copy(data_dir, meta, analyze=args.analyze)
    queries = choose_queries(data_dir, meta, args.search_requests)
    qtexts = [q["q"] for q in queries]

    log("query plans (in-process, SQLite trace)")
    inproc = plans_and_profile(data_dir, meta, qtexts, profile=False)
    plans = plans_text(inproc["plans"])
    log(plans)
    per_call = [f"{k} p50 {v['p50']:.2f} ms p95 {v['p95']:.2f} ms" for k, v in inproc["inprocess_ms"].items()]
    log("in-process per call: " + ", ".join(per_call))

    run = measure(args, data_dir, meta, qtexts)
    drift = label_counts_drift(data_dir, meta["user_id"])
    run["label_counts_after_batches"] = drift or "exact"
    log("label counts after the batch rounds: " + ("exact" if not drift else "DRIFT " + "; ".join(drift)))
    text, met = report_text(meta, run, queries)
    header = (
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; "
        f"mailbox {meta['stored']} messages "
        f"({meta['conversations']} conversations, {meta['bytes'] / 1e9:.2f} GB raw; database "
        f"{meta['db_bytes'] / 1e9:.2f} GB{', ANALYZE run on a copy' if meta.get('analyzed') else ''}); "
        f"inbox {meta.get('inbox_threads')} threads\n"
        f"fill: {meta['msgs_per_s']} msg/s ({meta['mb_per_s']} MB/s; "
        f"{meta.get('msgs_per_cpu_s')} per CPU second), "
        f"{meta['seconds']} s, {meta['concurrency']} "
        f"ingest calls in flight, on {meta['filled_on']}\n"
        f"client: one keep-alive httpx client, one request at a time; {run['server'][0].rsplit('/', 1)[-1]} "
        f"with 1 worker beside a 1-worker bare ASGI hello"
    )
    log(header)
    log(text)

    profiles: dict[str, str] = {}
    if args.profile or not met:
        log("\nprofiling in-process (cProfile)")
        profiles = plans_and_profile(data_dir, meta, qtexts, profile=True)["profiles"]
        for name, prof in profiles.items():
            log(f"\n---- profile: {name} ----\n{prof}")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"mailbox-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "cores": os.cpu_count(),
                "fill": {k: v for k, v in meta.items() if k not in ("key", "queries")},
                "run": run,
                "inprocess_ms": inproc["inprocess_ms"],
                "plans": inproc["plans"],
                "targets_met": met,
                "profiles": profiles,
            },
            indent=2,
        )
        + "\n"
    )
    log(f"\nresults: {out}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
