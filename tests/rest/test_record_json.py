"""Users' JSON kept by identity in the REST front-end (frontends/rest/records.py) says exactly
what the model's ordinary serialisation says.

For users with awkward values (text that needs escaping, dates, fractions of seconds and
none, floats, lists), a page and a single user over REST (memoised) must equal what the
model writes, in-process and on whichever database the suite runs on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter
from sqlalchemy import Column, Integer, MetaData, String, Table

from mailroom.clock import FakeClock
from mailroom.domain.paging import Page
from mailroom.domain.users import User
from mailroom.frontends.rest.records import RecordJSON
from mailroom.store.row_cache import model_columns
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

Call = Callable[..., Awaitable[Any]]

AWKWARD = [
    {"display_name": 'Zoë "the" <Boss> back\\slash 😀 \u00e9', "spam_threshold": 7.25},
    {
        "display_name": "",
        "forward_enabled": True,
        "forward_destinations": ["a@elsewhere.example", "b@elsewhere.example"],
        "spam_threshold": 0.1,
        "spam_enabled": False,
    },
    {
        "reply_enabled": True,
        "reply_subject": "Away",
        "reply_body": "Back on Monday.\r\nRegards",
        "reply_start": "2026-02-01",
        "reply_end": "2026-02-28",
        "spam_threshold": 100,
        "quota_bytes": 123456789,
    },
    {"enabled": False, "allow_spoofing": True, "change_pw_next_login": True, "spam_threshold": 3.333333},
]


async def _make_users(call: Call, clock: FakeClock) -> list[str]:
    await call("admin.domains.create", {"domain": {"name": "render.example"}})
    emails = []
    for i, fields in enumerate(AWKWARD):
        # Whole seconds for some (pydantic then drops the fraction), microseconds for others.
        clock.set(datetime(2026, 1, 2, 3, 4, 5, 0 if i % 2 == 0 else 120000 + i, tzinfo=UTC))
        email = f"u{i}@render.example"
        await call(
            "admin.users.create",
            {"user": {"email": email, "password": "correct horse battery staple", **fields}},
        )
        emails.append(email)
    return emails


async def test_a_rendered_page_equals_the_models_json(
    call: Call, clock: FakeClock, client: httpx.AsyncClient, admin: Actor
) -> None:
    emails = await _make_users(call, clock)
    listed = await client.get("/api/v1/users", params={"limit": 1000}, headers=admin.headers)
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == len(emails)
    assert [u["email"] for u in page["items"]] == emails
    for item in page["items"]:
        one = await client.get(f"/api/v1/users/{item['email']}", headers=admin.headers)
        assert one.status_code == 200
        assert item == one.json()
        assert list(item) == list(User.model_fields)  # the model's order
    whole = next(u for u in page["items"] if u["email"] == "u0@render.example")
    assert whole["created_at"] == "2026-01-02T03:04:05Z"
    fraction = next(u for u in page["items"] if u["email"] == "u1@render.example")
    assert fraction["created_at"] == "2026-01-02T03:04:05.120001Z"
    dated = next(u for u in page["items"] if u["email"] == "u2@render.example")
    assert (dated["reply_start"], dated["spam_threshold"]) == ("2026-02-01", 100.0)

    # In-process callers and XML-RPC get plain data, the same.
    plain = await call("admin.users.list", {"limit": 1000})
    assert plain == page
    # A manager's view (a filtered query) is rendered alike.
    by_domain = await call("admin.users.list", {"domain": "render.example", "limit": 2, "offset": 1})
    assert by_domain == {"items": page["items"][1:3], "total": len(emails), "offset": 1, "limit": 2}


async def test_spam_thresholds_keep_six_decimals(call: Call, clock: FakeClock) -> None:
    await call("admin.domains.create", {"domain": {"name": "render.example"}})
    created = await call(
        "admin.users.create",
        {
            "user": {
                "email": "t@render.example",
                "password": "correct horse battery staple",
                "spam_threshold": 5.123456789,
            }
        },
    )
    assert created["spam_threshold"] == 5.123457


def test_model_columns_need_every_field_as_a_column_under_its_own_name() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("name", String))

    class Named(BaseModel):
        name: str

    class Missing(BaseModel):
        name: str
        other: int

    assert [c.name for c in model_columns(Named, table)] == ["name"]
    with pytest.raises(TypeError, match="other is not a column"):
        model_columns(Missing, table)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    day: date | None
    flag: bool
    score: float
    names: list[str]


class Loose(BaseModel):
    name: str


RECORDS = [
    Record(at=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC), day=None, flag=True, score=0.1, names=["x"]),
    Record(
        at=datetime(2026, 5, 6, 7, 8, 9, 5, tzinfo=UTC),
        day=date(2026, 1, 31),
        flag=False,
        score=1e-7,
        names=["é", '"q"'],
    ),
]


def test_record_json_writes_what_the_adapter_writes() -> None:
    records = RecordJSON(10)
    adapter: TypeAdapter[Any] = TypeAdapter(Page[Record])
    page = Page[Record](items=RECORDS, total=7, offset=1, limit=2)
    expected = orjson.dumps(adapter.dump_python(page, mode="json", by_alias=True))
    for _ in range(2):  # filling the memo, then from it
        assert orjson.dumps(records(page, adapter)) == expected
    assert len(records._json) == len(records._held) == 2
    one: TypeAdapter[Any] = TypeAdapter(Record)
    assert orjson.dumps(records(RECORDS[1], one)) == orjson.dumps(one.dump_python(RECORDS[1], mode="json"))
    # What is not a frozen model goes the ordinary way, memo or not.
    loose: TypeAdapter[Any] = TypeAdapter(Page[Loose])
    plain = Page[Loose](items=[Loose(name="a")], total=1, offset=0, limit=1)
    assert records(plain, loose) == loose.dump_python(plain, mode="json")
    assert records([1, 2], TypeAdapter(list[int])) == [1, 2]
    assert len(records._json) == len(records._held) == 2


def test_record_json_keeps_at_most_its_entries_and_none_when_off() -> None:
    records = RecordJSON(1)
    adapter: TypeAdapter[Any] = TypeAdapter(Record)
    for record in RECORDS:
        records(record, adapter)
    assert list(records._held.values()) == [RECORDS[1]]
    off = RecordJSON(0)
    assert off(RECORDS[0], adapter) == adapter.dump_python(RECORDS[0], mode="json")
    assert off._json == {}


def test_page_has_the_fields_record_json_writes() -> None:
    """RecordJSON writes a page's fields by name: a field added to Page must be added there."""
    assert list(Page.model_fields) == ["items", "total", "offset", "limit"]


def test_users_cannot_change_once_made() -> None:
    """The memo is sound only while a record cannot change under it."""
    assert User.model_config.get("frozen") is True
