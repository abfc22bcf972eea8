"""The DNS records a domain needs to send and receive mail through mailroom, and its DKIM key.

Everything here is pure: it builds keys and record text, and never queries DNS.  Names in the
output are fully qualified A-labels (IDNA 2008 with UTS 46 mapping), so ``bücher.example`` and
``xn--bcher-kva.example`` give the same records, which can be pasted into any DNS provider.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import idna
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailroom.domain.clientconfig import is_placeholder_host

__all__ = [
    "DkimKey",
    "DmarcPolicy",
    "DnsRecord",
    "SrvService",
    "dkim_public_from_private",
    "generate_dkim_key",
    "records_for_domain",
    "zone_file",
]

# RFC 8301 §3.2: signers must use at least 1024 bits; verifiers need only handle up to 4096.
_DKIM_MIN_BITS = 1024
_DKIM_MAX_BITS = 4096
_TXT_CHUNK_BYTES = 255  # RFC 1035 §3.3: one <character-string> holds at most 255 octets.
_MAX_NAME_LENGTH = 253  # Presentation form, without the trailing dot.
_MAX_TTL = 2**31 - 1  # RFC 2181 §8.
_HTTPS_PORT = 443
_SMTP_PORT = 25  # Servers deliver to an MX on this port only.

DmarcPolicy = Literal["none", "quarantine", "reject"]

_LDH_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SELECTOR = re.compile(rf"{_LDH_LABEL}(?:\.{_LDH_LABEL})*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# Characters RFC 7489 §6.2 lets stand in a DMARC mailto: local part; "!" and "," have meaning
# in the tag value, so they (and anything else) are percent-encoded.
_MAILTO_SAFE = "#$&'*+/=?^`{|}~"


@dataclass(frozen=True, slots=True)
class DkimKey:
    """An RSA DKIM key pair.

    Attributes:
        private_pem: The private key, PKCS#8 PEM, unencrypted: keep it secret.
        public_b64: Base64 DER SubjectPublicKeyInfo, the ``p=`` value of the DKIM TXT record.
    """

    private_pem: str
    public_b64: str

    def __repr__(self) -> str:
        # Keep the private key out of logs and tracebacks.
        return f"DkimKey(private_pem='***', public_b64={self.public_b64!r})"


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One DNS record to publish.

    Attributes:
        name: Owner name, fully qualified A-labels with the trailing dot.
        type: ``"MX"``, ``"TXT"``, ``"SRV"`` or ``"CNAME"``.
        value: The RDATA exactly as typed into a zone: TXT values quoted, and split into
            strings of at most 255 bytes when longer.
        ttl: Time to live, in seconds.
        purpose: One line saying why the record is there.
    """

    name: str
    type: str
    value: str
    ttl: int
    purpose: str


def generate_dkim_key(bits: int = 2048) -> DkimKey:
    """Generate an RSA key pair for DKIM signing (RFC 8301 asks for 1024 to 4096 bits).

    Raises:
        ValueError: ``bits`` is outside 1024-4096.
    """
    if not _DKIM_MIN_BITS <= bits <= _DKIM_MAX_BITS:
        raise ValueError(f"DKIM keys must have {_DKIM_MIN_BITS}-{_DKIM_MAX_BITS} bits, not {bits}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return DkimKey(private_pem=private_pem, public_b64=_public_b64(key))


def dkim_public_from_private(private_pem: str) -> str:
    """Return the DKIM ``p=`` value for an unencrypted RSA private key (PKCS#8 or PKCS#1 PEM).

    Raises:
        ValueError: The text is not an unencrypted PEM RSA private key.
    """
    try:
        key = serialization.load_pem_private_key(private_pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # TypeError is how cryptography reports an encrypted key given no password.
        raise ValueError("not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("DKIM keys here are RSA (k=rsa); this PEM holds another key type")
    return _public_b64(key)


def _public_b64(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


@dataclass(frozen=True, slots=True)
class SrvService:
    """A service clients find by an RFC 6186 SRV record.

    Attributes:
        label: The service and protocol labels, ``_submission._tcp``.
        port: The port clients reach it on.
        what: What it is, for the record's purpose (``the submission server (STARTTLS)``).
    """

    label: str
    port: int
    what: str


def records_for_domain(
    domain: str,
    *,
    mail_host: str,
    dkim_selector: str | None,
    dkim_public_b64: str | None,
    dmarc_rua: str | None,
    dmarc_ruf: str | None,
    dmarc_policy: DmarcPolicy = "none",
    ttl: int = 3600,
    mx_port: int | None = 25,
    services: Sequence[SrvService] = (),
    autoconfig: tuple[str, int] | None = None,
) -> list[DnsRecord]:
    """List the records that let ``domain`` receive, send and authenticate mail via mailroom.

    Only what is served is listed: an SRV record per service in ``services``, the
    autoconfig/autodiscover names only when ``autoconfig`` says where they are served.

    Args:
        domain: The mail domain, U-labels or A-labels.
        mail_host: Host that receives mail (MX) and serves the client services.
        dkim_selector: DKIM selector; give it together with ``dkim_public_b64``, or neither.
        dkim_public_b64: The ``p=`` value, see :func:`generate_dkim_key`.
        dmarc_rua: Address for DMARC aggregate reports, ``user@host`` (``mailto:`` optional).
        dmarc_ruf: Address for DMARC failure reports, same form.
        dmarc_policy: The DMARC ``p=``: ``none`` (reports only) to start with.
        ttl: TTL of every record, in seconds.
        mx_port: The port other servers reach inbound SMTP on (MX delivery only ever uses
            25: any other gets a warning in the purpose); None when mailroom's own SMTP
            listener is off (an MTA in front receives).
        services: The client services to publish SRV records for, in order.
        autoconfig: (host, HTTPS port) serving autoconfig and autodiscover, or None.

    Returns:
        MX, SPF, DKIM (when given), DMARC, DMARC report authorisations (when reports go to
        another domain; these belong in that domain's zone), the autoconfig and autodiscover
        CNAMEs (port 443 only: clients ask those names on the default port), the services'
        SRV records and the autodiscover SRV, in that order.

    Raises:
        ValueError: A name, address, key, port or TTL is invalid.
    """
    origin = _fqdn(domain)
    target = _fqdn(mail_host)
    if not 0 <= ttl <= _MAX_TTL:
        raise ValueError(f"TTL must be 0-{_MAX_TTL}, not {ttl}")
    ports = [s.port for s in services] + ([mx_port] if mx_port is not None else [])
    ports += [autoconfig[1]] if autoconfig is not None else []
    for port in ports:
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be 1-65535, not {port}")
    if (dkim_selector is None) != (dkim_public_b64 is None):
        raise ValueError("give both dkim_selector and dkim_public_b64, or neither")

    def record(name: str, rtype: str, value: str, purpose: str) -> DnsRecord:
        return DnsRecord(name=name, type=rtype, value=value, ttl=ttl, purpose=purpose)

    bare = origin.rstrip(".")
    host = target.rstrip(".")
    records = [
        record(origin, "MX", f"10 {target}", _mx_purpose(bare, host, mx_port)),
        record(
            origin,
            "TXT",
            _txt(f"v=spf1 mx a:{host} ~all"),
            f"SPF: only {bare}'s MX hosts and the mail host may send as @{bare}; others soft-fail.",
        ),
    ]
    if dkim_selector is not None and dkim_public_b64 is not None:
        records.append(_dkim_record(origin, dkim_selector, dkim_public_b64, ttl))
    records.extend(_dmarc_records(origin, dmarc_policy, dmarc_rua, dmarc_ruf, ttl))
    web_target = _fqdn(autoconfig[0]) if autoconfig is not None else None
    if web_target is not None and autoconfig is not None and autoconfig[1] == _HTTPS_PORT:
        for label, clients in (("autoconfig", "Thunderbird and others"), ("autodiscover", "Outlook")):
            name = _join(label, origin)
            if name != web_target:  # A CNAME to itself would be a loop; the host is named already.
                purpose = (
                    f"Mail clients ({clients}) fetch account settings from here over HTTPS; "
                    f"the certificate of {web_target.rstrip('.')} must name {name.rstrip('.')} too."
                )
                records.append(record(name, "CNAME", web_target, purpose))
    for service in services:
        records.append(
            record(
                _join(service.label, origin),
                "SRV",
                f"0 1 {service.port} {target}",
                f"Clients find {service.what} on port {service.port}: RFC 6186.",
            )
        )
    if web_target is not None and autoconfig is not None:
        records.append(
            record(
                _join("_autodiscover._tcp", origin),
                "SRV",
                f"0 1 {autoconfig[1]} {web_target}",
                "Outlook finds the autodiscover server over HTTPS.",
            )
        )
    return records


def _mx_purpose(bare: str, host: str, mx_port: int | None) -> str:
    purpose = f"Deliver mail for {bare} to {host}."
    if mx_port is None:
        purpose += (
            " mailroom's own SMTP listener is off: the MTA in front (port 25 of that host)"
            " must hand the mail to mailroom over LMTP."
        )
    elif mx_port != _SMTP_PORT:
        purpose += (
            f" Warning: other servers deliver only to port {_SMTP_PORT}, and inbound SMTP is"
            f" reachable on {mx_port}: map port {_SMTP_PORT} to it, then set public_smtp_port"
            f" = {_SMTP_PORT}."
        )
    if is_placeholder_host(host):
        purpose += (
            f" Warning: {host} is a placeholder: set the hostname setting to this server's"
            " public name (its A/AAAA records must point here)."
        )
    return purpose


def _dkim_record(origin: str, selector: str, public_b64: str, ttl: int) -> DnsRecord:
    selector = selector.lower()
    if _SELECTOR.fullmatch(selector) is None:
        raise ValueError(f"invalid DKIM selector {selector!r}")
    try:
        valid_key = _BASE64.fullmatch(public_b64) is not None and bool(
            base64.b64decode(public_b64, validate=True)
        )
    except binascii.Error:
        valid_key = False
    if not valid_key:
        # Checked, not just trusted: the value lands verbatim inside a quoted zone-file string.
        raise ValueError("dkim_public_b64 is not base64")
    return DnsRecord(
        name=_join(f"{selector}._domainkey", origin),
        type="TXT",
        value=_txt(f"v=DKIM1; k=rsa; p={public_b64}"),
        ttl=ttl,
        purpose=f"DKIM public key for selector {selector!r}; receivers check our signatures with it.",
    )


_DMARC_PURPOSE = {
    "none": "DMARC, monitoring only (p=none): receivers deliver as before and report what claims "
    "to be from {bare}. Once the reports show only your own servers, tighten p= to quarantine, "
    "then reject (the dmarc_policy setting).",
    "quarantine": "DMARC: receivers treat mail claiming to be from {bare} that fails aligned SPF/DKIM "
    "as spam. Tighten to p=reject once the reports stay clean (the dmarc_policy setting).",
    "reject": "DMARC: reject mail claiming to be from {bare} that fails aligned SPF/DKIM.",
}


def _dmarc_records(
    origin: str, policy: DmarcPolicy, rua: str | None, ruf: str | None, ttl: int
) -> list[DnsRecord]:
    if policy not in _DMARC_PURPOSE:
        raise ValueError(f"DMARC policy must be none, quarantine or reject, not {policy!r}")
    tags = ["v=DMARC1", f"p={policy}", "adkim=s", "aspf=s"]
    report_domains: list[str] = []
    for tag, address in (("rua", rua), ("ruf", ruf)):
        if address is None:
            continue
        uri, report_domain = _mailto(address)
        tags.append(f"{tag}={uri}")
        if report_domain not in report_domains:
            report_domains.append(report_domain)
    bare = origin.rstrip(".")
    records = [
        DnsRecord(
            name=_join("_dmarc", origin),
            type="TXT",
            value=_txt("; ".join(tags)),
            ttl=ttl,
            purpose=_DMARC_PURPOSE[policy].format(bare=bare)
            + ("" if rua else " No rua= address: no aggregate reports come (set dmarc_rua)."),
        )
    ]
    # RFC 7489 §7.1: a report receiver in another domain must consent to receiving our reports.
    # Without the Public Suffix List we cannot tell organisational domains apart, so any other
    # domain gets the record; for a subdomain of ours it is redundant but harmless.
    for report_domain in report_domains:
        if report_domain == origin:
            continue
        records.append(
            DnsRecord(
                name=_join(f"{bare}._report._dmarc", report_domain),
                type="TXT",
                value=_txt("v=DMARC1"),
                ttl=ttl,
                purpose=f"Lets {report_domain.rstrip('.')} receive DMARC reports for {bare};"
                " publish it in that domain's zone.",
            )
        )
    return records


def _mailto(address: str) -> tuple[str, str]:
    """Turn ``user@host`` into a DMARC ``mailto:`` URI, and return the host as an FQDN too."""
    address = address.removeprefix("mailto:")
    local, at, host = address.rpartition("@")
    if not at or not local:
        raise ValueError(f"DMARC report address must be user@domain, not {address!r}")
    report_domain = _fqdn(host)
    return f"mailto:{quote(local, safe=_MAILTO_SAFE)}@{report_domain.rstrip('.')}", report_domain


def _fqdn(name: str) -> str:
    """Normalise a host or domain name to lowercase A-labels with a trailing dot."""
    try:
        ascii_name = idna.encode(name.removesuffix("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"invalid domain name {name!r}: {exc}") from exc
    return ascii_name + "."


def _join(prefix: str, origin: str) -> str:
    name = f"{prefix}.{origin}"
    if len(name) - 1 > _MAX_NAME_LENGTH:
        raise ValueError(f"{name} is longer than DNS allows")
    return name


def _txt(text: str) -> str:
    """Quote TXT data for a zone file, split into strings of at most 255 bytes each."""
    data = text.encode("utf-8")
    chunks = [data[i : i + _TXT_CHUNK_BYTES] for i in range(0, len(data), _TXT_CHUNK_BYTES)]
    return " ".join(f'"{_escape(chunk)}"' for chunk in chunks or [b""])


def _escape(chunk: bytes) -> str:
    out = []
    for byte in chunk:
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")  # RFC 1035 §5.1 \DDD escape.
    return "".join(out)


def zone_file(domain: str, records: list[DnsRecord]) -> str:
    """Render records as a BIND zone-file snippet for ``domain``, each under its purpose.

    Records outside the zone (DMARC report authorisations for another domain) are listed at the
    end as comments, since a server would ignore them in this zone; they are for that domain's
    administrator to publish.
    """
    origin = _fqdn(domain)
    inside: list[tuple[str, DnsRecord]] = []
    outside: list[DnsRecord] = []
    for rec in records:
        if not rec.name.endswith("."):
            raise ValueError(f"record name {rec.name!r} is not fully qualified")
        if rec.name == origin:
            inside.append(("@", rec))
        elif rec.name.endswith("." + origin):
            inside.append((rec.name.removesuffix("." + origin), rec))
        else:
            outside.append(rec)

    name_width = max((len(name) for name, _ in inside), default=1)
    ttl_width = max((len(str(rec.ttl)) for _, rec in inside), default=1)
    type_width = max((len(rec.type) for _, rec in inside), default=1)
    lines = [
        f"; Mail records for {origin}, generated by mailroom.",
        f"$ORIGIN {origin}",
    ]
    for name, rec in inside:
        lines.append(f"; {rec.purpose}")
        lines.append(
            f"{name:<{name_width}}  {rec.ttl:>{ttl_width}}  IN  {rec.type:<{type_width}}  {rec.value}"
        )
    if outside:
        lines.append("")
        lines.append("; Not part of this zone: publish these in the zones they name.")
        for rec in outside:
            lines.append(f"; {rec.purpose}")
            lines.append(f";   {rec.name}  {rec.ttl}  IN  {rec.type}  {rec.value}")
    return "\n".join(lines) + "\n"
