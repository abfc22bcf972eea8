"""``/internal/auth/*``: the nginx auth_http protocol and auth_request answers, over HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.web import build_app
from tests.mailhelpers import create_user

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"


def nginx_headers(
    user: str, password: str, protocol: str = "imap", attempt: int = 1, **extra: str
) -> dict[str, str]:
    return {
        "Auth-Method": "plain",
        "Auth-User": quote(user),
        "Auth-Pass": quote(password),
        "Auth-Protocol": protocol,
        "Auth-Login-Attempt": str(attempt),
        "Client-IP": "198.51.100.7",
        "Client-Host": "[UNAVAILABLE]",
        **extra,
    }


async def http(mailroom: Mailroom, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(mailroom), client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://mailroom.test")


@pytest.fixture
async def local(mailroom: Mailroom) -> AsyncIterator[httpx.AsyncClient]:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    await create_user(mailroom, "nopop@example.org", password=PASSWORD, enable_pop=False)
    async with await http(mailroom) as client:
        yield client


async def test_a_good_login_gets_the_backend_of_its_protocol(
    local: httpx.AsyncClient, mailroom: Mailroom
) -> None:
    r = await local.get("/internal/auth/email", headers=nginx_headers("alice@example.org", PASSWORD, "smtp"))
    assert r.status_code == 200
    assert r.headers["auth-status"] == "OK"
    assert r.headers["auth-server"] == "127.0.0.1"
    assert r.headers["auth-port"] == str(mailroom.settings.submission_port)
    r = await local.get("/internal/auth/email", headers=nginx_headers("Alice@Example.org", PASSWORD, "imap"))
    assert (r.headers["auth-status"], r.headers["auth-server"], r.headers["auth-port"]) == (
        "OK",
        "127.0.0.1",
        "2143",
    )
    r = await local.get("/internal/auth/email", headers=nginx_headers("alice@example.org", PASSWORD, "pop3"))
    assert (r.headers["auth-status"], r.headers["auth-port"]) == ("OK", "2110")


async def test_url_encoded_credentials_are_decoded(mailroom: Mailroom) -> None:
    odd = "pa ss%wörd+&:"
    await create_user(mailroom, "odd@example.org", password=odd)
    async with await http(mailroom) as client:
        r = await client.get("/internal/auth/email", headers=nginx_headers("odd@example.org", odd))
    assert r.headers["auth-status"] == "OK"


@pytest.mark.parametrize(
    "settings_overrides",
    [{"proxy_imap_backend": "10.1.2.3:1143", "proxy_smtp_backend": "[::1]:10587"}],
)
async def test_backends_are_configurable(local: httpx.AsyncClient) -> None:
    r = await local.get("/internal/auth/email", headers=nginx_headers("alice@example.org", PASSWORD, "imap"))
    assert (r.headers["auth-server"], r.headers["auth-port"]) == ("10.1.2.3", "1143")
    r = await local.get("/internal/auth/email", headers=nginx_headers("alice@example.org", PASSWORD, "smtp"))
    assert (r.headers["auth-server"], r.headers["auth-port"]) == ("::1", "10587")


async def test_a_wrong_password_fails_with_a_wait_only_for_the_first_attempts(
    local: httpx.AsyncClient,
) -> None:
    r = await local.get("/internal/auth/email", headers=nginx_headers("alice@example.org", "wrong", "smtp"))
    assert r.status_code == 200
    assert r.headers["auth-status"] == "Invalid login or password"
    assert r.headers["auth-error-code"] == "535 5.7.8"
    assert r.headers["auth-wait"] == "2"
    assert "auth-server" not in r.headers
    r = await local.get(
        "/internal/auth/email", headers=nginx_headers("alice@example.org", "wrong", "imap", attempt=3)
    )
    assert r.headers["auth-status"] == "Invalid login or password"
    assert "auth-wait" not in r.headers
    assert "auth-error-code" not in r.headers  # SMTP only
    r = await local.get("/internal/auth/email", headers=nginx_headers("nobody@example.org", PASSWORD))
    assert r.headers["auth-status"] == "Invalid login or password"


async def test_the_protocol_flags_of_the_user_are_honoured(local: httpx.AsyncClient) -> None:
    r = await local.get("/internal/auth/email", headers=nginx_headers("nopop@example.org", PASSWORD, "pop3"))
    assert r.headers["auth-status"] == "Login to this service is disabled for this account"
    r = await local.get("/internal/auth/email", headers=nginx_headers("nopop@example.org", PASSWORD, "imap"))
    assert r.headers["auth-status"] == "OK"


async def test_unsupported_methods_and_protocols_fail(local: httpx.AsyncClient) -> None:
    headers = nginx_headers("alice@example.org", PASSWORD, "smtp") | {"Auth-Method": "cram-md5"}
    r = await local.get("/internal/auth/email", headers=headers)
    assert r.headers["auth-status"] == "Unsupported authentication method or protocol"
    assert r.headers["auth-error-code"] == "504 5.5.4"
    headers = nginx_headers("alice@example.org", PASSWORD, "sieve")
    r = await local.get("/internal/auth/email", headers=headers)
    assert r.headers["auth-status"] == "Unsupported authentication method or protocol"
    r = await local.get("/internal/auth/email", headers={})
    assert r.headers["auth-status"] == "Unsupported authentication method or protocol"


async def test_garbage_headers_never_break_it(local: httpx.AsyncClient) -> None:
    headers = nginx_headers("a" * 5000 + "@example.org", "x" * 10_000) | {
        "Auth-Login-Attempt": "many",
        "Client-IP": "not an ip",
    }
    r = await local.get("/internal/auth/email", headers=headers)
    assert r.status_code == 200
    assert r.headers["auth-status"] == "Invalid login or password"


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_network": "3/hour"}])
async def test_the_brute_force_guard_counts_the_client_ip_nginx_reports(local: httpx.AsyncClient) -> None:
    for n in range(3):  # distinct wrong passwords: the guard counts a repeated one once
        r = await local.get(
            "/internal/auth/email", headers=nginx_headers("alice@example.org", f"wrong{n}", "smtp")
        )
        assert r.headers["auth-status"] == "Invalid login or password"
    r = await local.get("/internal/auth/email", headers=nginx_headers("alice@example.org", PASSWORD, "smtp"))
    assert r.headers["auth-status"] == "Too many failed logins, try again later"
    assert r.headers["auth-error-code"] == "454 4.7.0"
    assert "auth-wait" not in r.headers
    # Another client network is not locked out by 198.51.100.7's failures.
    other = nginx_headers("alice@example.org", PASSWORD, "smtp") | {"Client-IP": "203.0.113.9"}
    r = await local.get("/internal/auth/email", headers=other)
    assert r.headers["auth-status"] == "OK"


async def test_only_loopback_or_the_shared_secret_may_ask(mailroom: Mailroom) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    async with await http(mailroom, peer="192.0.2.10") as remote:
        r = await remote.get("/internal/auth/email", headers=nginx_headers("alice@example.org", PASSWORD))
        assert r.status_code == 403
        assert "auth-status" not in r.headers
        basic = base64.b64encode(f"alice@example.org:{PASSWORD}".encode()).decode()
        assert (
            await remote.get("/internal/auth/basic", headers={"Authorization": f"Basic {basic}"})
        ).status_code == 403


@pytest.mark.parametrize("settings_overrides", [{"internal_secret": "s3cret-for-nginx-on-another-host"}])
async def test_a_remote_nginx_with_the_secret_may_ask(mailroom: Mailroom) -> None:
    await create_user(mailroom, "alice@example.org", password=PASSWORD)
    async with await http(mailroom, peer="192.0.2.10") as remote:
        headers = nginx_headers("alice@example.org", PASSWORD)
        r = await remote.get(
            "/internal/auth/email", headers=headers | {"X-Mailroom-Internal-Secret": "wrong"}
        )
        assert r.status_code == 403
        r = await remote.get(
            "/internal/auth/email",
            headers=headers | {"X-Mailroom-Internal-Secret": "s3cret-for-nginx-on-another-host"},
        )
        assert r.headers["auth-status"] == "OK"


async def test_auth_basic_and_auth_user_for_auth_request(
    local: httpx.AsyncClient, mailroom: Mailroom
) -> None:
    basic = base64.b64encode(f"alice@example.org:{PASSWORD}".encode()).decode()
    r = await local.get("/internal/auth/basic", headers={"Authorization": f"Basic {basic}"})
    assert (r.status_code, r.headers["x-user"]) == (200, "alice@example.org")
    wrong = base64.b64encode(b"alice@example.org:wrong").decode()
    r = await local.get("/internal/auth/basic", headers={"Authorization": f"Basic {wrong}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")
    r = await local.get("/internal/auth/basic")
    assert r.status_code == 401
    # A session of the mail client API is a user for /user; Basic is not accepted there.
    login = await local.post("/api/v1/login", json={"username": "alice@example.org", "password": PASSWORD})
    assert login.status_code in (200, 201), login.text
    token = login.json()["token"]
    r = await local.get("/internal/auth/user", headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.headers["x-user"]) == (200, "alice@example.org")
    assert (
        await local.get("/internal/auth/user", headers={"Authorization": f"Basic {basic}"})
    ).status_code == 401
    assert (
        await local.get("/internal/auth/user", headers={"Authorization": "Bearer ms_nope"})
    ).status_code == 401


async def test_internal_routes_are_not_in_the_openapi_document(local: httpx.AsyncClient) -> None:
    document = (await local.get("/api/v1/openapi.json")).json()
    assert not [path for path in document["paths"] if "internal" in path]
