"""The key server: real gpg (and dirmngr) fetch and find keys over HKP; WKD paths match
``gpg-wks-client --print-wkd-hash`` and serve keys gpg imports."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.bootstrap import Mailroom
from mailroom.frontends.keyserver import _search_params, dearmor
from mailroom.services.mail.keyserver import wkd_hash, zbase32
from mailroom.web import build_app
from tests.conftest import Actor
from tests.rpc.conftest import serve

pytestmark = pytest.mark.anyio

GPG = shutil.which("gpg") or "/usr/bin/gpg"
WKS_CLIENT = "/usr/lib/gnupg/gpg-wks-client"
needs_gpg = pytest.mark.skipif(
    not (Path(GPG).exists() and shutil.which("dirmngr")) and os.environ.get("CI") != "true",
    reason="gpg and dirmngr are not installed (.ci/run installs them)",
)


@pytest.fixture
def gnupg_home() -> Iterator[Path]:
    # Short path: gpg-agent's socket path must fit in sun_path.
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    try:
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def gpg(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GPG, "--homedir", str(home), "--batch", "--no-tty", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def new_key(home: Path, uid: str) -> tuple[str, str]:
    """A fresh Ed25519 key with ``uid`` (as gpg --quick-gen-key makes it): (fingerprint, armored)."""
    made = gpg(
        home,
        "--passphrase",
        "",
        "--pinentry-mode",
        "loopback",
        "--quick-gen-key",
        uid,
        "ed25519",
        "sign",
        "never",
    )
    assert made.returncode == 0, made.stderr
    listing = gpg(home, "--with-colons", "--list-keys", uid).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    return fingerprint, gpg(home, "--armor", "--export", fingerprint).stdout


@pytest.fixture
async def published(make_user: object, gnupg_home: Path, client: httpx.AsyncClient) -> tuple[Actor, str, str]:
    alice: Actor = await make_user("alice@example.org")  # type: ignore[operator]
    fingerprint, armored = await asyncio.to_thread(new_key, gnupg_home, "alice@example.org")
    r = await client.post("/api/v1/me/keys", json={"public_key": armored}, headers=alice.headers)
    assert r.status_code == 201, r.text  # a bare-address user id is accepted
    return alice, fingerprint, armored


@pytest.fixture
async def http_url(mailroom: Mailroom) -> AsyncIterator[str]:
    async with serve(build_app(mailroom)) as url:
        yield url


@needs_gpg
async def test_gpg_receives_and_searches_keys_over_hkp(
    published: tuple[Actor, str, str], http_url: str
) -> None:
    _, fingerprint, _ = published
    other = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    await asyncio.to_thread(other.chmod, 0o700)
    keyserver = http_url.replace("http://", "hkp://")
    try:
        got = await asyncio.to_thread(gpg, other, "--keyserver", keyserver, "--recv-keys", fingerprint)
        assert got.returncode == 0, got.stderr
        assert "imported: 1" in got.stderr
        listed = await asyncio.to_thread(gpg, other, "--with-colons", "--list-keys", fingerprint)
        assert f"fpr:::::::::{fingerprint}:" in listed.stdout
        found = await asyncio.to_thread(
            gpg, other, "--keyserver", keyserver, "--with-colons", "--search-keys", "alice@example.org"
        )
        assert fingerprint in found.stdout + found.stderr
        by_long_id = await asyncio.to_thread(
            gpg, other, "--keyserver", keyserver, "--recv-keys", fingerprint[-16:]
        )
        assert by_long_id.returncode == 0, by_long_id.stderr
        missing = await asyncio.to_thread(
            gpg, other, "--keyserver", keyserver, "--recv-keys", "0x" + "A" * 40
        )
        assert missing.returncode != 0
    finally:
        await asyncio.to_thread(
            subprocess.run,
            ["gpgconf", "--homedir", str(other), "--kill", "all"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(other, ignore_errors=True)


async def test_hkp_index_and_get_over_http(
    published: tuple[Actor, str, str], client: httpx.AsyncClient
) -> None:
    _, fingerprint, _ = published
    r = await client.get(
        "/pks/lookup", params={"op": "index", "options": "mr", "search": "alice@example.org"}
    )
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0] == "info:1:1"
    assert lines[1].startswith(f"pub:{fingerprint}:22:")  # EdDSA
    assert lines[2].startswith("uid:alice@example.org:")
    r = await client.get("/pks/lookup", params={"op": "get", "search": "0x" + fingerprint})
    assert r.headers["content-type"].startswith("application/pgp-keys")
    assert r.text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # No substring search: addresses are matched exactly.
    r = await client.get("/pks/lookup", params={"op": "index", "options": "mr", "search": "alice"})
    assert r.status_code == 400
    r = await client.get("/pks/lookup", params={"op": "index", "search": "bob@example.org"})
    assert r.status_code == 404
    r = await client.get("/pks/lookup", params={"op": "stats"})
    assert r.status_code == 501
    r = await client.get("/pks/lookup", params={"op": "get", "search": "0x" + "f" * 17})
    assert r.status_code == 400
    r = await client.post("/pks/add", data={"keytext": "x"})
    assert r.status_code == 422  # not a key (uploads: tests/mta/test_keyupload.py)


@needs_gpg
async def test_wkd_serves_the_binary_key_at_gpgs_hash(
    published: tuple[Actor, str, str], client: httpx.AsyncClient, gnupg_home: Path
) -> None:
    _, fingerprint, _ = published
    printed = await asyncio.to_thread(
        subprocess.run,
        [WKS_CLIENT, "--print-wkd-hash", "alice@example.org"],
        capture_output=True,
        text=True,
        check=False,
    )
    expected = printed.stdout.split()[0]
    assert wkd_hash("alice") == wkd_hash("Alice") == expected
    direct = await client.get(
        f"/.well-known/openpgpkey/hu/{expected}", params={"l": "alice"}, headers={"Host": "example.org"}
    )
    advanced = await client.get(
        f"/.well-known/openpgpkey/example.org/hu/{expected}", headers={"Host": "openpgpkey.example.org"}
    )
    for r in (direct, advanced):
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.content[0] & 0x80  # a binary OpenPGP packet, not armor
    other = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    await asyncio.to_thread(other.chmod, 0o700)
    try:
        key_file = other / "key.bin"
        await asyncio.to_thread(key_file.write_bytes, advanced.content)
        imported = await asyncio.to_thread(gpg, other, "--import", str(key_file))
        assert imported.returncode == 0, imported.stderr
        assert fingerprint in (await asyncio.to_thread(gpg, other, "--with-colons", "--list-keys")).stdout
    finally:
        shutil.rmtree(other, ignore_errors=True)
    # A local part that does not hash to the path, another domain, a malformed hash: nothing.
    assert (
        await client.get(
            f"/.well-known/openpgpkey/hu/{expected}", params={"l": "bob"}, headers={"Host": "example.org"}
        )
    ).status_code == 404
    assert (await client.get(f"/.well-known/openpgpkey/other.test/hu/{expected}")).status_code == 404
    assert (await client.get("/.well-known/openpgpkey/example.org/hu/not-a-hash")).status_code == 404
    assert (await client.get("/.well-known/openpgpkey/example.org/policy")).status_code == 200


def test_zbase32_and_search_forms() -> None:
    assert zbase32(b"") == ""
    assert zbase32(bytes([0xF0])) == "6y"  # 11110|000(00): characters 30 and 0
    assert len(wkd_hash("anyone")) == 32
    assert _search_params("0xDEADBEEF") == {"key_id": "DEADBEEF"}
    assert _search_params("0x" + "ab" * 8) == {"key_id": "AB" * 8}
    assert _search_params("AB" * 20) == {"fingerprint": "AB" * 20}
    assert _search_params("Alice <alice@example.org>") == {"email": "alice@example.org"}
    assert _search_params(" alice@example.org ") == {"email": "alice@example.org"}
    assert _search_params("alice") is None
    assert _search_params("0x123") is None


def test_dearmor_matches_gpg(gnupg_home: Path) -> None:
    if not Path(GPG).exists():
        pytest.skip("gpg is not installed")
    fingerprint, armored = new_key(gnupg_home, "carol@example.org")
    exported = subprocess.run(
        [GPG, "--homedir", str(gnupg_home), "--batch", "--export", fingerprint],
        capture_output=True,
        check=True,
    ).stdout
    assert dearmor(armored) == exported


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_search_text_parses_or_is_refused(text: str) -> None:
    params = _search_params(text)
    assert params is None or set(params) <= {"email", "fingerprint", "key_id"}


@given(op=st.text(max_size=20), search=st.text(max_size=200))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_hkp_never_fails_on_any_query(client: httpx.AsyncClient, op: str, search: str) -> None:
    r = await client.get("/pks/lookup", params={"op": op, "search": search, "options": "mr"})
    assert r.status_code in (200, 400, 404, 422, 501), r.text
