"""Ingest never fails a message because of a header it cannot interpret (issue 11 §3).

Reproduced: an imported message with a ``Date:`` of year 75 made ingest fail with
"Invalid isoformat string" (SQLite stored the year unpadded, ``75-03-01``, and could not
read it back). Dates out of any range, encodings nobody knows and absurd lengths must all
be stored: the raw message as it came (the header kept as written), and fields that are
either what the header means or empty.

Golden files: every ``golden_ingest/NAME.eml`` is delivered to alice and what the mail
client API then shows (``mail.emails.get``) is compared with ``NAME.json``. After an
intended change, regenerate with

    MAILROOM_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/delivery/test_ingest_hostile_headers.py

and review the diff: the golden files must be right, not merely what the code produces.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Actor

from mailroom.bootstrap import Mailroom
from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.resolve import resolve

pytestmark = pytest.mark.anyio

GOLDEN = Path(__file__).parent / "golden_ingest"
EML_FILES = sorted(GOLDEN.glob("*.eml"))
UPDATE = os.environ.get("MAILROOM_UPDATE_GOLDEN") == "1"
#: Differ per run (ids, arrival time) or say nothing about the headers.
VOLATILE = {"id", "thread_id", "received_at", "labels", "is_read", "is_starred", "is_draft", "size"}


def shown(email: dict[str, Any]) -> dict[str, Any]:
    return {k: _short(v) for k, v in email.items() if k not in VOLATILE}


def _short(value: Any) -> Any:
    """Long lists and strings summarised: their length and ends say whether they were kept."""
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 6:
            return {"count": len(value), "first": _short(value[:2]), "last": _short(value[-2:])}
        return [_short(v) for v in value]
    if isinstance(value, str) and len(value) > 300:
        return {"length": len(value), "start": value[:60], "end": value[-60:]}
    return value


def test_enough_hostile_messages() -> None:
    assert len(EML_FILES) >= 15


@pytest.mark.parametrize("eml", EML_FILES, ids=[p.stem for p in EML_FILES])
async def test_a_header_nobody_can_interpret_never_fails_the_message(
    mailroom: Mailroom, make_user: Any, call: Any, eml: Path
) -> None:
    alice: Actor = await make_user("alice@example.org")
    raw = _read(eml)
    async with mailroom.runtime.db.read() as tx:
        rcpt = await resolve(tx, "alice@example.org")
    # As an import: no trace headers of ours in front (delivery/trace.py), so the stored
    # message is byte for byte the one that came.
    [result] = await ingest(
        mailroom.runtime,
        raw,
        mail_from="bob@example.net",
        recipients=[rcpt],
        source="import",
        options=IngestOptions(trace=False),
    )
    assert result.code == 250, result.reply
    [email_id] = result.email_ids
    email = await call("mail.emails.get", {"id": email_id}, as_=alice)
    # The header is kept as written: the stored message is the message that came.
    stored = await call("mail.emails.raw", {"id": email_id}, as_=alice)
    assert stored.content == raw
    # And the thread list (dates sorted, subjects shown) reads it back too.
    threads = await call("mail.threads.list", {}, as_=alice)
    assert [t["thread_id"] for t in threads["threads"]] == [email["thread_id"]]

    assert shown(email) == _golden(eml, shown(email))


def _read(eml: Path) -> bytes:
    return eml.read_bytes()


def _golden(eml: Path, result: dict[str, Any]) -> Any:
    """The expected result of ``eml`` (written from ``result`` with MAILROOM_UPDATE_GOLDEN=1)."""
    expected = eml.with_suffix(".json")
    if UPDATE:
        expected.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert expected.exists(), f"run with MAILROOM_UPDATE_GOLDEN=1 to create {expected.name}"
    return json.loads(expected.read_text(encoding="utf-8"))
