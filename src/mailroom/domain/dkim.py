"""API schemas for a domain's DKIM key and DNS records, and how a domain's records are put together.

The key pair and the record text come from :mod:`mailroom.domain.dns`; this module decides
which records a domain with alternative names publishes, and how the API shows them. The
private key never appears in any of these schemas.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, BeforeValidator, Field

from mailroom.domain.dns import DmarcPolicy, DnsRecord, SrvService, records_for_domain

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


DkimSelector = Annotated[
    str,
    BeforeValidator(_lower),
    Field(
        min_length=1,
        max_length=63,
        pattern=rf"^{_LABEL}(?:\.{_LABEL})*$",
        description="DKIM selector: the name under _domainkey where the public key is published.",
        examples=["dkim", "mail2024"],
    ),
]
DkimBits = Literal[1024, 2048, 4096]


class DnsRecordOut(BaseModel):
    """One DNS record to publish."""

    name: str = Field(description="Owner name, fully qualified, with the trailing dot.")
    type: str = Field(description="MX, TXT, SRV or CNAME.")
    value: str = Field(description="The record data as written in a zone file (TXT values quoted).")
    ttl: int
    purpose: str = Field(description="Why the record is there.")

    @classmethod
    def of(cls, record: DnsRecord) -> DnsRecordOut:
        return cls(
            name=record.name, type=record.type, value=record.value, ttl=record.ttl, purpose=record.purpose
        )


class DkimKeyInfo(BaseModel):
    """A domain's DKIM key as the API shows it: the public half and where to publish it."""

    domain: str
    selector: str
    bits: int = Field(description="RSA key size.")
    public_key: str = Field(description="Base64 DER SubjectPublicKeyInfo: the p= value.")
    record_name: str = Field(description="Name of the TXT record to publish, with the trailing dot.")
    record_value: str = Field(description="Value of the TXT record, quoted as in a zone file.")


def key_bits(public_b64: str) -> int:
    """Size in bits of an RSA public key given as base64 DER SubjectPublicKeyInfo."""
    key = serialization.load_der_public_key(base64.b64decode(public_b64))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("DKIM keys here are RSA")
    return key.key_size


def dkim_record_name(domain: str, selector: str) -> str:
    """``selector._domainkey.domain.``: where a DKIM public key is published."""
    return f"{selector}._domainkey.{domain.rstrip('.')}."


def mail_records(
    domain: str,
    alternatives: Iterable[str],
    *,
    mail_host: str,
    dkim_selector: str | None,
    dkim_public_b64: str | None,
    dmarc_rua: str | None,
    dmarc_ruf: str | None,
    dmarc_policy: DmarcPolicy = "none",
    mx_port: int | None = 25,
    services: Sequence[SrvService] = (),
    autoconfig: tuple[str, int] | None = None,
) -> list[DnsRecord]:
    """Every record a domain needs: its own (see ``records_for_domain``), then for each
    alternative name the MX and SPF records that let it receive mail, named by that name.
    """
    records = records_for_domain(
        domain,
        mail_host=mail_host,
        dkim_selector=dkim_selector,
        dkim_public_b64=dkim_public_b64,
        dmarc_rua=dmarc_rua,
        dmarc_ruf=dmarc_ruf,
        dmarc_policy=dmarc_policy,
        mx_port=mx_port,
        services=services,
        autoconfig=autoconfig,
    )
    for alternative in alternatives:
        own = records_for_domain(
            alternative,
            mail_host=mail_host,
            dkim_selector=None,
            dkim_public_b64=None,
            dmarc_rua=None,
            dmarc_ruf=None,
            mx_port=mx_port,
        )
        origin = f"{alternative.rstrip('.')}."
        records.extend(r for r in own if r.name == origin and r.type in ("MX", "TXT"))
    return records


DnsCheckStatus = Literal["ok", "different", "missing", "error"]


class DnsCheck(BaseModel):
    """One record to publish beside what DNS answers for its name and type now."""

    name: str = Field(description="Owner name, fully qualified, with the trailing dot.")
    type: str
    expected: str = Field(description="The record data it should have, as in a zone file.")
    found: list[str] = Field(description="The records of that name and type DNS answers now.")
    status: DnsCheckStatus = Field(
        description="ok: published; different: the name has records of this type, none of them "
        "this one; missing: none of this type; error: DNS did not answer (see detail)."
    )
    detail: str = ""
    purpose: str
