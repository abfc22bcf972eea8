"""Real daemons for the MTA tests, each on loopback with its own folder: rspamd (Debian's),
and the loopback DNS server rspamd asks (so SPF, DKIM and DMARC have records to find and no
lookup ever leaves the machine).

rspamd runs on Debian's own configuration (``/etc/rspamd/rspamd.conf``) with
``LOCAL_CONFDIR``, ``DBDIR``, ``RUNDIR`` and ``LOGDIR`` pointed at the test's folder: the
``local.d``/``override.d`` files written there bind its workers to free loopback ports, send
every DNS query to :class:`LoopbackDns`, and switch off the modules that fetch maps or ask
services on the Internet (RBLs, fuzzy, phishing feeds, freemail maps, updates...).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"

needs_rspamd = pytest.mark.skipif(
    not Path(RSPAMD).exists() and os.environ.get("CI") != "true",
    reason="rspamd is not installed (.ci/run installs it)",
)

#: Modules that would fetch maps over HTTP or ask DNS lists and services elsewhere.
NETWORK_MODULES = (
    "rbl",
    "fuzzy_check",
    "phishing",
    "asn",
    "emails",
    "mid",
    "mime_types",
    "multimap",
    "whitelist",
    "rspamd_update",
    "dcc",
    "greylist",
    "neural",
    "ratelimit",
    "reputation",
    "history_redis",
    "url_redirector",
    "spamtrap",
    "p0f",
    "antivirus",
    "external_services",
    "clickhouse",
    "elastic",
    "metadata_exporter",
    "replies",
    "mx_check",
    "dkim_signing",
    "arc",
    "bimi",
    "maillist",
)

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LoopbackDns:
    """A DNS server on a loopback UDP port answering TXT (and A) records it was given;
    everything else is NXDOMAIN. ``records``: ``{(name, "TXT"): [value, ...]}``."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    port: int = 0
    queries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _answer(self, data: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if not query.question:
            return bytes(response.to_wire())
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append(f"{name} {kind}")
        values = self.records.get((name, kind))
        if values:
            quoted = [
                " ".join(f'"{v[i : i + 255]}"' for i in range(0, len(v), 255)) if kind == "TXT" else v
                for v in values
            ]
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", kind, quoted))
        elif not any(key[0] == name for key in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return bytes(response.to_wire())

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self._answer(data)
            if answer is not None:
                self._sock.sendto(answer, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@dataclass
class Rspamd:
    url: str  # the normal worker (/checkv2)
    milter: str  # the proxy worker in milter mode (inet:127.0.0.1:port, for Postfix)
    folder: Path


def write_rspamd_config(
    folder: Path, *, dns_port: int, normal: int, controller: int, proxy: int, layout: Path | None = None
) -> Path:
    """``local.d`` and ``override.d`` for a loopback rspamd; returns the LOCAL_CONFDIR.

    ``layout``: a production rspamd folder (deploy/rspamd) whose files are used as they are,
    with only its loopback ports replaced by the test's and the test's DNS and modules added.
    """
    local = folder / "etc"
    for sub in ("local.d", "override.d"):
        (local / sub).mkdir(parents=True, exist_ok=True)
    test_options = (
        f'dns {{ nameserver = ["127.0.0.1:{dns_port}"]; timeout = 0.5s; retransmits = 1; }}\n'
        # Debian's list of 9,600 public suffixes takes rspamd ~45 s to compile at each start.
        f'url_tld = "{folder / "tld.dat"}";\n'
    )
    (folder / "tld.dat").write_text("com\nnet\norg\ntest\nexample\n")
    if layout is not None:
        ports = {"127.0.0.1:11332": proxy, "127.0.0.1:11333": normal, "127.0.0.1:11334": controller}
        for source in sorted(layout.glob("*.d/*")):
            text = source.read_text()
            for address, port in ports.items():
                text = text.replace(address, f"127.0.0.1:{port}")
            if source.name == "options.inc":
                # The outside client of the tests is 127.0.0.2: only 127.0.0.1 stays "local".
                assert "local_addrs = [127.0.0.0/8, ::1];" in text
                text = text.replace("local_addrs = [127.0.0.0/8, ::1];", "local_addrs = [127.0.0.1/32];")
                text += test_options
            (local / source.parent.name / source.name).write_text(text)
        for module in NETWORK_MODULES:
            (local / "override.d" / f"{module}.conf").write_text("enabled = false;\n")
        (local / "override.d" / "classifier-bayes.conf").write_text("enabled = false;\n")
        return local
    (local / "local.d" / "options.inc").write_text(test_options + 'local_addrs = "127.0.0.1/32";\n')
    (local / "override.d" / "worker-normal.inc").write_text(
        f'bind_socket = "127.0.0.1:{normal}";\ncount = 1;\n'
    )
    (local / "override.d" / "worker-controller.inc").write_text(
        f'bind_socket = "127.0.0.1:{controller}";\ncount = 1;\n'
    )
    (local / "override.d" / "worker-proxy.inc").write_text(
        f'bind_socket = "127.0.0.1:{proxy}";\ncount = 1;\nmilter = yes;\ntimeout = 120s;\n'
        'upstream "local" { default = yes; self_scan = yes; }\n'
    )
    (local / "override.d" / "worker-fuzzy.inc").write_text("count = -1;\n")
    (local / "override.d" / "logging.inc").write_text('type = "file";\nlevel = "info";\n')
    for module in NETWORK_MODULES:
        (local / "override.d" / f"{module}.conf").write_text("enabled = false;\n")
    (local / "override.d" / "classifier-bayes.conf").write_text("enabled = false;\n")
    # The milter adds its verdict as headers Postfix passes on (the deploy layout's trust).
    (local / "local.d" / "milter_headers.conf").write_text(
        'use = ["authentication-results", "x-spam-status", "x-rspamd-server"];\n'
        'authenticated_headers = ["authentication-results"];\nskip_local = false;\n'
        "skip_authenticated = false;\n"
    )
    return local


@contextmanager
def run_rspamd(folder: Path, dns: LoopbackDns, layout: Path | None = None) -> Iterator[Rspamd]:
    """Start Debian's rspamd on loopback with its own folder; stopped at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    normal, controller, proxy = free_port(), free_port(), free_port()
    local = write_rspamd_config(
        folder, dns_port=dns.port, normal=normal, controller=controller, proxy=proxy, layout=layout
    )
    for sub in ("db", "run", "log"):
        (folder / sub).mkdir(exist_ok=True)
    env_vars = {
        "LOCAL_CONFDIR": local,
        "DBDIR": folder / "db",
        "RUNDIR": folder / "run",
        "LOGDIR": folder / "log",
    }
    command = [RSPAMD, "-f", "-i", "-c", "/etc/rspamd/rspamd.conf"]
    if os.geteuid() == 0:
        command += ["-u", "root", "-g", "root"]
    for name, value in env_vars.items():
        command += ["--var", f"{name}={value}"]
    log = folder / "log" / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(proc, normal, folder)
        _wait_for_port(proc, proxy, folder)
        yield Rspamd(f"http://127.0.0.1:{normal}", f"inet:127.0.0.1:{proxy}", folder)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, folder: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rspamd exited: {_logs(folder)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"rspamd did not listen on {port}: {_logs(folder)}")


def _logs(folder: Path) -> str:
    texts = []
    for path in (folder / "log").glob("*.log"):
        texts.append(path.read_text(errors="replace")[-3000:])
    return "\n".join(texts)


def records_for(domain: str, values: Mapping[str, str]) -> dict[tuple[str, str], list[str]]:
    """TXT records for a test domain: ``{"spf": ..., "dmarc": ..., "<sel>._domainkey": ...}``."""
    out: dict[tuple[str, str], list[str]] = {}
    for key, value in values.items():
        name = domain if key == "spf" else f"_dmarc.{domain}" if key == "dmarc" else f"{key}.{domain}"
        out[(name, "TXT")] = [value]
    return out
