"""Tests for mailroom.domain.dns: DKIM keys, mail DNS records and the zone-file rendering."""

from __future__ import annotations

import base64
import re
from typing import Any

import dkim
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mailroom.domain.dns import (
    DkimKey,
    DnsRecord,
    SrvService,
    dkim_public_from_private,
    generate_dkim_key,
    records_for_domain,
    zone_file,
)

# A short stand-in for a DKIM public key, so the expected record text fits on a line.
SHORT_KEY = base64.b64encode(bytes(range(100))).decode()


@pytest.fixture(scope="module")
def key() -> DkimKey:
    return generate_dkim_key()


def _records(domain: str = "example.com", **overrides: Any) -> list[DnsRecord]:
    """records_for_domain with a mail host, no DKIM and no DMARC reports unless overridden."""
    arguments: dict[str, Any] = {
        "mail_host": "mail.example.com",
        "dkim_selector": None,
        "dkim_public_b64": None,
        "dmarc_rua": None,
        "dmarc_ruf": None,
    }
    return records_for_domain(domain, **(arguments | overrides))


def _txt_data(value: str) -> bytes:
    """The bytes a resolver would hand out for a TXT value as written in a zone."""
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, value)
    return b"".join(rdata.strings)  # type: ignore[attr-defined]


def _pem(private: Any, encryption: Any = None, form: Any = serialization.PrivateFormat.PKCS8) -> str:
    encryption = encryption or serialization.NoEncryption()
    return str(private.private_bytes(serialization.Encoding.PEM, form, encryption).decode())


# --- DKIM keys ------------------------------------------------------------------------------------


def test_generated_key_is_2048_bit_rsa_pkcs8(key: DkimKey) -> None:
    assert key.private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, unencrypted
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    assert private.public_key().public_numbers().e == 65537


def test_public_b64_is_der_spki_of_the_private_key(key: DkimKey) -> None:
    public = serialization.load_der_public_key(base64.b64decode(key.public_b64, validate=True))
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    assert isinstance(public, rsa.RSAPublicKey)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    assert dkim_public_from_private(key.private_pem) == key.public_b64


def test_keys_are_fresh_and_sized_on_request(key: DkimKey) -> None:
    small = generate_dkim_key(1024)
    assert small.public_b64 != key.public_b64
    private = serialization.load_pem_private_key(small.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 1024


@pytest.mark.parametrize("bits", [512, 1023, 8192])
def test_key_sizes_outside_rfc_8301_are_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="bits"):
        generate_dkim_key(bits)


def test_key_repr_hides_the_private_key(key: DkimKey) -> None:
    assert "PRIVATE" not in repr(key)
    assert key.public_b64 in repr(key)


def test_public_from_pkcs1_pem(key: DkimKey) -> None:
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    pkcs1 = _pem(private, form=serialization.PrivateFormat.TraditionalOpenSSL)
    assert pkcs1.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert dkim_public_from_private(pkcs1) == key.public_b64


def test_public_from_unusable_pem_raises_value_error(key: DkimKey) -> None:
    private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
    encrypted = _pem(private, serialization.BestAvailableEncryption(b"passphrase"))
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    for pem in (encrypted, ec_pem, "not a key", ""):
        with pytest.raises(ValueError, match=r"PEM|RSA"):
            dkim_public_from_private(pem)


def test_generated_key_signs_mail_that_verifies_against_the_published_record(key: DkimKey) -> None:
    records = _records(dkim_selector="mr1", dkim_public_b64=key.public_b64)
    (dkim_record,) = [r for r in records if "_domainkey" in r.name]
    message = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"
    signature = dkim.sign(message, b"mr1", b"example.com", key.private_pem.encode())

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return _txt_data(dkim_record.value) if name == b"mr1._domainkey.example.com." else None

    assert dkim.verify(signature + message, dnsfunc=dnsfunc)


# --- records --------------------------------------------------------------------------------------


SUBMISSION = SrvService("_submission._tcp", 587, "the submission server (STARTTLS)")
IMAPS = SrvService("_imaps._tcp", 993, "the imaps server (SSL)")


def test_records_for_sample_domain() -> None:
    records = records_for_domain(
        "example.com",
        mail_host="mail.example.com",
        dkim_selector="mr1",
        dkim_public_b64=SHORT_KEY,
        dmarc_rua="dmarc-reports@example.com",
        dmarc_ruf="dmarc-failures@example.com",
        services=[SUBMISSION, IMAPS],
        autoconfig=("mail.example.com", 443),
    )
    assert [(r.name, r.type, r.value) for r in records] == [
        ("example.com.", "MX", "10 mail.example.com."),
        ("example.com.", "TXT", '"v=spf1 mx a:mail.example.com ~all"'),
        ("mr1._domainkey.example.com.", "TXT", f'"v=DKIM1; k=rsa; p={SHORT_KEY}"'),
        (
            "_dmarc.example.com.",
            "TXT",
            '"v=DMARC1; p=none; adkim=s; aspf=s; rua=mailto:dmarc-reports@example.com;'
            ' ruf=mailto:dmarc-failures@example.com"',
        ),
        ("autoconfig.example.com.", "CNAME", "mail.example.com."),
        ("autodiscover.example.com.", "CNAME", "mail.example.com."),
        ("_submission._tcp.example.com.", "SRV", "0 1 587 mail.example.com."),
        ("_imaps._tcp.example.com.", "SRV", "0 1 993 mail.example.com."),
        ("_autodiscover._tcp.example.com.", "SRV", "0 1 443 mail.example.com."),
    ]
    for record in records:
        assert record.ttl == 3600
        assert record.purpose
        assert "\n" not in record.purpose


def test_only_the_services_given_are_published() -> None:
    """Nothing served, nothing advertised: no SRV, no autoconfig names (issue 11 §7)."""
    records = _records(mail_host="mx.example.net", ttl=300)
    assert [(r.name, r.type) for r in records] == [
        ("example.com.", "MX"),
        ("example.com.", "TXT"),
        ("_dmarc.example.com.", "TXT"),
    ]
    assert {r.ttl for r in records} == {300}


def test_a_new_domain_starts_with_dmarc_p_none_and_says_how_to_tighten() -> None:
    records = _records(dmarc_rua="postmaster@example.com")
    (dmarc,) = [r for r in records if r.name == "_dmarc.example.com."]
    assert _txt_data(dmarc.value) == b"v=DMARC1; p=none; adkim=s; aspf=s; rua=mailto:postmaster@example.com"
    assert "quarantine" in dmarc.purpose
    assert "reject" in dmarc.purpose
    (bare,) = [r for r in _records() if r.name == "_dmarc.example.com."]
    assert _txt_data(bare.value) == b"v=DMARC1; p=none; adkim=s; aspf=s"
    assert "no aggregate reports" in bare.purpose


@pytest.mark.parametrize("policy", ["quarantine", "reject"])
def test_dmarc_policy_can_be_tightened(policy: str) -> None:
    (dmarc,) = [r for r in _records(dmarc_policy=policy) if r.name == "_dmarc.example.com."]
    assert _txt_data(dmarc.value) == f"v=DMARC1; p={policy}; adkim=s; aspf=s".encode()


def test_public_ports_are_used() -> None:
    records = _records(
        services=[SrvService("_submission._tcp", 2587, "x"), SrvService("_imaps._tcp", 10993, "y")],
        autoconfig=("web.example.com", 8443),
    )
    by_name = {(r.name, r.type): r.value for r in records}
    assert by_name["_submission._tcp.example.com.", "SRV"] == "0 1 2587 mail.example.com."
    assert by_name["_imaps._tcp.example.com.", "SRV"] == "0 1 10993 mail.example.com."
    assert by_name["_autodiscover._tcp.example.com.", "SRV"] == "0 1 8443 web.example.com."
    # Clients ask autoconfig.<domain> and autodiscover.<domain> on 443 only: no CNAMEs elsewhere.
    assert not [r for r in records if r.type == "CNAME"]


def test_autoconfig_names_point_at_the_https_host() -> None:
    records = _records(autoconfig=("web.example.com", 443))
    cnames = {r.name: r.value for r in records if r.type == "CNAME"}
    assert cnames == {
        "autoconfig.example.com.": "web.example.com.",
        "autodiscover.example.com.": "web.example.com.",
    }


def test_no_cname_loop_when_the_autoconfig_host_is_the_autoconfig_name() -> None:
    records = _records(autoconfig=("autoconfig.example.com", 443))
    cnames = {r.name: r.value for r in records if r.type == "CNAME"}
    assert cnames == {"autodiscover.example.com.": "autoconfig.example.com."}


def test_mx_warns_unless_inbound_smtp_is_on_port_25() -> None:
    def mx(**overrides: Any) -> str:
        return next(r.purpose for r in _records(mail_host="mx.mailhost.net", **overrides) if r.type == "MX")

    assert "Warning" not in mx()
    warned = mx(mx_port=2525)
    assert "Warning: other servers deliver only to port 25" in warned
    assert "reachable on 2525" in warned
    assert "LMTP" in mx(mx_port=None)
    assert "Warning" not in mx(mx_port=None)


@pytest.mark.parametrize(
    "host", ["mail.example.org", "mx.example.com", "mail.test", "mx.localhost", "a.example"]
)
def test_mx_warns_when_the_mail_host_is_a_placeholder(host: str) -> None:
    (mx,) = [r for r in _records(mail_host=host) if r.type == "MX"]
    assert f"Warning: {host} is a placeholder" in mx.purpose
    assert mx.value == f"10 {host}."


def test_long_dkim_txt_is_split_into_255_byte_strings(key: DkimKey) -> None:
    for public_b64 in (key.public_b64, base64.b64encode(bytes(550)).decode()):
        records = _records(dkim_selector="mr1", dkim_public_b64=public_b64)
        (record,) = [r for r in records if r.name == "mr1._domainkey.example.com."]
        text = f"v=DKIM1; k=rsa; p={public_b64}"
        strings = re.findall(r'"([^"]*)"', record.value)
        assert record.value == " ".join(f'"{s}"' for s in strings)
        assert len(strings) == -(-len(text) // 255) >= 2
        assert all(len(s.encode()) == 255 for s in strings[:-1])
        assert 0 < len(strings[-1].encode()) <= 255
        assert "".join(strings) == text
        assert _txt_data(record.value).decode() == text


def test_dmarc_reports_to_another_domain_get_an_authorisation_record() -> None:
    records = _records(dmarc_rua="mailto:agg@reports.example.net", dmarc_ruf="fail@forensics.example.org")
    (dmarc,) = [r for r in records if r.name == "_dmarc.example.com."]
    assert dmarc.value == (
        '"v=DMARC1; p=none; adkim=s; aspf=s; rua=mailto:agg@reports.example.net;'
        ' ruf=mailto:fail@forensics.example.org"'
    )
    authorisations = [(r.name, r.type, r.value) for r in records if "._report._dmarc." in r.name]
    assert authorisations == [
        ("example.com._report._dmarc.reports.example.net.", "TXT", '"v=DMARC1"'),
        ("example.com._report._dmarc.forensics.example.org.", "TXT", '"v=DMARC1"'),
    ]


def test_one_authorisation_per_report_domain_and_none_for_our_own() -> None:
    same = _records(dmarc_rua="dmarc@EXAMPLE.com", dmarc_ruf="dmarc@example.com.")
    assert not [r for r in same if "._report._dmarc." in r.name]
    shared = _records(dmarc_rua="agg@reports.example.net", dmarc_ruf="fail@reports.example.net")
    assert len([r for r in shared if "._report._dmarc." in r.name]) == 1


def test_dmarc_addresses_are_percent_encoded_where_dmarc_needs_it() -> None:
    records = _records(dmarc_rua="a!b,c;d@bücher.example")
    (dmarc,) = [r for r in records if r.name == "_dmarc.example.com."]
    assert "rua=mailto:a%21b%2Cc%3Bd@xn--bcher-kva.example" in dmarc.value


def test_idn_domain_is_written_as_a_labels() -> None:
    options = {"dkim_selector": "mr1", "dkim_public_b64": SHORT_KEY, "dmarc_rua": "dmarc@bücher.example"}
    unicode = _records("bücher.example", mail_host="mail.bücher.example", **options)
    ascii_ = _records("XN--BCHER-KVA.example.", mail_host="mail.xn--bcher-kva.example", **options)
    assert unicode == ascii_
    assert unicode[0] == DnsRecord(
        name="xn--bcher-kva.example.",
        type="MX",
        value="10 mail.xn--bcher-kva.example.",
        ttl=3600,
        purpose=unicode[0].purpose,
    )
    for record in unicode:
        assert record.name == "xn--bcher-kva.example." or record.name.endswith(".xn--bcher-kva.example.")
        assert record.name.isascii()
        assert record.value.isascii()
        assert record.purpose.isascii()
    assert '"v=spf1 mx a:mail.xn--bcher-kva.example ~all"' in [r.value for r in unicode]


_TOO_LONG = ".".join(c * 60 for c in "abcd")


@pytest.mark.parametrize(
    "overrides",
    [
        {"domain": "ex ample.com"},
        {"domain": ""},
        {"domain": "-bad.example"},
        {"domain": "a..b"},
        {"mail_host": "mail_host.example.com"},
        {"autoconfig": ("xn--zz.example", 443)},
        {"dkim_selector": "mr1"},
        {"dkim_public_b64": SHORT_KEY},
        {"dkim_selector": "bad selector", "dkim_public_b64": SHORT_KEY},
        {"dkim_selector": "_bad", "dkim_public_b64": SHORT_KEY},
        {"dkim_selector": "mr1", "dkim_public_b64": 'abc"; p=evil'},
        {"dkim_selector": "mr1", "dkim_public_b64": "abc"},  # bad base64 padding
        {"dmarc_rua": "no-at-sign"},
        {"dmarc_rua": "@example.com"},
        {"dmarc_ruf": "user@bad domain"},
        {"ttl": -1},
        {"ttl": 2**31},
        {"services": [SrvService("_submission._tcp", 0, "x")]},
        {"services": [SrvService("_imaps._tcp", 65536, "x")]},
        {"autoconfig": ("web.example.com", -1)},
        {"mx_port": 0},
        {"dmarc_policy": "strict"},
        {"domain": _TOO_LONG, "dkim_selector": "x" * 30, "dkim_public_b64": SHORT_KEY},
    ],
)
def test_invalid_input_raises_value_error(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _records(**overrides)


# --- zone file ------------------------------------------------------------------------------------

_SOA_AND_NS = (
    "@  3600  IN  SOA  ns1.example.net. hostmaster.example.net. 1 7200 3600 1209600 3600\n"
    "@  3600  IN  NS   ns1.example.net.\n"
)


def _all_records(domain: str, key: DkimKey) -> list[DnsRecord]:
    return _records(
        domain,
        mail_host=f"mail.{domain}",
        dkim_selector="mr1",
        dkim_public_b64=key.public_b64,
        dmarc_rua="dmarc@reports.example.net",
        dmarc_ruf=f"dmarc@{domain}",
        services=[SUBMISSION, IMAPS],
        autoconfig=(f"mail.{domain}", 443),
    )


@pytest.mark.parametrize("domain", ["example.com", "bücher.example"])
def test_zone_file_parses_and_contains_every_record(key: DkimKey, domain: str) -> None:
    records = _all_records(domain, key)
    text = zone_file(domain, records)
    origin = records[0].name
    assert text.splitlines()[1] == f"$ORIGIN {origin}"

    zone = dns.zone.from_text(text + _SOA_AND_NS, origin=origin, relativize=False)

    in_zone = [r for r in records if r.name.endswith(origin)]
    out_of_zone = [r for r in records if not r.name.endswith(origin)]
    assert len(out_of_zone) == 1
    for record in in_zone:
        rdtype = dns.rdatatype.from_text(record.type)
        rdataset = zone.find_rdataset(record.name, rdtype)
        expected = dns.rdata.from_text(dns.rdataclass.IN, rdtype, record.value)
        assert expected in rdataset, record
        assert rdataset.ttl == record.ttl
        assert f"; {record.purpose}\n" in text
    # Every record of ours, plus the test's SOA and NS; nothing from the other domain's zone.
    assert sum(len(rdataset) for _, rdataset in zone.iterate_rdatasets()) == len(in_zone) + 2
    assert {str(name) for name in zone.nodes} == {r.name for r in in_zone}
    for record in out_of_zone:
        assert f";   {record.name}  {record.ttl}  IN  {record.type}  {record.value}\n" in text
        assert f"; {record.purpose}\n" in text


def test_zone_file_names_are_relative_and_columns_aligned(key: DkimKey) -> None:
    text = zone_file("example.com", _all_records("example.com", key))
    record_lines = [line for line in text.splitlines() if line and not line.startswith((";", "$"))]
    assert len(record_lines) == 9  # 10 records, one of them for another zone
    assert [line.split()[0] for line in record_lines][:4] == ["@", "@", "mr1._domainkey", "_dmarc"]
    assert len({line.index(" IN ") for line in record_lines}) == 1
    value_columns = {line.index(line.split(None, 4)[4]) for line in record_lines}
    assert len(value_columns) == 1


def test_zone_file_refuses_relative_record_names() -> None:
    record = DnsRecord(name="example.com", type="MX", value="10 mail.example.com.", ttl=60, purpose="x")
    with pytest.raises(ValueError, match="fully qualified"):
        zone_file("example.com", [record])
