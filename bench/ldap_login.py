"""A directory login's latency with a connection per login (before) and kept connections (after).

Starts a throw-away slapd (tests/ldap_server.py, Debian's ``slapd``) on loopback with a few
users and asks :class:`mailroom.auth.directory.Directory` to check passwords (search as the
service account, the groups, the user's bind), one login at a time, over LDAPS and over
plain ``ldap://``. Rounds alternate between the two ways (``keep_connections`` false: the
old way, a TCP and TLS handshake per login; true: kept connections), so both see the same
machine load; p50/p95 over all rounds, with the ratio, and the CPU this process spent per
login. Run from the repository root::

    PYTHONPATH=src .venv/bin/python bench/ldap_login.py [--logins 300] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ldap_server import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, running_slapd

from mailroom.auth.directory import Directory
from mailroom.settings import Settings

USERS = 20


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(directory: Directory, keep: bool, logins: int) -> tuple[list[float], float]:
    directory.keep_connections = keep
    directory._drain()
    took: list[float] = []
    cpu = time.process_time()
    for n in range(logins):
        user = n % USERS
        started = time.perf_counter()
        entry = await directory.authenticate(f"user{user}@example.org", f"pw-{user}-secret")
        took.append(time.perf_counter() - started)
        assert entry is not None
    return took, (time.process_time() - cpu) / logins


async def bench(url_kind: str, server: object, logins: int, rounds: int) -> None:
    tls = url_kind == "ldaps"
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()),
        mode="test",
        ldap_url=server.tls_url if tls else server.url,  # type: ignore[attr-defined]
        ldap_ca_file=server.ca_file if tls else None,  # type: ignore[attr-defined]
        ldap_bind_dn=SERVICE_DN,
        ldap_bind_password=SERVICE_PASSWORD,
        ldap_user_base=PEOPLE,
        ldap_user_filter="(&(objectClass=inetOrgPerson)(mail={login}))",
        ldap_group_base=GROUPS,
        ldap_admin_groups=[f"cn=admins,{GROUPS}"],
    )
    directory = Directory(settings)
    results: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    try:
        await measure(directory, True, 20)  # warm-up
        for r in range(rounds):
            for keep in (False, True) if r % 2 == 0 else (True, False):
                took, cpu = await measure(directory, keep, logins)
                results[keep][0].extend(took)
                results[keep][1].append(cpu)
    finally:
        directory.close()
    line = {}
    for keep, (took, cpus) in results.items():
        line[keep] = (quantile(took, 0.5) * 1000, quantile(took, 0.95) * 1000, statistics.median(cpus) * 1000)
    before, after = line[False], line[True]
    print(f"{url_kind}: {logins * rounds} logins each way, opened {directory.opened} connections in all")
    rows = (("before (a connection per login)", before), ("after (kept connections)", after))
    for name, (p50, p95, cpu) in rows:
        print(f"  {name:32} p50 {p50:.2f} ms  p95 {p95:.2f} ms  cpu/login {cpu:.2f} ms")
    ratios = [a / b for a, b in zip(after, before, strict=True)]
    print("  after/before: p50 {:.2f}x  p95 {:.2f}x  cpu {:.2f}x".format(*ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    with tempfile.TemporaryDirectory() as folder, running_slapd(Path(folder) / "slapd") as server:
        members = [server.add_user(f"u{n}", f"pw-{n}-secret", f"user{n}@example.org") for n in range(USERS)]
        server.add_group("admins", members[:2])
        for kind in ("ldaps", "ldap"):
            asyncio.run(bench(kind, server, args.logins, args.rounds))
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
