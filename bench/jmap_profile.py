"""JMAP requests in-process: CPU per request and where it goes, without HTTP servers.

    PYTHONPATH=src .venv/bin/python bench/jmap_profile.py                      # CPU per request
    PYTHONPATH=src .venv/bin/python bench/jmap_profile.py --profile page       # and cProfile it

Runs on the mailbox bench/jmap_email.py made and measured (``bench/results/mailbox-<n>-copy``,
with its 100 new messages): the ASGI app of ``mailroom serve`` (web.build_app) is called
directly with the same requests the bench sends (the page: Email/query + Email/get of the
inbox's newest 50 threads; changes: Email/changes since the state before the 100 new
messages; header: Email/query with a ``header`` condition). CPU time (``process_time``) per
request over ``--requests`` after a warm-up; ``--profile`` prints the cProfile of one
scenario by cumulative and by own time. What uvicorn's HTTP parsing costs is not in it (the
bench's CPU figure minus this one is about that).

Not run by CI.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gzip
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from mailbox import _settings  # noqa: E402

from admin_api import RESULTS  # noqa: E402
from jmap_email import SUMMARY, USING  # noqa: E402


class Client:
    """One ASGI app called as uvicorn would, a request at a time."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"accept-encoding", b"gzip, deflate"),  # as httpx sends: big answers are gzipped
        ]

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": [*self.headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        sent = False
        out: dict[str, Any] = {"status": 0, "body": b"", "gzip": False}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["gzip"] = (b"content-encoding", b"gzip") in message.get("headers", [])
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        body = bytes(out["body"])
        return int(out["status"]), gzip.decompress(body) if out["gzip"] else body


async def run(args: argparse.Namespace) -> None:
    from mailroom import bootstrap
    from mailroom.web import build_app

    data_dir: Path = args.data_dir
    meta = json.loads((data_dir / "bench.json").read_text())
    mailroom = await bootstrap.start(_settings(data_dir))
    app = build_app(mailroom)
    client = Client(app, meta["key"])
    account = f"u{meta['user_id']}"

    async def call(calls: list[list[Any]]) -> list[Any]:
        status, body = await client.post("/jmap/api", orjson.dumps({"using": USING, "methodCalls": calls}))
        if status != 200:
            sys.exit(f"HTTP {status}: {body[:500]!r}")
        responses: list[Any] = orjson.loads(body)["methodResponses"]
        if any(r[0] == "error" for r in responses):
            sys.exit(f"JMAP error: {responses}")
        return responses

    [[_, boxes, _]] = await call(
        [["Mailbox/query", {"accountId": account, "filter": {"role": "inbox"}}, "0"]]
    )
    inbox = boxes["ids"][0]
    since = args.since
    if since is None:  # the state before the bench's 100 new messages
        since = (data_dir / "jmap-since").read_text().strip()
    scenarios = {
        "page": [
            ["Email/query", {"accountId": account, "filter": {"inMailbox": inbox},
                             "sort": [{"property": "receivedAt", "isAscending": False}],
                             "collapseThreads": True, "limit": 50}, "q"],
            ["Email/get", {"accountId": account, "properties": SUMMARY,
                           "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"],
        ],
        "changes": [["Email/changes", {"accountId": account, "sinceState": since, "maxChanges": 500}, "c"]],
        "header": [
            ["Email/query", {"accountId": account, "filter": {"header": ["X-Spam-Flag", "yes"]},
                             "collapseThreads": True, "limit": 50, "calculateTotal": True}, "h"],
        ],
    }  # fmt: skip
    # The same page without calculateTotal (which counts every match of the mailbox).
    scenarios["header-page"] = [[n, {k: v for k, v in a.items() if k != "calculateTotal"}, c]
                                for n, a, c in scenarios["header"]]  # fmt: skip
    for name in args.scenarios:
        calls = scenarios[name]
        t0, w0 = time.process_time(), time.perf_counter()
        first = await call(calls)
        print(f"{name:<8} first request: CPU {(time.process_time() - t0) * 1000:9.1f} ms"
              f"  wall {(time.perf_counter() - w0) * 1000:9.1f} ms")  # fmt: skip
        if name == "changes" and len(first[0][1]["created"]) != 100:
            print(f"note: Email/changes gave {len(first[0][1]['created'])} created")
        slow = name.startswith("header")
        n = args.requests if not slow else max(2, args.requests // 100)
        for _ in range(min(n, 50) if not slow else 0):
            await call(calls)
        t0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            await call(calls)
        cpu = (time.process_time() - t0) / n * 1000
        wall = (time.perf_counter() - w0) / n * 1000
        print(f"{name:<8} CPU {cpu:7.3f} ms/request  wall {wall:7.3f} ms  ({n} requests)")
        if slow:
            print(f"         total {first[0][1].get('total')}, first ids {first[0][1]['ids'][:3]}")
        if name == args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(n):
                await call(calls)
            prof.disable()
            for key in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.lines)
                print(out.getvalue())
    await mailroom.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=RESULTS / "mailbox-100000-copy")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--since", help="Email/changes sinceState (default: before the 100 new)")
    parser.add_argument("--profile", choices=["page", "changes", "header", "header-page"])
    parser.add_argument("--lines", type=int, default=45)
    parser.add_argument("scenarios", nargs="*", default=["page", "changes"])
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
