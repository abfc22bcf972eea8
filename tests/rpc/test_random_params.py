"""Every registered method, called with random parameters over JSON-RPC and XML-RPC, never
answers an internal error (issue 11 §3).

Property-based (hypothesis): each example picks a method the protocol serves, a caller
(anonymous, a user, an admin) and parameters — nothing, a scalar, a positional array, or an
object with some of the method's parameter names (nested models get some of their own field
names) and sometimes a name it does not have, whose values come from a pool of awkward ones:
integers at and past every bound, long, empty and control-character strings, dates, nulls,
nested arrays and objects. The server is real (uvicorn on loopback); JSON-RPC is sent as raw
JSON, XML-RPC through ``xmlrpc.client``. Refusals of every kind are fine; a 5xx, a JSON-RPC
-32603 (internal error) or -32053 (unavailable), or the matching XML-RPC fault is not.

``MAILROOM_RPC_FUZZ_EXAMPLES`` sets the number of calls per protocol (default 200).
"""

from __future__ import annotations

import os
import typing
import xmlrpc.client
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mailroom.bootstrap import Mailroom
from mailroom.frontends.rpc.errors import INTERNAL_ERROR, RPC_CODES
from mailroom.registry import MethodSpec
from tests.conftest import Actor

pytestmark = pytest.mark.anyio

EXAMPLES = int(os.environ.get("MAILROOM_RPC_FUZZ_EXAMPLES", "200"))
#: What a server error looks like on the RPC protocols.
SERVER_ERRORS = {INTERNAL_ERROR, RPC_CODES["unavailable"]}

INT_EDGES = [0, 1, -1, 2, 50, 1000, 1001, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, 2**64, 10**40]
STRING_EDGES = [
    "",
    " ",
    "example.org",
    "alice@example.org",
    "*@example.org",
    "nobody@nowhere.example",
    "Bücher.example",
    "admin.*",
    "inbox",
    "2026-01-01",
    "2026-01-01T00:00:00Z",
    "0075-01-01T00:00:00Z",
    "9999-12-31T23:59:59+14:00",
    "base64",
    "aGVsbG8=",
    "A4E23862 5A7E00F7 4EC58300 163D0737 B96B4EBB",
    "127.0.0.1/32",
    "x" * 5000,
    "a\r\nBcc: evil@example.net",
    "\x00",
    "é" * 70,
]


def scalars(*, xml: bool) -> st.SearchStrategy[Any]:
    ints = st.sampled_from(INT_EDGES) | st.integers()
    if xml:  # XML-RPC's <int> is 32 bits: xmlrpc.client refuses to send more
        ints = ints.filter(lambda i: -(2**31) <= i < 2**31)
    text = st.sampled_from(STRING_EDGES) | st.text(max_size=40)
    if xml:  # XML 1.0 cannot carry most control characters at all
        text = text.map(lambda s: "".join(c for c in s if c in "\t\n\r" or c >= " "))
    out = st.none() | st.booleans() | ints | text | st.floats(allow_nan=False, allow_infinity=False)
    if xml:
        out = (
            out
            | st.binary(max_size=64)
            | st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
                xmlrpc.client.DateTime
            )
        )
    return out


def values(*, xml: bool) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(xml=xml),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=12,
    )


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def value_for(annotation: Any, *, xml: bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """Random values, and for a model some of its own field names with random values."""
    model = _model_of(annotation)
    anything = values(xml=xml)
    if model is None or depth > 2:
        return anything
    fields = {
        (f.alias or name): value_for(f.annotation, xml=xml, depth=depth + 1)
        for name, f in model.model_fields.items()
    }
    return st.fixed_dictionaries({}, optional=fields) | anything


def params_for(spec: MethodSpec, *, xml: bool) -> st.SearchStrategy[Any]:
    named = {
        (f.alias or name): value_for(f.annotation, xml=xml)
        for name, f in spec.params_model.model_fields.items()
    }
    by_name = st.fixed_dictionaries({}, optional=named)
    with_unknown = st.builds(lambda d, v: {**d, "surely_not_a_parameter": v}, by_name, values(xml=xml))
    positional = st.lists(values(xml=xml), max_size=len(named) + 1)
    return st.one_of(by_name, by_name, by_name, with_unknown, positional, st.none(), scalars(xml=xml))


def calls(specs: list[MethodSpec], callers: list[dict[str, str]], *, xml: bool) -> st.SearchStrategy[Any]:
    method = st.sampled_from(specs)
    return method.flatmap(
        lambda spec: st.tuples(st.just(spec.name), params_for(spec, xml=xml), st.sampled_from(callers))
    )


async def _callers(mailroom: Mailroom, admin: Actor, make_user: Any) -> list[dict[str, str]]:
    alice: Actor = await make_user("alice@example.org")
    return [{}, alice.headers, admin.headers, admin.headers]


def _xmlrpc(proxy: xmlrpc.client.ServerProxy, method: str, args: tuple[Any, ...]) -> tuple[int | None, str]:
    """Call ``method``; (None, "") on success, else the fault code or the HTTP status and text."""
    try:
        getattr(proxy, method)(*args)
    except xmlrpc.client.Fault as fault:
        return fault.faultCode, str(fault.faultString)
    except xmlrpc.client.ProtocolError as exc:
        return exc.errcode, exc.errmsg
    return None, ""


def _protocol_methods(mailroom: Mailroom, protocol: str) -> list[MethodSpec]:
    specs = [s for s in mailroom.registry.visible(protocol)]
    assert len(specs) > 50
    return sorted(specs, key=lambda s: s.name)


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
)


async def test_jsonrpc_never_answers_an_internal_error(
    mailroom: Mailroom, server_url: str, admin: Actor, make_user: Any
) -> None:
    specs = _protocol_methods(mailroom, "jsonrpc")
    callers = await _callers(mailroom, admin, make_user)
    seen: set[str] = set()

    def run() -> None:
        with httpx.Client(base_url=server_url, timeout=60) as http:

            @HYPOTHESIS
            @given(calls(specs, callers, xml=False))
            def prop(call: tuple[str, Any, dict[str, str]]) -> None:
                method, params, headers = call
                seen.add(method)
                body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
                if params is not None:
                    body["params"] = params
                r = http.post("/rpc/json", json=body, headers=headers)
                assert r.status_code < 500, (method, params, r.status_code, r.text)
                reply = r.json()
                error = reply.get("error") if isinstance(reply, dict) else None
                if error is not None:
                    assert error["code"] not in SERVER_ERRORS, (method, params, error)

            prop()

    await anyio.to_thread.run_sync(run)
    assert len(seen) > min(EXAMPLES, len(specs)) // 3


async def test_xmlrpc_never_answers_an_internal_error(
    mailroom: Mailroom, server_url: str, admin: Actor, make_user: Any
) -> None:
    specs = _protocol_methods(mailroom, "xmlrpc")
    callers = await _callers(mailroom, admin, make_user)
    seen: set[str] = set()

    def run() -> None:
        proxies = {
            tuple(h.items()): xmlrpc.client.ServerProxy(
                f"{server_url}/rpc/xml", allow_none=True, use_builtin_types=True, headers=list(h.items())
            )
            for h in callers
        }

        @HYPOTHESIS
        @given(calls(specs, callers, xml=True))
        def prop(call: tuple[str, Any, dict[str, str]]) -> None:
            method, params, headers = call
            seen.add(method)
            if params is None:
                args: tuple[Any, ...] = ()
            elif isinstance(params, list):
                args = tuple(params)
            else:
                args = (params,)
            code, text = _xmlrpc(proxies[tuple(headers.items())], method, args)
            assert code not in SERVER_ERRORS, (method, args, text)
            assert code is None or code < 500 or code >= 600, (method, args, code, text)

        try:
            prop()
        finally:
            for proxy in proxies.values():
                proxy("close")()

    await anyio.to_thread.run_sync(run)
    assert len(seen) > min(EXAMPLES, len(specs)) // 3
