"""Mailbox/get|changes|query|queryChanges|set, and the same labels seen over REST."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.client_mail.conftest import message
from tests.conftest import Actor
from tests.jmap.client import JmapClient
from tests.jmap.conftest import Deliver

pytestmark = pytest.mark.anyio


async def boxes(jmap: JmapClient) -> dict[str, dict[str, Any]]:
    got = await jmap.call("Mailbox/get", {"ids": None})
    return {m["name"]: m for m in got["list"]}


async def test_roles_and_counts_follow_delivery(jmap: JmapClient, deliver: Deliver) -> None:
    before = await boxes(jmap)
    assert before["Inbox"]["totalEmails"] == 0
    assert before["Spam"]["role"] == "junk"
    assert before["Starred"]["role"] == "flagged"
    assert before["Postponed"]["role"] is None
    await deliver(message(), "alice@example.org")
    after = await boxes(jmap)
    inbox = after["Inbox"]
    assert (inbox["totalEmails"], inbox["unreadEmails"], inbox["totalThreads"], inbox["unreadThreads"]) == (
        1,
        1,
        1,
        1,
    )


async def test_changes_after_delivery_and_set(jmap: JmapClient, deliver: Deliver) -> None:
    start = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    await deliver(message(), "alice@example.org")
    changes = await jmap.call("Mailbox/changes", {"sinceState": start})
    inbox = (await boxes(jmap))["Inbox"]["id"]
    assert inbox in changes["updated"]
    assert changes["created"] == []
    assert changes["hasMoreChanges"] is False
    assert changes["updatedProperties"] is None
    mid = changes["newState"]
    made = await jmap.call("Mailbox/set", {"create": {"k1": {"name": "Receipts"}}})
    new_id = made["created"]["k1"]["id"]
    assert made["oldState"] == mid
    assert made["newState"] != mid
    assert made["created"]["k1"]["role"] is None
    changes = await jmap.call("Mailbox/changes", {"sinceState": mid})
    assert changes["created"] == [new_id]
    assert changes["newState"] == made["newState"]
    gone = await jmap.call("Mailbox/set", {"destroy": [new_id]})
    assert gone["destroyed"] == [new_id]
    changes = await jmap.call("Mailbox/changes", {"sinceState": mid})
    assert changes["created"] == []
    assert changes["destroyed"] == []  # created and destroyed since: left out
    changes = await jmap.call("Mailbox/changes", {"sinceState": made["newState"]})
    assert changes["destroyed"] == [new_id]


async def test_changes_paging_and_bad_states(jmap: JmapClient) -> None:
    start = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    await jmap.call("Mailbox/set", {"create": {f"c{n}": {"name": f"L{n}"} for n in range(3)}})
    seen: list[str] = []
    since = start
    while True:
        page = await jmap.call("Mailbox/changes", {"sinceState": since, "maxChanges": 1})
        seen += page["created"]
        assert len(page["created"]) + len(page["updated"]) + len(page["destroyed"]) <= 1
        since = page["newState"]
        if not page["hasMoreChanges"]:
            break
    assert len(seen) == 3
    err = await jmap.error("Mailbox/changes", {"sinceState": "999999999"})
    assert err["type"] == "cannotCalculateChanges"
    err = await jmap.error("Mailbox/changes", {"sinceState": "garbage"})
    assert err["type"] == "cannotCalculateChanges"
    err = await jmap.error("Mailbox/changes", {"sinceState": start, "maxChanges": 0})
    assert err["type"] == "invalidArguments"


async def test_set_refusals(jmap: JmapClient, deliver: Deliver) -> None:
    before = await boxes(jmap)
    inbox = before["Inbox"]["id"]
    r = await jmap.call(
        "Mailbox/set",
        {
            "create": {
                "dup": {"name": "Inbox"},
                "nested": {"name": "Child", "parentId": inbox},
                "role": {"name": "Mine", "role": "archive"},
                "noname": {},
                "weird": {"name": "X", "colour": "red"},
            },
            "update": {inbox: {"name": "Renamed"}, "M999999": {"name": "x"}},
            "destroy": [inbox, "M999999"],
        },
    )
    assert r["created"] is None
    assert set(r["notCreated"]) == {"dup", "nested", "role", "noname", "weird"}
    assert all(e["type"] == "invalidProperties" for e in r["notCreated"].values())
    assert r["notCreated"]["nested"]["properties"] == ["parentId"]
    assert r["notUpdated"][inbox]["type"] == "forbidden"
    assert r["notUpdated"]["M999999"]["type"] == "notFound"
    assert r["notDestroyed"][inbox]["type"] == "forbidden"
    assert r["notDestroyed"]["M999999"]["type"] == "notFound"
    err = await jmap.error("Mailbox/set", {"ifInState": "1", "create": {"a": {"name": "A"}}})
    assert err["type"] == "stateMismatch"


async def test_destroy_with_email(
    jmap: JmapClient, client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(message(), "alice@example.org")
    made = await jmap.call("Mailbox/set", {"create": {"w": {"name": "Work"}}})
    work = made["created"]["w"]["id"]
    r = await client.post(
        "/api/v1/emails/batch",
        json={"action": "add_label", "label": "Work", "ids": [email_id]},
        headers=alice.headers,
    )
    assert r.status_code in (200, 207), r.text
    r2 = await jmap.call("Mailbox/set", {"destroy": [work]})
    assert r2["notDestroyed"][work]["type"] == "mailboxHasEmail"
    r3 = await jmap.call("Mailbox/set", {"destroy": [work], "onDestroyRemoveEmails": True})
    assert r3["destroyed"] == [work]
    # The email was in the inbox too: it stays there.
    assert (await boxes(jmap))["Inbox"]["totalEmails"] == 1


async def test_rename_and_creation_references(jmap: JmapClient) -> None:
    body = await jmap.request(
        [
            ["Mailbox/set", {"accountId": jmap.account_id, "create": {"n": {"name": "Travel"}}}, "0"],
            ["Mailbox/set", {"accountId": jmap.account_id, "update": {"#n": {"name": "Trips"}}}, "1"],
            ["Mailbox/get", {"accountId": jmap.account_id, "ids": ["#n"], "properties": ["name"]}, "2"],
        ],
        createdIds={},
    )
    [made, renamed, got] = body["methodResponses"]
    new_id = made[1]["created"]["n"]["id"]
    assert renamed[1]["updated"] == {"#n": None}
    assert got[1]["list"] == [{"id": new_id, "name": "Trips"}]
    assert body["createdIds"] == {"n": new_id}


async def test_query(jmap: JmapClient) -> None:
    await jmap.call("Mailbox/set", {"create": {"a": {"name": "alpha"}, "b": {"name": "Beta"}}})
    all_boxes = await boxes(jmap)
    q = await jmap.call("Mailbox/query", {"filter": {"hasAnyRole": False}, "sort": [{"property": "name"}]})
    names = [n for i in q["ids"] for n, b in all_boxes.items() if b["id"] == i]
    assert names == ["alpha", "Beta", "Postponed"]
    assert q["canCalculateChanges"] is True
    assert "total" not in q
    q = await jmap.call("Mailbox/query", {"filter": {"role": "inbox"}, "calculateTotal": True})
    assert q["ids"] == [all_boxes["Inbox"]["id"]]
    assert q["total"] == 1
    q = await jmap.call(
        "Mailbox/query",
        {"filter": {"operator": "NOT", "conditions": [{"hasAnyRole": True}, {"name": "post"}]}},
    )
    assert len(q["ids"]) == 2
    q = await jmap.call("Mailbox/query", {"position": 1, "limit": 2})
    assert q["position"] == 1
    assert len(q["ids"]) == 2
    err = await jmap.error("Mailbox/query", {"sort": [{"property": "totalEmails"}]})
    assert err["type"] == "unsupportedSort"
    err = await jmap.error("Mailbox/query", {"anchor": "M999999"})
    assert err["type"] == "anchorNotFound"
    err = await jmap.error("Mailbox/queryChanges", {"sinceQueryState": "garbage"})
    assert err["type"] == "cannotCalculateChanges"


async def test_query_changes(jmap: JmapClient) -> None:
    sort = [{"property": "name"}]
    flt = {"hasAnyRole": False}
    q = await jmap.call("Mailbox/query", {"filter": flt, "sort": sort})
    made = await jmap.call("Mailbox/set", {"create": {"a": {"name": "Aardvark"}, "z": {"name": "Zebra"}}})
    a, z = made["created"]["a"]["id"], made["created"]["z"]["id"]
    ch = await jmap.call(
        "Mailbox/queryChanges",
        {"sinceQueryState": q["queryState"], "filter": flt, "sort": sort, "calculateTotal": True},
    )
    assert sorted(ch["removed"]) == sorted([a, z])
    assert ch["added"] == [{"id": a, "index": 0}, {"id": z, "index": 2}]  # Postponed is between
    assert ch["total"] == 3
    err = await jmap.error(
        "Mailbox/queryChanges",
        {"sinceQueryState": q["queryState"], "filter": flt, "sort": sort, "maxChanges": 1},
    )
    assert err["type"] == "tooManyChanges"
    after = await jmap.call("Mailbox/query", {"filter": flt, "sort": sort})
    assert ch["newQueryState"] == after["queryState"]
    assert after["ids"][0] == a
    await jmap.call("Mailbox/set", {"destroy": [a]})
    ch = await jmap.call(
        "Mailbox/queryChanges", {"sinceQueryState": after["queryState"], "filter": flt, "sort": sort}
    )
    assert ch["removed"] == [a]
    assert ch["added"] == []


async def test_rest_and_jmap_see_the_same_labels(
    jmap: JmapClient, client: httpx.AsyncClient, alice: Actor
) -> None:
    start = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    r = await client.post("/api/v1/labels", json={"name": "FromRest"}, headers=alice.headers)
    assert r.status_code == 201, r.text
    rest_id = r.json()["id"]
    changes = await jmap.call("Mailbox/changes", {"sinceState": start})
    assert changes["created"] == [f"M{rest_id}"]
    made = await jmap.call("Mailbox/set", {"create": {"j": {"name": "FromJmap"}}})
    r = await client.get("/api/v1/labels", headers=alice.headers)
    names = {lb["name"]: lb["id"] for lb in r.json()}
    assert f"M{names['FromJmap']}" == made["created"]["j"]["id"]
    r = await client.patch(f"/api/v1/labels/{rest_id}", json={"name": "Renamed"}, headers=alice.headers)
    assert r.status_code == 200, r.text
    changes = await jmap.call("Mailbox/changes", {"sinceState": made["newState"]})
    assert changes["updated"] == [f"M{rest_id}"]


async def test_other_accounts_are_not_found(jmap: JmapClient, bob: Actor) -> None:
    err = await jmap.error("Mailbox/get", {"accountId": "u999999"})
    assert err["type"] == "accountNotFound"


async def test_ids_are_never_reused(jmap: JmapClient) -> None:
    """A mailbox destroyed and another created: a new id, never the old one (SQLite would
    hand the highest rowid out again without AUTOINCREMENT, migration 0014_jmap)."""
    first = (await jmap.call("Mailbox/set", {"create": {"a": {"name": "Once"}}}))["created"]["a"]["id"]
    await jmap.call("Mailbox/set", {"destroy": [first]})
    second = (await jmap.call("Mailbox/set", {"create": {"a": {"name": "Twice"}}}))["created"]["a"]["id"]
    assert second != first
    assert int(second[1:]) > int(first[1:])


async def test_mailbox_get_golden_shape(jmap: JmapClient) -> None:
    """RFC 8621 §2.6's example, with our ids and states: the same properties, types and the
    values a fresh account has."""
    body = await jmap.request([["Mailbox/get", {"accountId": jmap.account_id, "ids": None}, "0"]])
    [[name, args, call_id]] = body["methodResponses"]
    assert (name, call_id) == ("Mailbox/get", "0")
    assert set(args) == {"accountId", "state", "list", "notFound"}
    inbox = next(m for m in args["list"] if m["role"] == "inbox")
    expected = {
        "id": inbox["id"],
        "name": "Inbox",
        "parentId": None,
        "role": "inbox",
        "sortOrder": 1,
        "totalEmails": 0,
        "unreadEmails": 0,
        "totalThreads": 0,
        "unreadThreads": 0,
        "myRights": {
            "mayReadItems": True,
            "mayAddItems": True,
            "mayRemoveItems": True,
            "maySetSeen": True,
            "maySetKeywords": True,
            "mayCreateChild": False,
            "mayRename": False,
            "mayDelete": False,
            "maySubmit": True,
        },
        "isSubscribed": True,
    }
    assert inbox == expected
    assert [m["role"] for m in sorted(args["list"], key=lambda m: m["sortOrder"])] == [
        "inbox",
        "sent",
        "drafts",
        "junk",
        "trash",
        "archive",
        "flagged",
        "important",
        None,
    ]


async def test_nested_mailboxes_and_sort_order(
    jmap: JmapClient, alice: Actor, bob: Actor, client: httpx.AsyncClient
) -> None:
    start = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    r = await jmap.call(
        "Mailbox/set",
        {"create": {"w": {"name": "Work", "sortOrder": 5}, "c": {"name": "Clients", "parentId": "#w"}}},
    )
    work, clients = r["created"]["w"]["id"], r["created"]["c"]["id"]
    got = await boxes(jmap)
    assert (got["Work"]["parentId"], got["Work"]["sortOrder"], got["Work"]["myRights"]["mayCreateChild"]) == (
        None, 5, True,
    )  # fmt: skip
    assert (got["Clients"]["id"], got["Clients"]["parentId"]) == (clients, work)

    async def rest_names() -> set[str]:
        r = await client.get("/api/v1/labels", headers=alice.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        items = body["items"] if isinstance(body, dict) else body
        return {i["name"] for i in items}

    assert {"Work", "Work/Clients"} <= await rest_names()
    # A label made over REST with the delimiter is a child mailbox too.
    made = await client.post("/api/v1/labels", json={"name": "Work/Suppliers"}, headers=alice.headers)
    assert made.status_code in (200, 201), made.text
    assert (await boxes(jmap))["Suppliers"]["parentId"] == work
    # sortOrder alone changes the mailbox: Mailbox/changes lists it; system mailboxes too.
    mid = (await jmap.call("Mailbox/get", {"ids": []}))["state"]
    inbox = got["Inbox"]["id"]
    r = await jmap.call("Mailbox/set", {"update": {work: {"sortOrder": 1}, inbox: {"sortOrder": 50}}})
    assert set(r["updated"]) == {work, inbox}
    changes = await jmap.call("Mailbox/changes", {"sinceState": mid})
    assert set(changes["updated"]) == {work, inbox}
    got = await boxes(jmap)
    assert (got["Work"]["sortOrder"], got["Inbox"]["sortOrder"]) == (1, 50)
    # sortAsTree: children right after their parent.
    tree = await jmap.call("Mailbox/query", {"sortAsTree": True, "filter": {"hasAnyRole": False}})
    assert tree["ids"][:3] == [work, clients, got["Suppliers"]["id"]]
    only_top = await jmap.call("Mailbox/query", {"filter": {"parentId": None, "hasAnyRole": False}})
    assert [i for i in only_top["ids"] if i in (work, clients, got["Suppliers"]["id"])] == [work]
    # Renaming the parent renames the children's labels; moving a child to the top too.
    r = await jmap.call("Mailbox/set", {"update": {work: {"name": "Jobs"}, clients: {"parentId": None}}})
    assert set(r["updated"]) == {work, clients}
    names = await rest_names()
    assert {"Jobs", "Jobs/Suppliers", "Clients"} <= names
    assert "Work/Clients" not in names
    got = await boxes(jmap)
    assert (got["Clients"]["parentId"], got["Suppliers"]["parentId"]) == (None, work)
    # Refusals: a delimiter in a name, a cycle, a system parent, a parent with children.
    r = await jmap.call(
        "Mailbox/set",
        {
            "create": {"slash": {"name": "a/b"}, "sys": {"name": "x", "parentId": inbox}},
            "update": {work: {"parentId": got["Suppliers"]["id"]}, clients: {"sortOrder": -1}},
            "destroy": [work],
        },
    )
    assert r["notCreated"]["slash"]["properties"] == ["name"]
    assert r["notCreated"]["sys"]["properties"] == ["parentId"]
    assert r["notUpdated"][work]["properties"] == ["parentId"]
    assert r["notUpdated"][clients]["properties"] == ["sortOrder"]
    assert r["notDestroyed"][work]["type"] == "mailboxHasChild"
    # Another account cannot see or change them.
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    r = await bobs.call("Mailbox/set", {"update": {work: {"sortOrder": 9}}, "destroy": [clients]})
    assert r["notUpdated"][work]["type"] == "notFound"
    assert r["notDestroyed"][clients]["type"] == "notFound"
    err = await bobs.error("Mailbox/set", {"accountId": jmap.account_id, "update": {}})
    assert err["type"] == "accountNotFound"
    assert (await boxes(jmap))["Jobs"]["sortOrder"] == 1
    assert (await jmap.call("Mailbox/changes", {"sinceState": start}))["created"]
