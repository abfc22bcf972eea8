"""Users kept rendered as JSON under (id, row_version): the database changes the version on
every write, so ``admin.users.list`` and ``admin.users.get`` never answer from a stale entry.

Every kind of write is tried (the admin API, a password change, mail delivery moving
``quota_bytes_used``, plain SQL on another connection, another mailroom on the same data,
delete and create again), on whichever database the suite runs on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text

from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.services.admin.users import user_cache
from mailroom.settings import Settings
from mailroom.store import accounts
from mailroom.store import users as users_store
from mailroom.store.engine import Params, Query, Row, Statement, Tx, open_database
from mailroom.store.row_cache import RowCache
from mailroom.store.schema import users
from mailroom.web import build_app
from tests.conftest import Actor, started
from tests.delivery.test_ingest import deliver
from tests.mailhelpers import message
from tests.rest.test_record_json import _make_users

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]
MakeUser = Callable[..., Awaitable[Actor]]
PASSWORD = "correct horse battery staple"


async def key_of(mailroom: Mailroom, email: str) -> tuple[int, int]:
    async with mailroom.runtime.db.read() as tx:
        row = await tx.first(select(users.c.id, users.c.row_version).where(users.c.email == email))
    assert row is not None
    return int(row["id"]), int(row["row_version"])


async def sql_elsewhere(settings: Settings, sql: str, params: Mapping[str, Any]) -> None:
    """Plain SQL on a connection of another engine: no code of ours sees it happen."""
    db = open_database(settings.effective_database_url)
    try:
        async with db.write() as tx:
            await tx.execute(text(sql), params)
    finally:
        await db.close()


@pytest.fixture
async def other(settings: Settings, clock: FakeClock, mailroom: Mailroom) -> AsyncIterator[Mailroom]:
    """A second mailroom on the same data, as another worker process would be: its own cache."""
    async with started(settings, clock) as app:
        yield app


@pytest.fixture
async def uncached(settings: Settings, clock: FakeClock, mailroom: Mailroom) -> AsyncIterator[Mailroom]:
    """A mailroom on the same data with ``render_cache_entries = 0``."""
    async with started(settings.model_copy(update={"render_cache_entries": 0}), clock) as app:
        yield app


async def shown(call: Call, email: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user as ``admin.users.get`` and as its entry in ``admin.users.list`` show it."""
    one = await call("admin.users.get", {"email": email})
    page = await call("admin.users.list", {"limit": 1000})
    (listed,) = [u for u in page["items"] if u["email"] == email]
    return one, listed


async def test_the_database_changes_the_version_on_every_write(
    mailroom: Mailroom, call: Call, client: httpx.AsyncClient, admin: Actor, settings: Settings
) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    seen: set[tuple[int, int]] = set()

    def changed(key: tuple[int, int]) -> tuple[int, int]:
        assert key not in seen
        seen.add(key)
        return key

    email = "alice@example.org"
    await call("admin.users.create", {"user": {"email": email, "password": PASSWORD}})
    await call("admin.users.create", {"user": {"email": "bob@example.org", "password": PASSWORD}})
    user_id, _ = changed(await key_of(mailroom, email))
    changed(await key_of(mailroom, "bob@example.org"))  # each insert its own version

    r = await client.patch(f"/api/v1/users/{email}", json={"display_name": "Alice"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    changed(await key_of(mailroom, email))

    await call("admin.users.update", {"email": email, "changes": {"password": "another long passphrase"}})
    changed(await key_of(mailroom, email))

    # Authentication rehashing a password writes the hash alone.
    async with mailroom.runtime.db.write() as tx:
        await accounts.set_password_hash(tx, user_id, mailroom.runtime.passwords.hash("a third passphrase"))
    changed(await key_of(mailroom, email))

    # Delivery adds to quota_bytes_used (store/emails.py add_quota_used).
    results = await deliver(mailroom, message(to=email), email)
    assert results[0].reply.startswith("250"), results
    assert (await call("admin.users.get", {"email": email}))["quota_bytes_used"] > 0
    changed(await key_of(mailroom, email))

    await sql_elsewhere(
        settings, "UPDATE users SET display_name = 'Plain SQL' WHERE email = :e", {"e": email}
    )
    changed(await key_of(mailroom, email))

    # An UPDATE that changes nothing is still a write: a new version all the same.
    await sql_elsewhere(
        settings, "UPDATE users SET display_name = display_name WHERE email = :e", {"e": email}
    )
    changed(await key_of(mailroom, email))


async def test_a_user_deleted_and_created_again_never_repeats_a_key(
    mailroom: Mailroom, call: Call, clock: FakeClock
) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    email = "carol@example.org"
    keys = []
    for round_ in range(5):
        await call(
            "admin.users.create",
            {"user": {"email": email, "password": PASSWORD, "display_name": f"Carol {round_}"}},
        )
        one, listed = await shown(call, email)
        assert one["display_name"] == listed["display_name"] == f"Carol {round_}"
        keys.append(await key_of(mailroom, email))
        await call("admin.users.delete", {"email": email})
    assert len(set(keys)) == len(keys)
    # Ids are never given again on either database (JMAP ids must not be reused: 0014_jmap
    # made SQLite's AUTOINCREMENT); the version would tell them apart if they were.
    assert len({user_id for user_id, _ in keys}) == len(keys)


async def test_list_and_get_show_every_change_at_once(
    mailroom: Mailroom,
    other: Mailroom,
    call: Call,
    client: httpx.AsyncClient,
    admin: Actor,
    settings: Settings,
) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    email = "dave@example.org"
    await call("admin.users.create", {"user": {"email": email, "password": PASSWORD}})
    cache = user_cache(mailroom.runtime)
    assert cache is not None

    async def check(**expected: Any) -> None:
        # Twice: the first may fill the cache, the second answers from it.
        for _ in range(2):
            one, listed = await shown(call, email)
            assert one == listed
            assert {k: one[k] for k in expected} == expected
            r = await client.get(f"/api/v1/users/{email}", headers=admin.headers)
            assert r.status_code == 200
            assert r.json() == one
            r = await client.get("/api/v1/users", params={"limit": 50}, headers=admin.headers)
            assert r.status_code == 200
            assert [u for u in r.json()["items"] if u["email"] == email] == [one]

    await check(display_name="", quota_bytes_used=0)
    assert len(cache) == 1

    r = await client.patch(f"/api/v1/users/{email}", json={"display_name": "REST"}, headers=admin.headers)
    assert r.status_code == 200
    assert r.json()["display_name"] == "REST"
    await check(display_name="REST")

    await call("admin.users.update", {"email": email, "changes": {"spam_threshold": 9.5}})
    await check(display_name="REST", spam_threshold=9.5)

    results = await deliver(mailroom, message(to=email, pad_to=3000), email)
    assert results[0].reply.startswith("250"), results
    used = (await shown(call, email))[0]["quota_bytes_used"]
    assert used > 3000
    await check(quota_bytes_used=used)

    # Another worker (its own cache) changes the user: this one shows it at once.
    await other.registry.call("admin.users.update", {"email": email, "changes": {"display_name": "Other"}})
    await check(display_name="Other")
    assert (await other.registry.call("admin.users.get", {"email": email}))["display_name"] == "Other"

    # Plain SQL on a connection of its own.
    await sql_elsewhere(settings, "UPDATE users SET reply_subject = 'SQL' WHERE email = :e", {"e": email})
    await check(display_name="Other", reply_subject="SQL")

    # Gone, then created again (on SQLite with the same id): the new user, not the old one.
    await call("admin.users.delete", {"email": email})
    r = await client.get(f"/api/v1/users/{email}", headers=admin.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    page = await call("admin.users.list", {"limit": 50})
    assert page["items"] == []
    assert page["total"] == 0
    await call(
        "admin.users.create", {"user": {"email": email, "password": PASSWORD, "display_name": "Again"}}
    )
    await check(display_name="Again", quota_bytes_used=0, reply_subject="")


async def test_the_cache_changes_nothing_in_the_answers(
    mailroom: Mailroom,
    uncached: Mailroom,
    call: Call,
    clock: FakeClock,
    make_user: MakeUser,
    admin: Actor,
) -> None:
    emails = await _make_users(call, clock)
    await call("admin.domains.create", {"domain": {"name": "other.example"}})
    for i in range(3):
        await call("admin.users.create", {"user": {"email": f"o{i}@other.example", "password": PASSWORD}})
    manager = await make_user("boss@render.example", manages=("render.example",))
    assert user_cache(uncached.runtime) is None

    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(mailroom), client=("127.0.0.1", 50000)),
            base_url="http://mailroom.test",
        ) as cached_client,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(uncached), client=("127.0.0.1", 50000)),
            base_url="http://mailroom.test",
        ) as plain_client,
    ):
        requests: list[tuple[str, dict[str, Any], Actor]] = [
            ("/api/v1/users", {"limit": 1000}, admin),
            ("/api/v1/users", {"limit": 3, "offset": 2}, admin),
            ("/api/v1/users", {"domain": "render.example", "limit": 2, "offset": 1}, admin),
            ("/api/v1/users", {"limit": 1000}, manager),
            ("/api/v1/users", {"domain": "other.example"}, manager),  # not theirs: 404
            *[
                (f"/api/v1/users/{e}", {}, admin)
                for e in [*emails, "o1@other.example", "nobody@render.example"]
            ],
            ("/api/v1/users/o1@other.example", {}, manager),  # not theirs: 404
        ]
        for _ in range(2):  # cold, then warm
            for path, params, actor in requests:
                cached = await cached_client.get(path, params=params, headers=actor.headers)
                plain = await plain_client.get(path, params=params, headers=actor.headers)
                assert (cached.status_code, cached.json()) == (plain.status_code, plain.json()), path
                if cached.status_code == 200:
                    # Byte for byte: the memoised JSON is what the model's path writes.
                    assert cached.content == plain.content, path
        managed = (
            await cached_client.get("/api/v1/users", params={"limit": 1000}, headers=manager.headers)
        ).json()
        assert {u["domain"] for u in managed["items"]} == {"render.example"}

    for email in emails:  # in-process callers get plain data alike
        assert await call("admin.users.get", {"email": email}) == await uncached.registry.call(
            "admin.users.get", {"email": email}
        )


@pytest.mark.parametrize("settings_overrides", [{"render_cache_entries": 3}])
async def test_the_cache_holds_at_most_its_entries(mailroom: Mailroom, call: Call) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    emails = [f"u{i:02d}@example.org" for i in range(10)]
    for email in emails:
        await call("admin.users.create", {"user": {"email": email, "password": PASSWORD}})
    cache = user_cache(mailroom.runtime)
    assert cache is not None
    assert cache.max_entries == 3
    for _ in range(2):
        page = await call("admin.users.list", {"limit": 50})
        assert [u["email"] for u in page["items"]] == emails  # a page larger than the cache
        assert len(cache) == 3
    for email in emails:
        assert (await call("admin.users.get", {"email": email}))["email"] == email
        assert len(cache) <= 3


def test_row_cache_drops_its_oldest_entry_when_full() -> None:
    cache = RowCache(2)
    assert cache.put((1, 10), b"a") == b"a"
    cache.put((2, 20), b"b")
    cache.put((1, 11), b"a2")  # a new version of row 1 is a new entry
    assert len(cache) == 2
    assert cache.get((1, 10)) is None
    assert (cache.get((2, 20)), cache.get((1, 11))) == (b"b", b"a2")
    cache.put((3, 30), b"c")
    assert cache.get((2, 20)) is None
    assert len(cache) == 2

    empty = RowCache(0)
    empty.put((1, 1), b"x")
    assert len(empty) == 0
    assert empty.get((1, 1)) is None


class _DeletingTx(Tx):
    """Runs ``action`` after the first statement: another writer between the page's two."""

    def __init__(self, tx: Tx, action: Callable[[], Awaitable[None]]) -> None:
        self.tx = tx
        self.dialect = tx.dialect
        self.action: Callable[[], Awaitable[None]] | None = action

    async def execute(self, stmt: Statement, params: Params = None) -> Any:
        return await self.tx.execute(stmt, params)

    async def all(self, stmt: Statement, params: Mapping[str, Any] | None = None) -> list[Row]:
        rows = await self.tx.all(stmt, params)
        if isinstance(stmt, Query):
            await self._after_statement()
        return rows

    async def tuples(self, query: Query, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        rows = await self.tx.tuples(query, params)
        await self._after_statement()
        return rows

    async def _after_statement(self) -> None:
        if self.action is not None:
            action, self.action = self.action, None
            await action()


async def test_a_user_deleted_between_the_two_statements_is_left_out(
    mailroom: Mailroom, call: Call, settings: Settings
) -> None:
    await call("admin.domains.create", {"domain": {"name": "example.org"}})
    emails = [f"u{i}@example.org" for i in range(4)]
    for email in emails:
        await call("admin.users.create", {"user": {"email": email, "password": PASSWORD}})
    cache = users_store.UserCache(100)

    async def delete_u2() -> None:
        db = open_database(settings.effective_database_url)
        try:
            async with db.write() as tx:
                await tx.execute(delete(users).where(users.c.email == "u2@example.org"))
        finally:
            await db.close()

    async with mailroom.runtime.db.read() as tx:
        # u1 is held; the others are fetched after u2 went.
        await users_store.get_user(tx, "u1@example.org", cache)
        items, total = await users_store.page(
            _DeletingTx(tx, delete_u2), domains=["example.org"], offset=0, limit=50, cache=cache
        )
    assert [u.email for u in items] == [
        "u0@example.org",
        "u1@example.org",
        "u3@example.org",
    ]
    assert total == 3  # counted after the delete: each statement is its own snapshot


async def test_a_filtered_page_never_takes_in_a_user_of_another_domain(
    mailroom: Mailroom, call: Call, settings: Settings
) -> None:
    """Between the two statements the row of a user of the page comes to belong to another
    domain under the same id (ids are never given again, so plain SQL moves the row): the
    page fetches by id *and* domain, so it stays out."""
    for name in ("example.org", "other.example"):
        await call("admin.domains.create", {"domain": {"name": name}})
    emails = [f"u{i}@example.org" for i in range(4)]
    for email in emails:
        await call("admin.users.create", {"user": {"email": email, "password": PASSWORD}})
    gone_id, _ = await key_of(mailroom, "u3@example.org")
    cache = users_store.UserCache(100)

    async def replace_u3() -> None:
        await sql_elsewhere(
            settings, "UPDATE users SET domain = 'other.example' WHERE id = :id", {"id": gone_id}
        )

    async with mailroom.runtime.db.read() as tx:
        items, _total = await users_store.page(
            _DeletingTx(tx, replace_u3), domains=["example.org"], offset=0, limit=50, cache=cache
        )
    assert [u.email for u in items] == emails[:3]
