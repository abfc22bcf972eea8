"""admin.dkim.* and admin.dns.*: a domain's DKIM key and the DNS records it should publish.

``admin.dns.check`` asks DNS whether they are published (services/admin/_dns_lookup.py).

The private key is written here and read only by the outbound signer
(``mailroom.store.dkim.private_key``); no method returns it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Annotated

from mailroom.delivery.resolve import resolve
from mailroom.domain.clientconfig import autoconfig_origin, public_smtp_port, served_services
from mailroom.domain.dkim import (
    DkimBits,
    DkimKeyInfo,
    DkimSelector,
    DnsCheck,
    DnsRecordOut,
    dkim_record_name,
    key_bits,
    mail_records,
)
from mailroom.domain.dns import DnsRecord, SrvService, generate_dkim_key, zone_file
from mailroom.domain.names import DomainName
from mailroom.errors import NotFound
from mailroom.registry import DELETE, GET, POST, Context, Download, Manager
from mailroom.services.admin import _dns_lookup
from mailroom.services.admin._api import api
from mailroom.services.admin.domains import load_domain
from mailroom.settings import Settings
from mailroom.store import alternatives
from mailroom.store import dkim as store
from mailroom.store.engine import Tx


def _no_key(domain: str) -> NotFound:
    return NotFound(f"domain {domain} has no DKIM key", kind="DKIM key")


def _report_address(setting: str | None, domain: str) -> str | None:
    """A DMARC report setting: a local part is the domain's own address, else the address."""
    if setting is None or "@" in setting:
        return setting
    return f"{setting}@{domain}"


def _srv_services(settings: Settings) -> tuple[list[SrvService], bool]:
    """The SRV records of the client listeners that are on, and whether any of them reads mail."""
    served = served_services(settings)
    srv = [
        SrvService(s.service.srv, s.port, f"the {s.service.name} server ({s.service.socket_type})")
        for s in served
    ]
    return srv, any(s.service.incoming for s in served)


async def _unreachable(tx: Tx, settings: Settings, addresses: list[str | None]) -> list[str]:
    """The report addresses in our own domains that no mailbox or alias receives."""
    out = []
    for address in addresses:
        if address is None:
            continue
        resolution = await resolve(tx, address, delimiters=settings.recipient_delimiter)
        if resolution.status not in ("accepted", "not_local"):
            out.append(address)
    return out


async def _records(ctx: Context, tx: Tx, domain: str) -> list[DnsRecord]:
    await load_domain(tx, domain)
    key = await store.public_key(tx, domain)
    settings = ctx.rt.settings
    services, reads_mail = _srv_services(settings)
    rua = _report_address(settings.dmarc_rua, domain)
    ruf = _report_address(settings.dmarc_ruf, domain)
    records = mail_records(
        domain,
        await alternatives.names_of(tx, domain),
        mail_host=settings.hostname,
        dkim_selector=key.selector if key else None,
        dkim_public_b64=key.public_key if key else None,
        dmarc_rua=rua,
        dmarc_ruf=ruf,
        dmarc_policy=settings.dmarc_policy,
        mx_port=public_smtp_port(settings),
        services=services,
        # A client needs a server to read mail from: with none, autoconfig would only
        # send it looking elsewhere, so the names are published once there is one.
        autoconfig=autoconfig_origin(settings) if reads_mail else None,
    )
    missing = await _unreachable(tx, settings, [rua, ruf])
    if missing:
        warning = (
            f" Warning: {' and '.join(missing)} receives no mail here yet: create it (an alias to"
            " whoever reads the reports) or set dmarc_rua."
        )
        dmarc = f"_dmarc.{domain}."
        records = [replace(r, purpose=r.purpose + warning) if r.name == dmarc else r for r in records]
    return records


async def _key_info(ctx: Context, tx: Tx, domain: str) -> DkimKeyInfo:
    key = await store.public_key(tx, domain)
    if key is None:
        raise _no_key(domain)
    name = dkim_record_name(domain, key.selector)
    (record,) = [r for r in await _records(ctx, tx, domain) if r.name == name and r.type == "TXT"]
    return DkimKeyInfo(
        domain=domain,
        selector=key.selector,
        bits=key_bits(key.public_key),
        public_key=key.public_key,
        record_name=record.name,
        record_value=record.value,
    )


@api.method("admin.dkim.generate", http=POST("/domains/{domain}/dkim", status=201), access=Manager("domain"))
async def generate_key(
    ctx: Context, domain: DomainName, selector: DkimSelector | None = None, bits: DkimBits = 2048
) -> DkimKeyInfo:
    """Generate a new DKIM key for a domain, replacing its key if it has one.

    ``selector`` defaults to the server's ``dkim_selector`` setting. Publish the returned TXT
    record: until it is in DNS, receivers cannot verify mail signed with the new key.
    """
    async with ctx.rt.db.read() as tx:
        await load_domain(tx, domain)
    # RSA key generation takes from milliseconds to seconds: keep the event loop serving.
    key = await asyncio.to_thread(generate_dkim_key, bits)
    async with ctx.rt.db.write() as tx:
        await load_domain(tx, domain)  # It may have been deleted while the key was made.
        await store.set_key(
            tx,
            domain,
            selector=selector or ctx.rt.settings.dkim_selector,
            private_pem=key.private_pem,
            public_b64=key.public_b64,
            when=ctx.rt.clock.now(),
        )
        return await _key_info(ctx, tx, domain)


@api.method("admin.dkim.get", http=GET("/domains/{domain}/dkim"), access=Manager("domain"))
async def get_key(ctx: Context, domain: DomainName) -> DkimKeyInfo:
    """Show a domain's DKIM public key and the TXT record that publishes it (never the private key)."""
    async with ctx.rt.db.read() as tx:
        await load_domain(tx, domain)
        return await _key_info(ctx, tx, domain)


@api.method("admin.dkim.delete", http=DELETE("/domains/{domain}/dkim"), access=Manager("domain"))
async def delete_key(ctx: Context, domain: DomainName) -> None:
    """Delete a domain's DKIM key; its mail is sent unsigned until a new key is generated."""
    async with ctx.rt.db.write() as tx:
        await load_domain(tx, domain)
        if not await store.clear(tx, domain, when=ctx.rt.clock.now()):
            raise _no_key(domain)


@api.method("admin.dns.get", http=GET("/domains/{domain}/dns"), access=Manager("domain"))
async def get_records(ctx: Context, domain: DomainName) -> list[DnsRecordOut]:
    """List the DNS records a domain should publish.

    MX, SPF, DKIM (when it has a key), DMARC (``p=none`` with reports until the
    ``dmarc_policy`` setting tightens it), SRV records for the client services this server
    serves (on their public ports), autoconfig and autodiscover when they are reachable, and
    MX and SPF for each of its alternative names. Each record's ``name`` is fully qualified,
    so it says which domain's zone it belongs in; a ``purpose`` starting a sentence with
    "Warning:" names something to fix first (a placeholder host name, SMTP not on port 25,
    a DMARC report address that receives no mail).
    """
    async with ctx.rt.db.read() as tx:
        records = await _records(ctx, tx, domain)
    return [DnsRecordOut.of(r) for r in records]


@api.method("admin.dns.zone", http=GET("/domains/{domain}/dns/zone"), access=Manager("domain"))
async def get_zone(ctx: Context, domain: DomainName) -> Annotated[Download, "text/plain; charset=utf-8"]:
    """The domain's DNS records as a BIND zone-file snippet (``<domain>.zone``).

    Records for other zones (alternative names, DMARC report authorisations) are listed at the
    end as comments, to be published in the zones they name.
    """
    async with ctx.rt.db.read() as tx:
        records = await _records(ctx, tx, domain)
    text = zone_file(domain, records)
    return Download(text.encode("utf-8"), content_type="text/plain; charset=utf-8", filename=f"{domain}.zone")


@api.method("admin.dns.check", http=GET("/domains/{domain}/dns/check"), access=Manager("domain"))
async def check_records(ctx: Context, domain: DomainName) -> list[DnsCheck]:
    """Ask DNS for each record the domain should publish and say whether it is there.

    One entry per record of ``GET /domains/{domain}/dns``: ``ok``, ``different`` (other
    records of that type), ``missing`` or ``error`` (the server did not answer), with what
    DNS answered. Asks the ``dns_resolver`` setting's server (default: the system's).
    """
    async with ctx.rt.db.read() as tx:
        records = await _records(ctx, tx, domain)
    return await _dns_lookup.check(ctx.rt.settings, records)
