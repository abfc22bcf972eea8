"""Request-level problems and method-level errors, result references, hostile inputs:
the right JMAP error every time, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Actor
from tests.jmap.client import CORE, MAIL, USING, JmapClient

pytestmark = pytest.mark.anyio

JMAP_ERROR = "urn:ietf:params:jmap:error:"


def problem(r: httpx.Response, kind: str, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"] == JMAP_ERROR + kind, body
    assert body["status"] == status
    return body


async def test_core_echo_golden(jmap: JmapClient) -> None:
    """RFC 8620 §4.1's example, request and response."""
    body = await jmap.request(
        [["Core/echo", {"hello": True, "high": 5}, "b3ff"]], using=["urn:ietf:params:jmap:core"]
    )
    assert body["methodResponses"] == [["Core/echo", {"hello": True, "high": 5}, "b3ff"]]
    assert isinstance(body["sessionState"], str)
    assert "createdIds" not in body


async def test_request_level_problems(client: httpx.AsyncClient, alice: Actor) -> None:
    h = alice.headers
    problem(await client.post("/jmap/api", content=b"{not json", headers=h), "notJSON")
    problem(
        await client.post("/jmap/api", content=b"{}", headers={**h, "content-type": "text/plain"}),
        "notJSON",
    )
    problem(await client.post("/jmap/api", json=[1, 2], headers=h), "notRequest")
    problem(await client.post("/jmap/api", json={"using": [CORE]}, headers=h), "notRequest")
    problem(
        await client.post("/jmap/api", json={"using": [CORE], "methodCalls": [["Core/echo", {}]]}, headers=h),
        "notRequest",
    )
    problem(
        await client.post("/jmap/api", json={"using": CORE, "methodCalls": []}, headers=h),
        "notRequest",
    )
    # RFC 8620 §3.6.1's example
    body = problem(
        await client.post(
            "/jmap/api", json={"using": ["https://example.com/apis/foobar"], "methodCalls": []}, headers=h
        ),
        "unknownCapability",
    )
    assert "https://example.com/apis/foobar" in body["detail"]
    calls = [["Core/echo", {}, str(n)] for n in range(65)]
    body = problem(
        await client.post("/jmap/api", json={"using": [CORE], "methodCalls": calls}, headers=h), "limit"
    )
    assert body["limit"] == "maxCallsInRequest"
    big = {"using": [CORE], "methodCalls": [["Core/echo", {"x": "a" * 10_000_001}, "0"]]}
    body = problem(await client.post("/jmap/api", json=big, headers=h), "limit")
    assert body["limit"] == "maxSizeRequest"
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    problem(
        await client.post(
            "/jmap/api", json={"using": [CORE], "methodCalls": [["Core/echo", {"d": deep}, "0"]]}, headers=h
        ),
        "notRequest",
    )
    very_deep = b"[" * 5000 + b"]" * 5000
    problem(await client.post("/jmap/api", content=very_deep, headers=h), "notJSON")


async def test_method_level_errors(jmap: JmapClient) -> None:
    err = await jmap.error("Nothing/get", {})
    assert err["type"] == "unknownMethod"
    err = await jmap.error("not a name", {})
    assert err["type"] == "unknownMethod"
    err = await jmap.error("Mailbox/get", {}, using=[CORE])  # mail capability not used
    assert err["type"] == "unknownMethod"
    err = await jmap.error("Mailbox/get", {"colour": "red"})
    assert err["type"] == "invalidArguments"
    assert "colour" in err["description"]
    err = await jmap.error("Mailbox/get", {"ids": "M1"})
    assert err["type"] == "invalidArguments"
    err = await jmap.error("Mailbox/get", {"accountId": "u0"})
    assert err["type"] == "accountNotFound"
    r = await jmap.request([["Mailbox/get", {}, "0"]])  # accountId missing
    assert r["methodResponses"][0][1]["type"] == "invalidArguments"
    err = await jmap.error("Mailbox/get", {"properties": ["name", "colour"]})
    assert err["type"] == "invalidArguments"


async def test_errors_do_not_stop_later_calls(jmap: JmapClient) -> None:
    body = await jmap.request(
        [
            ["Nothing/get", {}, "a"],
            ["Mailbox/get", {"accountId": jmap.account_id, "ids": []}, "b"],
        ]
    )
    [first, second] = body["methodResponses"]
    assert first[0] == "error"
    assert first[2] == "a"
    assert second[0] == "Mailbox/get"
    assert second[2] == "b"


async def test_result_references(jmap: JmapClient) -> None:
    acc = jmap.account_id
    body = await jmap.request(
        [
            ["Mailbox/query", {"accountId": acc, "filter": {"role": "inbox"}}, "t0"],
            [
                "Mailbox/get",
                {"accountId": acc, "#ids": {"resultOf": "t0", "name": "Mailbox/query", "path": "/ids"}},
                "t1",
            ],
            [
                "Mailbox/get",
                {"accountId": acc, "#ids": {"resultOf": "t1", "name": "Mailbox/get", "path": "/list/*/id"}},
                "t2",
            ],
        ]
    )
    [q, g1, g2] = body["methodResponses"]
    assert [m["id"] for m in g1[1]["list"]] == q[1]["ids"]
    assert g2[1]["list"] == g1[1]["list"]


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ({"resultOf": "nope", "name": "Mailbox/query", "path": "/ids"}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/get", "path": "/ids"}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/query", "path": "/nothing"}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/query", "path": "ids"}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/query", "path": "/ids/99"}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/query", "path": "/ids/01"}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/query", "path": "/ids" + "/*" * 40}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/query"}, "invalidResultReference"),
        ("t0", "invalidResultReference"),
        # The referred value has the wrong type for the argument.
        ({"resultOf": "t0", "name": "Mailbox/query", "path": "/total"}, "invalidResultReference"),
        ({"resultOf": "t0", "name": "Mailbox/query", "path": "/position"}, "invalidArguments"),
    ],
)
async def test_bad_result_references(jmap: JmapClient, ref: Any, kind: str) -> None:
    acc = jmap.account_id
    body = await jmap.request(
        [
            ["Mailbox/query", {"accountId": acc}, "t0"],
            ["Mailbox/get", {"accountId": acc, "#ids": ref}, "t1"],
        ]
    )
    answer = body["methodResponses"][1]
    assert answer[0] == "error"
    assert answer[1]["type"] == kind, answer


async def test_reference_to_itself_and_to_a_later_call(jmap: JmapClient) -> None:
    acc = jmap.account_id
    body = await jmap.request(
        [
            [
                "Mailbox/get",
                {"accountId": acc, "#ids": {"resultOf": "a", "name": "Mailbox/get", "path": "/ids"}},
                "a",
            ],
            [
                "Mailbox/get",
                {"accountId": acc, "#ids": {"resultOf": "c", "name": "Mailbox/get", "path": "/ids"}},
                "b",
            ],
            ["Mailbox/get", {"accountId": acc, "ids": []}, "c"],
        ]
    )
    kinds = [r[1].get("type") for r in body["methodResponses"]]
    assert kinds == ["invalidResultReference", "invalidResultReference", None]


async def test_both_plain_and_referenced_argument(jmap: JmapClient) -> None:
    acc = jmap.account_id
    body = await jmap.request(
        [
            ["Mailbox/query", {"accountId": acc}, "t0"],
            [
                "Mailbox/get",
                {
                    "accountId": acc,
                    "ids": [],
                    "#ids": {"resultOf": "t0", "name": "Mailbox/query", "path": "/ids"},
                },
                "t1",
            ],
        ]
    )
    assert body["methodResponses"][1][1]["type"] == "invalidArguments"


async def test_huge_ids(jmap: JmapClient) -> None:
    err = await jmap.error("Mailbox/get", {"ids": [f"M{n}" for n in range(1, 5000)]})
    assert err["type"] == "requestTooLarge"
    err = await jmap.error("Mailbox/get", {"ids": [f"M{n}" for n in range(1, 150_000)]})
    assert err["type"] == "invalidArguments"
    err = await jmap.error("Mailbox/set", {"destroy": [f"M{n}" for n in range(1, 2000)]})
    assert err["type"] == "requestTooLarge"


async def test_wide_star_reference_is_bounded(jmap: JmapClient) -> None:
    """A * path over a large earlier result gathers what is there, and the /get refuses it
    by its own limit: no blow-up."""
    acc = jmap.account_id
    big = {"x": [{"y": [f"M{n}" for n in range(100)]} for _ in range(100)]}
    body = await jmap.request(
        [
            ["Core/echo", big, "e"],
            [
                "Mailbox/get",
                {"accountId": acc, "#ids": {"resultOf": "e", "name": "Core/echo", "path": "/x/*/y"}},
                "g",
            ],
        ],
        using=USING,
    )
    answer = body["methodResponses"][1]
    assert answer[1]["type"] == "requestTooLarge"


async def test_unknown_creation_reference(jmap: JmapClient) -> None:
    got = await jmap.call("Mailbox/get", {"ids": ["#nothing"]})
    assert got["notFound"] == ["#nothing"]


async def test_created_ids_round_trip(jmap: JmapClient) -> None:
    inbox = (await jmap.call("Mailbox/query", {"filter": {"role": "inbox"}}))["ids"][0]
    body = await jmap.request(
        [["Mailbox/get", {"accountId": jmap.account_id, "ids": ["#old"], "properties": ["name"]}, "0"]],
        createdIds={"old": inbox},
    )
    assert body["createdIds"] == {"old": inbox}
    assert body["methodResponses"][0][1]["list"] == [{"id": inbox, "name": "Inbox"}]


async def test_concurrency_and_limits_in_session(jmap: JmapClient) -> None:
    s = await jmap.session()
    assert s["capabilities"][CORE]["maxCallsInRequest"] == 64
    assert MAIL in s["accounts"][jmap.account_id]["accountCapabilities"]


async def test_core_echo_resolves_result_references(jmap: JmapClient) -> None:
    """RFC 8620 §3.7: every method call's ``#`` arguments are resolved before it runs; Core/echo
    then echoes the resolved arguments (and a bad reference is invalidResultReference)."""
    acc = jmap.account_id
    body = await jmap.request(
        [
            ["Mailbox/query", {"accountId": acc, "filter": {"role": "inbox"}}, "q"],
            ["Core/echo", {"#ids": {"resultOf": "q", "name": "Mailbox/query", "path": "/ids"}, "a": 1}, "e"],
            ["Core/echo", {"#ids": {"resultOf": "q", "name": "Mailbox/query", "path": "/nothing"}}, "f"],
            [
                "Core/echo",
                {"ids": [], "#ids": {"resultOf": "q", "name": "Mailbox/query", "path": "/ids"}},
                "g",
            ],
        ]
    )
    [query, echo, bad, both] = body["methodResponses"]
    assert echo == ["Core/echo", {"ids": query[1]["ids"], "a": 1}, "e"]
    assert len(query[1]["ids"]) == 1
    assert bad[:1] == ["error"]
    assert bad[1]["type"] == "invalidResultReference"
    assert both[:1] == ["error"]
    assert both[1]["type"] == "invalidArguments"
