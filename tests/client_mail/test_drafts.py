"""Drafts edited (PATCH with If-Match / if_version), sent and deleted; DELETE of any email.

Issue 11 §6: ``PATCH /emails/{id}``, ``DELETE /emails/{id}`` and ``POST /emails/{id}/send``
answered 405, 405 and 404. Over REST, JSON-RPC and XML-RPC, on the engine the run uses.
"""

from __future__ import annotations

import asyncio
import xmlrpc.client
from email import message_from_bytes
from email.policy import default
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.store.schema import users
from tests.client_mail.conftest import Deliver, message, problem
from tests.conftest import Actor
from tests.rpc.conftest import jsonrpc, xmlrpc_call

pytestmark = pytest.mark.anyio


async def draft(client: httpx.AsyncClient, who: Actor, **fields: Any) -> int:
    body = {"to": ["Bob <bob@example.org>"], "subject": "Plan", "body": "First words.\n", **fields}
    r = await client.post("/api/v1/emails", json={**body, "draft": True}, headers=who.headers)
    assert r.status_code == 201, r.text
    return int(r.json()["email_id"])


async def patch(
    client: httpx.AsyncClient, who: Actor, email_id: int, if_match: str | None = None, **body: Any
) -> httpx.Response:
    headers = dict(who.headers)
    if if_match is not None:
        headers["If-Match"] = if_match
    return await client.patch(f"/api/v1/emails/{email_id}", json=body, headers=headers)


async def get(client: httpx.AsyncClient, who: Actor, email_id: int) -> httpx.Response:
    return await client.get(f"/api/v1/emails/{email_id}", headers=who.headers)


def etag(r: httpx.Response) -> str:
    """The ETag without the W/ our compression adds to a compressed body's."""
    return r.headers["etag"].removeprefix("W/")


async def used(mailroom: Mailroom, address: str) -> int:
    async with mailroom.runtime.db.read() as tx:
        return int(await tx.scalar(select(users.c.quota_bytes_used).where(users.c.email == address)))


async def subjects(client: httpx.AsyncClient, who: Actor, **params: str) -> list[str]:
    r = await client.get("/api/v1/threads", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return [t["subject"] for t in r.json()["threads"]]


# -- PATCH ---------------------------------------------------------------------------------


async def test_edit_a_draft_in_place(client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor) -> None:
    email_id = await draft(client, alice, cc=["carol@example.net"], html_body="<p>First words.</p>")
    before = (await get(client, alice, email_id)).json()
    r = await get(client, alice, email_id)
    assert etag(r) == '"1"'
    assert before["version"] == 1
    r = await patch(client, alice, email_id, if_match='"1"', subject="Plan v2", body="Better words.\n")
    assert r.status_code == 200, r.text
    after = r.json()
    assert etag(r) == '"2"'
    assert after["version"] == 2
    assert after["email_id"] == email_id
    assert after["thread_id"] == before["thread_id"]
    assert after["message_id"] == before["message_id"]
    assert after["labels"] == ["drafts"]
    assert after["is_draft"] is True
    assert after["subject"] == "Plan v2"
    assert after["text_body"].strip() == "Better words."
    # What was not given stays: recipients, the HTML part.
    assert after["to"] == [{"name": "Bob", "email": "bob@example.org"}]
    assert after["cc"] == [{"name": "", "email": "carol@example.net"}]
    assert "<p>First words.</p>" in after["html_body"]
    # The stored message, the search index, the thread and the quota follow.
    raw = (await client.get(f"/api/v1/emails/{email_id}/raw", headers=alice.headers)).content
    assert b"Subject: Plan v2" in raw
    assert after["size"] == len(raw)
    assert await used(mailroom, "alice@example.org") == len(raw)
    assert await subjects(client, alice, q="better") == ["Plan v2"]
    assert await subjects(client, alice, q="first") == []
    assert await subjects(client, alice, label="drafts") == ["Plan v2"]
    # Removing the HTML part, replacing the recipients.
    r = await patch(client, alice, email_id, html_body="", to=["dora@example.net"], cc=[])
    assert r.status_code == 200, r.text
    assert r.json()["html_body"] is None
    assert r.json()["to"] == [{"name": "", "email": "dora@example.net"}]
    assert r.json()["cc"] == []
    assert r.json()["version"] == 3


async def test_two_tabs_cannot_overwrite_each_other(client: httpx.AsyncClient, alice: Actor) -> None:
    email_id = await draft(client, alice)
    tab1 = etag(await get(client, alice, email_id))
    tab2 = tab1
    r = await patch(client, alice, email_id, if_match=tab1, subject="From tab 1")
    assert r.status_code == 200, r.text
    r = await patch(client, alice, email_id, if_match=tab2, subject="From tab 2")
    body = problem(r, 412, "precondition_failed")
    assert body["data"]["version"] == 2
    assert (await get(client, alice, email_id)).json()["subject"] == "From tab 1"
    # Reading again gives the version to send; a weak ETag (as compression makes it) counts.
    r = await patch(client, alice, email_id, if_match='W/"2"', subject="From tab 2, again")
    assert r.status_code == 200, r.text
    # The body's if_version works as If-Match does; without either the edit applies.
    problem(await patch(client, alice, email_id, subject="x", if_version=2), 412, "precondition_failed")
    assert (await patch(client, alice, email_id, subject="y", if_version=3)).status_code == 200
    assert (await patch(client, alice, email_id, subject="z")).json()["version"] == 5
    assert (await patch(client, alice, email_id, if_match="*", subject="any")).status_code == 200


async def test_simultaneous_edits_of_one_version_one_wins(client: httpx.AsyncClient, alice: Actor) -> None:
    """Both read version 1 before either writes: the conditional UPDATE lets one through."""
    email_id = await draft(client, alice)
    replies = await asyncio.gather(
        *(patch(client, alice, email_id, if_match='"1"', subject=f"Tab {n}") for n in range(4))
    )
    assert sorted(r.status_code for r in replies) == [200, 412, 412, 412]
    [won] = [r.json()["subject"] for r in replies if r.status_code == 200]
    final = (await get(client, alice, email_id)).json()
    assert (final["subject"], final["version"]) == (won, 2)


async def test_bad_if_match_and_bad_fields(client: httpx.AsyncClient, alice: Actor) -> None:
    email_id = await draft(client, alice)
    problem(await patch(client, alice, email_id, if_match="abc", subject="x"), 400, "bad_request")
    problem(
        await patch(client, alice, email_id, if_match='"1"', if_version=2, subject="x"), 400, "bad_request"
    )
    r = await patch(client, alice, email_id, subject="Evil\r\nBcc: victim@example.net")
    assert problem(r, 422, "invalid_params")["errors"][0]["loc"] == "subject"
    problem(await patch(client, alice, email_id, to=["not an address"]), 422, "invalid_params")
    problem(await patch(client, alice, email_id, if_version=0, subject="x"), 422, "invalid_params")
    problem(await patch(client, alice, email_id, unknown="x"), 422, "invalid_params")
    assert (await get(client, alice, email_id)).json()["version"] == 1  # nothing changed


async def test_only_drafts_and_only_ones_own(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    received = await deliver(message(), "alice@example.org")
    problem(await patch(client, alice, received, subject="x"), 409, "conflict")
    problem(await client.post(f"/api/v1/emails/{received}/send", headers=alice.headers), 409, "conflict")
    mine = await draft(client, alice)
    # Bob cannot see, edit, send or delete Alice's draft: it does not exist for him.
    problem(await patch(client, bob, mine, subject="x"), 404, "not_found")
    problem(await client.post(f"/api/v1/emails/{mine}/send", headers=bob.headers), 404, "not_found")
    problem(await client.delete(f"/api/v1/emails/{mine}", headers=bob.headers), 404, "not_found")
    problem(await patch(client, alice, 999_999, subject="x"), 404, "not_found")
    assert (await get(client, alice, mine)).json()["subject"] == "Plan"


async def test_attachments_stay_or_go(client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor) -> None:
    r = await client.post(
        "/api/v1/uploads",
        content=b"%PDF-1.4 tiny",
        headers={**alice.headers, "content-type": "application/pdf"},
        params={"filename": "plan.pdf"},
    )
    assert r.status_code == 201, r.text
    email_id = await draft(client, alice, attachment_ids=[r.json()["attachment_id"]])
    r = await patch(client, alice, email_id, subject="With the plan")
    [kept] = r.json()["attachments"]
    assert kept["filename"] == "plan.pdf"
    content = await client.get(
        f"/api/v1/emails/{email_id}/attachments/{kept['index']}", headers=alice.headers
    )
    assert content.content == b"%PDF-1.4 tiny"
    r = await patch(client, alice, email_id, attachment_ids=[])
    assert r.json()["attachments"] == []
    assert r.json()["has_attachments"] is False
    raw = (await client.get(f"/api/v1/emails/{email_id}/raw", headers=alice.headers)).content
    assert await used(mailroom, "alice@example.org") == len(raw)


# -- send ----------------------------------------------------------------------------------


async def test_send_a_draft(client: httpx.AsyncClient, alice: Actor, bob: Actor) -> None:
    email_id = await draft(client, alice, bcc=["alice@example.org"])
    await patch(client, alice, email_id, subject="Final plan")
    problem(
        await client.post(f"/api/v1/emails/{email_id}/send", json={"if_version": 1}, headers=alice.headers),
        412,
        "precondition_failed",
    )
    assert await subjects(client, bob) == []  # nothing went out
    r = await client.post(f"/api/v1/emails/{email_id}/send", headers={**alice.headers, "If-Match": '"2"'})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] == "sent"
    assert {(x["address"], x["status"]) for x in result["recipients"]} == {
        ("bob@example.org", "delivered"),
        ("alice@example.org", "delivered"),
    }
    assert await subjects(client, bob) == ["Final plan"]
    problem(await get(client, alice, email_id), 404, "not_found")  # the draft is gone
    assert await subjects(client, alice, label="drafts") == []
    assert await subjects(client, alice, label="sent") == ["Final plan"]
    sent = (await get(client, alice, result["email_id"])).json()
    assert sent["is_draft"] is False
    assert sent["bcc"] == []  # Bcc is not in what was sent
    assert sent["text_body"].strip() == "First words."


async def test_a_draft_reply_goes_out_as_a_reply(
    client: httpx.AsyncClient, alice: Actor, bob: Actor, deliver: Deliver
) -> None:
    original = await deliver(message(message_id="<q@example.net>", subject="Question"), "alice@example.org")
    r = await client.post(
        "/api/v1/emails",
        json={"reply_to": original, "to": ["bob@example.org"], "subject": "Re: Question", "draft": True},
        headers=alice.headers,
    )
    email_id = r.json()["email_id"]
    await patch(client, alice, email_id, body="The answer.\n")
    r = await client.post(f"/api/v1/emails/{email_id}/send", headers=alice.headers)
    assert r.status_code == 200, r.text
    raw = await client.get(f"/api/v1/emails/{r.json()['email_id']}/raw", headers=alice.headers)
    parsed = message_from_bytes(raw.content, policy=default)
    assert parsed["In-Reply-To"] == "<q@example.net>"
    assert "<q@example.net>" in parsed["References"]
    assert r.json()["thread_id"] == (await get(client, alice, original)).json()["thread_id"]


async def test_sending_follows_the_send_rules(
    client: httpx.AsyncClient, alice: Actor, mailroom: Mailroom
) -> None:
    """The draft goes through mail.emails.send: its validation, its refusals."""
    empty = await draft(client, alice, to=[])
    r = await client.post(f"/api/v1/emails/{empty}/send", headers=alice.headers)
    assert problem(r, 422, "invalid_params")["errors"][0]["loc"] == "to"
    # Every recipient refused: "failed", and the draft stays to be corrected.
    bad = await draft(client, alice, to=["nobody@example.org"])
    r = await client.post(f"/api/v1/emails/{bad}/send", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    assert (await get(client, alice, bad)).json()["is_draft"] is True


# -- DELETE --------------------------------------------------------------------------------


async def test_delete_a_draft_for_good(client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor) -> None:
    email_id = await draft(client, alice)
    problem(
        await client.delete(f"/api/v1/emails/{email_id}", headers={**alice.headers, "If-Match": '"7"'}),
        412,
        "precondition_failed",
    )
    r = await client.delete(f"/api/v1/emails/{email_id}", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"email_id": email_id, "outcome": "deleted"}
    problem(await get(client, alice, email_id), 404, "not_found")
    assert await used(mailroom, "alice@example.org") == 0


async def test_delete_other_mail_moves_it_to_the_trash_first(
    client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor, deliver: Deliver
) -> None:
    email_id = await deliver(message(), "alice@example.org")
    r = await client.delete(f"/api/v1/emails/{email_id}", headers=alice.headers)
    assert r.json() == {"email_id": email_id, "outcome": "trashed"}
    assert (await get(client, alice, email_id)).json()["labels"] == ["trash"]
    r = await client.post(
        "/api/v1/emails/batch", json={"ids": [email_id], "action": "untrash"}, headers=alice.headers
    )
    assert (await get(client, alice, email_id)).json()["labels"] == ["inbox"]  # untrash works
    await client.delete(f"/api/v1/emails/{email_id}", headers=alice.headers)
    r = await client.delete(f"/api/v1/emails/{email_id}", headers=alice.headers)
    assert r.json() == {"email_id": email_id, "outcome": "deleted"}
    assert await used(mailroom, "alice@example.org") == 0


# -- RPC -----------------------------------------------------------------------------------


async def test_drafts_over_json_rpc(client: httpx.AsyncClient, alice: Actor, bob: Actor) -> None:
    email_id = await draft(client, alice)
    reply = await jsonrpc(
        client,
        "mail.emails.update",
        {"id": email_id, "subject": "RPC", "if_version": 1},
        headers=alice.headers,
    )
    assert reply["result"]["version"] == 2
    assert reply["result"]["subject"] == "RPC"
    stale = await jsonrpc(
        client, "mail.emails.update", {"id": email_id, "subject": "x", "if_version": 1}, headers=alice.headers
    )
    assert stale["error"]["code"] == -32012
    assert stale["error"]["data"]["code"] == "precondition_failed"
    invalid = await jsonrpc(
        client, "mail.emails.update", {"id": email_id, "subject": "a\nb"}, headers=alice.headers
    )
    assert invalid["error"]["code"] == -32602
    theirs = await jsonrpc(client, "mail.emails.send_draft", {"id": email_id}, headers=bob.headers)
    assert theirs["error"]["code"] == -32004
    sent = await jsonrpc(
        client, "mail.emails.send_draft", {"id": email_id, "if_version": 2}, headers=alice.headers
    )
    assert sent["result"]["status"] == "sent"
    gone = await jsonrpc(client, "mail.emails.delete", {"id": email_id}, headers=alice.headers)
    assert gone["error"]["code"] == -32004
    other = await draft(client, alice)
    deleted = await jsonrpc(
        client, "mail.emails.delete", {"id": other, "if_version": 1}, headers=alice.headers
    )
    assert deleted["result"] == {"email_id": other, "outcome": "deleted"}


async def test_drafts_over_xml_rpc(client: httpx.AsyncClient, alice: Actor, bob: Actor) -> None:
    email_id = await draft(client, alice)
    edited = await xmlrpc_call(
        client,
        "mail.emails.update",
        {"id": email_id, "subject": "XML", "if_version": 1},
        headers=alice.headers,
    )
    assert edited["version"] == 2
    with pytest.raises(xmlrpc.client.Fault) as stale:
        await xmlrpc_call(
            client,
            "mail.emails.update",
            {"id": email_id, "body": "x", "if_version": 1},
            headers=alice.headers,
        )
    assert stale.value.faultCode == -32012
    with pytest.raises(xmlrpc.client.Fault) as invalid:
        await xmlrpc_call(
            client, "mail.emails.update", {"id": email_id, "to": ["nope"]}, headers=alice.headers
        )
    assert invalid.value.faultCode == -32602
    with pytest.raises(xmlrpc.client.Fault) as theirs:
        await xmlrpc_call(client, "mail.emails.delete", {"id": email_id}, headers=bob.headers)
    assert theirs.value.faultCode == -32004
    result = await xmlrpc_call(client, "mail.emails.send_draft", {"id": email_id}, headers=alice.headers)
    assert result["status"] == "sent"


async def test_openapi_names_if_match_where_it_applies(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    for path, verb in (("/emails/{id}", "patch"), ("/emails/{id}", "delete"), ("/emails/{id}/send", "post")):
        names = [p["name"] for p in paths[path][verb].get("parameters", [])]
        assert "If-Match" in names, (path, verb)
    assert "If-Match" not in [p["name"] for p in paths["/emails/{id}"]["get"]["parameters"]]
    assert (
        "if_version"
        in paths["/emails/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]
    )


# -- send-as identity on drafts ------------------------------------------------------------


async def _from(client: httpx.AsyncClient, who: Actor, email_id: int) -> str:
    raw = await client.get(f"/api/v1/emails/{email_id}/raw", headers=who.headers)
    assert raw.status_code == 200, raw.text
    return str(message_from_bytes(raw.content, policy=default)["From"])


async def test_a_draft_keeps_its_send_as_identity_through_edits_and_sending(
    client: httpx.AsyncClient, mailroom: Mailroom, alice: Actor, bob: Actor
) -> None:
    """The webmail's From choice: kept by every PATCH, changed by one, and what goes out."""
    await mailroom.registry.call(
        "admin.identities.create",
        {"email": "alice@example.org", "identity": {"address": "sales@example.org", "display_name": "Sales"}},
    )
    email_id = await draft(client, alice, from_address="sales@example.org")
    assert await _from(client, alice, email_id) == "Sales <sales@example.org>"
    r = await patch(client, alice, email_id, subject="Offer")  # From not named: unchanged
    assert r.status_code == 200, r.text
    assert await _from(client, alice, email_id) == "Sales <sales@example.org>"
    r = await patch(client, alice, email_id, from_address="alice@example.org")
    assert r.status_code == 200, r.text
    assert await _from(client, alice, email_id) == "alice@example.org"
    r = await patch(client, alice, email_id, from_address="sales@example.org")
    assert r.status_code == 200, r.text
    sent = await client.post(f"/api/v1/emails/{email_id}/send", headers=alice.headers)
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "sent"
    assert await _from(client, alice, sent.json()["email_id"]) == "Sales <sales@example.org>"


async def test_a_draft_cannot_take_a_from_that_is_not_the_callers(
    client: httpx.AsyncClient, alice: Actor, bob: Actor
) -> None:
    email_id = await draft(client, alice)
    r = await patch(client, alice, email_id, from_address="bob@example.org")
    assert problem(r, 403, "sender_not_allowed")["data"] == {"field": "from", "address": "bob@example.org"}
    problem(await patch(client, alice, email_id, from_address="not an address"), 422, "invalid_params")
    assert (await get(client, alice, email_id)).json()["version"] == 1  # nothing changed
    rpc = await jsonrpc(
        client,
        "mail.emails.update",
        {"id": email_id, "from_address": "bob@example.org"},
        headers=alice.headers,
    )
    assert rpc["error"]["data"]["code"] == "sender_not_allowed"
    invalid = await jsonrpc(
        client, "mail.emails.update", {"id": email_id, "from_address": "@"}, headers=alice.headers
    )
    assert invalid["error"]["code"] == -32602
    with pytest.raises(xmlrpc.client.Fault) as refused:
        await xmlrpc_call(
            client,
            "mail.emails.update",
            {"id": email_id, "from_address": "bob@example.org"},
            headers=alice.headers,
        )
    assert refused.value.faultCode == -32071
    assert refused.value.faultString.startswith("sender_not_allowed: ")
    # Somebody else's draft: not found, whatever the From.
    theirs = await patch(client, bob, email_id, from_address="bob@example.org")
    problem(theirs, 404, "not_found")
