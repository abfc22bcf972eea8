"""The MIME structure of stored messages: computed at ingest, read (or computed once) later.

`compute(raw)` is what ingest calls, one isolated call per message (a byte-level scan,
domain/mime; ~15–60 µs for a typical message, see docs/mime.md); the result is stored on the
blob's row in the delivering transaction. `structures(rt, shas)` is what every reader calls
(JMAP Email/get, IMAP FETCH): it reads the stored structures and, for a blob stored before
migration 0010_mime (or with an older layout), scans the blob once and saves the result, so
each message is scanned at most once more in its life.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from mailroom.domain.mime import MimeStructure, scan
from mailroom.runtime import Runtime
from mailroom.store import mime as mime_rows
from mailroom.store.blobs import BlobNotFound

log = logging.getLogger("mailroom.delivery")

#: Larger messages are scanned in a worker thread (as ingest parses them), so the loop
#: keeps serving.
_SCAN_INLINE_BYTES = 256 * 1024


def compute(raw: bytes) -> str:
    """The stored form of `raw`'s structure (for `blobs.record(mime=...)`)."""
    return mime_rows.encode(scan(raw))


async def compute_async(raw: bytes) -> str:
    """`compute`, in a worker thread for a large message."""
    if len(raw) <= _SCAN_INLINE_BYTES:
        return compute(raw)
    return await asyncio.to_thread(compute, raw)


async def structures(rt: Runtime, shas: Collection[str]) -> dict[str, MimeStructure]:
    """The structure of every blob of `shas` that exists, computing and saving missing ones.

    A blob whose row or file is gone is left out (the caller answers "not found")."""
    async with rt.db.read() as tx:
        found = await mime_rows.read(tx, shas)
    out = {sha: s for sha, s in found.items() if s is not None}
    missing = [sha for sha, s in found.items() if s is None]
    computed: dict[str, MimeStructure] = {}
    for sha in missing:
        try:
            raw = await rt.blobs.get(sha)
        except (BlobNotFound, FileNotFoundError):
            continue
        structure = scan(raw) if len(raw) <= _SCAN_INLINE_BYTES else await asyncio.to_thread(scan, raw)
        computed[sha] = out[sha] = structure
    if computed:
        try:
            async with rt.db.write() as tx:
                for sha, structure in computed.items():
                    await mime_rows.save(tx, sha, structure)
        except Exception:  # a cache fill: the answer is right without it, the next read retries
            log.warning("could not save %d computed MIME structures", len(computed), exc_info=True)
    return out
