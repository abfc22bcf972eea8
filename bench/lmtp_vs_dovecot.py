"""LMTP ingest, mailroom beside Dovecot: the issue's bar is >= 1.0x Dovecot in all four cases.

    .venv/bin/python bench/lmtp_vs_dovecot.py                  # SQLite, 3 rounds, ~5 minutes
    .venv/bin/python bench/lmtp_vs_dovecot.py --database-url postgresql+asyncpg://...

What it does, all on loopback in a temporary folder:

1. Dovecot: Debian's ``dovecot-lmtpd`` (installed with apt-get when missing, as root), a
   throw-away configuration of its own (``protocols = lmtp``, static userdb, Maildir under a
   folder the ``nobody`` user it delivers as can traverse, default ``mail_fsync``), started
   with ``dovecot -c`` and stopped at the end.
2. mailroom: ``mailroom serve --workers 2`` (``--workers``) on SQLite (or
   ``--database-url``), the same mailboxes made beforehand through the registry.
3. The same 600 messages for both (``--messages``): ~10 KB, 2-4 ``Received`` headers, a
   ``DKIM-Signature``, a third of them multipart with a small base64 attachment, each with a
   unique ``Message-ID`` per run. Sent with ``smtplib.LMTP`` over keep-alive sessions by 1
   and by 4 clients, with 1 and with 3 recipients (bench/lmtp_ingest.py's client: one reply
   read per recipient).
4. ``--rounds`` (3) rounds, each case interleaved (Dovecot, mailroom, Dovecot, ...). Prints
   the medians of msgs/s, p50/p99 and each server's CPU per message, the ratios, and each
   mailroom worker's peak RSS (VmHWM) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lmtp_ingest as common

from mailroom.settings import Settings

DOMAIN = common.DOMAIN
CASES = [(1, 1), (4, 1), (1, 3), (4, 3)]  # (clients, recipients)


def realistic_message(run: str, n: int, size: int = 10_000) -> bytes:
    hops = 2 + n % 3
    received = "".join(
        f"Received: from relay{h}.example.net (relay{h}.example.net [192.0.2.{h + 1}])\r\n"
        f"\tby mx{h}.example.net with ESMTPS id {run[:6]}{n}{h} for <bench1@{DOMAIN}>;\r\n"
        f"\tThu, 01 Jan 2026 10:00:{h:02d} +0000\r\n"
        for h in range(hops)
    )
    dkim = (
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1;\r\n"
        "\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        "\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaGFzIHRoZSBzaGFwZSBvZiBvbmU=\r\n"
    )
    head = (
        f"{received}{dkim}"
        f"From: Sender {n} <sender{n}@example.net>\r\n"
        f"To: Bench <bench1@{DOMAIN}>\r\n"
        f"Subject: Message {n} of run {run}\r\n"
        "Date: Thu, 01 Jan 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{run}-{n}@example.net>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    line = f"Line of message {n}: the quick brown fox jumps over the lazy dog, again and again.\r\n"
    if n % 3 == 2:
        boundary = f"b-{run}-{n}"
        text = line * max(1, (size // 2) // len(line))
        attachment = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n" * max(1, (size // 2) // 38)
        body = (
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
            f'--{boundary}\r\nContent-Type: application/pdf; name="doc{n}.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="doc{n}.pdf"\r\n\r\n{attachment}'
            f"--{boundary}--\r\n"
        )
    else:
        body = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + line * max(
            1, (size - len(head)) // len(line)
        )
    return (head + body).encode()


def ensure_dovecot() -> None:
    if shutil.which("dovecot") and Path("/usr/lib/dovecot/lmtp").exists():
        return
    if os.geteuid() != 0:
        raise SystemExit("Dovecot's LMTP is not installed: apt-get install dovecot-lmtpd (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "dovecot-lmtpd"], check=True, env=env)


def start_dovecot(folder: Path, port: int) -> Path:
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)  # the nobody user Dovecot delivers as must traverse it
    mail = folder / "mail"
    mail.mkdir(mode=0o777)
    mail.chmod(0o777)
    conf = folder / "dovecot.conf"
    conf.write_text(
        f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%d/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""
    )
    subprocess.run(
        ["dovecot", "-c", str(conf)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return conf


def pgrp(folder: Path) -> int:
    master = int((folder / "run" / "master.pid").read_text())
    return int(Path(f"/proc/{master}/stat").read_text().rpartition(")")[2].split()[2])


def start_mailroom(settings: Settings, lmtp_port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(
        {
            "MAILROOM_DATA_DIR": str(settings.data_dir),
            "MAILROOM_DATABASE_URL": settings.effective_database_url,
            "MAILROOM_SECRET_KEY": settings.secret_key.get_secret_value(),
            "MAILROOM_LMTP_PORT": str(lmtp_port),
            "MAILROOM_SMTP_PORT": "0",
            "MAILROOM_SUBMISSION_PORT": "0",
            # Only LMTP here: the other listeners' default ports may be taken on a shared host.
            "MAILROOM_IMAP_PORT": "0",
            "MAILROOM_IMAPS_PORT": "0",
            "MAILROOM_POP3_PORT": "0",
            "MAILROOM_POP3S_PORT": "0",
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "mailroom",
        "serve",
        "--workers",
        str(workers),
        "--port",
        str(common.free_port()),
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    common.wait_for_lmtp(proc, lmtp_port, log)
    return proc


def peak_rss_mb(pgid: int) -> list[float]:
    """VmHWM of every process in the group (the serve parent and its workers)."""
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            stat = (status.parent / "stat").read_text().rpartition(")")[2].split()
            if int(stat[2]) != pgid:
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out.append(round(int(line.split()[1]) / 1024, 1))
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    ensure_dovecot()

    results: dict[tuple[str, int, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mailroom-vs-dovecot-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        dport, mport = common.free_port(), common.free_port()
        conf = start_dovecot(root / "dovecot", dport)
        settings = Settings(
            data_dir=root / "mailroom", database_url=args.database_url, secret_key="bench-secret-" + "x" * 32
        )
        asyncio.run(common.prepare(settings, 3))
        log = root / "mailroom.log"
        mailroom = start_mailroom(settings, mport, args.workers, log)
        dgroup = pgrp(root / "dovecot")
        try:
            for name, port in (("dovecot", dport), ("mailroom", mport)):  # warm-up
                warm = [realistic_message(f"warm{name}", n) for n in range(60)]
                common.run(port, warm, [f"bench1@{DOMAIN}"], 1)
            for round_ in range(args.rounds):
                for clients, rcpts in CASES:
                    recipients = [f"bench{i}@{DOMAIN}" for i in range(1, rcpts + 1)]
                    for name, port, group in (("dovecot", dport, dgroup), ("mailroom", mport, mailroom.pid)):
                        run_id = f"{name[0]}{round_}{clients}{rcpts}{time.time_ns() % 10**9}"
                        messages = [realistic_message(run_id, n) for n in range(args.messages)]
                        out = common.run(port, messages, recipients, clients, group)
                        results.setdefault((name, clients, rcpts), []).append(out)
                        print(
                            f"round {round_ + 1} {name:>8} {clients}c {rcpts}r: {out['msgs_per_s']} msgs/s",
                            flush=True,
                        )
            rss = peak_rss_mb(mailroom.pid)
        finally:
            mailroom.send_signal(signal.SIGTERM)
            mailroom.wait(30)
            subprocess.run(["doveadm", "-c", str(conf), "stop"], check=False, capture_output=True)
    engine = "postgresql" if args.database_url else "sqlite"
    load = os.getloadavg()
    print(
        f"\nLMTP ingest, {args.messages} messages of ~10 KB,"
        f" mailroom serve --workers {args.workers} on {engine}"
    )
    print(f"medians of {args.rounds} rounds; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"{'clients':>7} {'rcpts':>5} {'Dovecot msgs/s':>15} {'mailroom msgs/s':>16} {'ratio':>6} "
        f"{'D CPU ms':>9} {'m CPU ms':>9} {'D p50':>6} {'m p50':>6}"
    )
    for clients, rcpts in CASES:
        d = {k: statistics.median(r[k] for r in results[("dovecot", clients, rcpts)]) for k in common.KEYS}
        m = {k: statistics.median(r[k] for r in results[("mailroom", clients, rcpts)]) for k in common.KEYS}
        print(
            f"{clients:>7} {rcpts:>5} {d['msgs_per_s']:>15.1f} {m['msgs_per_s']:>16.1f} "
            f"{m['msgs_per_s'] / d['msgs_per_s']:>6.2f} "
            f"{d['cpu_ms_per_msg']:>9.2f} {m['cpu_ms_per_msg']:>9.2f} "
            f"{d['p50_ms']:>6.2f} {m['p50_ms']:>6.2f}"
        )
    print(f"mailroom peak RSS per process (MB): {rss}")


if __name__ == "__main__":
    main()
