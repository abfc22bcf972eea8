"""The MIME structure is stored at ingest on the blob's row, and computed once when missing."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from tests.delivery.test_ingest import deliver, email_of
from tests.mailhelpers import create_user

from mailroom.bootstrap import Mailroom
from mailroom.delivery import mime
from mailroom.domain.mime import MimeStructure, imap, scan
from mailroom.store.mail_schema import blobs

pytestmark = pytest.mark.anyio

RAW = (
    b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Parts\r\n"
    b"Message-ID: <parts@example.net>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
    b"--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello there\r\n"
    b"--zz\r\nContent-Type: image/png; name=dot.png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"iVBORw0K\r\n--zz--\r\n"
)


async def _stored(mailroom: Mailroom, sha: str) -> str | None:
    async with mailroom.runtime.db.read() as tx:
        value = await tx.scalar(select(blobs.c.mime).where(blobs.c.sha == sha))
    return None if value is None else str(value)


async def test_ingest_stores_the_structure_with_the_blob(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    (result,) = await deliver(mailroom, RAW, "alice@example.org")
    row = await email_of(mailroom, alice, result.email_ids[0])
    stored = await _stored(mailroom, row.blob_sha)
    assert stored is not None
    structure = MimeStructure.from_json(stored)
    assert structure == scan(RAW)
    assert structure is not None
    assert [p.section for p in structure.root.parts] == ["1", "2"]
    # A section of the stored message (trace + blob) is served from the blob and the structure.
    trace = row.trace.encode()
    blob = await mailroom.runtime.blobs.get(row.blob_sha)
    header = imap.section_bytes(structure, imap.Section((), "HEADER"), blob, trace)
    assert header.startswith(trace)
    assert header.endswith(b"boundary=zz\r\n\r\n")
    assert imap.binary_bytes(structure, [2], blob) == b"\x89PNG\r\n"


async def test_a_missing_structure_is_computed_once_and_saved(mailroom: Mailroom) -> None:
    alice = await create_user(mailroom, "alice@example.org")
    (result,) = await deliver(mailroom, RAW, "alice@example.org")
    sha = (await email_of(mailroom, alice, result.email_ids[0])).blob_sha
    async with mailroom.runtime.db.write() as tx:  # as a blob stored before 0010_mime
        await tx.execute(update(blobs).where(blobs.c.sha == sha).values(mime=None))
    assert await _stored(mailroom, sha) is None
    found = await mime.structures(mailroom.runtime, [sha, "0" * 64])
    assert list(found) == [sha]
    assert found[sha] == scan(RAW)
    assert await _stored(mailroom, sha) is not None
    async with mailroom.runtime.db.write() as tx:  # an older layout version reads as missing
        await tx.execute(update(blobs).where(blobs.c.sha == sha).values(mime="[0, 1, null, null]"))
    assert (await mime.structures(mailroom.runtime, [sha]))[sha] == scan(RAW)
    stored = await _stored(mailroom, sha)
    assert stored is not None
    assert stored.startswith("[1,")


async def test_a_second_delivery_of_the_same_bytes_keeps_the_structure(mailroom: Mailroom) -> None:
    await create_user(mailroom, "alice@example.org")
    await create_user(mailroom, "carol@example.org")
    (first,) = await deliver(mailroom, RAW, "alice@example.org")
    (second,) = await deliver(mailroom, RAW, "carol@example.org")
    assert first.ok
    assert second.ok
    async with mailroom.runtime.db.read() as tx:
        values = await tx.scalars(select(blobs.c.mime))
    assert len(values) == 1
    assert values[0] is not None
