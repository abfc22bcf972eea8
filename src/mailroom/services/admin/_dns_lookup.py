"""The live DNS check of ``admin.dns.check``: ask DNS for the records a domain should publish.

Each record's name and type is asked of the
``dns_resolver`` setting's server (default: the system's resolver), all at once, each within
``dns_timeout_seconds``. Records are compared as DNS data, not as text: ``MX 10 a.example.``
equals ``MX 10 A.EXAMPLE.``, and a TXT record equals another with the same text however
either splits it into strings (a DKIM key is longer than one string may be).
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from mailroom.domain.dkim import DnsCheck
from mailroom.domain.dns import DnsRecord
from mailroom.settings import Settings


def _resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    if settings.dns_resolver is None:
        resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        host, _, port = settings.dns_resolver.partition("@")
        resolver.nameservers = [host]
        resolver.port = int(port or 53)
    resolver.lifetime = settings.dns_timeout_seconds
    resolver.timeout = settings.dns_timeout_seconds
    return resolver


def _key(rdata: dns.rdata.Rdata) -> object:
    """What makes two records of one type the same record."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings)  # type: ignore[attr-defined]
    return rdata


def compare(record: DnsRecord, answer: list[dns.rdata.Rdata] | None, error: str = "") -> DnsCheck:
    """The check of one record against DNS's answer (None: no answer, see ``error``)."""
    rdtype = dns.rdatatype.from_text(record.type)
    expected = dns.rdata.from_text(dns.rdataclass.IN, rdtype, record.value)
    found = [r.to_text() for r in answer or []]
    if answer is None:
        status = "error" if error else "missing"
    elif any(_key(r) == _key(expected) for r in answer):
        status = "ok"
    else:
        status = "different" if answer else "missing"
    return DnsCheck(
        name=record.name,
        type=record.type,
        expected=record.value,
        found=found,
        status=status,
        detail=error,
        purpose=record.purpose,
    )


async def ask(resolver: dns.asyncresolver.Resolver, record: DnsRecord) -> DnsCheck:
    try:
        answer = await resolver.resolve(record.name, record.type, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return compare(record, None)
    except dns.exception.Timeout:
        return compare(record, None, "no answer in time")
    except dns.resolver.NoNameservers:
        return compare(record, None, "the DNS server refused or failed (SERVFAIL)")
    except dns.exception.DNSException as e:
        return compare(record, None, type(e).__name__)
    if answer.rrset is None:
        return compare(record, None)
    return compare(record, list(answer.rrset))


async def check(settings: Settings, records: list[DnsRecord]) -> list[DnsCheck]:
    """Every record beside DNS's answer, all asked at once."""
    resolver = _resolver(settings)
    return list(await asyncio.gather(*(ask(resolver, r) for r in records)))
