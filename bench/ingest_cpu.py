"""In-process ingest: CPU seconds per message, A/B between checkouts.

    .venv/bin/python bench/ingest_cpu.py --src before=/tmp/old/src --src after=src

Each round runs, for every checkout in turn, a fresh child process with that checkout's
``src`` first on the path: a new SQLite database on tmpfs (``/dev/shm`` when there is one),
one mailbox, 50 warm-up deliveries, then ``--messages`` distinct ~10 KB messages through
``ingest()`` one after the other (the LMTP server's own path, without the socket). It counts
the process's CPU time (every thread: the blob writes and commits too), so the figure moves
little with the load of a shared machine, unlike messages per second. Medians over
``--rounds`` interleaved rounds. Use it for the cost of a change to the ingest path's SQL
(triggers, indexes, statements); bench/lmtp_ingest.py for throughput and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOMAIN = "bench.example"


def make_message(run: str, n: int, size: int) -> bytes:
    head = (
        f"From: Sender {n} <sender{n}@example.net>\r\n"
        f"To: bench1@{DOMAIN}\r\n"
        f"Subject: Benchmark message {n} of run {run}\r\n"
        "Date: Thu, 01 Jan 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{run}-{n}@bench.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = f"Line of message {n}: the quick brown fox jumps over the lazy dog, again and again.\r\n"
    return (head + line * max(1, (size - len(head)) // len(line))).encode()


async def child(folder: Path, messages: int, size: int) -> dict[str, float]:
    """One measurement with whatever mailroom is first on the path."""
    from mailroom import bootstrap
    from mailroom.delivery.ingest import ingest
    from mailroom.delivery.resolve import resolve
    from mailroom.settings import Settings

    settings = Settings(data_dir=folder, secret_key="bench-secret-key-not-for-production")
    app = await bootstrap.start(settings)
    try:
        await app.registry.call("admin.domains.create", {"domain": {"name": DOMAIN}})
        user = {"email": f"bench1@{DOMAIN}", "password": "benchmark password", "quota_bytes": 0}
        await app.registry.call("admin.users.create", {"user": user})
        rt = app.runtime
        async with rt.db.read() as tx:
            target = await resolve(tx, f"bench1@{DOMAIN}")

        async def deliver(raw: bytes) -> None:
            [result] = await ingest(rt, raw, mail_from="s@example.net", recipients=[target], source="lmtp")
            assert result.ok, result.reply

        for n in range(50):
            await deliver(make_message("warm", n, size))
        batch = [make_message(f"run-{time.time_ns()}", n, size) for n in range(messages)]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for raw in batch:
            await deliver(raw)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await app.close()
    return {"cpu_ms_per_msg": round(cpu / messages * 1000, 3), "msgs_per_s": round(messages / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(child(args.child, args.messages, args.size))))
        return
    sources = {name: Path(folder).resolve() for name, _, folder in (s.partition("=") for s in args.src)}
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sources}
    for round_ in range(args.rounds):
        for name, src in sources.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
            env["PYTHONPATH"] = str(src)
            with tempfile.TemporaryDirectory(prefix="mailroom-ingest-cpu-", dir=base) as tmp:
                command = [sys.executable, __file__, "--src", "x=x", "--child", tmp]
                command += ["--messages", str(args.messages), "--size", str(args.size)]
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results[name].append(result)
            print(
                f"round {round_ + 1} {name:>10}: {result['cpu_ms_per_msg']} ms CPU/msg, "
                f"{result['msgs_per_s']} msgs/s"
            )
    print(
        f"\nmedians of {args.rounds} rounds, {args.messages} messages of ~{args.size} bytes, "
        f"load {os.getloadavg()}"
    )
    first = next(iter(sources))
    base_cpu = statistics.median(r["cpu_ms_per_msg"] for r in results[first])
    for name, runs in results.items():
        cpu = statistics.median(r["cpu_ms_per_msg"] for r in runs)
        rate = statistics.median(r["msgs_per_s"] for r in runs)
        print(
            f"{name:>10}: {cpu:.3f} ms CPU/msg ({1000 / cpu:.0f} msgs per CPU second), {rate} msgs/s, "
            f"CPU {cpu / base_cpu:.3f}x {first}"
        )


if __name__ == "__main__":
    main()
