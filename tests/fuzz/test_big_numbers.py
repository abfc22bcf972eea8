"""Numbers beyond what the database holds are a 422, never a 500 (issue 11 §3).

Reproduced by schemathesis: any integer path or query parameter above 2**63-1
(``/emails/{id}``, ``/queue/{id}/retry``, ``offset`` ...) raised ``OverflowError`` in
SQLite. Each integer parameter of every REST operation is tried here with values just past
each bound (32-bit, 64-bit, far beyond) and must be refused as ``invalid_params`` naming it;
behind the bounds, the store itself turns an out-of-range value into the same error.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.domain.numbers import INT32_MAX, INT64_MAX
from mailroom.errors import InvalidParams
from mailroom.frontends.rest.openapi import openapi_document
from mailroom.store.engine import Query
from mailroom.store.schema import users
from tests.conftest import Actor, problem

pytestmark = pytest.mark.anyio

TOO_BIG = [INT32_MAX + 1, INT64_MAX + 1, 2**64, 10**40]


def integer_parameters(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(verb, path template, parameter, where) of every integer path or query parameter."""
    out = []
    for path, item in document["paths"].items():
        for verb, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                kinds = [schema.get("type"), *(b.get("type") for b in schema.get("anyOf", []))]
                if "integer" in kinds:
                    out.append((verb.upper(), path, parameter["name"], parameter["in"]))
    return out


def url_for(path: str, name: str, value: int) -> str:
    """The path with ``name`` set to ``value`` and any other placeholder to a plausible value."""
    url = path.replace("{" + name + "}", str(value))
    return "/api/v1" + re.sub(r"{[^}]+}", "1", url)


async def test_every_integer_parameter_refuses_values_beyond_its_bound(
    mailroom: Mailroom, client: httpx.AsyncClient, admin: Actor, make_user: Any
) -> None:
    user = await make_user("alice@example.org")
    found = integer_parameters(openapi_document(mailroom.registry))
    names = {(verb, path) for verb, path, _, _ in found}
    # The reproductions are among them.
    assert {("GET", "/emails/{id}"), ("GET", "/threads/{id}"), ("POST", "/queue/{id}/retry")} <= names
    assert ("GET", "/users") in names  # offset
    for verb, path, name, where in found:
        for value in TOO_BIG:
            for actor in (admin, user):
                if where == "path":
                    r = await client.request(verb, url_for(path, name, value), headers=actor.headers)
                else:
                    r = await client.request(
                        verb, url_for(path, name, 0), params={name: str(value)}, headers=actor.headers
                    )
                assert r.status_code < 500, (verb, path, name, value, r.text)
                if r.status_code == 422:
                    body = problem(r, 422, "invalid_params")
                    assert name in [e["loc"] for e in body["errors"]], (verb, path, body)
                else:
                    # Only a refusal that comes before validation: the caller may not call it.
                    assert r.status_code in (401, 403), (verb, path, name, r.status_code, r.text)


async def test_the_published_bounds_are_what_is_refused(mailroom: Mailroom) -> None:
    document = openapi_document(mailroom.registry)
    retry = document["paths"]["/queue/{id}/retry"]["post"]["parameters"][0]["schema"]
    assert (retry["minimum"], retry["maximum"]) == (1, INT32_MAX)
    offset = next(p for p in document["paths"]["/users"]["get"]["parameters"] if p["name"] == "offset")
    assert (offset["schema"]["minimum"], offset["schema"]["maximum"]) == (0, INT32_MAX)


async def test_the_store_refuses_an_integer_it_cannot_bind(mailroom: Mailroom) -> None:
    """The safety net behind the bounds: the driver's overflow is a validation error."""
    db = mailroom.runtime.db
    for value in (2**64, INT32_MAX + 1 if db.dialect == "postgresql" else 2**63):
        statement = select(users.c.id).where(users.c.id == value)
        prepared = Query(select(users.c.id).where(users.c.id == value))
        async with db.read() as tx:
            with pytest.raises(InvalidParams) as caught:
                await tx.all(statement)
            assert caught.value.errors[0].type == "range"
            with pytest.raises(InvalidParams):
                await tx.all(prepared)
