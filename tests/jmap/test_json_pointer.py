"""JSON Pointer escapes (RFC 6901) in PatchObject paths and result-reference paths: only
``~0`` (``~``) and ``~1`` (``/``) are escapes; any other ``~`` makes the pointer invalid
(RFC 8620 §5.3 ``invalidPatch``, §3.7 ``invalidResultReference``)."""

from __future__ import annotations

import pytest

from tests.jmap.client import JmapClient
from tests.jmap.conftest import Deliver
from tests.mailhelpers import message

pytestmark = pytest.mark.anyio


async def _keywords(jmap: JmapClient, e: str) -> dict[str, bool]:
    [got] = (await jmap.call("Email/get", {"ids": [e], "properties": ["keywords"]}))["list"]
    return dict(got["keywords"])


async def test_patch_path_escapes(jmap: JmapClient, deliver: Deliver) -> None:
    e = f"e{await deliver(message(), 'alice@example.org')}"
    # ~0 is "~": the keyword a~b.
    r = await jmap.call("Email/set", {"update": {e: {"keywords/a~0b": True}}})
    assert r["updated"] == {e: None}
    assert await _keywords(jmap, e) == {"a~b": True}
    # ~2, a lone ~ and a trailing ~ are no escapes: the patch is refused, nothing changes.
    for path in ("keywords/a~2b", "keywords/a~b", "keywords/ab~", "mailboxIds/M1~2"):
        r = await jmap.call("Email/set", {"update": {e: {path: True}}})
        assert r.get("updated") is None, path
        assert r["notUpdated"][e]["type"] == "invalidPatch", (path, r)
        assert r["notUpdated"][e]["properties"] == [path]
    # An unescaped "/" goes below a keyword's value (a boolean).
    r = await jmap.call("Email/set", {"update": {e: {"keywords/a/b": True}}})
    assert r["notUpdated"][e]["type"] == "invalidPatch"
    assert await _keywords(jmap, e) == {"a~b": True}
    # ~0 removes it again.
    r = await jmap.call("Email/set", {"update": {e: {"keywords/a~0b": None}}})
    assert r["updated"] == {e: None}
    assert await _keywords(jmap, e) == {}


async def test_reference_path_escapes(jmap: JmapClient, deliver: Deliver) -> None:
    e = f"e{await deliver(message(), 'alice@example.org')}"
    acc = jmap.account_id
    # The response of c0 has a property literally named "header:X~2Y" (null: no such field).
    get = ["Email/get", {"accountId": acc, "ids": [e], "properties": ["header:X~2Y"]}, "c0"]

    async def refer(path: str) -> list[object]:
        ref = {"resultOf": "c0", "name": "Email/get", "path": path}
        body = await jmap.request(
            [get, ["Email/get", {"accountId": acc, "#ids": ref, "properties": ["id"]}, "c1"]]
        )
        [first, answer] = body["methodResponses"]
        assert first[1]["list"] == [{"id": e, "header:X~2Y": None}], first
        return list(answer)

    # "~02" is the escape of "~2": the property is found (null ids: every email).
    ok = await refer("/list/0/header:X~02Y")
    assert ok[0] == "Email/get", ok
    assert [m["id"] for m in ok[1]["list"]] == [e]
    # "~2" is not an escape: the pointer is invalid, though a lax decoder would find the key.
    for path in ("/list/0/header:X~2Y", "/list/0/header:X~", "/list/~3/id"):
        bad = await refer(path)
        assert bad[0] == "error", (path, bad)
        assert bad[1]["type"] == "invalidResultReference", (path, bad)
