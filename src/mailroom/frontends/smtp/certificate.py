"""The STARTTLS certificate: the configured one, or a self-signed one made on first run.

``tls_cert_file``/``tls_key_file`` name PEM files; by default ``<data_dir>/tls/cert.pem``
and ``key.pem``, created (EC P-256, ten years, the server's host name as subject and SAN)
when missing so that submission works out of the box. Clients must then trust it
explicitly or skip verification; production setups point the settings at a real
certificate (and reload by restarting).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailroom.settings import Settings


def tls_files(settings: Settings) -> tuple[Path, Path]:
    """(certificate, key) paths the settings name, or the data-folder defaults."""
    folder = settings.data_dir / "tls"
    return settings.tls_cert_file or folder / "cert.pem", settings.tls_key_file or folder / "key.pem"


def generate_self_signed(cert_path: Path, key_path: Path, hostname: str) -> None:
    """Write a new key (mode 0600) and a self-signed certificate for ``hostname``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Each file complete or absent: written aside, then renamed into place.
    _write_replacing(key_path, key_pem, 0o600)
    _write_replacing(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_replacing(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(temporary, path)


def server_context(settings: Settings) -> ssl.SSLContext:
    """The server TLS context for STARTTLS, generating the self-signed pair when needed.

    Only the default locations are generated: configured files that are missing are an error.
    Every worker of a first start comes here at the same moment: the pair is made, and read,
    under an exclusive lock on the folder, so one worker makes it and the others load that
    one (two making their own would leave one's key beside the other's certificate).
    """
    cert_path, key_path = tls_files(settings)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_cert_file is not None or settings.tls_key_file is not None:
        if not cert_path.exists() or not key_path.exists():
            raise FileNotFoundError(f"TLS certificate {cert_path} or key {key_path} does not exist")
        context.load_cert_chain(cert_path, key_path)
        return context
    key_path.parent.mkdir(parents=True, exist_ok=True)
    with open(key_path.parent / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not cert_path.exists() or not key_path.exists():
            generate_self_signed(cert_path, key_path, settings.hostname)
        context.load_cert_chain(cert_path, key_path)
    return context
