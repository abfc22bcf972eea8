"""mail.labels.* over REST: counts, create, rename, delete, system labels, isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mailroom.store.labels import SYSTEM_LABELS
from tests.client_mail.conftest import Deliver, message, problem
from tests.conftest import Actor

pytestmark = pytest.mark.anyio


async def labels(client: httpx.AsyncClient, who: Actor) -> dict[str, dict[str, Any]]:
    r = await client.get("/api/v1/labels", headers=who.headers)
    assert r.status_code == 200, r.text
    return {lb["name"]: lb for lb in r.json()}


async def create(client: httpx.AsyncClient, who: Actor, name: str) -> httpx.Response:
    return await client.post("/api/v1/labels", json={"name": name}, headers=who.headers)


async def test_list_has_system_labels_and_counts(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    assert set(await labels(client, alice)) == set(SYSTEM_LABELS)  # even before any mail
    await deliver(message(subject="A", message_id="<a@x>"), "alice@example.org")
    await deliver(
        message(subject="Re: A", message_id="<a2@x>", in_reply_to="<a@x>"), "alice@example.org", is_read=True
    )
    await deliver(message(subject="B", message_id="<b@x>"), "alice@example.org", is_read=True)
    inbox = (await labels(client, alice))["inbox"]
    assert inbox["kind"] == "system"
    assert (inbox["threads_total"], inbox["threads_unread"]) == (2, 1)
    assert (inbox["emails_total"], inbox["emails_unread"]) == (3, 1)
    r = await client.get(f"/api/v1/labels/{inbox['id']}", headers=alice.headers)
    assert r.json() == inbox


async def test_create_rename_delete_a_user_label(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    r = await create(client, alice, "Receipts")
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["name"] == "Receipts"
    assert created["kind"] == "user"
    assert created["threads_total"] == 0
    await deliver(message(subject="Bill"), "alice@example.org", labels=("Receipts", "inbox"))
    r = await client.patch(f"/api/v1/labels/{created['id']}", json={"name": "Bills"}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Bills"
    assert r.json()["threads_total"] == 1
    r = await client.get("/api/v1/threads", params={"label": "Bills"}, headers=alice.headers)
    assert r.json()["n_threads"] == 1
    r = await client.delete(f"/api/v1/labels/{created['id']}", headers=alice.headers)
    assert r.status_code == 204
    assert "Bills" not in await labels(client, alice)
    r = await client.get("/api/v1/threads", headers=alice.headers)
    assert r.json()["threads"][0]["labels"] == ["inbox"]  # the mail stays, without the label
    r = await client.get(f"/api/v1/labels/{created['id']}", headers=alice.headers)
    problem(r, 404, "not_found")


async def test_names_are_validated_and_unique(client: httpx.AsyncClient, alice: Actor) -> None:
    for bad in ("", " padded", "tab\there", "x" * 101):
        r = await client.post("/api/v1/labels", json={"name": bad}, headers=alice.headers)
        problem(r, 422, "invalid_params")
    r = await client.post("/api/v1/labels", json={"name": "ok", "colour": "red"}, headers=alice.headers)
    problem(r, 422, "invalid_params")
    assert (await create(client, alice, "Work")).status_code == 201
    problem(await create(client, alice, "Work"), 409, "conflict")
    problem(await create(client, alice, "Inbox"), 409, "conflict")


async def test_system_labels_cannot_be_renamed_or_deleted(client: httpx.AsyncClient, alice: Actor) -> None:
    inbox = (await labels(client, alice))["inbox"]
    problem(await client.delete(f"/api/v1/labels/{inbox['id']}", headers=alice.headers), 409, "conflict")
    r = await client.patch(f"/api/v1/labels/{inbox['id']}", json={"name": "In"}, headers=alice.headers)
    problem(r, 409, "conflict")
    assert "inbox" in await labels(client, alice)


async def test_other_users_labels_are_not_found(client: httpx.AsyncClient, alice: Actor, bob: Actor) -> None:
    r = await create(client, alice, "Private")
    label_id = r.json()["id"]
    problem(await client.get(f"/api/v1/labels/{label_id}", headers=bob.headers), 404, "not_found")
    problem(await client.get("/api/v1/labels/abc", headers=bob.headers), 422, "invalid_params")
    r = await client.patch(f"/api/v1/labels/{label_id}", json={"name": "Mine"}, headers=bob.headers)
    problem(r, 404, "not_found")
    problem(await client.delete(f"/api/v1/labels/{label_id}", headers=bob.headers), 404, "not_found")
    assert "Private" in await labels(client, alice)
    assert "Private" not in await labels(client, bob)
    # Bob may have his own label of the same name.
    assert (await create(client, bob, "Private")).status_code == 201
