"""The STARTTLS certificate made on first run: one pair, even when every worker starts at once."""

from __future__ import annotations

import multiprocessing
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailroom.frontends.smtp.certificate import server_context, tls_files
from mailroom.settings import Settings, load_settings


def _start(data_dir: str, barrier: multiprocessing.synchronize.Barrier) -> str:
    settings = load_settings(data_dir=Path(data_dir))
    barrier.wait()  # every "worker" asks for the context at the same moment
    server_context(settings)
    return "ok"


def _worker(
    data_dir: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue
) -> None:
    try:
        results.put(_start(data_dir, barrier))
    except Exception as exc:  # reported to the test, not lost in the child
        results.put(f"{type(exc).__name__}: {exc}")


def pair_matches(settings: Settings) -> bool:
    cert_path, key_path = tls_files(settings)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_workers_starting_together_share_one_certificate(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(tmp_path), barrier, results)) for _ in range(6)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert outcomes == ["ok"] * 6
    settings = load_settings(data_dir=tmp_path)
    assert pair_matches(settings)
    assert not [p.name for p in (tmp_path / "tls").iterdir() if p.name.endswith(".tmp")]
    key_path = tls_files(settings)[1]
    assert key_path.stat().st_mode & 0o777 == 0o600


def test_an_existing_pair_is_kept_and_configured_files_must_exist(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert isinstance(server_context(settings), ssl.SSLContext)
    cert_path, _ = tls_files(settings)
    first = cert_path.read_bytes()
    server_context(settings)
    assert cert_path.read_bytes() == first
    missing = load_settings(
        data_dir=tmp_path, tls_cert_file=tmp_path / "no.pem", tls_key_file=tmp_path / "no.key"
    )
    with pytest.raises(FileNotFoundError):
        server_context(missing)
