"""The MIME tree cut with ``str.find`` (delivery/_mime.fast_tree) is the feed parser's tree.

Compared part by part (header fields as set, payload as stored, preamble, epilogue, the
parser's defects, default type, depth and budget) on every golden message and on generated
multipart messages, and parse_message's whole result with the fast tree on and off.
"""

from __future__ import annotations

from email import policy as email_policy
from email.feedparser import FeedParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.delivery import _mime
from mailroom.delivery._mime import LimitedMessage, ParseLimits, fast_tree
from mailroom.delivery.parse import parse_message

GOLDEN = Path(__file__).parent / "golden"


def _feed_tree(text: str, limits: ParseLimits) -> LimitedMessage:
    def factory(policy: Any = email_policy.default) -> LimitedMessage:
        message = LimitedMessage(policy=policy)
        message.limits = limits
        return message

    parser = FeedParser(factory, policy=email_policy.default)
    parser.feed(text)
    root = parser.close()
    assert isinstance(root, LimitedMessage)
    return root


def _dump(root: LimitedMessage) -> list[Any]:
    out = []
    for part in root.walk():
        assert isinstance(part, LimitedMessage)
        out.append(
            (
                list(part._headers),  # type: ignore[attr-defined]
                None if part.is_multipart() else part._payload,  # type: ignore[attr-defined]
                part.preamble,
                part.epilogue,
                [type(d).__name__ for d in part.defects],
                part.get_default_type(),
                part.nesting_depth,
                part.over_budget,
                part.get_unixfrom(),
            )
        )
    return out


def _same(raw: bytes, *, max_depth: int = 32, max_parts: int = 1000) -> bool:
    """Whether the fast tree took the message; asserts it equals the parser's when it did."""
    text = raw.decode("ascii", "surrogateescape")
    fast = fast_tree(text, email_policy.default, ParseLimits(max_depth, max_parts))
    if fast is None:
        return False
    assert _dump(fast) == _dump(_feed_tree(text, ParseLimits(max_depth, max_parts)))
    return True


GOLDEN_FILES = sorted(GOLDEN.glob("*.eml"))


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden_messages(path: Path) -> None:
    raw = path.read_bytes()
    _same(raw)
    _same(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    _same(raw, max_depth=2, max_parts=3)


def test_most_golden_messages_take_the_fast_tree() -> None:
    taken = sum(_same(p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) for p in GOLDEN_FILES)
    assert taken >= len(GOLDEN_FILES) // 2, taken


_HEADER = st.sampled_from(
    [
        "Subject: hi",
        "Subject: =?utf-8?q?caf=C3=A9?=",
        "X-Long: a\r\n\tcontinued",
        "From: A <a@example.org>",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        'Content-Disposition: attachment; filename="f.txt"',
        "Content-Type: text/html; charset=utf-8",
        "Content-Type: message/rfc822",
        "Content-Type: application/octet-stream",
        "Empty:",
    ]
)
_BODY = st.sampled_from(
    ["", "text\r\n", "a\r\n\r\nb", "--not-a-boundary\r\n", "QUJD\r\n", "caf=C3=A9\r\n", "\r\n"]
)


@st.composite
def _entity(draw: Any, depth: int = 0) -> str:
    headers = draw(st.lists(_HEADER, max_size=3))
    if depth < 3 and draw(st.booleans()):
        boundary = draw(st.sampled_from(["b1", "b2", "=_x", "b1x"])) + str(depth)
        subtype = draw(st.sampled_from(["mixed", "alternative", "digest", "related"]))
        children = draw(st.lists(_entity(depth + 1), min_size=1, max_size=3))
        ws = draw(st.sampled_from(["", " ", "\t"]))
        preamble = draw(st.sampled_from(["", "preamble\r\n", "\r\n"]))
        epilogue = draw(st.sampled_from(["", "\r\n", "epilogue\r\n", "epi"]))
        close_end = draw(st.sampled_from(["\r\n", ""])) if depth == 0 else "\r\n"
        body = preamble + "".join(f"--{boundary}{ws}\r\n{c}\r\n" for c in children)
        body += f"--{boundary}--{ws}{close_end}" + (epilogue if close_end or depth else "")
        headers = [*headers, f'Content-Type: multipart/{subtype}; boundary="{boundary}"']
    else:
        body = draw(_BODY)
    order = draw(st.permutations(headers)) if headers else []
    head = "".join(h + "\r\n" for h in order)
    return head + "\r\n" + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entity(), st.booleans(), st.sampled_from([(32, 1000), (2, 1000), (32, 3)]))
def test_generated_messages(text: str, lf: bool, limits: tuple[int, int]) -> None:
    raw = text.encode()
    if lf:
        raw = raw.replace(b"\r\n", b"\n")
    _same(raw, max_depth=limits[0], max_parts=limits[1])


def test_generated_messages_mostly_take_the_fast_tree() -> None:
    """A fast tree that declined everything would pass the test above."""
    taken = {True: 0, False: 0}

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_entity())
    def run(text: str) -> None:
        taken[_same(text.encode())] += 1

    run()
    assert taken[True] >= 100, taken


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entity())
def test_parse_message_is_the_same_on_generated_messages(text: str) -> None:
    raw = text.encode()
    fast = parse_message(raw)
    original = _mime.fast_tree
    _mime.fast_tree = lambda *args: None  # type: ignore[assignment]
    try:
        assert parse_message(raw) == fast
    finally:
        _mime.fast_tree = original


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_parse_message_is_the_same_either_way(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = path.read_bytes()
    fast = parse_message(raw)
    monkeypatch.setattr(_mime, "fast_tree", lambda *args: None)
    assert parse_message(raw) == fast


def test_a_typical_multipart_takes_the_fast_tree() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b--\r\n"
    )
    assert _same(raw)


@given(st.text(alphabet=st.sampled_from(["a", "\r", "\n", "\x00", "\x7f", "\t", "é", "\ud800", " "])))
def test_text_cleaning_is_what_the_regexes_gave(value: str) -> None:
    from mailroom.delivery import _text

    assert _text.normalize_newlines(value) == _text._NEWLINES.sub("\n", value)
    assert _text.clean_text(value) == _text._CONTROLS.sub("", _text._SURROGATES.sub("\ufffd", value))


def test_header_classes_are_made_once_and_kept_for_few_names() -> None:
    factory = _mime._DEFAULT.header_factory
    assert factory["Content-Type"] is factory["content-type"]
    assert str(factory("Subject", "=?utf-8?q?caf=C3=A9?=")) == "café"
    for n in range(500):  # invented names: made as before, not all kept
        assert factory(f"X-Invented-{n}", "v") == "v"
    assert len(factory._made) <= 64 + len(factory.registry)
