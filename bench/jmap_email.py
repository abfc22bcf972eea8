"""JMAP Email benchmark: Email/query + Email/get of a page, and Email/changes, in a big mailbox.

    PYTHONPATH=src .venv/bin/python bench/jmap_email.py                    # 100,000 messages
    PYTHONPATH=src .venv/bin/python bench/jmap_email.py --messages 10000   # smaller, quicker

1. The mailbox of bench/mailbox.py (filled once through ingest and cached in
   ``bench/results/mailbox-<messages>``; the same cache that benchmark uses), measured on a
   copy of its database.
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
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from mailbox import OWNER, Series, _settings, fill, fresh_copy, log, servers, timed  # noqa: E402

from admin_api import RESULTS, expect, percentile  # noqa: E402

PAGE_TARGET_MS = 10.0
CHANGES_TARGET_MS = 5.0
SUMMARY = ["id", "threadId", "mailboxIds", "keywords", "from", "subject", "receivedAt", "preview",
           "hasAttachment", "size"]  # fmt: skip
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


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
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--refill", action="store_true")
    parser.add_argument("--fill-in", default="auto")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="per scenario, over the rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    data_dir = args.data_dir or RESULTS / f"mailbox-{args.messages}"
    if args.refill or not (data_dir / "bench.json").exists():
        meta = fill(args, data_dir)
    else:
        meta = json.loads((data_dir / "bench.json").read_text())
        log(f"using the cached mailbox {data_dir} ({meta['stored']} messages)")
    copy, meta = fresh_copy(data_dir, meta, analyze=False)
    since = asyncio.run(_deliver_new(copy, 100))
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
