"""Admin API benchmark: mailroom beside a bare ASGI hello world, served alike, loaded alike.

    .venv/bin/python bench/admin_api.py                 # the whole run, ~2 minutes
    .venv/bin/python bench/admin_api.py --profile user  # and where one worker's CPU time goes

What it does (see bench/README.md and docs/performance.md):

1. A temporary data folder; an admin API key made in-process (``bootstrap.start`` +
   ``admin.apikeys.create``) before any server runs.
2. mailroom with 2 workers on a free loopback port (``mailroom serve --workers 2`` when the
   CLI has it, else uvicorn with the same settings as the baseline), and bench/bare_asgi.py
   with 2 workers (uvicorn, httptools, uvloop, no access log).
3. Seeds over REST: one domain, 60 users.
4. wrk ``-t2 -c64 -d10s --latency``, 3 rounds, the scenarios interleaved in each round (the
   machine drifts): bare hello; GET one user; list 50 users. Medians of the rounds.
5. Serial alias creation: POST /api/v1/aliases one after another, a new address each time,
   with ``wrk -t1 -c1 -d5s`` and bench/create_alias.lua (one connection: one request at a
   time), 3 rounds, p50/p99 as wrk measures them; the same wrk on the bare app as the floor.
   Then the same with Python's http.client (500 per round), as earlier sessions measured it:
   its own ~0.3 ms per request is in those figures.
6. Prints the table, the ratios to the bare app and the targets, and writes JSON to
   bench/results/ (not committed).

Not run by CI. Needs wrk (installed from Debian when missing and root).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DOMAIN = "bench.example"
USERS = 60
PASSWORD = "bench password, long enough"
TARGETS = {"user": 0.33, "list": 0.15}
ALIAS_P50_TARGET_MS = 1.0


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its workers (its process group)."""
        assert self.proc is not None
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                # Fields after the command name (which may hold spaces): state is field 3.
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[2]) == self.proc.pid:  # pgrp
                    ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / CLOCK_TICKS

    def start(self, probe: str, headers: dict[str, str] | None = None) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited with {self.proc.returncode}; its log:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + probe, headers=headers, timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        self.stop()
        sys.exit(f"{self.name} did not answer on {self.base}{probe} within 60 s; log: {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # The server and its workers are one process group of our own (start_new_session).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def uvicorn_argv(app: str, port: int, access_log: bool, *extra: str) -> list[str]:
    """uvicorn as ``mailroom serve`` runs it: uvloop, httptools, 2 workers, its default logging."""
    return [
        str(VENV_BIN / "python"), "-m", "uvicorn", app, *extra,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--loop", "uvloop", "--http", "httptools",
        *([] if access_log else ["--no-access-log"]),
    ]  # fmt: skip


def cli_has_serve() -> bool:
    exe = VENV_BIN / "mailroom"
    if not exe.exists():
        return False
    result = subprocess.run([str(exe), "serve", "--help"], capture_output=True, check=False)
    return result.returncode == 0


def mailroom_server(how: str, data_dir: Path, port: int, access_log: bool) -> Server:
    env = {
        **os.environ,
        "MAILROOM_DATA_DIR": str(data_dir),
        "MAILROOM_HOST": "127.0.0.1",
        "MAILROOM_PORT": str(port),
        "MAILROOM_WORKERS": "2",
        # No mail listeners: this measures the admin API, and the default ports may be taken.
        "MAILROOM_SMTP_PORT": "0",
        "MAILROOM_LMTP_PORT": "0",
        "MAILROOM_SUBMISSION_PORT": "0",
    }
    if how == "cli":
        env["MAILROOM_ACCESS_LOG"] = "true" if access_log else "false"
        argv = [str(VENV_BIN / "mailroom"), "serve", "--workers", "2"]
    else:
        argv = uvicorn_argv("mailroom.asgi:create_app", port, access_log, "--factory")
    return Server(f"mailroom ({how})", argv, env, port, RESULTS / "mailroom-server.log")


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: apt-get install wrk")
    print("installing wrk (apt-get)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"], check=True, env=env)
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk is still missing after apt-get install wrk")
    return wrk


# -- set-up ------------------------------------------------------------------------------------


def make_admin_key(data_dir: Path) -> str:
    """The first admin key, made in-process against the data folder the server will use."""
    from mailroom import bootstrap
    from mailroom.settings import load_settings

    async def make() -> str:
        app = await bootstrap.start(load_settings(data_dir=data_dir))
        try:
            created = await app.registry.call(
                "admin.apikeys.create", {"key": {"name": "bench", "admin": True}}
            )
        finally:
            await app.close()
        key: str = created["key"]
        return key

    return asyncio.run(make())


def seed(base: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        expect(client.post("/api/v1/domains", json={"name": DOMAIN}), 201)
        for i in range(USERS):
            expect(
                client.post("/api/v1/users", json={"email": f"user{i:02d}@{DOMAIN}", "password": PASSWORD}),
                201,
            )
        expect(client.get(f"/api/v1/users/user00%40{DOMAIN}"), 200)
        page = expect(client.get("/api/v1/users", params={"limit": 50}), 200).json()
        if len(page.get("items", [])) != 50:
            sys.exit(f"GET /api/v1/users?limit=50 gave {len(page.get('items', []))} items, not 50")


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        request = response.request
        got = f"{response.status_code} (expected {status})"
        sys.exit(f"{request.method} {request.url} → {got}: {response.text[:500]}")
    return response


# -- wrk ---------------------------------------------------------------------------------------

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non_2xx: int  # responses that were not 2xx/3xx
    socket_errors: int  # connect/read/write errors and timeouts (wrk gives up after 2 s)
    # The server's CPU time per request: what the machine's other load changes least.
    cpu_us_per_request: float = 0.0


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise ValueError(f"cannot read wrk's output:\n{out}")
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)}
    non_2xx = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(g) for g in errors.groups()) if errors else 0
    return WrkResult(
        float(rps.group(1)),
        pct["50"],
        pct["75"],
        pct["90"],
        pct["99"],
        int(total.group(1)),
        non_2xx,
        socket_errors,
    )


def run_wrk(
    wrk: str,
    server: Server,
    path: str,
    args: argparse.Namespace,
    headers: dict[str, str],
    duration: float,
    *,
    serial: bool = False,
    script: tuple[Path, list[str]] | None = None,
) -> WrkResult:
    """wrk against ``server``; ``serial``: one thread and one connection (one request at a
    time); ``script``: a Lua script and its arguments."""
    url = server.base + path
    threads, connections = (1, 1) if serial else (args.threads, args.connections)
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script[0])]
    argv.append(url)
    if script is not None:
        argv += ["--", *script[1]]
    cpu_before = server.cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - cpu_before
    result = parse_wrk(out)
    result.cpu_us_per_request = 1e6 * cpu / max(result.requests, 1)
    if result.non_2xx:
        sys.exit(f"wrk {url}: {result.non_2xx} responses were errors; refusing to report\n{out}")
    if result.socket_errors:
        print(f"  warning: {url}: {result.socket_errors} socket errors/timeouts (is the machine busy?)")
    return result


# -- serial alias creation ----------------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection with the standard library's client.

    The serial latency is the server's plus the client's; httpx spends ~0.3-0.6 ms of its
    own per request here, more than the target, so the serial loops use http.client (about
    a tenth of that), the same for mailroom and for the bare app.
    """

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        self.headers = headers

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


def _expect_status(got: tuple[int, bytes], status: int) -> None:
    if got[0] != status:
        sys.exit(f"expected {status}, got {got[0]}: {got[1][:300]!r}")


def create_aliases(base: str, headers: dict[str, str], start: int, count: int) -> list[float]:
    """Milliseconds per POST, one keep-alive connection, one request at a time."""
    timings: list[float] = []
    client = _Connection(base, headers)
    try:
        _expect_status(client.request("GET", f"/api/v1/users/user00%40{DOMAIN}"), 200)  # connect first
        for i in range(start, start + count):
            body = {"address": f"alias{i:05d}@{DOMAIN}", "destinations": [f"user{i % USERS:02d}@{DOMAIN}"]}
            t0 = time.perf_counter_ns()
            got = client.request("POST", "/api/v1/aliases", body)
            timings.append((time.perf_counter_ns() - t0) / 1e6)
            _expect_status(got, 201)
    finally:
        client.close()
    return timings


def serial_gets(base: str, path: str, count: int) -> list[float]:
    """The same client loop on the bare app: what the client and loopback cost by themselves."""
    timings: list[float] = []
    client = _Connection(base, {})
    try:
        _expect_status(client.request("GET", path), 200)
        for _ in range(count):
            t0 = time.perf_counter_ns()
            got = client.request("GET", path)
            timings.append((time.perf_counter_ns() - t0) / 1e6)
            _expect_status(got, 200)
    finally:
        client.close()
    return timings


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# -- profile -------------------------------------------------------------------------------------


def find_py_spy() -> str | None:
    for candidate in (VENV_BIN / "py-spy", shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


@contextlib.contextmanager
def py_spy(server: Server, out: Path, duration: float) -> Iterator[None]:
    exe = find_py_spy()
    if exe is None or server.proc is None:
        sys.exit("--profile needs py-spy (pip install py-spy)")
    argv = [
        exe,
        "record",
        "--pid",
        str(server.proc.pid),
        "--subprocesses",
        "--format",
        "raw",
        "--rate",
        "250",
    ]
    argv += ["--duration", str(int(duration)), "--output", str(out), "--nonblocking"]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        _, err = spy.communicate(timeout=duration + 60)
        if spy.returncode != 0 or not out.exists():
            sys.exit(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')}")


def profile_load(
    args: argparse.Namespace, wrk: str, server: Server, scenarios: list[Scenario], auth: dict[str, str]
) -> None:
    if args.profile == "alias":
        create_aliases(server.base, auth, 50000, 2000)
    else:
        s = next(s for s in scenarios if s.key == args.profile)
        run_wrk(wrk, server, s.path, args, auth, args.duration - 2)


def profiled_app() -> Any:
    """mailroom's ASGI app under cProfile with a CPU-time timer (run by uvicorn as a factory).

    CPU time, not wall time: on a busy machine a wall-clock sampler charges the time the
    worker sat preempted to whatever line it was on (typically the socket write that woke
    the client). Profiling starts after start-up and the statistics are written at shutdown.
    """
    import cProfile

    from mailroom.asgi import create_app

    inner = create_app()
    profiler = cProfile.Profile(time.process_time)
    out = os.environ["MAILROOM_BENCH_PSTATS"]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await inner(scope, receive, send)
            return

        async def send_and_start(message: MutableMapping[str, Any]) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                profiler.enable()

        async def receive_and_stop() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                profiler.disable()
                profiler.dump_stats(out)
            return message

        await inner(scope, receive_and_stop, send_and_start)

    return app


def profiled_server(data_dir: Path, port: int, access_log: bool, stats: Path) -> Server:
    env = {**os.environ, "MAILROOM_DATA_DIR": str(data_dir), "MAILROOM_BENCH_PSTATS": str(stats)}
    argv = uvicorn_argv("admin_api:profiled_app", port, access_log, "--factory", "--app-dir", str(BENCH))
    argv[argv.index("--workers") + 1] = "1"
    return Server("mailroom (cProfile, 1 worker)", argv, env, port, RESULTS / "profiled-server.log")


def summarise_pstats(path: Path, top: int = 30) -> str:
    import io
    import pstats

    if not path.exists():
        return f"no profile written ({path}); see {RESULTS / 'profiled-server.log'}"
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.strip_dirs()
    text.write("CPU time (process_time), one worker; cProfile's own overhead inflates Python-heavy code\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return text.getvalue()


def summarise_profile(raw: Path, top: int = 25) -> str:
    """Self time by function, and time inside each mailroom function (inclusive), from collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[_short(frames[-1])] += count
        for frame in {
            _short(f) for f in frames if "mailroom/" in f or "starlette/" in f or "sqlalchemy/" in f
        }:
            inclusive[frame] += count
    lines = [f"{total} samples; idle (waiting in the event loop's select) included"]
    lines.append("self time, top functions:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("inclusive time in mailroom / starlette / sqlalchemy functions:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:line)"
    m = re.match(r"(.*) \((.*):(\d+)\)$", frame)
    if not m:
        return frame
    func, path, _ = m.groups()
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    title: str
    server: str  # "bare" or "mailroom"
    path: str
    rounds: list[WrkResult] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.rounds))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--alias-duration",
        type=float,
        default=5.0,
        help="seconds of serial alias creation (wrk -c1) per round",
    )
    parser.add_argument(
        "--aliases", type=int, default=500, help="serial alias creations per round with http.client"
    )
    parser.add_argument(
        "--server", choices=["auto", "cli", "uvicorn"], default="auto", help="how to start mailroom"
    )
    parser.add_argument(
        "--profile", choices=["user", "list", "alias"], help="profile mailroom during one more run of this"
    )
    parser.add_argument(
        "--profiler",
        choices=["cprofile", "py-spy"],
        default="cprofile",
        help="cprofile: one worker, CPU time (default); py-spy: both workers, wall-clock samples",
    )
    parser.add_argument(
        "--access-log",
        dest="access_log",
        action="store_true",
        help="both servers with uvicorn's access log (default: both without, as mailroom serve runs)",
    )
    parser.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="both servers without uvicorn's access log (the default)",
    )
    parser.add_argument(
        "--data-parent",
        type=Path,
        help="make the temporary data folder here (/dev/shm: no fsync cost, to see what the disk adds)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args()
    if args.server == "auto":
        args.server = "cli" if cli_has_serve() else "uvicorn"

    RESULTS.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    data_dir = Path(tempfile.mkdtemp(prefix="mailroom-bench-", dir=args.data_parent))
    print(f"data folder: {data_dir}")
    key = make_admin_key(data_dir)
    auth = {"Authorization": f"Bearer {key}"}

    bare_port = free_port()
    bare = Server(
        "bare ASGI",
        uvicorn_argv("bare_asgi:app", bare_port, args.access_log, "--app-dir", str(BENCH)),
        dict(os.environ),
        bare_port,
        RESULTS / "bare-server.log",
    )
    mailroom = mailroom_server(args.server, data_dir, free_port(), args.access_log)
    scenarios = [
        Scenario("bare", "bare ASGI hello", "bare", "/"),
        Scenario("user", "GET one user", "mailroom", f"/api/v1/users/user00%40{DOMAIN}"),
        Scenario("list", "list 50 users", "mailroom", "/api/v1/users?limit=50"),
    ]
    servers = {"bare": bare, "mailroom": mailroom}
    alias_rounds: list[list[float]] = []
    serial_rounds: list[tuple[WrkResult, WrkResult]] = []  # (alias creation, bare floor)
    alias_cpu_us: list[float] = []
    floor_p50: list[float] = []
    profile_text = ""
    try:
        print(f"starting {mailroom.name}: {' '.join(mailroom.argv)}")
        mailroom.start(f"/api/v1/users/user00%40{DOMAIN}", auth)
        print(f"starting bare ASGI: {' '.join(bare.argv)}")
        bare.start("/")
        print(f"seeding: 1 domain, {USERS} users")
        seed(mailroom.base, auth)

        print("warming up (2 s each, not counted)")
        for s in scenarios:
            run_wrk(wrk, servers[s.server], s.path, args, auth if s.server == "mailroom" else {}, 2)
        for n in range(1, args.rounds + 1):
            for s in scenarios:
                headers = auth if s.server == "mailroom" else {}
                result = run_wrk(wrk, servers[s.server], s.path, args, headers, args.duration)
                s.rounds.append(result)
                print(
                    f"  round {n} {s.title:<18} {result.rps:>9.0f} req/s  "
                    f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
                    f"server CPU {result.cpu_us_per_request:.0f} µs/request"
                )

        create_aliases(mailroom.base, auth, 90000, 20)  # warm-up, not counted
        alias_script = BENCH / "create_alias.lua"
        for n in range(args.rounds):
            # wrk, one connection: the serial latency as a C client measures it.
            floor = run_wrk(wrk, bare, "/", args, {}, args.alias_duration, serial=True)
            created = run_wrk(
                wrk,
                mailroom,
                "/api/v1/aliases",
                args,
                auth,
                args.alias_duration,
                serial=True,
                script=(alias_script, [f"w{n}x", DOMAIN]),
            )
            serial_rounds.append((created, floor))
            print(
                f"  round {n + 1} alias creation (wrk -c1) p50 {created.p50_ms:.2f} ms  "
                f"p99 {created.p99_ms:.2f} ms  ({created.requests} serial POSTs; server CPU "
                f"{created.cpu_us_per_request:.0f} µs each; bare app: p50 {floor.p50_ms:.2f} ms)"
            )
            # The same with Python's http.client, as measured before wrk did it.
            floor_timings = serial_gets(bare.base, "/", args.aliases)
            floor_p50.append(percentile(floor_timings, 50))
            cpu_before = mailroom.cpu_seconds()
            timings = create_aliases(mailroom.base, auth, n * args.aliases, args.aliases)
            alias_cpu_us.append(1e6 * (mailroom.cpu_seconds() - cpu_before) / (args.aliases + 1))
            alias_rounds.append(timings)
            print(
                f"  round {n + 1} alias creation (http.client) p50 {percentile(timings, 50):.2f} ms  "
                f"p95 {percentile(timings, 95):.2f} ms  ({len(timings)} serial POSTs; server CPU "
                f"{alias_cpu_us[-1]:.0f} µs each; bare app: p50 {floor_p50[-1]:.2f} ms)"
            )

        if args.profile and args.profiler == "py-spy":
            raw = RESULTS / f"profile-{args.profile}.txt"
            print(f"profiling the mailroom workers with py-spy during one more {args.profile} run → {raw}")
            with py_spy(mailroom, raw, 12 if args.profile == "alias" else args.duration):
                profile_load(args, wrk, mailroom, scenarios, auth)
            profile_text = summarise_profile(raw)
        elif args.profile:
            mailroom.stop()
            bare.stop()
            stats = RESULTS / f"profile-{args.profile}.pstats"
            print(
                f"profiling one mailroom worker with cProfile (CPU time) during one more {args.profile} run"
            )
            profiled = profiled_server(data_dir, free_port(), args.access_log, stats)
            profiled.start(f"/api/v1/users/user00%40{DOMAIN}", auth)
            try:
                profile_load(args, wrk, profiled, scenarios, auth)
            finally:
                profiled.stop()
            profile_text = summarise_pstats(stats)
    finally:
        mailroom.stop()
        bare.stop()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)

    report = build_report(args, scenarios, serial_rounds, alias_rounds, mailroom, alias_cpu_us, floor_p50)
    print(report["text"])
    if profile_text:
        print("\nprofile (" + args.profile + "):\n" + profile_text)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"admin_api-{stamp}.json"
    out.write_text(json.dumps({k: v for k, v in report.items() if k != "text"}, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0 if report["targets_met"] else 1


def build_report(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    serial_rounds: list[tuple[WrkResult, WrkResult]],
    alias_rounds: list[list[float]],
    mailroom: Server,
    alias_cpu_us: list[float],
    floor_p50: list[float],
) -> dict[str, Any]:
    bare_rps = scenarios[0].median("rps")
    alias_p50 = statistics.median(percentile(t, 50) for t in alias_rounds)
    alias_p95 = statistics.median(percentile(t, 95) for t in alias_rounds)
    wrk_p50 = statistics.median(r.p50_ms for r, _ in serial_rounds)
    wrk_p99 = statistics.median(r.p99_ms for r, _ in serial_rounds)
    wrk_cpu = statistics.median(r.cpu_us_per_request for r, _ in serial_rounds)
    wrk_floor = statistics.median(f.p50_ms for _, f in serial_rounds)
    lines = [
        "",
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency, {args.rounds} rounds, "
        f"medians; {os.cpu_count()} cores; mailroom via {mailroom.name}; "
        f"access log {'on' if args.access_log else 'off'} (both)",
        f"{'scenario':<20}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'CPU µs/req':>12}{'× bare':>8}{'CPU ×':>7}  target (on × bare)",
    ]
    met = True
    bare_cpu = scenarios[0].median("cpu_us_per_request")
    for s in scenarios:
        ratio = s.median("rps") / bare_rps
        cpu_ratio = bare_cpu / max(s.median("cpu_us_per_request"), 1e-9)
        target = TARGETS.get(s.key)
        verdict = ""
        if target is not None:
            ok = ratio >= target
            met &= ok
            verdict = f"≥{target:.2f} {'ok' if ok else 'MISSED'}"
        lines.append(
            f"{s.title:<20}{s.median('rps'):>9.0f}{s.median('p50_ms'):>9.2f}{s.median('p90_ms'):>9.2f}"
            f"{s.median('p99_ms'):>9.2f}{s.median('cpu_us_per_request'):>12.0f}"
            f"{ratio:>8.2f}{cpu_ratio:>7.2f}  {verdict}"
        )
    alias_ok = wrk_p50 < ALIAS_P50_TARGET_MS
    met &= alias_ok
    lines.append(
        f"serial alias creation (wrk -t1 -c1 -d{args.alias_duration:g}s): p50 {wrk_p50:.2f} ms, "
        f"p99 {wrk_p99:.2f} ms (median of {len(serial_rounds)} rounds); target p50 < "
        f"{ALIAS_P50_TARGET_MS:g} ms {'ok' if alias_ok else 'MISSED'}"
    )
    lines.append(
        f"  server CPU per alias creation {wrk_cpu:.0f} µs; "
        f"the same wrk on the bare app: p50 {wrk_floor:.2f} ms"
    )
    lines.append(
        f"  with Python's http.client instead: p50 {alias_p50:.2f} ms, p95 {alias_p95:.2f} ms "
        f"({len(alias_rounds)} rounds × {args.aliases}; server CPU {statistics.median(alias_cpu_us):.0f} µs "
        f"each; on the bare app: p50 {statistics.median(floor_p50):.2f} ms)"
    )
    lines.append("all targets met" if met else "TARGETS MISSED")
    lines.append(
        "CPU × = bare's server CPU per request / this one's: the throughput ratio if the servers had "
        "the cores to themselves (less sensitive to other load than req/s)"
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "wrk": {"threads": args.threads, "connections": args.connections, "duration_s": args.duration},
        "rounds": args.rounds,
        "mailroom_command": mailroom.argv,
        "access_log": args.access_log,
        "scenarios": {s.key: {"title": s.title, "rounds": [asdict(r) for r in s.rounds]} for s in scenarios},
        "ratios": {s.key: s.median("rps") / bare_rps for s in scenarios},
        "cpu_ratios": {s.key: bare_cpu / max(s.median("cpu_us_per_request"), 1e-9) for s in scenarios},
        "alias": {
            "client": "wrk -t1 -c1",
            "p50_ms": wrk_p50,
            "p99_ms": wrk_p99,
            "rounds": [asdict(r) for r, _ in serial_rounds],
            "floor_rounds": [asdict(f) for _, f in serial_rounds],
        },
        "alias_http_client": {
            "p50_ms": alias_p50,
            "p95_ms": alias_p95,
            "rounds": [{"p50_ms": percentile(t, 50), "p95_ms": percentile(t, 95)} for t in alias_rounds],
            "server_cpu_us": alias_cpu_us,
            "client_floor_p50_ms": floor_p50,
        },
        "targets_met": met,
        "text": "\n".join(lines),
    }


if __name__ == "__main__":
    sys.exit(main())
