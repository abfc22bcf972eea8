"""Bounded integers: the one family of types for every id, offset, limit, count and size a
method takes.

Every integer the API accepts is bounded, and the bounds are in the published schema
(``minimum``/``maximum``), so no value that passes validation can overflow a database
column: SQLite stores signed 64-bit integers (a larger Python int raised ``OverflowError``),
and the row ids are 32-bit ``INTEGER`` columns on PostgreSQL. ``tests/fuzz/test_bounds.py``
walks every method's parameters and fails on an integer without both bounds.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: The largest value of a signed 32-bit integer: PostgreSQL ``INTEGER``, every row id.
INT32_MAX = 2**31 - 1
#: The largest value of a signed 64-bit integer: SQLite's integers, PostgreSQL ``BIGINT``.
INT64_MAX = 2**63 - 1

#: A signed 32-bit integer: what XML-RPC's ``<int>`` carries (the interop methods' numbers).
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
#: A row id (an email, thread, label, contact, queue entry, waitlist entry ...).
Id = Annotated[int, Field(ge=1, le=INT32_MAX, description="An id (1 to 2147483647).")]
#: A count of things: limits on users or aliases, positions in a list.
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
#: A number of bytes (quotas, sizes): up to the 64-bit limit.
ByteSize = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: A position in a short list (an attachment's index in an email).
Index = Annotated[int, Field(ge=0, le=INT32_MAX)]
