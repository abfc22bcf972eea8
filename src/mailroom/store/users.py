"""Repository of users (mailboxes).

Rows never carry ``password_hash``: reading it is for authentication alone, in
:mod:`mailroom.store.accounts`. Writing it (create, password change) goes through here.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict, cast

import orjson
from sqlalchemy import ColumnElement, Select, bindparam, delete, func, insert, select, update

from mailroom.domain.users import User
from mailroom.store import addresses
from mailroom.store._prepared import PerDialect
from mailroom.store.engine import Query, Row, Tx
from mailroom.store.filtering import containing
from mailroom.store.row_cache import RowCache, model_columns
from mailroom.store.schema import domains, users
from mailroom.store.sorting import order_by


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as stored, without the password hash (and without the row version: that is
    the cache's business, see :func:`get_user`)."""

    id: int
    email: str
    domain: str
    display_name: str
    quota_bytes: int
    quota_bytes_used: int
    enabled: bool
    enable_imap: bool
    enable_pop: bool
    enable_smtp: bool
    global_admin: bool
    forward_enabled: bool
    forward_destinations: list[str]
    forward_keep: bool
    reply_enabled: bool
    reply_subject: str
    reply_body: str
    reply_start: date | None
    reply_end: date | None
    spam_enabled: bool
    spam_mark_as_read: bool
    spam_threshold: float
    change_pw_next_login: bool
    allow_spoofing: bool
    auth_source: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MailDomainLimits:
    """The limits of a domain that creating or changing a mailbox checks."""

    name: str
    max_users: int | None
    max_quota_bytes: int | None


_PUBLIC = [users.c[name] for name in UserRecord.__dataclass_fields__]


async def lock_domain(tx: Tx, name: str) -> MailDomainLimits | None:
    """The limits of a domain (``name``, ``max_users``, ``max_quota_bytes``), locked for this transaction.

    On PostgreSQL the row lock (``FOR UPDATE``) makes concurrent user creations in one domain
    take turns, so two of them cannot both count the users, both see room, and both insert.
    SQLite has no row locks and needs none: its write transactions already take turns.
    """
    query = select(domains.c.name, domains.c.max_users, domains.c.max_quota_bytes).where(
        domains.c.name == name
    )
    row = await tx.first(query.with_for_update())
    return MailDomainLimits(**row) if row is not None else None


_INSERT_USER = insert(users)
# Prepared: reading one user and listing users are the admin API's hottest paths.
_GET = Query(select(*_PUBLIC).where(users.c.email == bindparam("email")))
_COUNT_ALL = Query(select(func.count()).select_from(users))


async def get(tx: Tx, email: str) -> UserRecord | None:
    """One user by address, without the password hash."""
    row = await tx.first(_GET, {"email": email})
    return UserRecord(**row) if row is not None else None


#: Users as the API shows them, by (id, row_version) (see :mod:`.row_cache`).
UserCache = RowCache[User]

# The model's fields in its order; with the cache a page fetches two values per user instead
# of 25, and the whole rows of the users it does not hold, by id, in one statement.
_USER_FIELDS = model_columns(User, users)
_KEY = [users.c.id, users.c.row_version]
# Labelled apart from the model's fields, whatever fields the model gains.
_KEYED_FIELDS = [*_USER_FIELDS, users.c.id.label("cache_id"), users.c.row_version.label("cache_version")]


def _among(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """``column IN (...)`` with the whole list in one parameter, so that it can be prepared:
    a JSON array read by ``json_each`` on SQLite (see :func:`_listed`), an expanding
    parameter elsewhere."""
    if dialect == "sqlite":
        values = func.json_each(bindparam(name)).table_valued("value")
        return column.in_(select(values.c.value))
    return column.in_(bindparam(name, expanding=True))


def _listed(tx: Tx, values: Iterable[Any]) -> Any:
    """``values`` as :func:`_among` binds them on ``tx``'s engine."""
    return orjson.dumps(list(values)).decode() if tx.dialect == "sqlite" else list(values)


def _page(columns: Sequence[ColumnElement[Any]], dialect: str | None, sort: str = "email") -> Select[Any]:
    """Users by ``sort`` (then address), ``limit`` and ``offset`` bound; only ``domains`` unless
    ``dialect`` is None."""
    query = select(*columns)
    if dialect is not None:
        query = query.where(_among(users.c.domain, "domains", dialect))
    terms = order_by(users.c, sort, users.c.email)
    return query.order_by(*terms).limit(bindparam("limit")).offset(bindparam("offset"))


@dataclass(frozen=True)
class _PageQueries:
    rows_all: Query
    rows_in: PerDialect
    keys_all: Query
    keys_in: PerDialect


@functools.cache
def _page_queries(sort: str) -> _PageQueries:
    """The prepared page statements of one order (a handful of orders exist: the API's Literal)."""
    return _PageQueries(
        Query(_page(_USER_FIELDS, None, sort)),
        PerDialect(lambda d: _page(_USER_FIELDS, d, sort)),
        Query(_page(_KEY, None, sort)),
        PerDialect(lambda d: _page(_KEY, d, sort)),
    )


_COUNT_IN = PerDialect(
    lambda d: select(func.count()).select_from(users).where(_among(users.c.domain, "domains", d))
)
_FIELDS_BY_IDS = PerDialect(lambda d: select(*_KEYED_FIELDS).where(_among(users.c.id, "ids", d)))
_FIELDS_BY_IDS_IN = PerDialect(
    lambda d: select(*_KEYED_FIELDS).where(_among(users.c.id, "ids", d), _among(users.c.domain, "domains", d))
)
_KEY_BY_EMAIL = Query(select(*_KEY).where(users.c.email == bindparam("email")))
_FIELDS_BY_EMAIL = Query(select(*_USER_FIELDS).where(users.c.email == bindparam("email")))
_KEYED_BY_EMAIL = Query(select(*_KEYED_FIELDS).where(users.c.email == bindparam("email")))


async def page(
    tx: Tx,
    *,
    domains: Collection[str] | None,
    offset: int,
    limit: int,
    cache: UserCache | None = None,
    sort: str = "email",
    q: str | None = None,
) -> tuple[list[User], int]:
    """Users ordered by address (or ``sort``), limited to ``domains`` unless it is None; and
    their total.

    With ``cache``, the users it holds in their current version are not fetched again (the
    same immutable instances come back), and those it lacks are fetched in one statement
    and kept. A user deleted between the two statements is left out, as if the page had
    been read a moment later.

    With ``q``, only the users whose address or display name contains it (case aside): a
    search, read without the prepared statements and the cache.
    """
    if q is not None:
        return await _matching(tx, domains, q, offset, limit, sort)
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    queries = _page_queries(sort)
    if domains is not None:
        params["domains"] = _listed(tx, domains)
    if cache is None:
        rows = await tx.all(queries.rows_all if domains is None else queries.rows_in(tx), params)
        return [User.model_validate(row) for row in rows], await _total(tx, params)
    # (id, row_version) tuples, as the driver gives them: they are the cache's keys.
    keys = await tx.tuples(queries.keys_all if domains is None else queries.keys_in(tx), params)
    total = await _total(tx, params)
    found = list(map(cache.get, keys))
    missing = [i for i, user in enumerate(found) if user is None]
    if missing:
        params["ids"] = _listed(tx, [keys[i][0] for i in missing])
        rows = await tx.all(_FIELDS_BY_IDS(tx) if domains is None else _FIELDS_BY_IDS_IN(tx), params)
        fetched = {}
        for row in rows:
            key = _pop_key(row)
            fetched[key[0]] = cache.put(key, User.model_validate(row))
        for i in missing:
            found[i] = fetched.get(keys[i][0])
        if len(fetched) < len(missing):  # gone since the first statement
            found = [user for user in found if user is not None]
    return cast(list[User], found), total


async def _matching(
    tx: Tx, domains: Collection[str] | None, q: str, offset: int, limit: int, sort: str
) -> tuple[list[User], int]:
    match = containing(q, users.c.email, users.c.display_name)
    query = select(*_USER_FIELDS).where(match)
    count = select(func.count()).select_from(users).where(match)
    if domains is not None:
        query = query.where(users.c.domain.in_(list(domains)))
        count = count.where(users.c.domain.in_(list(domains)))
    terms = order_by(users.c, sort, users.c.email)
    rows = await tx.all(query.order_by(*terms).offset(offset).limit(limit))
    return [User.model_validate(row) for row in rows], int(await tx.scalar(count) or 0)


async def _total(tx: Tx, params: dict[str, Any]) -> int:
    if "domains" not in params:
        return int(await tx.scalar(_COUNT_ALL) or 0)
    return int(await tx.scalar(_COUNT_IN(tx), {"domains": params["domains"]}) or 0)


def _pop_key(row: Row) -> tuple[int, int]:
    """The cache key of a row selected with ``_KEYED_FIELDS``, taken out of the row, which is
    left with the model's fields alone."""
    return (row.pop("cache_id"), row.pop("cache_version"))


async def get_user(tx: Tx, email: str, cache: UserCache | None = None) -> User | None:
    """One user as the API shows it (None when there is none); with ``cache``, the instance
    it holds for the user's current version, or fetched and kept there."""
    if cache is None:
        row = await tx.first(_FIELDS_BY_EMAIL, {"email": email})
        return User.model_validate(row) if row is not None else None
    keys = await tx.tuples(_KEY_BY_EMAIL, {"email": email})
    if not keys:
        return None
    user = cache.get(keys[0])
    if user is None:
        row = await tx.first(_KEYED_BY_EMAIL, {"email": email})
        if row is None:
            return None
        user = cache.put(_pop_key(row), User.model_validate(row))
    return user


async def count(tx: Tx, domain: str) -> int:
    """How many users a domain has."""
    return int(await tx.scalar(select(func.count()).select_from(users).where(users.c.domain == domain)) or 0)


class _UserSettings(TypedDict, total=False):
    """The user columns with a default, which an insert may leave out and an update may change."""

    display_name: str
    quota_bytes_used: int
    enabled: bool
    enable_imap: bool
    enable_pop: bool
    enable_smtp: bool
    global_admin: bool
    forward_enabled: bool
    forward_keep: bool
    reply_enabled: bool
    reply_subject: str
    reply_body: str
    reply_start: date | None
    reply_end: date | None
    spam_enabled: bool
    spam_mark_as_read: bool
    spam_threshold: float
    change_pw_next_login: bool
    allow_spoofing: bool
    auth_source: str


class NewUser(_UserSettings):
    """The columns :func:`insert_user` writes: these, and any of :class:`_UserSettings`."""

    email: str
    domain: str
    password_hash: str
    quota_bytes: int
    forward_destinations: list[str]
    created_at: datetime
    updated_at: datetime


class UserChanges(_UserSettings, total=False):
    """The columns :func:`update_user` may change (any subset)."""

    password_hash: str
    quota_bytes: int
    forward_destinations: list[str]
    updated_at: datetime


async def insert_user(tx: Tx, values: NewUser) -> None:
    """Claim the address for a user, then create the user; a taken address is a Conflict."""
    await addresses.claim(tx, values["email"], "user", values["domain"])
    await tx.execute(_INSERT_USER, values)


async def update_user(tx: Tx, email: str, values: UserChanges) -> None:
    """Change columns of one user (``password_hash`` included when the password changes)."""
    await tx.execute(update(users).where(users.c.email == email).values(**values))


async def delete_user(tx: Tx, email: str) -> bool:
    """Delete a user and release its address; managers and API keys go by FK cascade."""
    gone = await tx.rowcount(delete(users).where(users.c.email == email))
    if gone:
        await addresses.release(tx, email, "user")
    return gone > 0
