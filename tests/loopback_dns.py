"""A small authoritative DNS server on loopback UDP for tests (dnspython's message codec).

It answers from ``zone`` — ``{(name, type): [record data as in a zone file]}`` — NXDOMAIN
for a name it has nothing for, an empty answer for a name it has other types for, and
SERVFAIL for names in ``servfail``. It never forwards anything anywhere.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class LoopbackDns:
    port: int = 0
    zone: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    questions: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1@{self.port}"

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        (question,) = query.question
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.questions.append((name, rdtype))
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in self.zone:
            rrset = dns.rrset.from_text_list(
                question.name, 300, dns.rdataclass.IN, question.rdtype, self.zone[(name, rdtype)]
            )
            response.answer.append(rrset)
        elif not any(n == name for n, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()


@contextmanager
def loopback_dns() -> Iterator[LoopbackDns]:
    """Serve a :class:`LoopbackDns` on 127.0.0.1 (a free UDP port) until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    server = LoopbackDns(port=sock.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                reply = server.answer(wire)
            except Exception as e:  # a broken test zone: say so in the test's failure
                server.errors.append(repr(e))
                continue
            sock.sendto(reply, peer)

    thread = threading.Thread(target=serve, name="loopback-dns", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()
        sock.close()
