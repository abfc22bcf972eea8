"""LMTP ingest benchmark: messages/s and latency for 1,000 messages of ~10 KB, 1 and 4 clients.

    .venv/bin/python bench/lmtp_ingest.py                    # SQLite, 1 recipient, ~2 minutes
    .venv/bin/python bench/lmtp_ingest.py --recipients 3     # 3 recipients a message
    .venv/bin/python bench/lmtp_ingest.py --database-url postgresql+asyncpg://...

What it does:

1. A temporary data folder; the mailboxes (``bench1@bench.example`` ...) made in-process
   through the registry before any server runs.
2. The server as it runs in production: ``mailroom serve`` (one worker, ``--workers`` for
   more; uvloop), the LMTP port bound once and served by every worker, on a free
   loopback port. Beside it the
   baseline, ``bench/bare_lmtp.py``: aiosmtpd's LMTP on uvloop too, storing each message in
   a file with an fsync of the file and its folder before the ``250``s, nothing else.
3. 1,000 distinct messages of about 10 KB each (unique Message-IDs), sent with ``smtplib``
   over keep-alive LMTP sessions: first by 1 client, then by 4 clients (250 each), each
   message ``MAIL`` → ``RCPT`` (per recipient) → ``DATA`` → one reply per recipient.
   Latency is the client's time for one whole transaction. Every reply must be 250.
   ``--rounds`` (3) rounds, interleaved (bare 1, mailroom 1, bare 4, mailroom 4, ...) so
   that the machine's drift hits both alike; a short warm-up of each comes first.
   ``--src before=/tmp/old/src --src after=src`` measures two checkouts side by side (each
   its own server and database, interleaved with the bare sink) instead of the installed one.
4. Prints, per server and client count, the medians over the rounds of msgs/s, p50/p95/p99
   latency and the server's CPU time per message (from /proc, user + system, all threads),
   then mailroom's ratio to the bare sink; JSON goes to bench/results/ (not committed).

The bar (DESIGN.md, same kind of machine): Dovecot 2.3 LMTP into Maildir with fsync,
~525 msgs/s with one client (p50 1.9 ms), ~960/s with four; 3 recipients: ~225/s, ~400/s.
The machine's speed drifts and it is shared: read the ratios to the bare sink, and compare
runs made back to back. Not run by CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mailroom import bootstrap  # noqa: E402
from mailroom.settings import Settings  # noqa: E402

DOMAIN = "bench.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fsync_p50_ms(folder: Path, n: int = 50) -> float:
    """The disk's speed today: the median fsync of a new 10 KB file (the machine drifts)."""
    times = []
    for i in range(n):
        path = folder / f"fsync-probe-{i}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x" * 10_000)
        t0 = time.perf_counter()
        os.fsync(fd)
        times.append(time.perf_counter() - t0)
        os.close(fd)
        path.unlink()
    return round(statistics.median(times) * 1000, 2)


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
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode()


async def prepare(settings: Settings, recipients: int) -> None:
    app = await bootstrap.start(settings)
    try:
        await app.registry.call("admin.domains.create", {"domain": {"name": DOMAIN}})
        for i in range(1, recipients + 1):
            user = {"email": f"bench{i}@{DOMAIN}", "password": "benchmark password", "quota_bytes": 0}
            await app.registry.call("admin.users.create", {"user": user})
    finally:
        await app.close()


def prepare_with(src: Path, settings: Settings, recipients: int) -> None:
    """:func:`prepare` run by another checkout's code: its migrations build its schema (the
    code here may have newer ones that the other checkout's server would refuse)."""
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from mailroom import bootstrap\n"
        "from mailroom.settings import Settings\n"
        f"DOMAIN = {DOMAIN!r}\n"
        "async def main():\n"
        "    settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2] or None,\n"
        "                        secret_key='bench-secret-key-not-for-production')\n"
        "    app = await bootstrap.start(settings)\n"
        "    try:\n"
        "        await app.registry.call('admin.domains.create', {'domain': {'name': DOMAIN}})\n"
        "        for i in range(1, int(sys.argv[3]) + 1):\n"
        "            user = {'email': f'bench{i}@{DOMAIN}', 'password': 'benchmark password',\n"
        "                    'quota_bytes': 0}\n"
        "            await app.registry.call('admin.users.create', {'user': user})\n"
        "    finally:\n"
        "        await app.close()\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env["PYTHONPATH"] = str(src)
    url = settings.database_url or ""
    subprocess.run(
        [sys.executable, "-c", code, str(settings.data_dir), url, str(recipients)], env=env, check=True
    )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server: its process group (workers too), all threads."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # Fields after the command name (which may hold spaces): state is field 3.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pid:  # pgrp: the servers start sessions of their own
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def wait_for_lmtp(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited:\n" + log.read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start:\n" + log.read_text())


def start_bare(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(ROOT / "bench" / "bare_lmtp.py"), str(folder), str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_lmtp(proc, port, log)
    return proc


def start_server(
    settings: Settings, lmtp_port: int, log: Path, workers: int = 1, src: Path | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    if src is not None:  # another checkout's code (ahead of the installed one on the path)
        env["PYTHONPATH"] = str(src)
    env.update(
        {
            "MAILROOM_DATA_DIR": str(settings.data_dir),
            "MAILROOM_DATABASE_URL": settings.effective_database_url,
            "MAILROOM_SECRET_KEY": settings.secret_key.get_secret_value(),
            "MAILROOM_LMTP_PORT": str(lmtp_port),
            "MAILROOM_SMTP_PORT": "0",
            # Only LMTP: the mail-client ports off, so runs (and tests) beside it do not collide.
            "MAILROOM_IMAP_PORT": "0",
            "MAILROOM_IMAPS_PORT": "0",
            "MAILROOM_POP3_PORT": "0",
            "MAILROOM_POP3S_PORT": "0",
        }
    )
    # ``mailroom serve`` binds the LMTP port once and hands it to every worker (uvicorn run
    # directly with several workers would have each of them bind it, and all but one fail).
    cmd = [sys.executable, "-m", "mailroom", "serve", "--workers", str(workers)]
    cmd += ["--host", "127.0.0.1", "--port", str(free_port()), "--submission-port", "0"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_lmtp(proc, lmtp_port, log)
    return proc


def client(
    port: int, messages: list[bytes], rcpts: list[str], latencies: list[float], errors: list[str]
) -> None:
    conn = smtplib.LMTP("127.0.0.1", port, timeout=60)
    conn.ehlo("bench.client")
    try:
        for raw in messages:
            t0 = time.perf_counter()
            conn.mail("sender@example.net")
            for r in rcpts:
                code, text = conn.rcpt(r)
                if code != 250:
                    errors.append(f"RCPT {code} {text!r}")
            replies = [conn.data(raw)] + [conn.getreply() for _ in rcpts[1:]]
            latencies.append(time.perf_counter() - t0)
            errors.extend(f"DATA {c} {t!r}" for c, t in replies if c != 250)
    finally:
        conn.quit()


def run(
    port: int, messages: list[bytes], rcpts: list[str], clients: int, pid: int | None = None
) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    share = len(messages) // clients
    threads = [
        threading.Thread(
            target=client, args=(port, messages[i * share : (i + 1) * share], rcpts, latencies, errors)
        )
        for i in range(clients)
    ]
    cpu0 = cpu_seconds(pid) if pid is not None else 0.0
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0 if pid is not None else 0.0
    if errors:
        raise SystemExit(f"{len(errors)} failed replies, first: {errors[0]}")
    q = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "messages": len(latencies),
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
        "cpu_ms_per_msg": round(cpu / len(latencies) * 1000, 2),
    }


KEYS = ("msgs_per_s", "p50_ms", "p95_ms", "p99_ms", "cpu_ms_per_msg")


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10_000, help="bytes per message (about)")
    parser.add_argument("--recipients", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="mailroom's uvicorn workers (LMTP in each)")
    parser.add_argument("--clients", default="1,4", help="client counts, comma-separated")
    parser.add_argument("--database-url", default=None, help="default: SQLite in the temporary folder")
    parser.add_argument(
        "--src",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="measure the mailroom in DIR (another checkout's src folder) as NAME; repeatable, "
        "interleaved with the others (before/after comparisons); default: the installed one",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    sources: dict[str, Path | None] = {"mailroom": None}
    if args.src:
        sources = {name: Path(folder).resolve() for name, _, folder in (s.partition("=") for s in args.src)}
    if args.database_url and len(sources) > 1:
        raise SystemExit("--src with several servers needs SQLite (one database each)")

    runs: dict[str, dict[int, list[dict[str, float]]]] = {"bare": {}, **{name: {} for name in sources}}
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-") as tmp:
        ports = {name: free_port() for name in runs}
        log = Path(tmp) / "server.log"
        procs = {"bare": start_bare(Path(tmp) / "bare", ports["bare"], log)}
        for name, src in sources.items():
            settings = Settings(
                data_dir=Path(tmp) / f"data-{name}",
                database_url=args.database_url,
                secret_key="bench-secret-key-not-for-production",
            )
            if src is None:
                asyncio.run(prepare(settings, args.recipients))
            else:
                prepare_with(src, settings, args.recipients)
            procs[name] = start_server(settings, ports[name], log, args.workers, src)
        fsync_ms = fsync_p50_ms(Path(tmp))
        rcpts = [f"bench{i}@{DOMAIN}" for i in range(1, args.recipients + 1)]
        try:
            for name in procs:  # warm-up, not counted
                warm = [make_message(f"warm-{name}-{time.time_ns()}", n, args.size) for n in range(50)]
                run(ports[name], warm, rcpts, 1)
            for round_ in range(args.rounds):
                for clients in counts:
                    for name, proc in procs.items():
                        run_id = f"{name}-r{round_}-c{clients}-{time.time_ns()}"
                        messages = [make_message(run_id, n, args.size) for n in range(args.messages)]
                        result = run(ports[name], messages, rcpts, clients, proc.pid)
                        runs[name].setdefault(clients, []).append(result)
                        rate = result["msgs_per_s"]
                        print(f"round {round_ + 1} {name:>9} {clients} client(s): {rate} msgs/s")
        finally:
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                proc.wait(timeout=30)
    engine = "postgresql" if args.database_url else "sqlite"
    load = os.getloadavg()
    print(
        f"LMTP ingest, {args.messages} messages of ~{args.size} bytes, {args.recipients} recipient(s),"
        f" mailroom with {args.workers} worker(s)"
    )
    print(
        f"database: {engine}; this disk's fsync of a 10 KB file: p50 {fsync_ms} ms (Dovecot's run: fsync on)"
    )
    print(
        f"medians of {args.rounds} rounds; load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    head = ("server", "clients", "msgs/s", "p50 ms", "p95 ms", "p99 ms", "CPU ms/msg")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (9, 8, 9, 8, 8, 8, 11), strict=True)))
    summary: dict[str, dict[int, dict[str, float]]] = {}
    for name in runs:
        for clients, results in runs[name].items():
            m = summary.setdefault(name, {})[clients] = medians(results)
            print(
                f"{name:>9} {clients:>8} {m['msgs_per_s']:>9} {m['p50_ms']:>8} {m['p95_ms']:>8}"
                f" {m['p99_ms']:>8} {m['cpu_ms_per_msg']:>11}"
            )
    first = next(iter(sources))
    for name in sources:
        for base in ["bare"] + ([first] if name != first else []):
            for clients in counts:
                ours, theirs = summary[name][clients], summary[base][clients]
                print(
                    f"{name} / {base}, {clients} client(s):"
                    f" msgs/s {ours['msgs_per_s'] / theirs['msgs_per_s']:.2f}x,"
                    f" CPU per message {ours['cpu_ms_per_msg'] / max(theirs['cpu_ms_per_msg'], 0.01):.2f}x"
                )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = f"lmtp_ingest-{engine}-r{args.recipients}-w{args.workers}.json"
    (out / name).write_text(
        json.dumps(
            {
                "engine": engine,
                "recipients": args.recipients,
                "workers": args.workers,
                "fsync_p50_ms": fsync_ms,
                "load_average": load,
                "medians": {n: {str(c): m for c, m in v.items()} for n, v in summary.items()},
                "runs": {n: {str(c): r for c, r in v.items()} for n, v in runs.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
