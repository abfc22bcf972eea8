"""Email/set create against the rules of RFC 8621 §4.6, as the independent JMAP test suite
(fastmail/JMAP-TestSuite, t/Email/set/create/*) checks them: header properties in every form
on the Email and on its parts, a one-part body's header fields becoming the message's, body
values kept exactly, and the invalidProperties a create must answer (with the property
paths)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jmap.client import JmapClient

pytestmark = pytest.mark.anyio


async def _drafts(jmap: JmapClient) -> str:
    boxes = (await jmap.call("Mailbox/get", {"ids": None, "properties": ["role"]}))["list"]
    return str(next(m["id"] for m in boxes if m["role"] == "drafts"))


async def _create(jmap: JmapClient, obj: dict[str, Any]) -> dict[str, Any]:
    r = await jmap.call("Email/set", {"create": {"new": {"mailboxIds": {await _drafts(jmap): True}, **obj}}})
    return dict(r)


async def _refused(jmap: JmapClient, obj: dict[str, Any]) -> dict[str, Any]:
    r = await _create(jmap, obj)
    assert r["created"] is None, r
    err = r["notCreated"]["new"]
    assert err["type"] == "invalidProperties", err
    return dict(err)


async def test_one_part_headers_are_the_message_headers(jmap: JmapClient) -> None:
    r = await _create(
        jmap,
        {
            "textBody": [
                {
                    "partId": "text",
                    "header:from": "Foo <test@example.org>",
                    "header:X-Foo": "x-bar",
                    "header:subject": "a test subject",
                    "type": "text/plain",
                    "cid": "fooz",
                    "language": ["US"],
                    "location": "foo/bar",
                }
            ],
            "bodyValues": {"text": {"value": "this is a text part"}},
        },
    )
    new = r["created"]["new"]
    [email] = (
        await jmap.call(
            "Email/get",
            {
                "ids": [new["id"]],
                "properties": ["from", "subject", "textBody", "bodyValues", "header:X-Foo:asText"],
                "fetchTextBodyValues": True,
            },
        )
    )["list"]
    assert email["from"] == [{"name": "Foo", "email": "test@example.org"}]
    assert email["subject"] == "a test subject"
    assert email["header:X-Foo:asText"] == "x-bar"
    [part] = email["textBody"]
    assert (part["type"], part["charset"], part["cid"]) == ("text/plain", "us-ascii", "fooz")
    assert (part["language"], part["location"]) == (["US"], "foo/bar")
    # The value comes back as given: no line end added.
    assert email["bodyValues"][part["partId"]] == {
        "value": "this is a text part",
        "isEncodingProblem": False,
        "isTruncated": False,
    }


async def test_header_forms_can_be_set(jmap: JmapClient) -> None:
    r = await _create(
        jmap,
        {
            "header:X-Animal:all": ["cat", "dog"],
            "header:X-Who:asAddresses": [{"name": "Joe Bloggs", "email": "joe@example.net"}],
            "header:X-Ids:asMessageIds": ["a@example.net", "b@example.net"],
            "header:X-When:asDate": "2018-08-30T12:00:59-04:00",
            "header:List-Post:asURLs": ["mailto:list@example.net"],
            "header:X-Text:asText": "héllo wörld",
            "bodyStructure": {"partId": "t", "type": "text/plain"},
            "bodyValues": {"t": {"value": "ünïcode body\nsecond line"}},
        },
    )
    new = r["created"]["new"]
    props = [
        "header:X-Animal:all", "header:X-Who:asAddresses", "header:X-Ids:asMessageIds",
        "header:X-When:asDate", "header:List-Post:asURLs", "header:X-Text:asText", "bodyValues",
    ]  # fmt: skip
    [email] = (
        await jmap.call("Email/get", {"ids": [new["id"]], "properties": props, "fetchAllBodyValues": True})
    )["list"]
    assert email["header:X-Animal:all"] == [" cat", " dog"]
    assert email["header:X-Who:asAddresses"] == [{"name": "Joe Bloggs", "email": "joe@example.net"}]
    assert email["header:X-Ids:asMessageIds"] == ["a@example.net", "b@example.net"]
    assert email["header:X-When:asDate"] == "2018-08-30T12:00:59-04:00"
    assert email["header:List-Post:asURLs"] == ["mailto:list@example.net"]
    assert email["header:X-Text:asText"] == "héllo wörld"
    [value] = email["bodyValues"].values()
    assert value["value"] == "ünïcode body\nsecond line"


@pytest.mark.parametrize(
    ("obj", "properties"),
    [
        ({"header:Content-foo": "bar"}, ["header:Content-foo"]),
        ({"headers": [{"name": "X-A", "value": "b"}]}, ["headers"]),
        (
            {
                "bodyStructure": {
                    "partId": "t",
                    "type": "text/plain",
                    "header:Content-Transfer-Encoding": "7BIT",
                },
                "bodyValues": {"t": {"value": "x"}},
            },
            ["bodyStructure/header:Content-Transfer-Encoding"],
        ),
        (
            {
                "bodyStructure": {"partId": "t", "type": "text/plain", "headers": []},
                "bodyValues": {"t": {"value": "x"}},
            },
            ["bodyStructure/headers"],
        ),
        (
            {
                "bodyStructure": {"partId": "t", "type": "text/plain", "size": 2},
                "bodyValues": {"t": {"value": "ok"}},
            },
            ["bodyStructure/size"],
        ),
        (
            {
                "bodyStructure": {"partId": "t", "type": "text/plain", "charset": "us-ascii"},
                "bodyValues": {"t": {"value": "ok"}},
            },
            ["bodyStructure/charset"],
        ),
        ({"from": [{"email": "a@example.org"}], "header:From": "b@example.org"}, ["header:From"]),
        ({"subject": "a", "header:subject:asText": "b"}, ["header:subject:asText"]),
        (
            {
                "bodyStructure": {"partId": "t", "type": "text/plain"},
                "textBody": [{"partId": "t", "type": "text/plain"}],
                "htmlBody": [{"partId": "t", "type": "text/html"}],
                "attachments": [],
                "bodyValues": {"t": {"value": "x"}},
            },
            ["textBody", "htmlBody", "attachments"],
        ),
        (
            {
                "textBody": [{"partId": "a", "type": "text/plain"}, {"partId": "b", "type": "text/plain"}],
                "bodyValues": {"a": {"value": "x"}, "b": {"value": "y"}},
            },
            ["textBody"],
        ),
        ({"header:From:asMessageIds": ["a@b"]}, ["header:From:asMessageIds"]),
        (
            {
                "bodyStructure": {"partId": "t", "type": "text/plain", "header:Content-Type": "text/html"},
                "bodyValues": {"t": {"value": "x"}},
            },
            ["bodyStructure/header:Content-Type"],
        ),
    ],
)
async def test_rfc8621_create_rules(jmap: JmapClient, obj: dict[str, Any], properties: list[str]) -> None:
    err = await _refused(jmap, obj)
    assert err["properties"] == properties


async def test_truncated_body_values_are_refused(jmap: JmapClient) -> None:
    err = await _refused(
        jmap,
        {
            "bodyStructure": {"partId": "text", "type": "text/plain"},
            "bodyValues": {"text": {"value": "x", "isTruncated": True, "isEncodingProblem": True}},
        },
    )
    assert sorted(err["properties"]) == ["bodyValues/text/isEncodingProblem", "bodyValues/text/isTruncated"]


async def test_x_content_header_is_not_a_content_header(jmap: JmapClient) -> None:
    r = await _create(jmap, {"header:X-Content-foo": "bar"})
    assert set(r["created"]["new"]) >= {"id", "blobId", "threadId", "size"}


async def test_text_form_is_nfc(jmap: JmapClient) -> None:
    """RFC 8621 §4.1.2.2: asText (and address names) come back in Unicode NFC."""
    decomposed = "A\u030a"  # A + COMBINING RING ABOVE; NFC is U+00C5
    r = await _create(
        jmap, {"header:X-Name:asRaw": "=?UTF-8?Q?" + "".join(f"={b:02X}" for b in decomposed.encode()) + "?="}
    )
    assert "new" in r["created"], r
    new = r["created"]["new"]
    [email] = (await jmap.call("Email/get", {"ids": [new["id"]], "properties": ["header:X-Name:asText"]}))[
        "list"
    ]
    assert email["header:X-Name:asText"] == "\u00c5"


async def test_attachment_from_a_body_value(jmap: JmapClient) -> None:
    """A part of any type may take its content from bodyValues (the suite's attachments.t)."""
    r = await _create(
        jmap,
        {
            "header:from": "Foo <test@example.org>",
            "textBody": [{"partId": "text"}],
            "attachments": [
                {
                    "partId": "attachment",
                    "type": "image/jpeg",
                    "cid": "fooz",
                    "language": ["US"],
                    "disposition": "attachment",
                    "name": "image.jpg",
                }
            ],
            "bodyValues": {
                "text": {"value": "this is a text part"},
                "attachment": {"value": '{"name":"thing"}'},
            },
        },
    )
    new = r["created"]["new"]
    [email] = (await jmap.call("Email/get", {"ids": [new["id"]], "properties": ["attachments", "from"]}))[
        "list"
    ]
    [att] = email["attachments"]
    assert (att["type"], att["name"], att["cid"], att["language"]) == (
        "image/jpeg",
        "image.jpg",
        "fooz",
        ["US"],
    )
    assert att["size"] == len(b'{"name":"thing"}')
    assert email["from"] == [{"name": "Foo", "email": "test@example.org"}]


async def test_multipart_body_structure_headers_and_quoted_names(jmap: JmapClient) -> None:
    """Header properties on a multipart bodyStructure are the message's; an address form
    writes an ASCII display name quoted, as Cyrus does (the suite compares the Raw form)."""
    r = await _create(
        jmap,
        {
            "header:Sender:asAddresses": [{"name": "Foo bar", "email": "foo@example.net"}],
            "bodyStructure": {
                "header:from": "Foo <test@example.org>",
                "header:subject": "a test subject",
                "type": "multipart/mixed",
                "subParts": [{"partId": "text", "type": "text/plain"}, {"partId": "text2"}],
            },
            "bodyValues": {"text": {"value": "one"}, "text2": {"value": "two"}},
        },
    )
    new = r["created"]["new"]
    props = ["from", "subject", "header:Sender", "textBody"]
    [email] = (await jmap.call("Email/get", {"ids": [new["id"]], "properties": props}))["list"]
    assert email["from"] == [{"name": "Foo", "email": "test@example.org"}]
    assert email["subject"] == "a test subject"
    assert email["header:Sender"] == ' "Foo bar" <foo@example.net>'
    assert [p["type"] for p in email["textBody"]] == ["text/plain", "text/plain"]


async def test_update_may_repeat_server_set_values(jmap: JmapClient) -> None:
    """RFC 8620 §5.3: server-set properties may be in a patch with their current value;
    another value is invalidProperties."""
    r = await _create(jmap, {"subject": "x"})
    new = r["created"]["new"]
    [email] = (
        await jmap.call(
            "Email/get",
            {"ids": [new["id"]], "properties": ["id", "blobId", "threadId", "size", "receivedAt"]},
        )
    )["list"]
    same = {k: email[k] for k in ("id", "blobId", "threadId", "size", "receivedAt")}
    r = await jmap.call("Email/set", {"update": {new["id"]: {**same, "keywords/$seen": True}}})
    assert r["updated"] == {new["id"]: None}, r
    r = await jmap.call("Email/set", {"update": {new["id"]: {"size": email["size"] + 1}}})
    assert r["notUpdated"][new["id"]]["type"] == "invalidProperties"
    assert r["notUpdated"][new["id"]]["properties"] == ["size"]
