"""Thread/changes when a thread whose emails are all hidden (``$deleted``, RFC 8621 §4.1.1)
gets a new email: it is visible again without any "shown" op in the log. A client that
synced while it was hidden never knew it (created); one that synced before it was hidden
knew it (updated, not destroyed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Actor
from tests.jmap.client import JmapClient
from tests.jmap.conftest import Deliver
from tests.mailhelpers import message

pytestmark = pytest.mark.anyio


async def _thread_changes(jmap: JmapClient, since: str) -> tuple[list[str], list[str], list[str]]:
    r = await jmap.call("Thread/changes", {"sinceState": since})
    return r["created"], r["updated"], r["destroyed"]


async def test_an_email_joining_a_hidden_thread_creates_it(
    jmap: JmapClient, deliver: Deliver, alice: Actor, call: Callable[..., Awaitable[Any]]
) -> None:
    first = f"e{await deliver(message(subject='topic', message_id='<one@example.net>'), 'alice@example.org')}"
    [got] = (await jmap.call("Email/get", {"ids": [first], "properties": ["threadId"]}))["list"]
    thread = got["threadId"]
    known = (await jmap.call("Thread/get", {"ids": [thread]}))["state"]
    # Hide the thread's only email: the thread is gone for JMAP.
    r = await jmap.call("Email/set", {"update": {first: {"keywords/$deleted": True}}})
    assert r["updated"] == {first: None}
    hidden = r["newState"]
    assert await _thread_changes(jmap, known) == ([], [], [thread])
    assert (await jmap.call("Thread/get", {"ids": [thread]}))["notFound"] == [thread]
    # A reply arrives in that thread.
    raw = message(subject="Re: topic", message_id="<two@example.net>", in_reply_to="<one@example.net>")
    second = f"e{await deliver(raw, 'alice@example.org')}"
    [got] = (await jmap.call("Email/get", {"ids": [second], "properties": ["threadId"]}))["list"]
    assert got["threadId"] == thread
    assert (await jmap.call("Thread/get", {"ids": [thread]}))["list"] == [
        {"id": thread, "emailIds": [second]}
    ]
    # Synced while hidden: the client never had the thread.
    assert await _thread_changes(jmap, hidden) == ([thread], [], [])
    email_changes = await jmap.call("Email/changes", {"sinceState": hidden})
    assert email_changes["created"] == [second]
    # Synced before the hiding: the client had it all along; it changed.
    assert await _thread_changes(jmap, known) == ([], [thread], [])
    # Hidden again; then a change to a hidden email alone (read over the REST API, which
    # still sees it) leaves the thread hidden: never created.
    now = (await jmap.call("Thread/get", {"ids": []}))["state"]
    r = await jmap.call("Email/set", {"update": {second: {"keywords/$deleted": True}}})
    again = r["newState"]
    await call("mail.emails.batch", {"ids": [int(first[1:])], "action": "read"}, as_=alice)
    assert await _thread_changes(jmap, again) == ([], [], [])
    assert await _thread_changes(jmap, now) == ([], [], [thread])
