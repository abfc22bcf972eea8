"""Dovecot's imaptest against ``mailroom serve``: its scripted RFC tests and its stress mode.

    .venv/bin/python bench/imaptest_run.py --imaptest /path/to/imaptest [--tests DIR]
        [--workers 2] [--database-url URL] [--secs 30] [--clients 10] [--only scripted|stress]

imaptest is not shipped with mailroom (nor with Debian): build it from its public repository
(docs/imap.md, "Compliance", says how and which commit builds against Debian 12's Dovecot 2.3).
``--tests`` defaults to the ``tests`` folder next to the binary's ``src`` (its source tree).

It makes a temporary data folder with one domain and one user, starts ``mailroom serve`` with
its IMAP listener on a free loopback port (SQLite, or ``--database-url``), and runs:

1. the scripted tests: ``imaptest test=DIR`` (each test logs in, deletes and recreates its own
   mailbox, appends its mbox, runs the commands and compares the answers);
2. the stress mode, 10 clients on one user's INBOX for ``--secs`` each, with its consistency
   checks on (imaptest's default: \\Recent in exactly one session, EXPUNGE/EXISTS bookkeeping,
   flags other sessions changed, FETCH answers that disagree between sessions): pipelined,
   ``no_pipelining``, ``own_flags`` (flag atomicity: each client owns some flags and checks no
   other session loses its changes), and ``checkpoint=5`` (every 5 s all sessions CHECK and
   must see identical mailboxes; run first, see STRESS). The messages it appends come from
   bench/_mailgen.py (each with its own Message-ID, as imaptest requires).
   The user's password hash is a cheap argon2id (FAST_HASH): the stress mode logs in all
   the time, and what is checked is the IMAP.

It prints imaptest's own summaries and, at the end, one line per run: the scripted tests'
failed/total groups and commands, and the stress runs' error count (lines imaptest reports as
``Error:``). The exit status is 1 when anything failed. Logs: ``bench/results/imaptest-*``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lmtp_ingest as common

USER = f"bench1@{common.DOMAIN}"
PASSWORD = "benchmark password"  # lmtp_ingest.prepare's
RESULTS = Path(__file__).resolve().parent / "results"
STRESS = {
    # First, on the empty INBOX: this imaptest build (commit 8252065 on Dovecot 2.3) panics in
    # its own bookkeeping (seq_range_flags_ref) when checkpoints start on a mailbox that holds
    # mail already, with any number of clients.
    "checkpoint": ["checkpoint=5"],
    "pipelined": [],
    "no_pipelining": ["no_pipelining"],
    "own_flags": ["own_flags"],
}
#: The stress mode logs in and out all the time: a cheap password hash (as the tests use), so
#: that what is measured is the IMAP and not argon2id on a loaded machine.
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}
_GROUPS = re.compile(r"(\d+) test groups: (\d+) failed, (\d+) skipped")
_COMMANDS = re.compile(r"(base protocol|extensions): (\d+)/(\d+) individual commands failed")


def _answers_imap(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(10)
            return sock.recv(100).startswith(b"* OK")
    except OSError:
        return False


@contextlib.contextmanager
def serving(folder: Path, workers: int, database_url: str | None) -> Iterator[int]:
    """``mailroom serve`` (this checkout's code) with IMAP on a free port; yields the port."""
    from mailroom.settings import Settings

    settings = Settings(
        data_dir=folder / "data",
        database_url=database_url,
        secret_key="bench-secret-" + "x" * 32,
        **FAST_HASH,  # type: ignore[arg-type]
    )
    asyncio.run(common.prepare(settings, 1))
    lmtp, imap = common.free_port(), common.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
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
            **{f"MAILROOM_{k.upper()}": str(v) for k, v in FAST_HASH.items()},
        }
    )
    log = RESULTS / "imaptest-mailroom.log"
    cmd = [sys.executable, "-m", "mailroom", "serve", "--workers", str(workers)]
    cmd += ["--host", "127.0.0.1", "--port", str(common.free_port())]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        common.wait_for_lmtp(proc, lmtp, log)
        if not _answers_imap(imap):
            raise SystemExit("mailroom: nothing answers IMAP on its imap_port")
        yield imap
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)


def run(imaptest: Path, port: int, args: list[str], name: str, timeout: float) -> str:
    base = [str(imaptest), "host=127.0.0.1", f"port={port}", f"user={USER}", f"pass={PASSWORD}"]
    print(f"\n== {name}: imaptest {' '.join(args)}", flush=True)
    try:
        done = subprocess.run(
            [*base, *args], capture_output=True, text=True, errors="replace", timeout=timeout, cwd=RESULTS
        )
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        output = f"{exc.stdout or ''}{exc.stderr or ''}\nTIMED OUT after {timeout:.0f} s\n"
    (RESULTS / f"imaptest-{name}.log").write_text(output)
    return output


def scripted_summary(output: str) -> tuple[str, bool]:
    groups = _GROUPS.search(output)
    if groups is None:
        return "no summary (see the log)", False
    parts = [f"groups {groups[2]}/{groups[1]} failed ({groups[3]} skipped)"]
    failed = int(groups[2])
    for kind, bad, total in _COMMANDS.findall(output):
        parts.append(f"{kind} {bad}/{total} commands failed")
        failed += int(bad)
    return ", ".join(parts), failed == 0


def stress_summary(output: str) -> tuple[str, bool]:
    errors = [line for line in output.splitlines() if any(w in line for w in ("Error:", "Panic:", "Fatal:"))]
    timed_out = "TIMED OUT" in output
    text = f"{len(errors)} errors" + (" (timed out)" if timed_out else "")
    kinds: dict[str, int] = {}
    for line in errors:
        kind = re.sub(r"\d+", "N", re.split("Error:|Panic:|Fatal:", line, maxsplit=1)[-1].strip())[:90]
        kinds[kind] = kinds.get(kind, 0) + 1
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]:
        text += f"\n      {n} × {kind}"
    return text, not errors and not timed_out


def write_mbox(path: Path, count: int = 300) -> None:
    """The messages the stress mode appends: bench/_mailgen's (seeded, each with its own
    Message-ID: imaptest takes two messages with one Message-ID for one and checks that their
    contents agree), those under 64 KB, as an mbox."""
    from _mailgen import MailGenerator

    out = []
    for planned, raw in MailGenerator(USER, count, seed=15).messages():
        if len(raw) > 65536:
            continue
        body = re.sub(rb"(?m)^(>*From )", rb">\1", raw.replace(b"\r\n", b"\n"))
        stamp = planned.at.strftime("%a %b %d %H:%M:%S %Y")
        out.append(b"From bench@example " + stamp.encode() + b"\n" + body.rstrip(b"\n") + b"\n\n")
    path.write_bytes(b"".join(out))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--imaptest", type=Path, required=True, help="the imaptest binary")
    parser.add_argument("--tests", type=Path, help="imaptest's tests folder (default: next to the binary)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--secs", type=int, default=30, help="seconds of each stress run")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--only", choices=("scripted", "stress"))
    parser.add_argument(
        "--test",
        action="append",
        help="a scripted test (a file name in the tests folder); repeat it for several",
    )
    args = parser.parse_args()
    imaptest = args.imaptest.resolve()
    tests = (args.tests or imaptest.parent / "tests").resolve()
    RESULTS.mkdir(exist_ok=True)
    summary: list[tuple[str, str, bool]] = []
    with (
        tempfile.TemporaryDirectory(prefix="imaptest-") as tmp,
        serving(Path(tmp), args.workers, args.database_url) as port,
    ):
        if args.only != "stress":
            for name in args.test or [""]:
                target = tests / name if name else tests
                out = run(
                    imaptest, port, [f"test={target}"], f"scripted{'-' + name if name else ''}", timeout=900
                )
                print(out[-3000:])
                summary.append((f"scripted {name}".strip(), *scripted_summary(out)))
        if args.only != "scripted":
            mbox = RESULTS / "imaptest-stress.mbox"
            write_mbox(mbox)
            for name, extra in STRESS.items():
                began = time.monotonic()
                out = run(
                    imaptest,
                    port,
                    [f"mbox={mbox}", f"clients={args.clients}", f"secs={args.secs}", *extra],
                    f"stress-{name}",
                    timeout=args.secs + 120,
                )
                print(out[-2000:])
                text, ok = stress_summary(out)
                summary.append((f"stress {name} ({time.monotonic() - began:.0f} s)", text, ok))
    print(f"\n== summary (load {Path('/proc/loadavg').read_text().split()[0]})")
    for name, text, ok in summary:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {text}")
    return 0 if all(ok for _, _, ok in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
