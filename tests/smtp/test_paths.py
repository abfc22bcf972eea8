"""The listeners' shortcut for plain ``<local@domain>`` paths reads them as aiosmtpd does."""

from __future__ import annotations

import random

import pytest
from aiosmtpd.smtp import SMTP

from mailroom.frontends.smtp._server import _PLAIN_PATH, _SMTPServer


def _pair(limit: int = 0) -> tuple[SMTP, SMTP]:
    # Only the address reading is used: no transport, no handler.
    theirs, ours = SMTP.__new__(SMTP), _SMTPServer.__new__(_SMTPServer)
    theirs.local_part_limit = ours.local_part_limit = limit
    return theirs, ours


def test_generated_paths_read_alike() -> None:
    theirs, ours = _pair()
    rng = random.Random(2)
    locals_ = ["a", "a.b", "a+b", "o'n", "a..b", ".a", "a.", "x_y", "{z}", "A=B?", "#!", '"a b"']
    domains = ["b", "b.c", "B-C.d", "-b", "b.", "b..c", "1.2", "[1.2.3.4]"]
    suffixes = ["", " ", "  ", "\t", " X", "  X=1 Y", "x", " (c)", " (c) X", "\tSIZE=1", " X (y)", " ()"]
    shortcut = 0
    for _ in range(5_000):
        arg = f"<{rng.choice(locals_)}@{rng.choice(domains)}>{rng.choice(suffixes)}"
        shortcut += _PLAIN_PATH.fullmatch(arg) is not None
        assert ours._getaddr(arg) == theirs._getaddr(arg), arg
    assert shortcut > 1_000


@pytest.mark.parametrize("arg", ["", "<>", " <a@b>", "a@b", "<@relay:a@b>", "<a@b> (comment) SIZE=1"])
def test_other_forms_go_to_aiosmtpd(arg: str) -> None:
    theirs, ours = _pair()
    assert ours._getaddr(arg) == theirs._getaddr(arg)


def test_the_local_part_limit_still_applies() -> None:
    theirs, ours = _pair(limit=3)
    assert ours._getaddr("<abcd@example.org>") == theirs._getaddr("<abcd@example.org>") == (None, None)
    assert ours._getaddr("<abc@example.org>") == ("abc@example.org", "")
