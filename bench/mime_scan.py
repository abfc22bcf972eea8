"""CPU cost of the MIME structure scan that ingest adds per message, beside the parse it does.

    .venv/bin/python bench/mime_scan.py [--messages 2000]

Generates realistic messages (bench/_mailgen.py: ~6 KB median text, 40% with an HTML
alternative, 8% with a base64 attachment) and times, per message, in this process:
``scan(raw)`` + ``to_json`` (what ``delivery.mime.compute`` does at ingest), and
``parse_message(raw)`` (the parse ingest already did before this change) for scale.
Reports the mean and p50/p99 per message in microseconds, and the mean of the stored JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _mailgen import MailGenerator

from mailroom.delivery.mime import compute
from mailroom.delivery.parse import parse_message


def _time(fn: object, corpus: list[bytes]) -> list[float]:
    out = []
    for raw in corpus:
        start = time.perf_counter()
        fn(raw)  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    corpus = [raw for _, raw in MailGenerator("alex@bench.example", args.messages, seed=7).messages()]
    sizes = sorted(len(r) for r in corpus)
    print(f"{len(corpus)} messages, median {sizes[len(sizes) // 2]} B, mean {statistics.mean(sizes):.0f} B")
    for _ in range(2):  # warm-up: imports, caches, regexes
        _time(compute, corpus[:200])
        _time(parse_message, corpus[:200])
    for name, fn in (("scan+json (added)", compute), ("parse_message (before)", parse_message)):
        runs = [_time(fn, corpus) for _ in range(3)]
        best = min(runs, key=statistics.mean)
        q = statistics.quantiles(best, n=100)
        print(f"{name:24} mean {statistics.mean(best):8.1f} µs  p50 {q[49]:8.1f}  p99 {q[98]:8.1f}")
    stored = [len(compute(raw)) for raw in corpus]
    print(f"stored structure: mean {statistics.mean(stored):.0f} B, max {max(stored)} B")


if __name__ == "__main__":
    main()
