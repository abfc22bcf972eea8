"""Postfix socketmap look-ups: latency at a fixed rate (issue target: p99 < 2 ms at 2,000/s).

    .venv/bin/python bench/socketmap.py                      # SQLite, 2,000/s for 10 s, 3 rounds
    .venv/bin/python bench/socketmap.py --rate 4000 --seconds 5
    .venv/bin/python bench/socketmap.py --database-url postgresql+asyncpg://...

What it does:

1. A temporary data folder with one domain, 200 mailboxes, 50 aliases and an alternative
   domain, made in-process through the registry before any server runs.
2. ``mailroom serve`` as in production (``--workers`` 1 by default), its socketmap listener
   on a free loopback port; beside it the floor, ``bench/bare_netstring.py``: the same
   netstring reader on uvloop answering ``NOTFOUND`` at once.
3. An open-loop client: ``--connections`` (8) persistent connections, as Postfix's
   processes keep theirs, each sending its share of ``--rate`` requests a second on a fixed
   schedule (one request at a time per connection, as Postfix does). Latency is measured
   from the moment a request was due, not sent, so a server that falls behind shows it
   (no coordinated omission). Keys: a mix of mailbox hits, alias expansions, alternative
   domain addresses, domains and unknown addresses.
4. ``--rounds`` (3) interleaved rounds (floor, mailroom, floor, ...); prints the medians of
   p50/p99/max and achieved rate for each, and the server's CPU time per look-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mailroom import bootstrap  # noqa: E402
from mailroom.frontends.socketmap import encode  # noqa: E402
from mailroom.settings import Settings  # noqa: E402

DOMAIN = "bench.example"
USERS = 200
ALIASES = 50
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(settings: Settings) -> None:
    app = await bootstrap.start(settings)
    try:
        call = app.registry.call
        await call("admin.domains.create", {"domain": {"name": DOMAIN}})
        await call("admin.alternatives.create", {"domain": DOMAIN, "alternative": {"name": "alt." + DOMAIN}})
        for i in range(USERS):
            await call(
                "admin.users.create", {"user": {"email": f"u{i}@{DOMAIN}", "password": "bench password 1"}}
            )
        for i in range(ALIASES):
            destinations = [f"u{i}@{DOMAIN}", f"u{i + 1}@{DOMAIN}", f"ext{i}@remote.example"]
            await call(
                "admin.aliases.create",
                {"alias": {"address": f"list{i}@{DOMAIN}", "destinations": destinations}},
            )
    finally:
        await app.close()


def requests(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i = rng.randrange(USERS)
        kind = rng.random()
        if kind < 0.35:
            out.append(f"mailbox u{i}@{DOMAIN}")
        elif kind < 0.55:
            out.append(f"alias list{i % ALIASES}@{DOMAIN}")
        elif kind < 0.65:
            out.append(f"alias u{i}@alt.{DOMAIN}")
        elif kind < 0.8:
            out.append(f"domain {DOMAIN}")
        elif kind < 0.9:
            out.append(f"transport {DOMAIN}")
        else:
            out.append(f"mailbox nobody{i}@{DOMAIN}")
    return [encode(r.encode()) for r in out]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a server's process group (workers too)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pid:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def wait_for(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited:\n" + log.read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(encode(b"domain probe.invalid"))
                if sock.recv(100).endswith(b","):
                    return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start:\n" + log.read_text())


def start(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(proc, port, log)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    proc.wait(30)


async def load(
    port: int, rate: float, seconds: float, connections: int, payloads: list[bytes]
) -> dict[str, float]:
    per = rate / connections
    total_each = int(per * seconds)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.2

    async def one(c: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in range(total_each):
                due = start + (i + c / connections) / per
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(payloads[(c * total_each + i) % len(payloads)])
                length = await reader.readuntil(b":")
                body = await reader.readexactly(int(length[:-1]) + 1)
                if body.startswith((b"TEMP", b"PERM", b"TIMEOUT")):
                    errors += 1
                latencies.append(time.perf_counter() - due)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "n": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailroom-socketmap-") as tmp:
        data = Path(tmp) / "data"
        settings = Settings(
            data_dir=data, database_url=args.database_url or None, secret_key="bench-secret-" + "x" * 32
        )
        asyncio.run(prepare(settings))
        log = Path(tmp) / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        mport, bport = free_port(), free_port()
        env.update(
            {
                "MAILROOM_DATA_DIR": str(data),
                "MAILROOM_DATABASE_URL": settings.effective_database_url,
                "MAILROOM_SECRET_KEY": settings.secret_key.get_secret_value(),
                "MAILROOM_SOCKETMAP_PORT": str(mport),
                "MAILROOM_SMTP_PORT": "0",
                "MAILROOM_LMTP_PORT": "0",
                "MAILROOM_SUBMISSION_PORT": "0",
            }
        )
        serve = [
            sys.executable,
            "-m",
            "mailroom",
            "serve",
            "--port",
            str(free_port()),
            "--workers",
            str(args.workers),
        ]
        bare = [sys.executable, str(ROOT / "bench" / "bare_netstring.py"), str(bport)]
        payloads = requests(50_000)
        results: dict[str, list[dict[str, float]]] = {"bare": [], "mailroom": []}
        procs = {"bare": start(bare, env, bport, log), "mailroom": start(serve, env, mport, log)}
        ports = {"bare": bport, "mailroom": mport}
        try:
            for name in ("bare", "mailroom"):  # warm-up
                asyncio.run(load(ports[name], args.rate, 1, args.connections, payloads))
            for _ in range(args.rounds):
                for name in ("bare", "mailroom"):
                    cpu0 = cpu_seconds(procs[name].pid)
                    out = asyncio.run(load(ports[name], args.rate, args.seconds, args.connections, payloads))
                    out["cpu_us"] = (cpu_seconds(procs[name].pid) - cpu0) / out["n"] * 1e6
                    results[name].append(out)
                    print(f"  {name:8} " + " ".join(f"{k}={v:.2f}" for k, v in out.items()), flush=True)
        finally:
            for proc in procs.values():
                stop(proc)
        print(
            f"\nmedians of {args.rounds} rounds, {args.rate:.0f}/s for {args.seconds:.0f} s, "
            f"{args.connections} connections:"
        )
        for name, runs in results.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(f"  {name:8} " + " ".join(f"{k}={v:.2f}" for k, v in med.items()))


if __name__ == "__main__":
    main()
