"""EmailSubmission through the outbound pipeline: a draft made with Email/set is sent by
EmailSubmission/set, reaches a local mailbox through ingest, and onSuccessUpdateEmail moves
it to Sent; the sender rule refuses a From the user may not send as."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.store import outbound as outbound_store
from tests.conftest import Actor
from tests.jmap.client import CORE, MAIL, SUBMISSION, JmapClient

pytestmark = pytest.mark.anyio

USING = [CORE, MAIL, SUBMISSION]
Call = Callable[..., Awaitable[Any]]


async def _setup(jmap: JmapClient) -> tuple[dict[str, str], str]:
    boxes = {m["role"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}
    [identity] = (await jmap.call("Identity/get", {"ids": None}, USING))["list"]
    return boxes, identity["id"]


def _draft(boxes: dict[str, str], sender: str) -> dict[str, Any]:
    return {
        "mailboxIds": {boxes["drafts"]: True},
        "keywords": {"$draft": True, "$seen": True},
        "from": [{"name": "Alice", "email": sender}],
        "to": [{"name": "Bob", "email": "bob@example.org"}],
        "bcc": [{"name": None, "email": "hidden@elsewhere.example"}],
        "subject": "Sent over JMAP",
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "Hello Bob"}},
    }


async def test_send_a_draft(
    jmap: JmapClient, bob: Actor, client: httpx.AsyncClient, mailroom: Mailroom, clock: FakeClock
) -> None:
    boxes, identity = await _setup(jmap)
    before = await jmap.call("EmailSubmission/query", {}, USING)
    assert (before["ids"], before["canCalculateChanges"]) == ([], True)
    body = await jmap.request(
        [
            [
                "Email/set",
                {"accountId": jmap.account_id, "create": {"d": _draft(boxes, "alice@example.org")}},
                "0",
            ],
            [
                "EmailSubmission/set",
                {
                    "accountId": jmap.account_id,
                    "create": {"s": {"identityId": identity, "emailId": "#d"}},
                    "onSuccessUpdateEmail": {
                        "#s": {
                            f"mailboxIds/{boxes['drafts']}": None,
                            f"mailboxIds/{boxes['sent']}": True,
                            "keywords/$draft": None,
                        }
                    },
                },
                "1",
            ],
        ],
        USING,
    )
    responses = body["methodResponses"]
    assert [r[0] for r in responses] == ["Email/set", "EmailSubmission/set", "Email/set"]
    email_id = responses[0][1]["created"]["d"]["id"]
    submission = responses[1][1]["created"]["s"]
    assert submission["undoStatus"] == "final"
    assert responses[2][1]["updated"] == {email_id: None}
    [sent] = (await jmap.call("Email/get", {"ids": [email_id], "properties": ["mailboxIds", "keywords"]}))[
        "list"
    ]
    assert sent["mailboxIds"] == {boxes["sent"]: True}
    assert sent["keywords"] == {"$seen": True}
    # Bob got it through ingest, without the Bcc line.
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    [bob_email] = (await bobs.call("Email/query", {}))["ids"]
    [got_mail] = (await bobs.call("Email/get", {"ids": [bob_email], "properties": ["subject", "headers"]}))[
        "list"
    ]
    assert got_mail["subject"] == "Sent over JMAP"
    assert "Bcc" not in {h["name"] for h in got_mail["headers"]}
    got = await jmap.call("EmailSubmission/get", {"ids": None}, USING)
    [obj] = got["list"]
    assert obj["id"] == submission["id"]
    assert obj["emailId"] == email_id
    assert obj["identityId"] == identity
    assert [r["email"] for r in obj["envelope"]["rcptTo"]] == ["bob@example.org", "hidden@elsewhere.example"]
    assert obj["deliveryStatus"]["bob@example.org"]["delivered"] == "yes"
    assert obj["deliveryStatus"]["hidden@elsewhere.example"]["delivered"] == "queued"
    query = await jmap.call("EmailSubmission/query", {"filter": {"emailIds": [email_id]}}, USING)
    assert query["ids"] == [submission["id"]]
    same = await jmap.call("EmailSubmission/changes", {"sinceState": got["state"]}, USING)
    assert same["created"] == same["updated"] == []
    # States are counters: the submission was created since the first query.
    made = await jmap.call("EmailSubmission/changes", {"sinceState": before["queryState"]}, USING)
    assert (made["created"], made["newState"]) == ([submission["id"]], got["state"])
    moved = await jmap.call(
        "EmailSubmission/queryChanges",
        {"sinceQueryState": before["queryState"], "calculateTotal": True},
        USING,
    )
    assert (moved["added"], moved["total"]) == ([{"id": submission["id"], "index": 0}], 1)
    # The queue gives up on the outside recipient: an updated submission at the next state.
    async with mailroom.runtime.db.write() as tx:
        [outside] = [
            r
            for r in await outbound_store.recipients(tx, int(obj["id"][1:]))
            if r.address != "bob@example.org"
        ]
        failure = {"status": "failed", "code": 550, "reply": "550 5.1.1 no such user", "attempted": True}
        await outbound_store.set_recipient(tx, outside.id, now=clock.now(), **failure)
    later = await jmap.call("EmailSubmission/changes", {"sinceState": got["state"]}, USING)
    assert (later["created"], later["updated"]) == ([], [submission["id"]])
    [failed] = (await jmap.call("EmailSubmission/get", {"ids": [obj["id"]]}, USING))["list"]
    assert failed["deliveryStatus"]["hidden@elsewhere.example"]["delivered"] == "no"
    for bogus in ("s0", "999999"):
        err = await jmap.error("EmailSubmission/changes", {"sinceState": bogus}, USING)
        assert err["type"] == "cannotCalculateChanges"
    err = await jmap.error(
        "EmailSubmission/queryChanges", {"sinceQueryState": got["state"], "maxChanges": 0}, USING
    )
    assert err["type"] == "invalidArguments"
    bobs_view = await bobs.error(
        "EmailSubmission/changes", {"accountId": jmap.account_id, "sinceState": "0"}, USING
    )
    assert bobs_view["type"] == "accountNotFound"
    r = await jmap.call("EmailSubmission/set", {"update": {obj["id"]: {"undoStatus": "canceled"}}}, USING)
    assert r["notUpdated"][obj["id"]]["type"] == "cannotUnsend"


async def test_the_sender_rule_applies(jmap: JmapClient, bob: Actor) -> None:
    boxes, identity = await _setup(jmap)
    made = await jmap.call("Email/set", {"create": {"d": _draft(boxes, "bob@example.org")}})
    email_id = made["created"]["d"]["id"]
    r = await jmap.call(
        "EmailSubmission/set",
        {"create": {"s": {"identityId": identity, "emailId": email_id}}, "onSuccessDestroyEmail": ["#s"]},
        USING,
    )
    assert r["notCreated"]["s"]["type"] == "forbiddenFrom"
    assert (await jmap.call("Email/get", {"ids": [email_id], "properties": ["id"]}))["list"] != []
    r = await jmap.call(
        "EmailSubmission/set", {"create": {"s": {"identityId": "Inope", "emailId": email_id}}}, USING
    )
    assert r["notCreated"]["s"]["type"] == "invalidProperties"


async def test_reads_take_no_write_lock(jmap: JmapClient, mailroom: Mailroom) -> None:
    """Identity and EmailSubmission reads compare with what was last seen in a read
    transaction: while another transaction holds the write lock (and, on PostgreSQL, the
    state tables), they answer, with the same states."""
    boxes, identity = await _setup(jmap)
    draft = await jmap.call("Email/set", {"create": {"d": _draft(boxes, "alice@example.org")}})
    email_id = draft["created"]["d"]["id"]
    sent = await jmap.call(
        "EmailSubmission/set", {"create": {"s": {"identityId": identity, "emailId": email_id}}}, USING
    )
    submission = sent["created"]["s"]["id"]
    identities = await jmap.call("Identity/get", {}, USING)
    submissions = await jmap.call("EmailSubmission/get", {"ids": None}, USING)
    async with mailroom.runtime.db.write() as tx:
        if tx.dialect == "postgresql":
            await tx.execute(text("LOCK TABLE jmap_type_states, jmap_objects_seen IN EXCLUSIVE MODE"))
        reads = {
            "Identity/get": await asyncio.wait_for(jmap.call("Identity/get", {}, USING), 10),
            "Identity/changes": await asyncio.wait_for(
                jmap.call("Identity/changes", {"sinceState": identities["state"]}, USING), 10
            ),
            "EmailSubmission/get": await asyncio.wait_for(
                jmap.call("EmailSubmission/get", {"ids": None}, USING), 10
            ),
            "EmailSubmission/changes": await asyncio.wait_for(
                jmap.call("EmailSubmission/changes", {"sinceState": submissions["state"]}, USING), 10
            ),
            "EmailSubmission/query": await asyncio.wait_for(
                jmap.call("EmailSubmission/query", {}, USING), 10
            ),
        }
    assert reads["Identity/get"] == identities
    assert reads["Identity/changes"]["newState"] == identities["state"]
    assert reads["Identity/changes"]["created"] == reads["Identity/changes"]["updated"] == []
    assert reads["EmailSubmission/get"] == submissions
    assert [o["id"] for o in submissions["list"]] == [submission]
    assert reads["EmailSubmission/changes"]["newState"] == submissions["state"]
    assert reads["EmailSubmission/query"]["ids"] == [submission]
    assert reads["EmailSubmission/query"]["queryState"] == submissions["state"]
