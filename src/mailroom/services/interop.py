"""interop: conformance-test methods whose names and meanings other specifications fix.

* The eight UserLand XML-RPC ``validator1`` methods, with their published semantics.
* The methods the JSON-RPC 2.0 specification's examples call: ``subtract`` (by position
  and by name), ``sum``, ``update``, ``notify_hello``, ``notify_sum``, ``get_data``.

Off unless ``interop_api`` is set; then anyone may call them (no authentication), over
every protocol like any method. They touch nothing: no storage, no side effects.

The registry has no variadic parameters, so ``sum``, ``notify_sum`` and ``update`` take up
to eight positional values (``a`` .. ``h``), enough for the specification's examples.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from mailroom.domain.numbers import INT32_MAX, Int32
from mailroom.errors import FieldError, InvalidParams
from mailroom.registry import POST, Api, Context, Public

api = Api(
    "interop",
    title="Interop",
    description="Conformance-test methods: the XML-RPC validator1 suite and the JSON-RPC 2.0 "
    "specification's examples. Enabled by interop_api; no authentication.",
)

SINCE = "0.1.0"
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _from_base64(value: Any) -> Any:
    """Bytes arrive as bytes over XML-RPC (``<base64>``) and as base64 text over JSON."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not valid base64") from None
    return value


def _to_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


#: Binary data: bytes in Python, base64 text in JSON, ``<base64>`` in XML-RPC.
Base64 = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(_to_base64, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return _to_base64(bytes(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


#: Any value a client may send; binary and dates come back as base64 and ISO text.
AnyValue = Annotated[Any, PlainSerializer(_jsonable, when_used="json")]
#: A number of the JSON-RPC examples: 32-bit integers, so that sums and differences of a few
#: of them stay far inside what every protocol can answer.
Number = Int32 | float


class Stooges(BaseModel):
    """validator1's struct of three integers."""

    model_config = ConfigDict(extra="forbid")

    moe: Int32
    larry: Int32
    curly: Int32


class EntityCounts(BaseModel):
    ctLeftAngleBrackets: int
    ctRightAngleBrackets: int
    ctAmpersands: int
    ctApostrophes: int
    ctQuotes: int


class Multiples(BaseModel):
    times10: int
    times100: int
    times1000: int


def _method(name: str, path: str, **kwargs: Any) -> Callable[[F], F]:
    return api.method(
        name, http=POST(f"/interop/{path}"), access=Public(), mutating=False, since=SINCE, **kwargs
    )


# -- validator1 ------------------------------------------------------------------------------


@_method(
    "validator1.arrayOfStructsTest",
    "validator1/arrayOfStructsTest",
    examples=[
        {
            "params": {"structs": [{"moe": 1, "larry": 2, "curly": 3}, {"moe": 4, "larry": 5, "curly": 6}]},
            "result": 9,
        }
    ],
)
async def array_of_structs_test(ctx: Context, structs: list[Stooges]) -> int:
    """validator1: the sum of the ``curly`` members of an array of {moe, larry, curly} structs."""
    return sum(s.curly for s in structs)


@_method(
    "validator1.countTheEntities",
    "validator1/countTheEntities",
    examples=[
        {
            "params": {"text": '<a href="x">&\'</a>'},
            "result": {
                "ctLeftAngleBrackets": 2,
                "ctRightAngleBrackets": 2,
                "ctAmpersands": 1,
                "ctApostrophes": 1,
                "ctQuotes": 2,
            },
        }
    ],
)
async def count_the_entities(ctx: Context, text: str) -> EntityCounts:
    """validator1: how many ``<``, ``>``, ``&``, ``'`` and ``"`` a string holds."""
    return EntityCounts(
        ctLeftAngleBrackets=text.count("<"),
        ctRightAngleBrackets=text.count(">"),
        ctAmpersands=text.count("&"),
        ctApostrophes=text.count("'"),
        ctQuotes=text.count('"'),
    )


@_method(
    "validator1.easyStructTest",
    "validator1/easyStructTest",
    examples=[{"params": {"stooges": {"moe": 1, "larry": 2, "curly": 3}}, "result": 6}],
)
async def easy_struct_test(ctx: Context, stooges: Stooges) -> int:
    """validator1: the sum of the ``moe``, ``larry`` and ``curly`` members of a struct."""
    return stooges.moe + stooges.larry + stooges.curly


@_method(
    "validator1.echoStructTest",
    "validator1/echoStructTest",
    examples=[
        {
            "params": {"struct": {"substruct0": {"moe": 1, "larry": 2, "curly": 3}}},
            "result": {"substruct0": {"moe": 1, "larry": 2, "curly": 3}},
        }
    ],
)
async def echo_struct_test(ctx: Context, struct: dict[str, AnyValue]) -> dict[str, AnyValue]:
    """validator1: the struct it is given, unchanged."""
    return struct


@_method(
    "validator1.manyTypesTest",
    "validator1/manyTypesTest",
    examples=[
        {
            "params": {
                "number": 1,
                "boolean": True,
                "string": "x",
                "double": 1.5,
                "when": "2000-04-01T12:00:00Z",
                "data": "AAEC",
            },
            "result": [1, True, "x", 1.5, "2000-04-01T12:00:00Z", "AAEC"],
        }
    ],
)
async def many_types_test(
    ctx: Context, number: Int32, boolean: bool, string: str, double: float, when: datetime, data: Base64
) -> tuple[int, bool, str, float, datetime, Base64]:
    """validator1: its six parameters (int, boolean, string, double, dateTime, base64) as an array."""
    return (number, boolean, string, double, when, data)


@_method(
    "validator1.moderateSizeArrayCheck",
    "validator1/moderateSizeArrayCheck",
    examples=[{"params": {"strings": ["first", "middle", "last"]}, "result": "firstlast"}],
)
async def moderate_size_array_check(
    ctx: Context, strings: Annotated[list[str], Field(min_length=1, max_length=10_000)]
) -> str:
    """validator1: the first and the last string of an array (of 100 to 200), concatenated."""
    return strings[0] + strings[-1]


def _is_int32(value: object) -> bool:
    """An integer (not a boolean) that XML-RPC's ``<int>`` carries."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value <= INT32_MAX


@_method(
    "validator1.nestedStructTest",
    "validator1/nestedStructTest",
    examples=[
        {"params": {"calendar": {"2000": {"04": {"01": {"moe": 1, "larry": 2, "curly": 3}}}}}, "result": 6}
    ],
)
async def nested_struct_test(ctx: Context, calendar: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> int:
    """validator1: in a calendar struct (year → month → day), the sum of the ``moe``,
    ``larry`` and ``curly`` members of April 1st, 2000."""
    day = calendar.get("2000", {}).get("04", {}).get("01")
    if day is None:
        raise InvalidParams([FieldError("calendar.2000.04.01", "required", "missing")])
    errors = [
        FieldError(f"calendar.2000.04.01.{k}", "must be a 32-bit integer", "int_type")
        for k in ("moe", "larry", "curly")
        if not _is_int32(day.get(k))
    ]
    if errors:
        raise InvalidParams(errors)
    return int(day["moe"]) + int(day["larry"]) + int(day["curly"])


@_method(
    "validator1.simpleStructReturnTest",
    "validator1/simpleStructReturnTest",
    examples=[{"params": {"number": 7}, "result": {"times10": 70, "times100": 700, "times1000": 7000}}],
)
async def simple_struct_return_test(ctx: Context, number: Int32) -> Multiples:
    """validator1: a struct of the number times 10, 100 and 1000."""
    return Multiples(times10=number * 10, times100=number * 100, times1000=number * 1000)


# -- the JSON-RPC 2.0 specification's examples ------------------------------------------------


@_method(
    "subtract",
    "subtract",
    examples=[{"params": {"minuend": 42, "subtrahend": 23}, "result": 19}],
)
async def subtract(ctx: Context, minuend: Number, subtrahend: Number) -> Number:
    """``minuend - subtrahend``; by position, ``[42, 23]`` is 19 and ``[23, 42]`` is -19."""
    return minuend - subtrahend


@_method("sum", "sum", examples=[{"params": {"a": 1, "b": 2, "c": 4}, "result": 7}])
async def sum_(
    ctx: Context,
    a: Number = 0,
    b: Number = 0,
    c: Number = 0,
    d: Number = 0,
    e: Number = 0,
    f: Number = 0,
    g: Number = 0,
    h: Number = 0,
) -> Number:
    """The sum of up to eight numbers, given by position (``[1, 2, 4]`` is 7)."""
    return a + b + c + d + e + f + g + h


@_method("notify_sum", "notify_sum", examples=[{"params": {"a": 1, "b": 2, "c": 4}, "result": 7}])
async def notify_sum(
    ctx: Context,
    a: Number = 0,
    b: Number = 0,
    c: Number = 0,
    d: Number = 0,
    e: Number = 0,
    f: Number = 0,
    g: Number = 0,
    h: Number = 0,
) -> Number:
    """``sum``, for the specification's batch of notifications."""
    return a + b + c + d + e + f + g + h


@_method("update", "update", examples=[{"params": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, "result": None}])
async def update(
    ctx: Context,
    a: AnyValue = None,
    b: AnyValue = None,
    c: AnyValue = None,
    d: AnyValue = None,
    e: AnyValue = None,
    f: AnyValue = None,
    g: AnyValue = None,
    h: AnyValue = None,
) -> None:
    """Accepts up to eight values and returns nothing (the specification's notification example)."""
    return None


@_method("notify_hello", "notify_hello", examples=[{"params": {"value": 7}, "result": None}])
async def notify_hello(ctx: Context, value: Int32) -> None:
    """Returns nothing (the specification's notification example, ``[7]``)."""
    return None


@_method("get_data", "get_data", examples=[{"params": {}, "result": ["hello", 5]}])
async def get_data(ctx: Context) -> tuple[str, int]:
    """``["hello", 5]``."""
    return ("hello", 5)
