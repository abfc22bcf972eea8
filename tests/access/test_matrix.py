"""The authorisation matrix: every method × every kind of caller × REST, JSON-RPC and XML-RPC.

Outcomes expected from each method's access policy and its target's ownership
(:mod:`tests.access.matrix`); any difference fails, an unexpected success first of all. The
matrix is written to ``docs/authorization-matrix.md``; the last test fails when that file
was out of date (and rewrites it, so running the tests again passes: commit the file).
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.registry import MethodSpec
from mailroom.settings import Settings
from tests.access.matrix import PRINCIPALS, ROWS, TITLES, World, build_world, expected

pytestmark = pytest.mark.anyio

DOC = Path(__file__).resolve().parents[2] / "docs" / "authorization-matrix.md"
PROTOCOLS = ("rest", "jsonrpc", "xmlrpc")
#: Public by design; every other method must require authentication.
PUBLIC_BY_DESIGN = frozenset(
    {
        "system.health.get",
        "mail.sessions.login",
        "mail.sessions.login_oidc",  # the provider's authorization code is the credential
        "mail.sessions.refresh",
        "mail.signup.create",
        "mail.clientconfig.get",  # what autoconfig and autodiscover serve
        "mail.keyserver.search",  # HKP: a key server answers anyone (published keys only)
        "mail.keyserver.wkd",  # Web Key Directory, likewise
        "mail.keyserver.add",  # HKP uploads: our addresses wait for the owner's mailed confirmation
        "mail.keyserver.confirmation",  # the mailed link is the credential (shows, changes nothing)
        "mail.keyserver.confirm",  # the mailed link is the credential (single-use token)
        # The interop API (only when settings.interop_api is on).
        "get_data",
        "notify_hello",
        "notify_sum",
        "subtract",
        "sum",
        "update",
        "validator1.arrayOfStructsTest",
        "validator1.countTheEntities",
        "validator1.easyStructTest",
        "validator1.echoStructTest",
        "validator1.manyTypesTest",
        "validator1.moderateSizeArrayCheck",
        "validator1.nestedStructTest",
        "validator1.simpleStructReturnTest",
    }
)
#: Filled by the matrix tests, written to the docs by the last test.
RESULTS: dict[str, dict[str, str]] = {}


def _all_methods() -> list[MethodSpec]:
    from mailroom.bootstrap import build_registry

    return build_registry(Settings(mode="test", data_dir=Path("/nonexistent"), interop_api=True)).methods()


METHODS = _all_methods()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"interop_api": True}


@pytest.fixture
async def world(mailroom: Mailroom, clock: FakeClock) -> World:
    return await build_world(mailroom, clock)


@pytest.fixture
async def http(mailroom: Mailroom) -> AsyncIterator[httpx.AsyncClient]:
    from mailroom.web import build_app

    transport = httpx.ASGITransport(app=build_app(mailroom), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mailroom.test") as c:
        yield c


def test_public_methods_are_exactly_the_listed_ones() -> None:
    public = {s.name for s in METHODS if s.access.public}
    assert public == PUBLIC_BY_DESIGN & {s.name for s in METHODS}, (
        "a method became public (or stopped being): list it in PUBLIC_BY_DESIGN and docs/access.md"
    )


def test_every_method_has_a_matrix_row() -> None:
    missing = sorted(s.name for s in METHODS if s.name not in ROWS)
    assert not missing, f"add rows for these methods to tests/access/matrix.py: {missing}"


# -- calling over each protocol ------------------------------------------------------------


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


async def _rest(c: httpx.AsyncClient, spec: MethodSpec, params: dict[str, Any], token: str | None) -> str:
    if spec.http is None:
        return "n/a"
    path = spec.http.path
    rest = dict(params)
    for name in spec.http.path_params:
        path = path.replace("{" + name + "}", quote(str(rest.pop(name)), safe="@"))
    url = "/health" if spec.name == "system.health.get" else "/api/v1" + path
    if spec.http.verb in ("GET", "DELETE"):
        query = {k: _query_value(v) for k, v in rest.items() if v is not None}
        r = await c.request(spec.http.verb, url, params=query, headers=_headers(token))
    else:
        body = rest[spec.body_param] if spec.body_param else rest
        r = await c.request(spec.http.verb, url, json=body, headers=_headers(token))
    if r.status_code < 300:
        return "ok"
    return str(r.json()["code"])


async def _jsonrpc(c: httpx.AsyncClient, spec: MethodSpec, params: dict[str, Any], token: str | None) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "method": spec.name, "params": params}
    reply = (await c.post("/rpc/json", json=body, headers=_headers(token))).json()
    return "ok" if "result" in reply else str(reply["error"]["data"]["code"])


async def _xmlrpc(c: httpx.AsyncClient, spec: MethodSpec, params: dict[str, Any], token: str | None) -> str:
    struct = {k: v for k, v in params.items() if v is not None}
    payload = xmlrpc.client.dumps((struct,) if struct else (), spec.name, allow_none=True)
    r = await c.post("/rpc/xml", content=payload, headers={"content-type": "text/xml", **_headers(token)})
    try:
        xmlrpc.client.loads(r.content, use_builtin_types=True)
    except xmlrpc.client.Fault as fault:
        return str(fault.faultString).split(":", 1)[0]
    return "ok"


CALLERS = {"rest": _rest, "jsonrpc": _jsonrpc, "xmlrpc": _xmlrpc}


@pytest.mark.parametrize("spec", METHODS, ids=[s.name for s in METHODS])
async def test_matrix(spec: MethodSpec, world: World, http: httpx.AsyncClient) -> None:
    row = ROWS.get(spec.name)
    assert row is not None, f"no matrix row for {spec.name}: add one to tests/access/matrix.py"
    problems = []
    outcomes: dict[str, str] = {}
    for who in PRINCIPALS:
        want = expected(spec, row, who)
        outcomes[who] = want
        for protocol in PROTOCOLS:
            params = await row.params(world)
            got = await CALLERS[protocol](http, spec, params, world.tokens[who])
            if got == "n/a":
                continue
            if got != want:
                kind = "UNEXPECTED SUCCESS" if got == "ok" else "mismatch"
                problems.append(f"{kind}: {who} over {protocol}: expected {want}, got {got}")
    RESULTS[spec.name] = outcomes
    assert not problems, f"{spec.name} ({spec.access.describe()}):\n" + "\n".join(problems)


async def test_invisible_objects_look_missing(world: World, http: httpx.AsyncClient) -> None:
    """What a principal may not see answers exactly like what does not exist."""
    token = world.tokens["user_b"]
    for hidden, missing in (
        ("/api/v1/users/alice@one.test", "/api/v1/users/nobody@one.test"),
        ("/api/v1/domains/two.test", "/api/v1/domains/none.test"),
    ):
        a = await http.get(
            hidden, headers=_headers(world.tokens["manager_1"] if "domains" in hidden else token)
        )
        b = await http.get(
            missing, headers=_headers(world.tokens["manager_1"] if "domains" in hidden else token)
        )
        assert a.status_code == b.status_code == 404
        strip = hidden.rsplit("/", 1)[1], missing.rsplit("/", 1)[1]
        assert a.json()["detail"].replace(strip[0], "X") == b.json()["detail"].replace(strip[1], "X")
        assert set(a.json()) - {"instance"} == set(b.json()) - {"instance"}


# -- the document --------------------------------------------------------------------------

SYMBOLS = {"ok": "✓", "unauthenticated": "401", "forbidden": "403", "not_found": "404"}


def render() -> str:
    lines = [
        "# Authorisation matrix",
        "",
        "Generated by `tests/access/test_matrix.py` from the registry and each method's access policy;",
        "do not edit. Every cell was checked over REST, JSON-RPC and XML-RPC (REST only where the",
        "method has a REST binding). ✓: allowed; 401: authentication required or credentials",
        "refused; 403: not allowed; 404: answered as if the object did not exist; other words are",
        "the error a permitted caller gets for the test's input (no such queue item, not a PGP key).",
        "",
        "Targets belong to user A in domain 1 unless the method creates or lists. The interop API",
        "appears because the test enables it (`interop_api`); it is off by default.",
        "",
        "| method | access | " + " | ".join(TITLES[p] for p in PRINCIPALS) + " |",
        "|---|---|" + "---|" * len(PRINCIPALS),
    ]
    for spec in METHODS:
        outcomes = RESULTS.get(spec.name)
        if outcomes is None:
            continue
        cells = [SYMBOLS.get(outcomes[p], outcomes[p]) for p in PRINCIPALS]
        lines.append(f"| `{spec.name}` | {spec.access.describe()} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def test_zz_matrix_document_is_up_to_date() -> None:
    if len(RESULTS) != len(METHODS):
        pytest.skip("the matrix tests did not all run (a -k selection?): the document is not checked")
    text = render()
    current = DOC.read_text() if DOC.exists() else ""
    if current != text:
        DOC.write_text(text)
        pytest.fail("docs/authorization-matrix.md was out of date and has been rewritten: commit it")
