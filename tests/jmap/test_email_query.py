"""Email/query (filters, operators, sorts, collapseThreads, anchors, totals) and
Email/queryChanges, with flags changed through the REST client API (cross-protocol)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.store import changelog
from mailroom.store.jmap_schema import jmap_header_marks
from tests.client_mail.conftest import message
from tests.conftest import Actor
from tests.jmap.client import JmapClient
from tests.jmap.conftest import Deliver

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]


async def _mail(deliver: Deliver) -> dict[str, str]:
    """Four emails; b and c are one thread; received in order a, b, c, d."""
    ids = {}
    specs = {
        "a": message(
            message_id="<a@x>", subject="Quarterly report", sender="Carol <carol@example.net>", pad_to=3000
        ),
        "b": message(message_id="<b@x>", subject="Lunch", body="Shall we try the noodle place?\r\n"),
        "c": message(message_id="<c@x>", subject="Re: Lunch", in_reply_to="<b@x>", references="<b@x>"),
        "d": message(
            message_id="<d@x>", subject="Zebra facts", to="dave@example.org, alice@example.org", pad_to=1500
        ),
    }  # fmt: skip
    for day, (key, raw) in enumerate(specs.items(), 1):
        ids[key] = (
            f"e{await deliver(raw, 'alice@example.org', received_at=datetime(2026, 3, day, tzinfo=UTC))}"
        )
    return ids


async def _ids(jmap: JmapClient, **args: Any) -> list[str]:
    return list((await jmap.call("Email/query", args))["ids"])


async def test_filters(jmap: JmapClient, deliver: Deliver, alice: Actor, call: Call) -> None:
    e = await _mail(deliver)
    newest = [e["d"], e["c"], e["b"], e["a"]]
    assert await _ids(jmap) == newest
    boxes = {m["role"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}
    assert await _ids(jmap, filter={"inMailbox": boxes["inbox"]}) == newest
    assert await _ids(jmap, filter={"inMailbox": boxes["trash"]}) == []
    assert await _ids(jmap, filter={"inMailboxOtherThan": [boxes["inbox"]]}) == []
    assert await _ids(jmap, filter={"after": "2026-03-02T00:00:00Z", "before": "2026-03-04T00:00:00Z"}) == [
        e["c"],
        e["b"],
    ]
    assert await _ids(jmap, filter={"minSize": 2500}) == [e["a"]]
    assert await _ids(jmap, filter={"maxSize": 1000}) == [e["c"], e["b"]]
    assert await _ids(jmap, filter={"subject": "lunch"}) == [e["c"], e["b"]]
    assert await _ids(jmap, filter={"body": "noodle"}) == [e["b"]]
    assert await _ids(jmap, filter={"text": "zebra"}) == [e["d"]]
    assert await _ids(jmap, filter={"from": "carol"}) == [e["a"]]
    assert await _ids(jmap, filter={"to": "dave@example.org"}) == [e["d"]]
    # Flags set over REST are JMAP keywords.
    await call("mail.emails.batch", {"ids": [int(e["b"][1:])], "action": "read"}, as_=alice)
    await call("mail.emails.batch", {"ids": [int(e["a"][1:])], "action": "star"}, as_=alice)
    assert await _ids(jmap, filter={"hasKeyword": "$seen"}) == [e["b"]]
    assert await _ids(jmap, filter={"notKeyword": "$seen"}) == [e["d"], e["c"], e["a"]]
    assert await _ids(jmap, filter={"hasKeyword": "$flagged"}) == [e["a"]]
    assert await _ids(jmap, filter={"hasKeyword": "$custom"}) == []
    assert await _ids(jmap, filter={"someInThreadHaveKeyword": "$seen"}) == [e["c"], e["b"]]
    assert await _ids(jmap, filter={"allInThreadHaveKeyword": "$seen"}) == []
    assert await _ids(jmap, filter={"noneInThreadHaveKeyword": "$seen"}) == [e["d"], e["a"]]
    assert await _ids(jmap, filter={"hasAttachment": True}) == []
    assert await _ids(
        jmap, filter={"operator": "OR", "conditions": [{"subject": "zebra"}, {"hasKeyword": "$flagged"}]}
    ) == [e["d"], e["a"]]
    assert await _ids(jmap, filter={"operator": "NOT", "conditions": [{"subject": "lunch"}]}) == [
        e["d"],
        e["a"],
    ]
    unseen = {"operator": "NOT", "conditions": [{"hasKeyword": "$seen"}]}
    both = {"operator": "AND", "conditions": [{"subject": "lunch"}, unseen]}
    assert await _ids(jmap, filter=both) == [e["c"]]
    # header (RFC 8621 §4.4.1): present, or its decoded value contains the text (any case).
    assert await _ids(jmap, filter={"header": ["message-id"]}) == newest
    assert await _ids(jmap, filter={"header": ["Subject", "ZEBRA"]}) == [e["d"]]
    assert await _ids(jmap, filter={"header": ["X-Foo"]}) == []
    assert await _ids(jmap, filter={"operator": "NOT", "conditions": [{"header": ["Subject", "lunch"]}]}) == [
        e["d"],
        e["a"],
    ]
    both = {"operator": "AND", "conditions": [{"header": ["Subject", "lunch"]}, {"header": ["In-Reply-To"]}]}
    assert await _ids(jmap, filter=both) == [e["c"]]
    for bad in ([], ["Bad Name"], ["a", "b", "c"]):
        err = await jmap.error("Email/query", {"filter": {"header": bad}})
        assert err["type"] == "invalidArguments", bad
    err = await jmap.error("Email/query", {"filter": {"bogus": 1}})
    assert err["type"] == "invalidArguments"


async def test_header_filter_sees_only_the_account(jmap: JmapClient, bob: Actor, deliver: Deliver) -> None:
    await deliver(message(message_id="<bob@x>", subject="Secret plans"), "bob@example.org")
    mine = f"e{await deliver(message(message_id='<al@x>', subject='Open plans'), 'alice@example.org')}"
    assert await _ids(jmap, filter={"header": ["Subject", "plans"]}) == [mine]
    assert await _ids(jmap, filter={"header": ["Subject", "secret"]}) == []
    got = await jmap.call(
        "SearchSnippet/get", {"filter": {"header": ["Subject", "plans"]}, "emailIds": [mine]}
    )
    assert [s["emailId"] for s in got["list"]] == [mine]


async def test_header_filter_reads_each_message_once(
    jmap: JmapClient, deliver: Deliver, mailroom: Mailroom
) -> None:
    """The header fields are read into the database once per message: later queries answer
    from there (even with the message file gone), and mail that arrives later is read at the
    next header query. Encoded words are decoded, values compared in any case."""
    tagged = message(
        message_id="<t@x>", subject="Tagged", headers={"X-Tracker": "=?utf-8?q?Caf=C3=A9_ORDER_42?="}
    )
    first = f"e{await deliver(tagged, 'alice@example.org')}"
    await deliver(message(message_id="<u@x>", subject="Untagged"), "alice@example.org")
    assert await _ids(jmap, filter={"header": ["x-tracker", "café order"]}) == [first]
    [record] = (await jmap.call("Email/get", {"ids": [first], "properties": ["blobId"]}))["list"]
    mailroom.runtime.blobs.path(record["blobId"][1:]).unlink()  # read once: not needed again
    assert await _ids(jmap, filter={"header": ["X-TRACKER"]}) == [first]
    assert await _ids(jmap, filter={"header": ["X-Tracker", "order 43"]}) == []
    later = message(message_id="<v@x>", subject="Later", headers={"X-Tracker": "order 43"})
    second = f"e{await deliver(later, 'alice@example.org')}"
    assert await _ids(jmap, filter={"header": ["X-Tracker", "ORDER 4"]}) == [second, first]
    total = await jmap.call("Email/query", {"filter": {"header": ["x-tracker"]}, "calculateTotal": True})
    assert total["total"] == 2


async def test_sorts_collapse_window_total(jmap: JmapClient, deliver: Deliver) -> None:
    e = await _mail(deliver)
    assert await _ids(jmap, sort=[{"property": "receivedAt", "isAscending": True}]) == [
        e["a"],
        e["b"],
        e["c"],
        e["d"],
    ]
    assert (await _ids(jmap, sort=[{"property": "size", "isAscending": False}]))[:2] == [e["a"], e["d"]]
    assert await _ids(jmap, sort=[{"property": "subject", "isAscending": True}]) == [
        e["b"],
        e["a"],
        e["c"],
        e["d"],
    ]
    err = await jmap.error("Email/query", {"sort": [{"property": "nope"}]})
    assert err["type"] == "unsupportedSort"
    got = await jmap.call("Email/query", {"collapseThreads": True, "calculateTotal": True})
    assert got["ids"] == [e["d"], e["c"], e["a"]]
    assert got["total"] == 3
    assert got["canCalculateChanges"] is True
    got = await jmap.call("Email/query", {"position": 1, "limit": 2, "calculateTotal": True})
    assert (got["position"], got["ids"], got["total"]) == (1, [e["c"], e["b"]], 4)
    got = await jmap.call("Email/query", {"anchor": e["b"], "anchorOffset": -1, "limit": 2})
    assert (got["position"], got["ids"]) == (1, [e["c"], e["b"]])
    got = await jmap.call("Email/query", {"position": -1})
    assert got["ids"] == [e["a"]]
    err = await jmap.error("Email/query", {"anchor": "e999999"})
    assert err["type"] == "anchorNotFound"


def _apply(old: list[str], changes: dict[str, Any]) -> list[str]:
    """A client's cached results brought up to date with a queryChanges answer (RFC 8620 §5.6)."""
    removed = set(changes["removed"])
    out = [i for i in old if i not in removed]
    for item in sorted(changes["added"], key=lambda a: a["index"]):
        out.insert(item["index"], item["id"])
    return out


QUERIES: list[dict[str, Any]] = [
    {},
    {"collapseThreads": True},
    {"filter": {"notKeyword": "$seen"}},
    {"filter": {"someInThreadHaveKeyword": "$flagged"}},
    {"filter": {"subject": "lunch"}, "sort": [{"property": "receivedAt", "isAscending": True}]},
    {
        "sort": [{"property": "hasKeyword", "keyword": "$flagged", "isAscending": False}],
        "collapseThreads": True,
    },
]


async def test_query_changes(jmap: JmapClient, deliver: Deliver, alice: Actor, call: Call) -> None:
    e = await _mail(deliver)
    before = {n: await jmap.call("Email/query", q) for n, q in enumerate(QUERIES)}
    same = await jmap.call(
        "Email/queryChanges", {"sinceQueryState": before[0]["queryState"], "calculateTotal": True}
    )
    assert (same["added"], same["removed"], same["total"]) == ([], [], 4)
    # Changes by every road: new mail in a thread (it now stands for the thread), flags over
    # REST, a keyword and a destroy over JMAP.
    new = await deliver(
        message(message_id="<e@x>", subject="Re: Lunch", in_reply_to="<c@x>", references="<b@x> <c@x>"),
        "alice@example.org",
        received_at=datetime(2026, 3, 9, tzinfo=UTC),
    )
    await call("mail.emails.batch", {"ids": [int(e["a"][1:])], "action": "read"}, as_=alice)
    await jmap.call("Email/set", {"update": {e["b"]: {"keywords/$flagged": True}}, "destroy": [e["d"]]})
    for n, q in enumerate(QUERIES):
        now = await jmap.call("Email/query", q)
        changes = await jmap.call(
            "Email/queryChanges", {**q, "sinceQueryState": before[n]["queryState"], "calculateTotal": True}
        )
        assert changes["oldQueryState"] == before[n]["queryState"]
        assert changes["newQueryState"] == now["queryState"]
        assert _apply(before[n]["ids"], changes) == now["ids"], q
        assert changes["total"] == len(now["ids"])
    assert (
        f"e{new}"
        in (await jmap.call("Email/queryChanges", {"sinceQueryState": before[0]["queryState"]}))["removed"]
    )
    # upToId: with a filter and sort on what never changes, nothing past it is added.
    sort = [{"property": "receivedAt", "isAscending": True}]
    old = await jmap.call("Email/query", {"sort": sort})
    await deliver(
        message(message_id="<f@x>"), "alice@example.org", received_at=datetime(2026, 3, 10, tzinfo=UTC)
    )
    changes = await jmap.call(
        "Email/queryChanges", {"sort": sort, "sinceQueryState": old["queryState"], "upToId": old["ids"][0]}
    )
    assert changes["added"] == []
    changes = await jmap.call("Email/queryChanges", {"sort": sort, "sinceQueryState": old["queryState"]})
    assert [a["index"] for a in changes["added"]] == [len(old["ids"])]
    # Errors: too many changes, states never given, bad arguments, another account.
    err = await jmap.error(
        "Email/queryChanges", {"sinceQueryState": before[0]["queryState"], "maxChanges": 1}
    )
    assert err["type"] == "tooManyChanges"
    for bogus in ("999999999", "nope"):
        err = await jmap.error("Email/queryChanges", {"sinceQueryState": bogus})
        assert err["type"] == "cannotCalculateChanges"
    err = await jmap.error("Email/queryChanges", {"sinceQueryState": "1", "maxChanges": 0})
    assert err["type"] == "invalidArguments"
    err = await jmap.error("Email/queryChanges", {"sinceQueryState": "1", "sort": [{"property": "nope"}]})
    assert err["type"] == "unsupportedSort"
    err = await jmap.error("Email/queryChanges", {"sinceQueryState": "1", "accountId": "u999999"})
    assert err["type"] == "accountNotFound"


async def test_search_snippets(jmap: JmapClient, deliver: Deliver) -> None:
    e = await _mail(deliver)
    either = {"operator": "OR", "conditions": [{"text": "noodle"}, {"subject": "lunch"}]}
    got = await jmap.call("SearchSnippet/get", {"filter": either, "emailIds": [e["b"], e["a"], "e999999"]})
    by_id = {s["emailId"]: s for s in got["list"]}
    assert by_id[e["b"]]["subject"] == "<mark>Lunch</mark>"
    assert by_id[e["b"]]["preview"] == "Shall we try the <mark>noodle</mark> place?"
    assert by_id[e["a"]] == {"emailId": e["a"], "subject": None, "preview": None}
    assert got["notFound"] == ["e999999"]
    plain = await jmap.call("SearchSnippet/get", {"emailIds": [e["b"]]})
    assert plain["list"] == [{"emailId": e["b"], "subject": None, "preview": None}]


async def test_pages_from_the_start_agree_with_the_whole_result(jmap: JmapClient, deliver: Deliver) -> None:
    """The windowed path (a page from position 0) and the full one give the same answer."""
    for n in range(30):
        thread = n % 7
        raw = message(
            message_id=f"<p{n}@x>",
            subject=f"Thread {thread}",
            in_reply_to=f"<p{n - 7}@x>" if n >= 7 else None,
            references=f"<p{n - 7}@x>" if n >= 7 else None,
        )
        await deliver(raw, "alice@example.org", received_at=datetime(2026, 3, 1, 0, n, tzinfo=UTC))
    boxes = {m["role"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}
    for collapse in (False, True):
        args = {"filter": {"inMailbox": boxes["inbox"]}, "collapseThreads": collapse, "calculateTotal": True}
        whole = await jmap.call("Email/query", {**args, "position": -1000})
        assert whole["position"] == 0
        for position, limit in ((0, 3), (2, 4), (0, 50), (5, 1)):
            page = await jmap.call("Email/query", {**args, "position": position, "limit": limit})
            assert page["ids"] == whole["ids"][position : position + limit]
            assert page["total"] == whole["total"] == (7 if collapse else 30)


async def _mark(mailroom: Mailroom, alice: Actor) -> tuple[int | None, int]:
    """The account's header mark and its state."""
    assert alice.principal.user_id is not None
    user_id = alice.principal.user_id
    async with mailroom.runtime.db.read() as tx:
        mark = await tx.scalar(
            select(jmap_header_marks.c.modseq).where(jmap_header_marks.c.user_id == user_id)
        )
        return mark, (await changelog.state(tx, user_id)).modseq


async def test_header_filter_checks_only_what_came_since_its_mark(
    jmap: JmapClient, deliver: Deliver, mailroom: Mailroom, alice: Actor, call: Call
) -> None:
    """The account's mark (the state up to which every email was read) makes the check
    before a header query one range of the change log: what arrived since is still found at
    once, and a draft whose message is replaced is read again."""
    first = f"e{await deliver(message(message_id='<a@x>', subject='Alpha'), 'alice@example.org')}"
    assert await _ids(jmap, filter={"header": ["Subject", "alpha"]}) == [first]
    mark, state = await _mark(mailroom, alice)
    assert mark == state
    # An email read once is not read again: with its file gone, later queries still answer.
    [record] = (await jmap.call("Email/get", {"ids": [first], "properties": ["blobId"]}))["list"]
    mailroom.runtime.blobs.path(record["blobId"][1:]).unlink()
    # Delivered right after: found by the very next query.
    second = f"e{await deliver(message(message_id='<b@x>', subject='Beta'), 'alice@example.org')}"
    assert await _ids(jmap, filter={"header": ["Subject", "beta"]}) == [second]
    assert await _ids(jmap, filter={"header": ["Subject", "alpha"]}) == [first]
    mark, state = await _mark(mailroom, alice)
    assert mark == state
    # Nothing new: the mark stays, the answer too.
    assert await _ids(jmap, filter={"header": ["Subject", "a"]}) == [second, first]
    assert await _mark(mailroom, alice) == (mark, state)
    # A draft (made over JMAP) edited over REST gets another message: its new Subject is found.
    boxes = {m["role"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}
    draft = {
        "mailboxIds": {boxes["drafts"]: True},
        "keywords": {"$draft": True},
        "from": [{"email": "alice@example.org"}],
        "subject": "Gamma",
    }
    made = (await jmap.call("Email/set", {"create": {"d": draft}}))["created"]["d"]["id"]
    assert await _ids(jmap, filter={"header": ["Subject", "gamma"]}) == [made]
    await call("mail.emails.update", {"id": int(made[1:]), "subject": "Delta"}, as_=alice)
    assert (await _mark(mailroom, alice))[0] == -1  # forgotten: the next query checks all
    assert await _ids(jmap, filter={"header": ["Subject", "delta"]}) == [made]
    assert await _ids(jmap, filter={"header": ["Subject", "gamma"]}) == []
    mark, state = await _mark(mailroom, alice)
    assert mark == state
