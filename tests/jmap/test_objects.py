"""Thread/get|changes, Identity/get|changes|set, VacationResponse/get|set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.client_mail.conftest import message
from tests.conftest import Actor
from tests.jmap.client import CORE, MAIL, SUBMISSION, VACATION, JmapClient
from tests.jmap.conftest import Deliver

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]


async def test_threads(jmap: JmapClient, deliver: Deliver) -> None:
    start = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    first = await deliver(message(message_id="<a@x>", subject="Trip"), "alice@example.org")
    second = await deliver(
        message(message_id="<b@x>", subject="Re: Trip", in_reply_to="<a@x>", references="<a@x>"),
        "alice@example.org",
    )
    changes = await jmap.call("Thread/changes", {"sinceState": start})
    [thread_id] = changes["created"]
    got = await jmap.call("Thread/get", {"ids": [thread_id, "T999999", "x"]})
    assert got["list"] == [{"id": thread_id, "emailIds": [f"e{first}", f"e{second}"]}]
    assert got["notFound"] == ["T999999", "x"]
    later = await jmap.call("Thread/changes", {"sinceState": changes["newState"]})
    assert later["created"] == later["updated"] == later["destroyed"] == []
    # ids null: every thread (RFC 8620 §5.1), while there are at most maxObjectsInGet.
    every = await jmap.call("Thread/get", {"ids": None, "properties": ["id"]})
    assert every["list"] == [{"id": thread_id}]
    assert every["notFound"] == []


@pytest.mark.parametrize("settings_overrides", [{"jmap_max_objects_in_get": 2}])
async def test_thread_get_null_ids_beyond_the_limit(
    jmap: JmapClient, bob: Actor, client: Any, deliver: Deliver
) -> None:
    for n in range(3):
        await deliver(message(message_id=f"<t{n}@x>", subject=f"Topic {n}"), "alice@example.org")
    await deliver(message(message_id="<b@x>", subject="Bob's"), "bob@example.org")
    err = await jmap.error("Thread/get", {"ids": None})
    assert err["type"] == "requestTooLarge"
    # Bob's one thread fits; Alice's are not his.
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    got = await bobs.call("Thread/get", {"ids": None})
    [thread] = got["list"]
    assert len(thread["emailIds"]) == 1
    err = await bobs.error("Thread/get", {"ids": None, "accountId": jmap.account_id})
    assert err["type"] == "accountNotFound"


async def test_identities(jmap: JmapClient, alice: Actor, call: Call) -> None:
    using = [CORE, MAIL, SUBMISSION]
    got = await jmap.call("Identity/get", {"ids": None}, using)
    [own] = got["list"]
    assert own["email"] == "alice@example.org"
    assert own["mayDelete"] is False
    assert (own["replyTo"], own["bcc"], own["textSignature"], own["htmlSignature"]) == (None, None, "", "")
    # A manager's grant is a created identity at the next state (states are counters).
    await call(
        "admin.identities.create",
        {"email": "alice@example.org", "identity": {"address": "team@example.org", "display_name": "Team"}},
    )
    changes = await jmap.call("Identity/changes", {"sinceState": got["state"]}, using)
    [team] = changes["created"]
    assert (changes["updated"], changes["destroyed"]) == ([], [])
    assert int(changes["newState"]) > int(got["state"])
    got2 = await jmap.call("Identity/get", {}, using)
    assert got2["state"] == changes["newState"]
    by_email = {i["email"]: i for i in got2["list"]}
    assert by_email["team@example.org"]["id"] == team
    assert by_email["team@example.org"]["name"] == "Team"
    same = await jmap.call("Identity/changes", {"sinceState": got2["state"]}, using)
    assert same["created"] == same["updated"] == same["destroyed"] == []
    signature = {
        "replyTo": [{"name": "Desk", "email": "desk@example.org"}],
        "bcc": [{"name": None, "email": "archive@example.org"}],
        "textSignature": "-- \nAlice",
        "htmlSignature": "<b>Alice</b>",
    }
    r = await jmap.call(
        "Identity/set",
        {
            "ifInState": got2["state"],
            "update": {team: {"name": "The Team"}, own["id"]: signature},
            "create": {"n": {"email": "boss@example.org"}},
            "destroy": [team],
        },
        using,
    )
    assert r["updated"] == {team: None, own["id"]: None}
    assert r["notCreated"]["n"]["type"] == "forbidden"
    assert r["notDestroyed"][team]["type"] == "forbidden"
    assert (r["oldState"], int(r["newState"]) > int(got2["state"])) == (got2["state"], True)
    got3 = await jmap.call("Identity/get", {"ids": [team, own["id"]]}, using)
    assert got3["list"][0]["name"] == "The Team"
    assert {k: got3["list"][1][k] for k in signature} == signature
    changes = await jmap.call("Identity/changes", {"sinceState": got2["state"]}, using)
    assert sorted(changes["updated"]) == sorted([team, own["id"]])
    # Bad values: invalidProperties naming the property; nothing changes.
    for bad in (
        {"replyTo": [{"email": "not an address"}]},
        {"bcc": "x@example.org"},
        {"textSignature": 5},
        {"htmlSignature": "x" * 20_001},
        {"email": "other@example.org"},
        {"color": "red"},
    ):
        r = await jmap.call("Identity/set", {"update": {own["id"]: bad}}, using)
        assert r["notUpdated"][own["id"]]["type"] == "invalidProperties", bad
        assert r["notUpdated"][own["id"]]["properties"] == list(bad), bad
    err = await jmap.error("Identity/set", {"ifInState": got["state"], "update": {}}, using)
    assert err["type"] == "stateMismatch"
    # Taken away by a manager: destroyed at the next state.
    await call("admin.identities.delete", {"email": "alice@example.org", "address": "team@example.org"})
    gone = await jmap.call("Identity/changes", {"sinceState": got3["state"]}, using)
    assert (gone["created"], gone["updated"], gone["destroyed"]) == ([], [], [team])
    # Created and taken away since: not mentioned at all.
    assert team not in (await jmap.call("Identity/changes", {"sinceState": got["state"]}, using))["destroyed"]
    for bogus in ("i0123456789abcdef", "999999"):
        err = await jmap.error("Identity/changes", {"sinceState": bogus}, using)
        assert err["type"] == "cannotCalculateChanges"
    # Without the submission capability the method is unknown.
    err = await jmap.error("Identity/get", {})
    assert err["type"] == "unknownMethod"


async def test_identities_are_the_callers_own(jmap: JmapClient, bob: Actor, client: Any) -> None:
    using = [CORE, MAIL, SUBMISSION]
    [own] = (await jmap.call("Identity/get", {}, using))["list"]
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    r = await bobs.call("Identity/set", {"update": {own["id"]: {"textSignature": "hijack"}}}, using)
    assert r["notUpdated"][own["id"]]["type"] == "notFound"
    err = await bobs.error("Identity/set", {"accountId": jmap.account_id, "update": {}}, using)
    assert err["type"] == "accountNotFound"
    err = await bobs.error("Identity/changes", {"accountId": jmap.account_id, "sinceState": "0"}, using)
    assert err["type"] == "accountNotFound"
    [again] = (await jmap.call("Identity/get", {}, using))["list"]
    assert again["textSignature"] == ""


async def test_vacation_response(jmap: JmapClient, call: Call) -> None:
    using = [CORE, VACATION]
    got = await jmap.call("VacationResponse/get", {}, using)
    assert got["list"] == [
        {
            "id": "singleton",
            "isEnabled": False,
            "fromDate": None,
            "toDate": None,
            "subject": None,
            "textBody": None,
            "htmlBody": None,
        }
    ]
    r = await jmap.call(
        "VacationResponse/set",
        {
            "update": {
                "singleton": {
                    "isEnabled": True,
                    "subject": "Away",
                    "textBody": "Back soon",
                    "fromDate": "2026-07-01T00:00:00Z",
                    "toDate": "2026-07-15T00:00:00Z",
                }
            }
        },
        using,
    )
    assert r["updated"] == {"singleton": None}
    assert r["newState"] != r["oldState"]
    got = await jmap.call("VacationResponse/get", {"ids": ["singleton"]}, using)
    v = got["list"][0]
    assert (v["isEnabled"], v["subject"], v["fromDate"], v["toDate"]) == (
        True,
        "Away",
        "2026-07-01T00:00:00Z",
        "2026-07-15T00:00:00Z",
    )
    user = await call("admin.users.get", {"email": "alice@example.org"})
    assert user["reply_enabled"] is True
    assert user["reply_start"] == "2026-07-01"
    assert user["reply_end"] == "2026-07-14"
    r = await jmap.call(
        "VacationResponse/set",
        {
            "update": {"singleton": {"htmlBody": "<p>x</p>"}, "other": {"isEnabled": False}},
            "create": {"c": {}},
            "destroy": ["singleton"],
        },
        using,
    )
    assert r["notUpdated"]["singleton"]["type"] == "invalidProperties"
    assert r["notUpdated"]["other"]["type"] == "notFound"
    assert r["notCreated"]["c"]["type"] == "singleton"
    assert r["notDestroyed"]["singleton"]["type"] == "singleton"
