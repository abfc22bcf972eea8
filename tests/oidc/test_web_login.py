"""The web login through a real OpenID Connect provider: the whole code flow over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import problem
from tests.oidc.conftest import HIDDEN_INPUT, Browser
from tests.oidc.provider import Provider

pytestmark = pytest.mark.anyio


async def test_full_code_flow_gives_the_password_login_session(
    browser: Browser, provider: Provider, make_user: Any
) -> None:
    await make_user("alice@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org")
    r = await browser.login("alice", next_path="/admin")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/admin"
    cookies = r.headers.get_list("set-cookie")
    assert any(c.startswith("mr_session=ms_") and "HttpOnly" in c for c in cookies), cookies
    assert "ms_" not in r.headers["location"]
    who = await browser.http.get(f"{browser.base}/web/session", headers={"X-CSRF-Token": browser.csrf()})
    assert who.status_code == 200
    assert who.json()["email"] == "alice@example.org"
    assert who.json()["is_admin"] is False
    # The cookie works on the API like a password login's (with the CSRF header).
    me = await browser.http.get(
        f"{browser.base}/api/v1/me/sessions", headers={"X-CSRF-Token": browser.csrf()}
    )
    assert me.status_code == 200, me.text
    assert [s["current"] for s in me.json()] == [True]


@pytest.mark.parametrize("oidc_settings", [{"oidc_admin_group": "mail-admins"}])
async def test_admin_group_makes_a_global_admin_and_leaving_it_undoes_that(
    browser: Browser, provider: Provider, make_user: Any, mailroom: Any
) -> None:
    await make_user("root@example.org")
    user = provider.add_user("root", "provider-password", "root@example.org", groups=["mail-admins", "staff"])
    r = await browser.login("root", next_path="/admin")
    assert r.status_code == 303, r.text
    who = await browser.http.get(f"{browser.base}/web/session", headers={"X-CSRF-Token": browser.csrf()})
    assert who.json()["is_admin"] is True
    domains = await browser.http.get(
        f"{browser.base}/api/v1/domains", headers={"X-CSRF-Token": browser.csrf()}
    )
    assert domains.status_code == 200, domains.text
    # The provider takes the user out of the group: the next login is no admin's.
    user.groups = ["staff"]
    r = await browser.login("root")
    assert r.status_code == 303, r.text
    who = await browser.http.get(f"{browser.base}/web/session", headers={"X-CSRF-Token": browser.csrf()})
    assert who.json()["is_admin"] is False
    domains = await browser.http.get(
        f"{browser.base}/api/v1/domains", headers={"X-CSRF-Token": browser.csrf()}
    )
    assert domains.status_code == 403, domains.text
    # Both changes are in the audit log, made by the provider's subject.
    listed = await mailroom.registry.call("admin.audit.list", {"method": "mail.sessions.login_oidc"})
    made = [(e["principal"], e["target"], e["changes"]["global_admin"]["after"]) for e in listed["items"]]
    assert made == [
        ("oidc:sub-root", "root@example.org", False),
        ("oidc:sub-root", "root@example.org", True),
    ]


@pytest.mark.parametrize("oidc_settings", [{"oidc_manager_claim": "mailroom_manages"}])
async def test_manager_claim_gives_the_domains_it_lists(
    browser: Browser, provider: Provider, make_user: Any, make_domain: Any, mailroom: Any
) -> None:
    await make_user("carol@example.org")
    await make_domain("example.net")
    provider.add_user(
        "carol", "provider-password", "carol@example.org", manages=["example.net", "not-served.example"]
    )
    r = await browser.login("carol", next_path="/admin")
    assert r.status_code == 303, r.text
    who = await browser.http.get(f"{browser.base}/web/session", headers={"X-CSRF-Token": browser.csrf()})
    assert who.json()["managed_domains"] == ["example.net"]


def _changed(name: str, value: str) -> Any:
    def change(url: str) -> str:
        head, _, query = url.partition("?")
        parts = [p for p in query.split("&") if not p.startswith(f"{name}=")]
        return f"{head}?{'&'.join([*parts, f'{name}={value}'])}"

    return change


async def test_state_mismatch_is_refused(browser: Browser, provider: Provider, make_user: Any) -> None:
    await make_user("alice@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org")
    r = await browser.sign_in(
        await browser.start(), "alice", "provider-password", callback=_changed("state", "forged")
    )
    body = problem(r, 400, "bad_request")
    assert "state" in body["detail"]
    assert "mr_session" not in r.headers.get("set-cookie", "")


async def test_a_callback_without_the_browsers_login_is_refused(
    browser: Browser, provider: Provider, make_user: Any, server: str
) -> None:
    """A login started in another browser (login CSRF): no pending-login cookie here."""
    await make_user("alice@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org")
    form = await browser.start()
    browser.http.cookies.delete("mr_oidc")
    r = await browser.sign_in(form, "alice", "provider-password")
    body = problem(r, 400, "bad_request")
    assert "no OpenID Connect login is under way" in body["detail"]


async def test_the_pending_login_is_spent_by_its_callback(
    browser: Browser, provider: Provider, make_user: Any
) -> None:
    await make_user("alice@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org")
    form = await browser.start()
    kept = dict(browser.http.cookies)
    r = await browser.sign_in(form, "alice", "provider-password")
    assert r.status_code == 303
    assert 'mr_oidc=""' in r.headers.get("set-cookie", "") or "mr_oidc=;" in r.headers.get("set-cookie", "")
    # Replaying the callback with the old cookie: the code is spent at the provider.
    for name, value in kept.items():
        browser.http.cookies.set(name, value)
    again = await browser.http.get(str(r.request.url))
    body = problem(again, 401, "unauthenticated")
    assert "refused the authorization code" in body["detail"]


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"nonce": "not-the-nonce-of-this-login"}, "nonce does not match"),
        ({"iss": "http://127.0.0.1:9/other-issuer"}, "another issuer"),
        ({"aud": ["another-client"]}, "another audience"),
        ({"exp": 1_000_000_000}, "has expired"),
    ],
)
async def test_id_tokens_that_are_not_valid_here_are_refused(
    browser: Browser, provider: Provider, make_user: Any, claims: dict[str, Any], says: str
) -> None:
    await make_user("alice@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org")
    provider.id_token_overrides = claims
    r = await browser.login("alice")
    body = problem(r, 401, "unauthenticated")
    assert says in body["detail"], body
    assert r.headers["content-type"] == "application/problem+json"
    assert "mr_session" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize("oidc_settings", [{"oidc_allowed_domains": ["example.org"]}])
async def test_unknown_user_disabled_user_and_other_domains_are_refused(
    browser: Browser, provider: Provider, make_user: Any, mailroom: Any
) -> None:
    provider.add_user("nobody", "provider-password", "nobody@example.org")
    await make_user("alice@example.org")
    await make_user("dave@example.org")
    await mailroom.registry.call(
        "admin.users.update", {"email": "dave@example.org", "changes": {"enabled": False}}
    )
    provider.add_user("dave", "provider-password", "dave@example.org")
    await make_user("erin@elsewhere.example")
    provider.add_user("erin", "provider-password", "erin@elsewhere.example")
    for username, says in [
        ("nobody", "there is no mailbox nobody@example.org"),
        ("dave", "dave@example.org is disabled"),
        ("erin", "elsewhere.example may not log in"),
    ]:
        r = await browser.login(username)
        body = problem(r, 403, "forbidden")
        assert says in body["detail"], body


async def test_unverified_address_is_refused(browser: Browser, provider: Provider, make_user: Any) -> None:
    await make_user("alice@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org", email_verified=False)
    body = problem(await browser.login("alice"), 403, "forbidden")
    assert "not verified" in body["detail"]


async def test_the_login_page_learns_of_the_provider(browser: Browser) -> None:
    r = await browser.http.get(f"{browser.base}/web/oidc")
    assert r.json() == {"name": "Test IdP", "login_url": "/web/oidc/login"}
    start = await browser.http.get(f"{browser.base}/web/oidc/login")
    assert start.status_code == 302
    location = start.headers["location"]
    for param in ("code_challenge=", "code_challenge_method=S256", "nonce=", "state=", "response_type=code"):
        assert param in location
    cookie = start.headers["set-cookie"]
    assert "mr_oidc=" in cookie
    assert "HttpOnly" in cookie
    assert "Path=/web/oidc" in cookie
    assert "samesite=lax" in cookie.lower()


@pytest.mark.parametrize("oidc_settings", [{"oidc_issuer": "http://127.0.0.1:9"}])
async def test_an_unreachable_provider_is_503_not_a_login(browser: Browser) -> None:
    r = await browser.http.get(f"{browser.base}/web/oidc/login")
    assert "cannot be reached" in problem(r, 503, "unavailable")["detail"]
    jwt_shaped = {"Authorization": "Bearer x.y.z"}
    r = await browser.http.get(f"{browser.base}/api/v1/me/settings", headers=jwt_shaped)
    problem(r, 503, "unavailable")


@pytest.mark.parametrize("oidc_settings", [{"oidc_issuer": None}])
async def test_without_a_provider_there_is_no_button_and_no_login(browser: Browser) -> None:
    assert (await browser.http.get(f"{browser.base}/web/oidc")).status_code == 204
    problem(await browser.http.get(f"{browser.base}/web/oidc/login"), 404, "not_found")
    r = await browser.http.post(
        f"{browser.base}/api/v1/login/oidc",
        json={"code": "c", "code_verifier": "v" * 43, "redirect_uri": "http://x/cb", "nonce": "n"},
    )
    problem(r, 404, "not_found")


async def test_the_provider_saying_no_is_a_clear_refusal(browser: Browser) -> None:
    """The user declines at the provider: it sends the browser back with an error (RFC 6749 4.1.2.1)."""
    form = await browser.start()
    state = dict(HIDDEN_INPUT.findall(form.text))["state"]
    r = await browser.http.get(
        f"{browser.base}/web/oidc/callback", params={"error": "access_denied", "state": state}
    )
    assert "did not sign you in (access_denied)" in problem(r, 400, "bad_request")["detail"]
