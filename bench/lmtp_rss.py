"""LMTP ingest memory: each worker's RSS while 10,000 messages arrive in a row (issue #12 §3).

    .venv/bin/python bench/lmtp_rss.py                        # SQLite, 10,000 messages, ~1-2 minutes
    .venv/bin/python bench/lmtp_rss.py --database-url postgresql+asyncpg://...

``mailroom serve --workers 2`` (the production server; bench/lmtp_vs_dovecot.py starts it the
same way) on a temporary data folder; the same realistic ~10 KB messages as the Dovecot bench
(2-4 ``Received``, a ``DKIM-Signature``, a third multipart with an attachment), sent by 4
keep-alive LMTP clients, 1 recipient, in chunks of ``--every`` (1,000). After each chunk it
samples every worker's resident set (VmRSS) and, at the end, its peak (VmHWM). The bar: flat
after warm-up, i.e. the last sample within a few MB of the first. Not run by CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lmtp_ingest as common
from lmtp_vs_dovecot import DOMAIN, realistic_message, start_mailroom

from mailroom.settings import Settings


def worker_memory(pgid: int) -> dict[int, tuple[float, float]]:
    """``{pid: (VmRSS MB, VmHWM MB)}`` of the serve process group's workers (not the parent)."""
    out: dict[int, tuple[float, float]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(status.parent.name)
            stat = (status.parent / "stat").read_text().rpartition(")")[2].split()
            if int(stat[2]) != pgid or pid == pgid:
                continue
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            rss = int(fields["VmRSS"].split()[0]) / 1024
            hwm = int(fields["VmHWM"].split()[0]) / 1024
            out[pid] = (round(rss, 1), round(hwm, 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailroom-rss-") as tmp:
        root = Path(tmp)
        settings = Settings(
            data_dir=root / "mailroom", database_url=args.database_url, secret_key="bench-secret-" + "x" * 32
        )
        asyncio.run(common.prepare(settings, 1))
        port = common.free_port()
        server = start_mailroom(settings, port, args.workers, root / "mailroom.log")
        rcpt = [f"bench1@{DOMAIN}"]
        try:
            common.run(port, [realistic_message("warm", n) for n in range(200)], rcpt, args.clients)
            samples = [(0, worker_memory(server.pid))]
            run = f"rss{time.time_ns() % 10**9}"
            sent = 0
            while sent < args.messages:
                chunk = [
                    realistic_message(run, n) for n in range(sent, min(sent + args.every, args.messages))
                ]
                out = common.run(port, chunk, rcpt, args.clients, server.pid)
                sent += len(chunk)
                samples.append((sent, worker_memory(server.pid)))
                print(f"{sent:>6} messages: {out['msgs_per_s']} msgs/s, RSS {samples[-1][1]}", flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    engine = "postgresql" if args.database_url else "sqlite"
    pids = sorted(samples[0][1])
    print(
        f"\nRSS (MB) by pid (the workers and small helpers), mailroom serve --workers {args.workers}"
        f" on {engine}, after warm-up:"
    )
    print(f"{'messages':>8} " + " ".join(f"{pid:>9}" for pid in pids))
    for sent, memory in samples:
        print(f"{sent:>8} " + " ".join(f"{memory.get(pid, (0.0, 0.0))[0]:>9.1f}" for pid in pids))
    last = samples[-1][1]
    print("peak (VmHWM): " + ", ".join(f"{last.get(pid, (0.0, 0.0))[1]:.1f}" for pid in pids))
    growth = [last.get(pid, (0.0, 0.0))[0] - samples[1][1].get(pid, (0.0, 0.0))[0] for pid in pids]
    print("growth from the first 1,000 to the end (MB): " + ", ".join(f"{g:+.1f}" for g in growth))


if __name__ == "__main__":
    main()
