"""IMAP, any server beside Dovecot 2.3 on the same 10,000 messages (issue 15 §4).

    .venv/bin/python bench/imap_vs_dovecot.py                      # Dovecot, and mailroom if its IMAP answers
    .venv/bin/python bench/imap_vs_dovecot.py --mailroom-src /path/to/checkout/src
    .venv/bin/python bench/imap_vs_dovecot.py --no-dovecot --server name=127.0.0.1:143:user:password

What it measures, for each server, with 1 and with 8 clients (``--clients``), each client in
a process of its own, each case for ``--seconds`` (every client does at least one):

- ``sync``: connect, ``LOGIN``, ``SELECT INBOX``, ``UID FETCH 1:* (FLAGS)``, ``LOGOUT`` (a
  desktop client's reconnect); one operation is the whole sequence;
- ``envelope``: ``FETCH n-49:n (ENVELOPE)``, the newest 50, in a selected session;
- ``body``: ``UID FETCH u BODY[]`` of one message (a random one each time);
- ``store``: ``UID STORE u +FLAGS (\\Flagged)`` (and ``-FLAGS`` the next time: every
  operation changes something);
- ``search``: ``UID SEARCH TEXT "word"`` with a mid-frequency word of the generated vocabulary.

Before anything is timed every INBOX gets the generator's flags (``match_flags``: ~93% seen,
3% flagged, as in Dovecot's Maildir; mail delivered over LMTP arrives unseen, and a
``BODY[]`` of an unseen message is a ``\\Seen`` write too); ``--keep-flags`` leaves them.

Reported: operations per second (all clients together), p50 and p99 latency, and with two
servers the ratio of each to Dovecot. With ``--rounds N`` every case runs N times, the servers
one after the other case by case (the machine's load drifts, so a ratio compares runs
seconds apart, not minutes), and the medians are reported.

The servers:

1. Dovecot: Debian's ``dovecot-imapd`` (installed with apt-get when missing, as root), a
   throw-away configuration of its own on loopback (``protocols = imap``, a passwd-file
   passdb holding the password as ``{ARGON2ID}`` + the PHC string mailroom's settings make
   (64 MiB, 3 passes, 4 lanes by default: both servers pay one argon2id check per login;
   ``auth_cache_size = 0``, Dovecot's default, so neither caches verified passwords), a
   static userdb, Maildir, the default one login process per connection), the 10,000 messages
   written straight into ``Maildir/cur`` (flags from the generator: ~90% seen, 3% flagged;
   file times = arrival times; the ~1% the generator marks as spam into ``.Junk``, as
   mailroom files them), started with ``dovecot -c`` and stopped at the end. Its
   index is built by a warm-up round before anything is timed.
2. mailroom: ``mailroom serve`` (``--workers``, SQLite or ``--database-url``) with
   ``MAILROOM_IMAP_PORT`` set, from this checkout or ``--mailroom-src`` (another checkout's
   ``src``, read only: no byte-code is written there). If nothing answers IMAP on that port
   the server is skipped (its IMAP has not landed). Otherwise the same 10,000 messages are
   delivered to it over LMTP first.
3. Any other IMAP server already running: ``--server name=host:port:user:password`` (its
   INBOX should hold the same messages: ``--write-maildir DIR`` writes them as a Maildir,
   ``--deliver-lmtp host:port:rcpt`` delivers them over LMTP).

The messages come from bench/_mailgen.py (seeded: every run and every server gets the same
bytes): ~36 KB on average, 8% with attachments up to ~3 MB, two years of arrival times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lmtp_ingest as common
from _mailgen import MailGenerator

OWNER = f"bench1@{common.DOMAIN}"
PASSWORD = "benchmark password"  # lmtp_ingest.prepare's, for mailroom; Dovecot gets its hash
OPERATIONS = ("sync", "envelope", "body", "store", "search")
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_EXISTS = re.compile(rb"^\* (\d+) EXISTS")
_UID = re.compile(rb"UID (\d+)")


# -- the messages ----------------------------------------------------------------------------


def generator(count: int) -> MailGenerator:
    return MailGenerator(OWNER, count, seed=15)


def write_maildir(maildir: Path, count: int) -> None:
    """The generated messages as a Maildir: in ``cur``, arrival order in the file names; the
    ~1% marked spam (``X-Spam-Flag: YES``) in ``.Junk``, where mailroom files them too."""
    for folder in (maildir, maildir / ".Junk"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    for n, (planned, raw) in enumerate(generator(count).messages()):
        stamp = int(planned.at.timestamp())
        flags = ("F" if planned.is_starred else "") + ("S" if planned.is_read else "")
        folder = maildir / ".Junk" if planned.spam else maildir
        name = folder / "cur" / f"{1_600_000_000 + n}.M{n}P1.bench,S={len(raw)}:2,{flags}"
        name.write_bytes(raw)
        os.utime(name, (stamp, stamp))


def deliver_lmtp(host: str, port: int, rcpt: str, count: int) -> None:
    """The generated messages delivered over LMTP, in arrival order, on one session."""
    client = smtplib.LMTP(host, port)
    try:
        client.ehlo("bench.example")
        for n, (_, raw) in enumerate(generator(count).messages()):
            client.mail("sender@example.net")
            code, text = client.rcpt(rcpt)
            if code != 250:
                raise SystemExit(f"RCPT {rcpt}: {code} {text!r}")
            code, text = client.data(raw)
            if code != 250:
                raise SystemExit(f"message {n}: {code} {text!r}")
            if n and n % 2000 == 0:
                print(f"  delivered {n}", flush=True)
    finally:
        client.quit()


# -- a small IMAP client ---------------------------------------------------------------------


class ImapError(Exception):
    pass


class Imap:
    """Just enough IMAP4rev1 to time commands: tagged commands, literals read whole."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.n = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> Imap:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"greeting {greeting!r}")
        return cls(reader, writer)

    async def command(self, text: str) -> list[bytes]:
        """Send one command; its untagged responses (literals inline), or ImapError."""
        self.n += 1
        tag = b"b%d" % self.n
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        lines: list[bytes] = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ImapError(f"connection closed during {text[:40]!r}")
            while (literal := _LITERAL.search(line)) is not None:
                line += await self.reader.readexactly(int(literal.group(1)))
                line += await self.reader.readline()
            if line.startswith(tag + b" "):
                if line[len(tag) + 1 :].startswith(b"OK"):
                    return lines
                raise ImapError(f"{text[:40]!r}: {line[:200]!r}")
            lines.append(line)

    async def login(self, user: str, password: str) -> None:
        await self.command(f'LOGIN "{user}" "{password}"')

    async def select(self) -> int:
        for line in await self.command("SELECT INBOX"):
            if match := _EXISTS.match(line):
                return int(match.group(1))
        raise ImapError("SELECT gave no EXISTS")

    async def close(self) -> None:
        with contextlib.suppress(ImapError, OSError):
            await self.command("LOGOUT")
        self.writer.close()


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def parse(cls, spec: str) -> Target:
        name, _, rest = spec.partition("=")
        host, port, user, password = rest.split(":", 3)
        return cls(name, host, int(port), user, password)


def _uid_set(uids: list[int]) -> str:
    parts: list[str] = []
    for uid in uids:
        if parts and ":" not in parts[-1] and int(parts[-1]) == uid - 1:
            parts[-1] = f"{parts[-1]}:{uid}"
        elif parts and ":" in parts[-1] and int(parts[-1].split(":")[1]) == uid - 1:
            parts[-1] = f"{parts[-1].split(':')[0]}:{uid}"
        else:
            parts.append(str(uid))
    return ",".join(parts)


async def match_flags(target: Target, count: int) -> None:
    """Give the INBOX the generator's flags (~93% seen, 3% flagged), as written into Dovecot's
    Maildir: mail delivered over LMTP arrives unseen, and a ``BODY[]`` of an unseen message
    is also a write (``\\Seen``). The INBOX holds the non-spam messages in arrival order."""
    wanted = [(p.is_read, p.is_starred) for p in generator(count).plan if not p.spam]
    imap = await Imap.connect(target.host, target.port)
    try:
        await imap.login(target.user, target.password)
        await imap.select()
        lines = await imap.command("UID SEARCH ALL")
        uids = sorted(int(u) for line in lines if line.startswith(b"* SEARCH") for u in line.split()[2:])
        if len(uids) != len(wanted):
            print(f"{target.name}: INBOX holds {len(uids)}, not {len(wanted)}: flags left as they are")
            return
        groups: dict[str, list[int]] = {}
        for uid, (seen, starred) in zip(uids, wanted, strict=True):
            flags = " ".join(f for f, on in (("\\Seen", seen), ("\\Flagged", starred)) if on)
            groups.setdefault(flags, []).append(uid)
        for flags, members in groups.items():
            for start in range(0, len(members), 2000):
                chunk = _uid_set(members[start : start + 2000])
                await imap.command(f"UID STORE {chunk} FLAGS.SILENT ({flags})")
    finally:
        await imap.close()


async def _uids(target: Target) -> tuple[int, list[int]]:
    imap = await Imap.connect(target.host, target.port)
    try:
        await imap.login(target.user, target.password)
        exists = await imap.select()
        lines = await imap.command("UID SEARCH ALL")
        uids = [int(u) for line in lines if line.startswith(b"* SEARCH") for u in line.split()[2:]]
        return exists, uids
    finally:
        await imap.close()


async def _client(
    target: Target, operation: str, start: float, seconds: float, uids: list[int], words: list[str], seed: int
) -> tuple[float, float, list[float]]:
    """One client: ``operation`` again and again from ``start`` for ``seconds``; when it
    began and ended (wall clock) and the latencies."""
    rng = random.Random(seed)
    session: Imap | None = None
    exists = 0
    if operation != "sync":
        session = await Imap.connect(target.host, target.port)
        await session.login(target.user, target.password)
        exists = await session.select()
    await asyncio.sleep(max(0.0, start - time.time()))
    latencies: list[float] = []
    flagged: set[int] = set()
    began_at = time.time()
    end = time.monotonic() + seconds
    try:
        while not latencies or time.monotonic() < end:
            began = time.perf_counter()
            if operation == "sync":
                imap = await Imap.connect(target.host, target.port)
                await imap.login(target.user, target.password)
                await imap.select()
                await imap.command("UID FETCH 1:* (FLAGS)")
                await imap.close()
            else:
                assert session is not None
                if operation == "envelope":
                    await session.command(f"FETCH {max(1, exists - 49)}:{exists} (ENVELOPE)")
                elif operation == "body":
                    await session.command(f"UID FETCH {rng.choice(uids)} BODY[]")
                elif operation == "store":
                    uid = rng.choice(uids)
                    sign = "-" if uid in flagged else "+"
                    flagged.symmetric_difference_update({uid})
                    await session.command(f"UID STORE {uid} {sign}FLAGS.SILENT (\\Flagged)")
                elif operation == "search":
                    await session.command(f'UID SEARCH TEXT "{rng.choice(words)}"')
            latencies.append(time.perf_counter() - began)
        ended_at = time.time()
    finally:
        if session is not None:
            await session.close()
    return began_at, ended_at, latencies


def _client_process(
    args: tuple[Target, str, float, float, list[int], list[str], int],
) -> tuple[float, float, list[float]]:
    return asyncio.run(_client(*args))


def measure(
    target: Target, operation: str, clients: int, seconds: float, uids: list[int], words: list[str]
) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(clients) as pool:
        pool.map(abs, range(clients))  # the processes are up before the clock starts
        start = time.time() + 0.5 + 0.1 * clients  # every client logged in and waiting
        jobs = [(target, operation, start, seconds, uids, words, i) for i in range(clients)]
        results = pool.map(_client_process, jobs)
    # From the first client's start to the last one's end: all of them at work in between.
    elapsed = max(max(r[1] for r in results) - min(r[0] for r in results), 1e-9)
    latencies = sorted(x for r in results for x in r[2])
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {
        "ops": len(latencies),
        "ops_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
    }


# -- Dovecot -----------------------------------------------------------------------------------


def ensure_dovecot() -> None:
    if shutil.which("dovecot") and Path("/usr/lib/dovecot/imap").exists():
        return
    if os.geteuid() != 0:
        raise SystemExit("Dovecot's IMAP is not installed: apt-get install dovecot-imapd (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dovecot-imapd"], check=True, env=env)


def _argon2id(password: str) -> str:
    """The PHC string mailroom would store for ``password`` with its default settings."""
    from mailroom.auth.passwords import PasswordHasher
    from mailroom.settings import Settings

    defaults = Settings.model_fields
    return PasswordHasher(
        time_cost=defaults["argon2_time_cost"].default,
        memory_cost=defaults["argon2_memory_cost"].default,
        parallelism=defaults["argon2_parallelism"].default,
    ).hash(password)


@contextlib.contextmanager
def dovecot(folder: Path, count: int) -> Iterator[Target]:
    """Dovecot IMAP on a free loopback port over a Maildir of the generated messages."""
    folder.mkdir(mode=0o755)
    mail = folder / "mail"
    maildir = mail / common.DOMAIN / "bench1" / "Maildir"
    print(f"writing {count} messages into {maildir}", flush=True)
    write_maildir(maildir, count)
    # Dovecot reads and writes the mail (and its index) as nobody.
    subprocess.run(["chown", "-R", "nobody:nogroup", str(mail)], check=True)
    port = common.free_port()
    passwd = folder / "passwd"
    passwd.write_text(f"{OWNER}:{{ARGON2ID}}{_argon2id(PASSWORD)}\n")
    conf = folder / "dovecot.conf"
    conf.write_text(
        f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
auth_cache_size = 0
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
    )
    subprocess.run(["dovecot", "-c", str(conf)], check=True)
    try:
        yield Target("dovecot", "127.0.0.1", port, OWNER, PASSWORD)
    finally:
        subprocess.run(["doveadm", "-c", str(conf), "stop"], check=False, capture_output=True)


# -- mailroom ----------------------------------------------------------------------------------


def _answers_imap(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(10)
            return sock.recv(100).startswith(b"* OK")
    except OSError:
        return False


@contextlib.contextmanager
def mailroom(
    folder: Path, count: int, workers: int, database_url: str | None, src: Path | None
) -> Iterator[Target | None]:
    """``mailroom serve`` with its IMAP listener on, the messages delivered over LMTP; None
    when nothing answers IMAP (this build has no IMAP listener)."""
    from mailroom.settings import Settings

    folder.mkdir()
    settings = Settings(data_dir=folder, database_url=database_url, secret_key="bench-secret-" + "x" * 32)
    if src is None:
        asyncio.run(common.prepare(settings, 1))
    else:
        common.prepare_with(src, settings, 1)
    lmtp, imap = common.free_port(), common.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never write into another checkout
    if src is not None:
        env["PYTHONPATH"] = str(src)
    env.update(
        {
            "MAILROOM_DATA_DIR": str(settings.data_dir),
            "MAILROOM_DATABASE_URL": settings.effective_database_url,
            "MAILROOM_SECRET_KEY": settings.secret_key.get_secret_value(),
            "MAILROOM_LMTP_PORT": str(lmtp),
            "MAILROOM_IMAP_PORT": str(imap),
            "MAILROOM_IMAPS_PORT": "0",
            "MAILROOM_IMAP_ALLOW_PLAINTEXT_LOOPBACK": "true",
            "MAILROOM_POP3_PORT": "0",
            "MAILROOM_POP3S_PORT": "0",
            "MAILROOM_SMTP_PORT": "0",
            "MAILROOM_SUBMISSION_PORT": "0",
        }
    )
    log = folder.parent / "mailroom.log"
    cmd = [sys.executable, "-m", "mailroom", "serve", "--workers", str(workers)]
    cmd += ["--host", "127.0.0.1", "--port", str(common.free_port())]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        common.wait_for_lmtp(proc, lmtp, log)
        if not _answers_imap(imap):
            print("mailroom: nothing answers IMAP on its imap_port: skipped", flush=True)
            yield None
            return
        print(f"delivering {count} messages to mailroom over LMTP", flush=True)
        began = time.monotonic()
        deliver_lmtp("127.0.0.1", lmtp, OWNER, count)
        print(f"  {count / (time.monotonic() - began):.0f} messages/s", flush=True)
        yield Target("mailroom", "127.0.0.1", imap, OWNER, PASSWORD)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)


# -- running -----------------------------------------------------------------------------------


def bench(
    targets: list[Target],
    clients: list[int],
    seconds: float,
    words: list[str],
    operations: list[str],
    rounds: int,
    count: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Every case on every server, ``rounds`` times, the servers interleaved case by case (the
    machine's load drifts: each ratio compares runs a few seconds apart); the medians. With
    ``count``, each INBOX first gets the generator's flags (:func:`match_flags`)."""
    known: dict[str, list[int]] = {}
    for target in targets:
        if count:
            asyncio.run(match_flags(target, count))
        exists, uids = asyncio.run(_uids(target))
        known[target.name] = uids
        print(f"{target.name}: INBOX holds {exists} messages; warming up", flush=True)
        for operation in operations:  # Dovecot builds its index and caches here, untimed
            asyncio.run(_client(target, operation, time.time(), 0.0, uids, words, 0))  # one each
    runs: dict[str, dict[str, list[dict[str, float]]]] = {t.name: {} for t in targets}
    for n_round in range(1, rounds + 1):
        for operation in operations:
            for n in clients:
                for target in targets:
                    result = measure(target, operation, n, seconds, known[target.name], words)
                    runs[target.name].setdefault(f"{operation}/{n}", []).append(result)
                    r = result
                    print(
                        f"round {n_round} {target.name:>10} {operation:>8} {n}c: {r['ops_per_s']:>8} ops/s"
                        f"  p50 {r['p50_ms']:>8} ms  p99 {r['p99_ms']:>8} ms  ({r['ops']} ops)",
                        flush=True,
                    )
    return {
        name: {
            case: {
                key: round(statistics.median(r[key] for r in results), 2)
                if key != "ops"
                else sum(r[key] for r in results)
                for key in results[0]
            }
            for case, results in cases.items()
        }
        for name, cases in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per case")
    parser.add_argument(
        "--rounds", type=int, default=1, help="each case this often, servers interleaved; medians"
    )
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--operations", default=",".join(OPERATIONS))
    parser.add_argument("--no-dovecot", action="store_true")
    parser.add_argument("--no-mailroom", action="store_true")
    parser.add_argument("--mailroom-src", type=Path, default=None, help="another checkout's src")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--server", action="append", default=[], help="name=host:port:user:password")
    parser.add_argument("--write-maildir", type=Path, default=None, help="only write the Maildir, then exit")
    parser.add_argument("--deliver-lmtp", default=None, help="host:port:rcpt; deliver, then exit")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--keep-flags", action="store_true", help="do not give each INBOX the generator's flags first"
    )
    args = parser.parse_args()
    if args.write_maildir is not None:
        write_maildir(args.write_maildir, args.messages)
        return
    if args.deliver_lmtp is not None:
        host, port, rcpt = args.deliver_lmtp.split(":", 2)
        deliver_lmtp(host, int(port), rcpt, args.messages)
        return
    clients = [int(n) for n in args.clients.split(",")]
    operations = [o for o in args.operations.split(",") if o]
    words = generator(min(args.messages, 100)).query_words()[:200]
    with tempfile.TemporaryDirectory(prefix="mailroom-imap-bench-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        root.chmod(0o755)
        targets: list[Target] = []
        if not args.no_dovecot:
            ensure_dovecot()
            targets.append(stack.enter_context(dovecot(root / "dovecot", args.messages)))
        if not args.no_mailroom:
            found = stack.enter_context(
                mailroom(root / "mailroom", args.messages, args.workers, args.database_url, args.mailroom_src)
            )
            if found is not None:
                targets.append(found)
        targets += [Target.parse(spec) for spec in args.server]
        count = 0 if args.keep_flags else args.messages
        results = bench(targets, clients, args.seconds, words, operations, args.rounds, count)
    load = os.getloadavg()
    print(f"\nIMAP, {args.messages} messages in INBOX; {args.seconds:g} s per case", end="")
    print(f", median of {args.rounds} interleaved round(s)", end="")
    print(f"; load average {load[0]:.2f} {load[1]:.2f}")
    names = list(results)
    header = f"{'operation':>9} {'clients':>7}" + "".join(
        f" {n + ' ops/s':>16} {'p50 ms':>8} {'p99 ms':>8}" for n in names
    )
    if "dovecot" in results and len(names) > 1:
        header += "".join(f" {n + '/dovecot':>18}" for n in names if n != "dovecot")
    print(header)
    for operation in operations:
        for n in clients:
            key = f"{operation}/{n}"
            row = f"{operation:>9} {n:>7}"
            for name in names:
                r = results[name][key]
                row += f" {r['ops_per_s']:>16} {r['p50_ms']:>8} {r['p99_ms']:>8}"
            if "dovecot" in results and len(names) > 1:
                base = results["dovecot"][key]["ops_per_s"]
                row += "".join(
                    f" {results[name][key]['ops_per_s'] / base:>18.2f}" for name in names if name != "dovecot"
                )
            print(row)
    if args.json is not None:
        args.json.write_text(json.dumps({"messages": args.messages, "results": results}, indent=2))


if __name__ == "__main__":
    main()
