"""RFC 5256 §2.2 REFERENCES threading (frontends/imap/_threading.py): the tree, dummies,
subject gathering, loops and duplicates; a hypothesis property that every message appears
exactly once in a well-formed answer."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.frontends.imap._sort import subject_info
from mailroom.frontends.imap._threading import Threadable, render, thread


def msg(
    key: int,
    mid: str | None,
    refs: tuple[str, ...] = (),
    *,
    subject: str = "",
    sent: float | None = None,
    irt: tuple[str, ...] = (),
) -> Threadable:
    base, reply = subject_info(subject or f"subject {key}")
    return Threadable(key, mid, irt, refs, float(key if sent is None else sent), base, reply)


def answer(*messages: Threadable) -> str:
    return render(thread(list(messages)))


def test_a_chain_and_a_fork() -> None:
    # 1 ← 2 ← 3, and 2 ← 4: "(1 2 (3)(4))"
    assert (
        answer(
            msg(1, "a", subject="x"),
            msg(2, "b", ("a",), subject="Re: x"),
            msg(3, "c", ("a", "b"), subject="Re: x"),
            msg(4, "d", ("a", "b"), subject="Re: x"),
        )
        == "(1 2 (3)(4))"
    )


def test_the_rfc_example_shape() -> None:
    # RFC 5256's (3 6 (4 23)(44 7 96)): 6 replies to 3; 4 and 44 to 6; 23 to 4; 7 to 44; 96 to 7.
    got = answer(
        msg(3, "m3"),
        msg(6, "m6", ("m3",)),
        msg(4, "m4", ("m3", "m6")),
        msg(23, "m23", ("m3", "m6", "m4")),
        msg(44, "m44", ("m3", "m6")),
        msg(7, "m7", ("m3", "m6", "m44")),
        msg(96, "m96", ("m3", "m6", "m44", "m7")),
    )
    assert got == "(3 6 (4 23)(44 7 96))"


def test_replies_to_a_missing_message_are_grouped_under_a_dummy() -> None:
    assert answer(msg(3, "c", ("gone",)), msg(5, "e", ("gone",))) == "((3)(5))"


def test_a_missing_parent_with_one_child_is_dropped() -> None:
    assert answer(msg(1, "x"), msg(2, "b", ("gone",))) == "(1)(2)"


def test_in_reply_to_when_there_is_no_references() -> None:
    assert answer(msg(1, "a"), msg(2, "b", irt=("a", "zz"))) == "(1 2)"


def test_roots_and_siblings_in_sent_date_order() -> None:
    got = answer(
        msg(1, "a", sent=50),
        msg(2, "b", ("a",), sent=70),
        msg(3, "c", ("a",), sent=60),
        msg(4, "d", sent=10),
    )
    assert got == "(4)(1 (3)(2))"


def test_same_base_subject_gathers_roots() -> None:
    # No references at all: a reply by subject goes under the original.
    assert answer(msg(1, "a", subject="Lunch"), msg(2, "b", subject="Re: lunch")) == "(1 2)"
    # Two originals with one subject: a dummy holds both.
    assert answer(msg(1, "a", subject="Lunch"), msg(2, "b", subject="Lunch")) == "((1)(2))"
    # An empty subject gathers nothing.
    assert answer(msg(1, "a", subject="Re:"), msg(2, "b", subject="Re:")) == "(1)(2)"


def test_loops_and_duplicate_ids_do_not_break_it() -> None:
    got = answer(msg(1, "a", ("b",)), msg(2, "b", ("a",)), msg(3, "a"), msg(4, None), msg(5, None))
    keys = sorted(int(n) for n in re.findall(r"\d+", got))
    assert keys == [1, 2, 3, 4, 5]


def test_numbers_are_mapped() -> None:
    roots = thread([msg(10, "a"), msg(20, "b", ("a",))])
    assert render(roots, {10: 1, 20: 2}.__getitem__) == "(1 2)"


def test_subject_info() -> None:
    # Case mapped as i;unicode-casemap compares (titlecase: upper case for ASCII, RFC 5051).
    assert subject_info("Re: [list] Fwd: Hello (fwd)") == ("HELLO", True)
    assert subject_info("[list] Hello") == ("HELLO", False)
    assert subject_info("[Fwd: Hello]") == ("HELLO", True)
    assert subject_info("re: [fwd: [fwd: re: [fwd: babylon]]]") == ("BABYLON", True)


_IDS = st.sampled_from([None, "a", "b", "c", "d", "e", "f"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            _IDS,
            st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]), max_size=4),
            st.sampled_from(["x", "Re: x", "y", "", "Fwd: y"]),
            st.integers(0, 5),
        ),
        max_size=12,
    )
)
def test_every_message_once_in_a_well_formed_answer(
    spec: list[tuple[str | None, list[str], str, int]],
) -> None:
    messages = [msg(i + 1, mid, tuple(refs), subject=s, sent=d) for i, (mid, refs, s, d) in enumerate(spec)]
    got = answer(*messages)
    assert sorted(int(n) for n in re.findall(r"\d+", got)) == list(range(1, len(spec) + 1))
    depth = 0
    for ch in got:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert "()" not in got
    assert re.fullmatch(r"[()0-9 ]*", got)
