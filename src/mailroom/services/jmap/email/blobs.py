"""Blob ids of email parts: ``G<sha256>-<part number, dots as dashes>`` (``G…-1-2`` is part
1.2 of the message ``G…``), so that clients can download an attachment, parse an attached
message or attach a part to a new email by id. A part's bytes are its body with the
transfer encoding undone, read from the stored blob and its MIME structure."""

from __future__ import annotations

import re

from mailroom.delivery import mime as mime_store
from mailroom.domain.mime import Part, imap
from mailroom.registry import Context
from mailroom.store import jmap as jmap_store
from mailroom.store.blobs import BlobNotFound

_MESSAGE = re.compile(r"^G([0-9a-f]{64})$")
_PART = re.compile(r"^G([0-9a-f]{64})-([1-9][0-9]{0,8}(?:-[1-9][0-9]{0,8}){0,99})$")


def part_blob_id(message_blob_id: str, part: Part) -> str:
    """The blob id of ``part`` of the message (or attached message) ``message_blob_id``."""
    return f"{message_blob_id}-{part.section.replace('.', '-')}"


async def _readable(ctx: Context, user_id: int, sha: str) -> bool:
    async with ctx.rt.db.read() as tx:
        return await jmap_store.holds_blob(tx, user_id, sha)


async def part_of(ctx: Context, user_id: int, value: str) -> tuple[bytes, Part] | None:
    """The decoded bytes and the part a part blob id names, if the caller may read it."""
    match = _PART.match(value)
    if match is None or not await _readable(ctx, user_id, match.group(1)):
        return None
    sha, numbers = match.group(1), [int(n) for n in match.group(2).split("-")]
    try:
        data = await ctx.rt.blobs.get(sha)
    except BlobNotFound:
        return None
    structure = (await mime_store.structures(ctx.rt, [sha])).get(sha)
    part = imap.find_part(structure, numbers) if structure is not None else None
    if structure is None or part is None:
        return None
    try:
        return imap.binary_bytes(structure, numbers, data), part
    except imap.UnknownTransferEncoding:
        return data[part.body_start : part.body_end], part


async def blob_bytes(ctx: Context, user_id: int, value: str) -> bytes | None:
    """The bytes of blob ``value`` (a message or upload ``G<sha>``, or a part), if readable."""
    match = _MESSAGE.match(value)
    if match is None:
        found = await part_of(ctx, user_id, value)
        return found[0] if found is not None else None
    if not await _readable(ctx, user_id, match.group(1)):
        return None
    try:
        return await ctx.rt.blobs.get(match.group(1))
    except BlobNotFound:
        return None
