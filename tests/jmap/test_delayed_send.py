"""Delayed send (RFC 8621 §7 ``sendAt``/``undoStatus``, RFC 4865 FUTURERELEASE): a submission
held with ``holdFor``/``holdUntil`` reaches nobody, a local recipient neither, before its
time; the outbound queue's worker (delivery/queue.py, the real pipeline) delivers it once its
time has come; a pending one canceled with ``undoStatus: canceled`` never arrives; one that
is not pending any more is ``cannotUnsend``. The server's clock is the tests' FakeClock,
moved by seconds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.delivery.queue import OutboundQueue
from mailroom.store import outbound as outbound_store
from tests.conftest import Actor
from tests.jmap.client import CORE, MAIL, SUBMISSION, JmapClient

pytestmark = pytest.mark.anyio

USING = [CORE, MAIL, SUBMISSION]


async def _send(jmap: JmapClient, subject: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """A draft to bob, submitted with these mailFrom parameters: the EmailSubmission/set answer."""
    boxes = {m["role"]: m["id"] for m in (await jmap.call("Mailbox/get", {"ids": None}))["list"]}
    [identity] = (await jmap.call("Identity/get", {"ids": None}, USING))["list"]
    draft = {
        "mailboxIds": {boxes["drafts"]: True},
        "keywords": {"$draft": True, "$seen": True},
        "from": [{"email": "alice@example.org"}],
        "to": [{"email": "bob@example.org"}],
        "subject": subject,
        "textBody": [{"partId": "t", "type": "text/plain"}],
        "bodyValues": {"t": {"value": "later"}},
    }
    made = await jmap.call("Email/set", {"create": {"d": draft}})
    envelope = {
        "mailFrom": {"email": "alice@example.org", "parameters": parameters},
        "rcptTo": [{"email": "bob@example.org", "parameters": None}],
    }
    create = {"identityId": identity["id"], "emailId": made["created"]["d"]["id"], "envelope": envelope}
    return await jmap.call("EmailSubmission/set", {"create": {"s": create}}, USING)


async def _subjects(bobs: JmapClient) -> list[str]:
    ids = (await bobs.call("Email/query", {}))["ids"]
    got = await bobs.call("Email/get", {"ids": ids, "properties": ["subject"]})
    return sorted(e["subject"] for e in got["list"])


async def _submission(jmap: JmapClient, sid: str) -> dict[str, Any]:
    [obj] = (await jmap.call("EmailSubmission/get", {"ids": [sid]}, USING))["list"]
    return dict(obj)


async def test_a_held_message_arrives_at_its_time_and_a_canceled_one_never(
    jmap: JmapClient,
    bob: Actor,
    admin: Actor,
    client: httpx.AsyncClient,
    mailroom: Mailroom,
    clock: FakeClock,
) -> None:
    session = await jmap.session()
    capability = session["accounts"][jmap.account_id]["accountCapabilities"][SUBMISSION]
    assert capability == {"maxDelayedSend": 604800, "submissionExtensions": {"FUTURERELEASE": ["604800"]}}
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    worker = OutboundQueue(mailroom.runtime)
    start = clock.now()

    held = await _send(jmap, "held for a minute", {"holdFor": "60"})
    s = held["created"]["s"]
    assert s["undoStatus"] == "pending"
    assert s["sendAt"] == (start + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (start + timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    doomed = (await _send(jmap, "canceled", {"holdUntil": until}))["created"]["s"]
    assert doomed["undoStatus"] == "pending"
    assert doomed["sendAt"] == until
    pending = await jmap.call("EmailSubmission/query", {"filter": {"undoStatus": "pending"}}, USING)
    assert pending["ids"] == [s["id"], doomed["id"]]
    later = (start + timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = await jmap.call("EmailSubmission/query", {"filter": {"after": later}}, USING)
    assert after["ids"] == [doomed["id"]]  # by sendAt

    # Nothing has arrived, and the queue has nothing due, local recipient included.
    await worker.run_once()
    assert await _subjects(bobs) == []
    async with mailroom.runtime.db.read() as tx:
        assert await outbound_store.due(tx, clock.now()) == []
    assert (await _submission(jmap, s["id"]))["deliveryStatus"]["bob@example.org"]["delivered"] == "queued"

    # Cancel the second while it is pending.
    state = (await jmap.call("EmailSubmission/get", {"ids": []}, USING))["state"]
    canceled = await jmap.call(
        "EmailSubmission/set", {"update": {doomed["id"]: {"undoStatus": "canceled"}}}, USING
    )
    assert canceled["updated"] == {doomed["id"]: None}
    assert (await _submission(jmap, doomed["id"]))["undoStatus"] == "canceled"
    changes = await jmap.call("EmailSubmission/changes", {"sinceState": state}, USING)
    assert changes["updated"] == [doomed["id"]]
    # An administrator's queue listing shows both: one waiting for its time, one canceled.
    listed = await client.get("/api/v1/queue", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    entries = {f"S{e['id']}": e for e in listed.json()["items"]}
    assert entries[s["id"]]["status"] == "queued"
    assert entries[s["id"]]["next_attempt_at"].startswith(s["sendAt"][:19])
    assert entries[doomed["id"]]["status"] == "done"
    assert [r["status"] for r in entries[doomed["id"]]["recipients"]] == ["canceled"]

    clock.advance(30)
    await worker.run_once()
    assert await _subjects(bobs) == []
    clock.advance(31)  # past the first one's time
    assert await worker.run_once() == 1
    assert await _subjects(bobs) == ["held for a minute"]
    sent = await _submission(jmap, s["id"])
    assert sent["undoStatus"] == "final"
    assert sent["deliveryStatus"]["bob@example.org"]["delivered"] == "yes"
    again = await jmap.call("EmailSubmission/set", {"update": {s["id"]: {"undoStatus": "canceled"}}}, USING)
    assert again["notUpdated"][s["id"]]["type"] == "cannotUnsend"

    clock.advance(600)  # long past the canceled one's time
    await worker.run_once()
    assert await _subjects(bobs) == ["held for a minute"]
    assert (await _submission(jmap, doomed["id"]))["undoStatus"] == "canceled"
    again = await jmap.call(
        "EmailSubmission/set", {"update": {doomed["id"]: {"undoStatus": "canceled"}}}, USING
    )
    assert again["notUpdated"][doomed["id"]]["type"] == "cannotUnsend"


async def test_an_immediate_send_is_final_and_bad_holds_are_refused(
    jmap: JmapClient, bob: Actor, client: httpx.AsyncClient
) -> None:
    bobs = JmapClient(client, bob.headers)
    await bobs.session()
    now = await _send(jmap, "at once", {"holdFor": "0"})
    assert now["created"]["s"]["undoStatus"] == "final"
    assert await _subjects(bobs) == ["at once"]
    refused = await jmap.call(
        "EmailSubmission/set", {"update": {now["created"]["s"]["id"]: {"undoStatus": "canceled"}}}, USING
    )
    assert refused["notUpdated"][now["created"]["s"]["id"]]["type"] == "cannotUnsend"
    for parameters in (
        {"holdFor": "604801"},  # beyond maxDelayedSend
        {"holdFor": "-5"},
        {"holdFor": "soon"},
        {"holdUntil": "2030-01-01T00:00:00"},  # no offset
        {"holdUntil": "2999-01-01T00:00:00Z"},
        {"holdUntil": "2026-01-01T00:00:00Z", "holdFor": "10"},
    ):
        result = await _send(jmap, "bad", parameters)
        assert result["notCreated"]["s"]["type"] == "invalidProperties", parameters
        assert result["notCreated"]["s"]["properties"] == ["envelope"]
    assert await _subjects(bobs) == ["at once"]
    other = await jmap.call("EmailSubmission/set", {"update": {"S999999": {"undoStatus": "canceled"}}}, USING)
    assert other["notUpdated"]["S999999"]["type"] == "notFound"
    sid = now["created"]["s"]["id"]
    wrong = await jmap.call("EmailSubmission/set", {"update": {sid: {"undoStatus": "final"}}}, USING)
    assert wrong["notUpdated"][sid]["type"] == "invalidProperties"
