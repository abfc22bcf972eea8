"""The provider's access tokens as Bearer credentials on REST and JSON-RPC."""

from __future__ import annotations

import base64
import logging
import xmlrpc.client
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.conftest import problem
from tests.oidc.conftest import CLIENT_ID, CLIENT_SECRET, HIDDEN_INPUT, Browser
from tests.oidc.provider import Provider

pytestmark = pytest.mark.anyio


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _alice(provider: Provider, make_user: Any, **fields: Any) -> Any:
    await make_user("alice@example.org")
    return provider.add_user("alice", "provider-password", "alice@example.org", **fields)


async def test_token_from_the_token_endpoint_works_on_rest_json_rpc_and_xml_rpc(
    provider: Provider, make_user: Any, server: str
) -> None:
    """A client runs the code flow itself and calls the API with the access token."""
    await _alice(provider, make_user)
    verifier = "v" * 64
    async with httpx.AsyncClient() as http:
        form = await http.get(
            f"{provider.issuer}/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": f"{server}/web/oidc/callback",
                "scope": "openid email",
                "state": "s",
                "nonce": "n",
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            },
        )
        fields = {k: v.replace("&amp;", "&") for k, v in HIDDEN_INPUT.findall(form.text)}
        r = await http.post(
            f"{provider.issuer}/authorize",
            data={**fields, "username": "alice", "password": "provider-password"},
        )
        code = httpx.URL(r.headers["location"]).params["code"]
        token = await http.post(
            f"{provider.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{server}/web/oidc/callback",
                "code_verifier": verifier,
            },
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        assert token.status_code == 200, token.text
        access = token.json()["access_token"]
        me = await http.get(f"{server}/api/v1/me/settings", headers=bearer(access))
        assert me.status_code == 200, me.text
        rpc = await http.post(
            f"{server}/rpc",
            json={"jsonrpc": "2.0", "method": "mail.settings.get", "params": {}, "id": 1},
            headers=bearer(access),
        )
        assert rpc.status_code == 200
        assert "result" in rpc.json(), rpc.json()
        xml = await http.post(
            f"{server}/rpc/xml",
            content=xmlrpc.client.dumps((), "mail.settings.get"),
            headers={"content-type": "text/xml", **bearer(access)},
        )
        assert xml.status_code == 200
        (settings,), _ = xmlrpc.client.loads(xml.content)
        assert isinstance(settings, dict)
        # Without the token the same call is refused.
        rpc = await http.post(
            f"{server}/rpc", json={"jsonrpc": "2.0", "method": "mail.settings.get", "params": {}, "id": 1}
        )
        assert "error" in rpc.json()


def _tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    return f"{head}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


def _other_payload(token: str, provider: Provider) -> str:
    """The signature of one token on the claims of another (an edited payload)."""
    head, _, signature = token.split(".")
    other = provider.sign({"iss": provider.issuer, "sub": "sub-root", "aud": CLIENT_ID, "exp": 4_000_000_000})
    return f"{head}.{other.split('.')[1]}.{signature}"


@pytest.mark.parametrize(
    ("mint", "says"),
    [
        (lambda p, u: p.access_token_for(u, CLIENT_ID, "openid", expires_in=-3600), "has expired"),
        (lambda p, u: p.access_token_for(u, "another-client", "openid"), "another audience"),
        (lambda p, u: p.access_token_for(u, CLIENT_ID, "openid", iss="http://127.0.0.1:9"), "another issuer"),
        (lambda p, u: p.access_token_for(u, CLIENT_ID, "openid", nbf=4_000_000_000), "not valid yet"),
        (lambda p, u: _tampered(p.access_token_for(u, CLIENT_ID, "openid")), "signature does not verify"),
        (
            lambda p, u: _other_payload(p.access_token_for(u, CLIENT_ID, "openid"), p),
            "signature does not verify",
        ),
        (lambda p, u: "not-a-jwt-at-all", "not a signed JWT"),
    ],
    ids=["expired", "audience", "issuer", "nbf", "signature", "payload", "garbage"],
)
async def test_tokens_that_are_not_valid_here_are_refused(
    provider: Provider, make_user: Any, server: str, mint: Any, says: str
) -> None:
    user = await _alice(provider, make_user)
    token = mint(provider, user)
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))
        body = problem(r, 401, "unauthenticated")
        assert says in body["detail"], body
        assert r.headers["content-type"] == "application/problem+json"
        rpc = await http.post(
            f"{server}/rpc",
            json={"jsonrpc": "2.0", "method": "mail.settings.get", "params": {}, "id": 1},
            headers=bearer(token),
        )
        assert rpc.json()["error"]["data"]["code"] == "unauthenticated", rpc.json()


@pytest.mark.parametrize("oidc_settings", [{"oidc_allowed_domains": ["example.org"]}])
async def test_unknown_disabled_and_other_domain_users_are_refused(
    provider: Provider, make_user: Any, server: str, mailroom: Any
) -> None:
    nobody = provider.add_user("nobody", "x", "nobody@example.org")
    await make_user("dave@example.org")
    dave = provider.add_user("dave", "x", "dave@example.org")
    await mailroom.registry.call(
        "admin.users.update", {"email": "dave@example.org", "changes": {"enabled": False}}
    )
    await make_user("erin@elsewhere.example")
    erin = provider.add_user("erin", "x", "erin@elsewhere.example")
    async with httpx.AsyncClient() as http:
        for user, says in [
            (nobody, "no mailbox nobody@example.org"),
            (dave, "dave@example.org is disabled"),
            (erin, "elsewhere.example may not log in"),
        ]:
            token = provider.access_token_for(user, CLIENT_ID, "openid email")
            r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))
            assert says in problem(r, 403, "forbidden")["detail"]


async def test_address_from_userinfo_when_the_token_has_none(
    provider: Provider, make_user: Any, server: str
) -> None:
    """The provider's access tokens carry only the subject here: userinfo gives the address."""
    user = await _alice(provider, make_user)
    token = provider.access_token_for(user, CLIENT_ID, "openid email")
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))
        assert r.status_code == 200, r.text
    assert "/userinfo" in provider.requests


async def test_email_claim_in_the_token_needs_no_userinfo(
    provider: Provider, make_user: Any, server: str
) -> None:
    user = await _alice(provider, make_user)
    token = provider.access_token_for(user, CLIENT_ID, "openid", email="alice@example.org")
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))
        assert r.status_code == 200, r.text
    assert "/userinfo" not in provider.requests


@pytest.mark.parametrize("oidc_settings", [{"oidc_admin_group": "mail-admins"}])
async def test_admin_group_in_the_token_gives_the_admin_api(
    provider: Provider, make_user: Any, server: str
) -> None:
    await make_user("root@example.org")
    root = provider.add_user("root", "x", "root@example.org")
    admin_token = provider.access_token_for(
        root, CLIENT_ID, "openid", email=root.email, groups=["mail-admins"]
    )
    plain_token = provider.access_token_for(root, CLIENT_ID, "openid", email=root.email, groups=["staff"])
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server}/api/v1/domains", headers=bearer(admin_token))).status_code == 200
        r = await http.get(f"{server}/api/v1/domains", headers=bearer(plain_token))
        problem(r, 403, "forbidden")


async def test_mailroom_scopes_limit_the_methods_like_api_key_scopes(
    provider: Provider, make_user: Any, server: str
) -> None:
    user = await _alice(provider, make_user)
    token = provider.access_token_for(user, CLIENT_ID, "openid mailroom:mail.settings.*", email=user.email)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))).status_code == 200
        r = await http.get(f"{server}/api/v1/me/sessions", headers=bearer(token))
        problem(r, 403, "forbidden")


async def test_key_rotation(
    provider: Provider, make_user: Any, server: str, clock: Any, mailroom: Any
) -> None:
    user = await _alice(provider, make_user)
    old = provider.access_token_for(user, CLIENT_ID, "openid", email=user.email)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server}/api/v1/me/settings", headers=bearer(old))).status_code == 200
        assert provider.requests.count("/jwks") == 1
        # Cached: more calls do not fetch the keys again.
        assert (await http.get(f"{server}/api/v1/me/settings", headers=bearer(old))).status_code == 200
        assert provider.requests.count("/jwks") == 1
        # The provider rotates its key (and stops publishing the old one).
        provider.rotate_key()
        new = provider.access_token_for(user, CLIENT_ID, "openid", email=user.email)
        assert (await http.get(f"{server}/api/v1/me/settings", headers=bearer(new))).status_code == 200
        assert provider.requests.count("/jwks") == 2
        # The old key is gone from the provider's set: its tokens no longer work (once the
        # auth cache's bound has passed: a token checked is trusted that long, as API keys are).
        clock.advance(mailroom.settings.auth_cache_seconds + 1)
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(old))
        assert "key the provider does not publish" in problem(r, 401, "unauthenticated")["detail"]


@pytest.mark.parametrize("oidc_settings", [{"oidc_jwks_refresh_seconds": 300}])
async def test_unknown_key_ids_do_not_make_the_keys_be_fetched_again_and_again(
    provider: Provider, make_user: Any, server: str
) -> None:
    user = await _alice(provider, make_user)
    token = provider.access_token_for(user, CLIENT_ID, "openid", email=user.email)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))).status_code == 200
        provider.rotate_key()
        for _ in range(5):
            forged = provider.access_token_for(user, CLIENT_ID, "openid", email=user.email)
            r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(forged))
            problem(r, 401, "unauthenticated")
    assert provider.requests.count("/jwks") == 1


@pytest.mark.parametrize("oidc_settings", [{"oidc_introspection": True}])
async def test_introspection_of_opaque_tokens(provider: Provider, make_user: Any, server: str) -> None:
    provider.opaque_tokens = True
    user = await _alice(provider, make_user)
    token = provider.access_token_for(user, CLIENT_ID, "openid email")
    assert token.count(".") == 0
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))).status_code == 200
        assert "/introspect" in provider.requests
        # A token the provider does not know, or revoked: not active.
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer("unknown-opaque-token-value"))
        assert "not active" in problem(r, 401, "unauthenticated")["detail"]
        revoked = provider.access_token_for(user, CLIENT_ID, "openid email")
        provider.tokens[revoked].revoked = True
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(revoked))
        assert "not active" in problem(r, 401, "unauthenticated")["detail"]
        other = provider.access_token_for(user, "another-client", "openid email")
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer(other))
        assert "another audience" in problem(r, 401, "unauthenticated")["detail"]


async def test_mailroom_own_tokens_still_work_beside_the_provider(
    provider: Provider, make_user: Any, server: str
) -> None:
    alice = await make_user("alice@example.org")
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server}/api/v1/me/settings", headers=bearer(alice.key))).status_code == 200
        r = await http.get(f"{server}/api/v1/me/settings", headers=bearer("mr_AAAAAAAA_" + "x" * 43))
        problem(r, 401, "unauthenticated")
    assert "/jwks" not in provider.requests  # never handed to the provider's validation


async def test_no_token_reaches_a_log_line(
    provider: Provider, make_user: Any, server: str, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    user = await _alice(provider, make_user)
    caplog.set_level(logging.DEBUG)
    r = await browser.login("alice")
    assert r.status_code == 303
    session = browser.http.cookies["mr_session"]
    code = httpx.URL(str(r.request.url)).params["code"]
    token = provider.access_token_for(user, CLIENT_ID, "openid", email=user.email)
    expired = provider.access_token_for(user, CLIENT_ID, "openid", email=user.email, exp=1)
    async with httpx.AsyncClient() as http:
        await http.get(f"{server}/api/v1/me/settings", headers=bearer(token))
        await http.get(f"{server}/api/v1/me/settings", headers=bearer(expired))
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "logged in with OpenID Connect" in text
    for secret in (session.split("_", 2)[2], code, token, expired, token.split(".")[2], CLIENT_SECRET):
        assert secret not in text
