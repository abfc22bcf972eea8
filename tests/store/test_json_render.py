"""Rows serialised straight to JSON (store/json_render.py) say exactly what the model says.

``admin.users.list`` serialises rows without building a ``User`` per row; ``admin.users.get``
goes through the model. For users with awkward values (text that needs escaping, dates,
fractions of seconds and none, floats, lists) the two must agree, over REST and in-process,
on whichever database the suite runs on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table

from mailroom.clock import FakeClock
from mailroom.domain.users import User
from mailroom.store.json_render import model_columns, render_rows
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


def test_render_rows_writes_what_pydantic_writes() -> None:
    class Row(BaseModel):
        at: datetime
        day: date | None
        flag: bool
        score: float
        names: list[str]

    rows = [
        {
            "at": datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),
            "day": None,
            "flag": True,
            "score": 0.1,
            "names": ["x"],
        },
        {
            "at": datetime(2026, 5, 6, 7, 8, 9, 5, tzinfo=UTC),
            "day": date(2026, 1, 31),
            "flag": False,
            "score": 1e-7,
            "names": ["é", '"q"'],
        },
    ]
    rendered = orjson.dumps({"items": render_rows(rows)})
    expected = orjson.dumps({"items": [Row.model_validate(r).model_dump(mode="json") for r in rows]})
    assert rendered == expected
