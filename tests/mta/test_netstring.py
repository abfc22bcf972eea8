"""The netstring reader, fuzzed: any split of a valid stream gives the same requests, and
no input raises anything but NetstringError or holds more than the limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.frontends.socketmap import MAX_LENGTH, NetstringError, NetstringReader, encode


def feed_in_pieces(data: bytes, cuts: list[int], limit: int = MAX_LENGTH) -> list[bytes]:
    reader = NetstringReader(limit)
    out: list[bytes] = []
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out.extend(reader.feed(data[start:cut]))
        start = max(start, cut)
    assert reader.pending == 0
    return out


@given(st.lists(st.binary(max_size=300), max_size=20), st.lists(st.integers(min_value=0), max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_split_of_a_valid_stream_gives_the_same_netstrings(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(encode(p) for p in payloads)
    assert feed_in_pieces(stream, cuts) == payloads


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=10))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_give_netstrings_or_a_netstring_error(data: bytes, cuts: list[int]) -> None:
    reader = NetstringReader(limit=100)
    start = 0
    try:
        for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
            for frame in reader.feed(data[start:cut]):
                assert len(frame) <= 100
            start = max(start, cut)
    except NetstringError:
        return
    # Whatever is still pending could yet become a netstring within the limit.
    assert reader.pending <= len("100:") + 100


def test_the_limit_is_checked_before_the_payload_arrives() -> None:
    reader = NetstringReader()
    with pytest.raises(NetstringError, match="exceeds"):
        reader.feed(b"%d:" % (MAX_LENGTH + 1))
    assert NetstringReader().feed(b"%d:" % MAX_LENGTH + b"x" * MAX_LENGTH + b",") == [b"x" * MAX_LENGTH]


def test_encode_refuses_an_oversized_reply() -> None:
    with pytest.raises(NetstringError):
        encode(b"x" * (MAX_LENGTH + 1))
    assert encode(b"") == b"0:,"
