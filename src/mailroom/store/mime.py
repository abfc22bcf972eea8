"""The stored MIME structure of messages (``blobs.mime``; domain/mime computes it).

Typed at this boundary: callers get `MimeStructure` records, never the JSON. A structure
that is missing (a blob stored before migration 0010_mime) or of another layout version
reads as None; delivery/mime.py computes it from the blob then and saves it here.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam, select, update

from mailroom.domain.mime import VERSION, MimeStructure
from mailroom.store._prepared import chunks, run
from mailroom.store.engine import Query, Tx
from mailroom.store.mail_schema import blobs

_READ = select(blobs.c.sha, blobs.c.mime).where(blobs.c.sha.in_(bindparam("shas", expanding=True)))
_SAVE = Query(update(blobs).where(blobs.c.sha == bindparam("key")).values(mime=bindparam("mime")))


def encode(structure: MimeStructure) -> str:
    """The stored form of a structure (what `blobs.record(mime=...)` takes)."""
    return structure.to_json().decode("utf-8")


async def read(tx: Tx, shas: Collection[str]) -> dict[str, MimeStructure | None]:
    """The structures of the blobs `shas` that exist; None for a missing or outdated one."""
    out: dict[str, MimeStructure | None] = {}
    for chunk in chunks(list(dict.fromkeys(shas))):
        for row in await tx.all(_READ, {"shas": chunk}):
            out[row["sha"]] = MimeStructure.from_json(row["mime"]) if row["mime"] else None
    return out


_CURRENT = f"[{VERSION},"


async def read_encoded(tx: Tx, shas: Collection[str]) -> dict[str, str | None]:
    """The stored form of the structures of the blobs `shas` that exist, as they are (for a
    caller that sends them on: no parse and re-encoding); None for a missing or outdated one."""
    out: dict[str, str | None] = {}
    for chunk in chunks(list(dict.fromkeys(shas))):
        for row in await tx.all(_READ, {"shas": chunk}):
            stored = row["mime"]
            out[row["sha"]] = stored if isinstance(stored, str) and stored.startswith(_CURRENT) else None
    return out


async def save(tx: Tx, sha: str, structure: MimeStructure) -> None:
    """Store the structure of blob `sha` (computed on a read that found none)."""
    await run(tx, _SAVE, {"key": sha, "mime": encode(structure)})
