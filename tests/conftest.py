"""Shared fixtures: a started mailroom on SQLite (or PostgreSQL), clients, principals, factories.

Set ``MAILROOM_TEST_DATABASE_URL=postgresql+asyncpg://...`` to run the same suite on
PostgreSQL: each test then gets empty tables in a database made for this run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailroom import bootstrap
from mailroom.auth.principal import SYSTEM, Principal
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.frontends.smtp import Listeners, start_listeners
from mailroom.settings import Settings
from mailroom.web import build_app

PG_URL = os.environ.get("MAILROOM_TEST_DATABASE_URL")
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- databases -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test would be slow)."""
    from mailroom.store import migrate
    from mailroom.store.engine import SQLiteDatabase

    path = tmp_path_factory.mktemp("template") / "mailroom.db"

    async def build() -> None:
        db = SQLiteDatabase(f"sqlite:///{path}")
        await migrate.upgrade(db)
        await db.close()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this run, migrated once; dropped at the end."""
    if not PG_URL:
        yield None
        return
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from mailroom.store import migrate
    from mailroom.store.engine import AsyncDatabase

    name = f"mailroom_test_{uuid.uuid4().hex[:8]}"
    admin_url = PG_URL.rsplit("/", 1)[0] + "/postgres"

    async def admin(sql: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    url = PG_URL.rsplit("/", 1)[0] + "/" + name

    async def setup() -> None:
        await admin(f'CREATE DATABASE "{name}"')
        db = AsyncDatabase(url)
        await migrate.upgrade(db)
        await db.close()

    asyncio.run(setup())
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_all(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from mailroom.store.tables import metadata

    engine = create_async_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.connect() as conn:
        # Every earlier test's mailroom is closed by now, so a session still inside a
        # transaction was left by a task that outlived its test (closing an engine does not
        # end a connection checked out mid-transaction). Its locks would make TRUNCATE wait
        # for ever: end it, and say so.
        leaked = await conn.execute(
            text(
                "SELECT pid, left(query, 200) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
        )
        for pid, query in leaked.all():
            print(f"\nconftest: ending a transaction left open by an earlier test: {query}", file=sys.stderr)
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await conn.commit()
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path, pg_database: str | None) -> str:
    if pg_database is not None:
        asyncio.run(_truncate_all(pg_database))
        return pg_database
    target = tmp_path / "data" / "mailroom.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


# -- a started mailroom ------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its tests."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "mode": "test",
        "secret_key": "test-secret-key-not-for-production",
        **FAST_ARGON2,
        # No test asks a real DNS server: nothing listens on the discard port, so a lookup
        # fails at once (tests/loopback_dns.py serves the tests that need answers).
        "dns_resolver": "127.0.0.1@9",
        "dns_timeout_seconds": 1.0,
    }
    values.update(settings_overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def started(settings: Settings, clock: FakeClock | None = None) -> AsyncIterator[Mailroom]:
    """A mailroom started on ``settings`` (database already migrated), closed at the end."""
    app = await bootstrap.start(settings, clock=clock, run_migrations=False)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def mailroom(settings: Settings, clock: FakeClock) -> AsyncIterator[Mailroom]:
    async with started(settings, clock) as app:
        yield app


@pytest.fixture
async def listeners(mailroom: Mailroom) -> AsyncIterator[Listeners]:
    """SMTP and LMTP listeners of the started mailroom on free loopback ports."""
    running = await start_listeners(mailroom, smtp=("127.0.0.1", 0), lmtp=("127.0.0.1", 0))
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def client(mailroom: Mailroom) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the REST app in-process (ASGI)."""
    app = build_app(mailroom)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mailroom.test") as c:
        yield c


# -- principals and factories ------------------------------------------------------------


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``r`` is the problem+json error ``code`` with ``status``; return its body."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


@dataclass
class Actor:
    """Someone who calls the API in a test: their principal and their HTTP headers."""

    name: str
    principal: Principal
    key: str | None = None
    email: str | None = None
    password: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


@pytest.fixture
def call(mailroom: Mailroom) -> Callable[..., Awaitable[Any]]:
    """In-process registry call: ``await call("admin.domains.create", {...}, as_=actor)``."""

    async def _call(
        name: str, params: dict[str, Any] | None = None, as_: Actor | Principal | None = None
    ) -> Any:
        principal = as_.principal if isinstance(as_, Actor) else (as_ or SYSTEM)
        return await mailroom.registry.call(name, params or {}, principal=principal)

    return _call


@pytest.fixture
async def admin(mailroom: Mailroom) -> Actor:
    created = await mailroom.registry.call(
        "admin.apikeys.create", {"key": {"name": "test-admin", "admin": True}}
    )
    principal = await mailroom.authenticator.bearer(created["key"], "127.0.0.1")
    return Actor("admin", principal, key=created["key"])


@pytest.fixture
def make_domain(mailroom: Mailroom) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def _make(name: str = "example.org", **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await mailroom.registry.call(
            "admin.domains.create", {"domain": {"name": name, **fields}}
        )
        return result

    return _make


@pytest.fixture
def make_user(mailroom: Mailroom) -> Callable[..., Awaitable[Actor]]:
    """Create a user (and its domain if needed) and an API key acting as them.

    ``manages`` lists domains they manage; ``admin=True`` makes a global admin.
    """

    async def _make(
        email: str = "alice@example.org",
        *,
        password: str = "correct horse battery staple",
        admin: bool = False,
        manages: tuple[str, ...] = (),
        **fields: Any,
    ) -> Actor:
        registry = mailroom.registry
        domain = email.rpartition("@")[2]
        for d in {domain, *manages}:
            try:
                await registry.call("admin.domains.get", {"name": d})
            except Exception:
                await registry.call("admin.domains.create", {"domain": {"name": d}})
        await registry.call(
            "admin.users.create",
            {"user": {"email": email, "password": password, "global_admin": admin, **fields}},
        )
        for d in manages:
            await registry.call("admin.managers.create", {"domain": d, "manager": {"email": email}})
        created = await registry.call(
            "admin.apikeys.create", {"key": {"name": f"key-{email}", "owner": email}}
        )
        principal = await mailroom.authenticator.bearer(created["key"], "127.0.0.1")
        return Actor(email, principal, key=created["key"], email=email, password=password)

    return _make
