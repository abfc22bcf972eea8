"""``Email/set`` (RFC 8621 §4.6): keywords and mailboxes, drafts created from parts and
blobs, destruction.

Keywords are domain/keywords.py's, shared with IMAP: ``$seen`` (read), ``$flagged``
(starred: also the ``starred`` label) and ``$draft`` are the store's flag columns, every
other keyword (``$answered``, ``$forwarded``, a client's own...) a row IMAP reads as a flag;
stored in lower case. A keyword outside RFC 8621 §4.1.1's syntax (or longer than the 64
characters kept) is ``invalidProperties``. Mailboxes are labels, changed as the REST batch
actions change them, so both APIs see the same thing. Destroying deletes for good.
A created email goes through the same ingest as all mail (threads, search, quota).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import Field

from mailroom.delivery.ingest import IngestOptions, ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.domain import objectids
from mailroom.domain.jsonpointer import InvalidPointer, unescape
from mailroom.domain.keywords import keyword_problem, normal
from mailroom.registry import Context
from mailroom.services.jmap._accounts import (
    EMAIL_PREFIX,
    account_of,
    check_if_in_state,
    decode,
    encode,
    state,
)
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._mailboxes import label_id
from mailroom.services.jmap._request import created, resolve
from mailroom.services.jmap._set import check_set_size, set_response
from mailroom.services.jmap._types import CreationId, IdOrRef, JmapId, SetError, SetResponse, State
from mailroom.services.jmap.email import blobs
from mailroom.services.jmap.email._compose import ComposeError, build_message
from mailroom.services.jmap.email._email import blob_id as blob_of
from mailroom.services.jmap.email._email import utc_date
from mailroom.services.mail._push import announce_threads
from mailroom.store import emails as email_store
from mailroom.store import imap as imap_store
from mailroom.store import jmap_emails
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store.engine import Tx

KEYWORDS = {"$seen": "is_read", "$flagged": "is_starred", "$draft": "is_draft"}
#: At most this many keywords on one email (IMAP's STORE has the same limit).
MAX_KEYWORDS = 50
_SETTABLE = ("keywords", "mailboxIds")
MAX_OBJECTS = 500


def _error(kind: str, description: str, properties: list[str] | None = None) -> dict[str, Any]:
    return SetError(type=kind, description=description, properties=properties).wire()


def _keywords(value: Any, where: str) -> dict[str, bool]:
    if not isinstance(value, dict) or not all(v is True for v in value.values()):
        raise _Refused("invalidProperties", f"{where} must map keywords to true", [where])
    if len(value) > MAX_KEYWORDS:
        raise _Refused("invalidProperties", f"at most {MAX_KEYWORDS} keywords per email", [where])
    out = {}
    for key in value:
        out[_keyword(str(key), where)] = True
    return out


def _keyword(key: str, where: str) -> str:
    problem = keyword_problem(key)
    if problem is not None:
        raise _Refused("invalidProperties", f"{problem}: {key[:80]}", [where])
    return normal(key)


class _Refused(Exception):
    def __init__(self, kind: str, description: str, properties: list[str] | None = None) -> None:
        super().__init__(description)
        self.wire = _error(kind, description, properties)


def _mailbox_ids(ctx: Context, value: Any, names: dict[int, str], where: str) -> set[int]:
    if not isinstance(value, dict) or not all(v is True for v in value.values()):
        raise _Refused("invalidProperties", "mailboxIds must map mailbox ids to true", [where])
    out = set()
    for key in value:
        number = label_id(resolve(ctx, str(key)) or str(key))
        if number is None or number not in names:
            raise _Refused("invalidProperties", f"no mailbox {key}", [where])
        out.add(number)
    return out


def _patched(
    ctx: Context, current: Iterable[Any], patch: dict[str, Any], prop: str, names: dict[int, str]
) -> Any:
    """The new value of ``prop`` (a set of keywords or label ids) after ``patch``, or None if untouched."""
    result: set[Any] | None = None
    if prop in patch:
        value = patch[prop]
        result = set(_keywords(value, prop)) if prop == "keywords" else _mailbox_ids(ctx, value, names, prop)
    for path, value in patch.items():
        if not path.startswith(prop + "/"):
            continue
        if prop in patch:
            raise _Refused("invalidPatch", f"{path} and {prop} in one patch", [path])
        token = path[len(prop) + 1 :]
        if "/" in token:
            raise _Refused("invalidPatch", f"{path} goes below a {prop} entry", [path])
        try:
            key = unescape(token)
        except InvalidPointer as e:
            raise _Refused("invalidPatch", str(e), [path]) from None
        if value not in (True, None):
            raise _Refused("invalidPatch", f"{path} must be true or null", [path])
        if result is None:
            result = set(current)
        if prop == "keywords":
            item: Any = _keyword(key, path)
        else:
            item = label_id(resolve(ctx, key) or key)
            if item is None or item not in names:
                raise _Refused("invalidProperties", f"no mailbox {key}", [path])
        if value is True:
            result.add(item)
        else:
            result.discard(item)
    return result


async def _update(
    ctx: Context,
    tx: Tx,
    user_id: int,
    record: jmap_emails.EmailRecord,
    patch: dict[str, Any],
    names: dict[int, str],
) -> None:
    server_set = _server_set(record)
    unknown = [
        p
        for p in patch
        if p not in _SETTABLE
        and not p.startswith(("keywords/", "mailboxIds/"))
        # RFC 8620 §5.3: a server-set property may be in the patch with its current value.
        and not (p in server_set and patch[p] == server_set[p])
    ]
    if unknown:
        raise _Refused("invalidProperties", "only keywords and mailboxIds can be changed", unknown)
    now = ctx.rt.clock.now()
    current_keywords = {k for k, column in KEYWORDS.items() if getattr(record, column)}
    current_keywords.update(record.keywords)
    keywords = _patched(ctx, current_keywords, patch, "keywords", names)
    boxes = _patched(ctx, record.label_ids, patch, "mailboxIds", names)
    stored = {k for k in keywords if k not in KEYWORDS} if keywords is not None else set()
    if len(stored) > MAX_KEYWORDS:
        raise _Refused("invalidProperties", f"at most {MAX_KEYWORDS} keywords per email", ["keywords"])
    if boxes is not None:
        if not boxes:
            raise _Refused("invalidProperties", "an email must be in at least one mailbox", ["mailboxIds"])
        add = [names[b] for b in boxes - set(record.label_ids)]
        remove = [names[b] for b in set(record.label_ids) - boxes]
        if add or remove:
            await email_store.change_labels(tx, user_id, [record.id], add=add, remove=remove, now=now)
    if keywords is not None:
        read, starred = "$seen" in keywords, "$flagged" in keywords
        if read != record.is_read:
            await email_store.set_flags(tx, user_id, [record.id], now=now, is_read=read)
        if ("$draft" in keywords) != record.is_draft:
            await jmap_emails.set_draft(tx, user_id, [record.id], "$draft" in keywords)
        if starred != record.is_starred and not (
            boxes is not None and "starred" in (names.get(b) for b in boxes)
        ):
            await email_store.set_flags(tx, user_id, [record.id], now=now, is_starred=starred)
        old = set(record.keywords)
        if stored != old:
            await imap_store.change_keywords(tx, [record.id], add=stored - old, remove=old - stored)


def _server_set(record: jmap_emails.EmailRecord) -> dict[str, Any]:
    """The Email's server-set properties (RFC 8621 §4.1.1) as Email/get gives them."""
    return {
        "id": encode(EMAIL_PREFIX, record.id),
        "blobId": blob_of(record.blob_sha),
        "threadId": objectids.thread_id(record.thread_id),
        "size": record.size - len((record.trace or "").encode("utf-8")),
        "receivedAt": utc_date(record.received_at),
    }


@method("Email/set", capability=MAIL)
async def email_set(
    ctx: Context,
    accountId: JmapId,
    ifInState: State | None = None,
    create: Annotated[dict[CreationId, dict[str, Any]], Field(max_length=MAX_OBJECTS)] | None = None,
    update: Annotated[dict[IdOrRef, dict[str, Any]], Field(max_length=MAX_OBJECTS)] | None = None,
    destroy: Annotated[list[IdOrRef], Field(max_length=MAX_OBJECTS)] | None = None,
) -> SetResponse:
    """Create drafts (or any email) from parts and blobs, change keywords and mailboxes,
    destroy emails for good."""
    user_id = account_of(ctx, accountId)
    check_set_size(ctx, create, update, destroy)
    async with ctx.rt.db.read() as tx:
        old = await check_if_in_state(tx, user_id, ifInState)
    created_out: dict[str, dict[str, Any]] = {}
    not_created: dict[str, dict[str, Any]] = {}
    for creation_id, obj in (create or {}).items():
        try:
            created_out[creation_id] = await _create(ctx, user_id, creation_id, obj)
        except _Refused as refused:
            not_created[creation_id] = refused.wire
    updated: dict[str, dict[str, Any] | None] = {}
    not_updated: dict[str, dict[str, Any]] = {}
    destroyed: list[str] = []
    not_destroyed: dict[str, dict[str, Any]] = {}
    touched: set[int] = set()
    if update or destroy:
        async with ctx.rt.db.write() as tx:
            now = ctx.rt.clock.now()
            names = {v: k for k, v in (await label_store.ensure_system(tx, user_id, now)).items()}
            for given, patch in (update or {}).items():
                value = resolve(ctx, given) or given
                number = decode(EMAIL_PREFIX, value)
                found = await jmap_emails.records(tx, user_id, [number]) if number is not None else []
                record = found[0] if found else None
                if record is None:
                    not_updated[given] = _error("notFound", f"no email {given}")
                    continue
                try:
                    await _update(ctx, tx, user_id, record, patch, names)
                except _Refused as refused:
                    not_updated[given] = refused.wire
                    continue
                updated[value] = None
                touched.add(record.thread_id)
            numbers: dict[str, int] = {}
            for given in destroy or []:
                value = resolve(ctx, given) or given
                number = decode(EMAIL_PREFIX, value)
                if number is None:
                    not_destroyed[given] = _error("notFound", f"no email {given}")
                else:
                    numbers[value] = number
            if numbers:
                rows = await email_store.delete_emails(tx, user_id, list(numbers.values()))
                gone = {r.id for r in rows}
                touched.update(r.thread_id for r in rows)
                for value, number in numbers.items():
                    if number in gone:
                        destroyed.append(value)
                    else:
                        not_destroyed[value] = _error("notFound", f"no email {value}")
                await queries.release_blobs(tx, ctx.rt.blobs, [r.blob_sha for r in rows])
    if touched:
        await announce_threads(ctx.rt, user_id, sorted(touched), "jmap")
    async with ctx.rt.db.read() as tx:
        new = await state(tx, user_id)
    return set_response(
        accountId,
        old,
        new,
        created=created_out,
        updated=updated,
        destroyed=destroyed,
        not_created=not_created,
        not_updated=not_updated,
        not_destroyed=not_destroyed,
    )


_CREATE_ONLY = frozenset(
    {
        "mailboxIds", "keywords", "receivedAt", "messageId", "inReplyTo", "references", "sender",
        "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt", "bodyStructure", "bodyValues",
        "textBody", "htmlBody", "attachments",
    }
)  # fmt: skip


def _blob_ids(obj: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "blobId" and isinstance(value, str):
                found.add(value)
            else:
                found |= _blob_ids(value)
    elif isinstance(obj, list):
        for item in obj:
            found |= _blob_ids(item)
    return found


async def _create(ctx: Context, user_id: int, creation_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    unknown = [p for p in obj if p not in _CREATE_ONLY and not p.startswith("header:")]
    if unknown:
        raise _Refused("invalidProperties", "these properties cannot be set", unknown)
    async with ctx.rt.db.read() as tx:
        labels = await label_store.ids_by_name(tx, user_id)
        me = await jmap_emails.owner_address(tx, user_id)
    names = {v: k for k, v in labels.items()}
    boxes = _mailbox_ids(ctx, obj.get("mailboxIds"), names, "mailboxIds")
    if not boxes:
        raise _Refused("invalidProperties", "an email must be in at least one mailbox", ["mailboxIds"])
    keywords = _keywords(obj.get("keywords") or {}, "keywords")
    contents: dict[str, bytes] = {}
    for blob_id in _blob_ids({k: v for k, v in obj.items() if k != "bodyValues"}):
        data = await blobs.blob_bytes(ctx, user_id, blob_id)
        if data is None:
            raise SetErrorBlob(blob_id)
        contents[blob_id] = data
    try:
        raw = build_message(obj, contents, ctx.rt.settings.hostname)
    except ComposeError as exc:
        raise _Refused("invalidProperties", exc.description, exc.properties) from None
    except (ValueError, TypeError, LookupError) as exc:  # the email package refused a value
        raise _Refused("invalidProperties", f"the message cannot be made: {exc}"[:200]) from None
    if len(raw) > ctx.rt.settings.max_message_bytes:
        raise _Refused("tooLarge", "the message is larger than the limit")
    resolution = Resolution(me, "accepted", [LocalTarget(user_id, me)])
    options = IngestOptions(
        labels=tuple(names[b] for b in sorted(boxes)),
        is_read="$seen" in keywords,
        is_starred="$flagged" in keywords,
        is_draft="$draft" in keywords,
        trace=False,
        keywords=stored_keywords(keywords),
    )
    [result] = await ingest(ctx.rt, raw, mail_from="", recipients=[resolution], source="api", options=options)
    if not result.ok:
        kind = "overQuota" if result.code == 452 else "serverFail" if result.temporary else "forbidden"
        raise _Refused(kind, result.reply[4:])
    number = result.email_ids[0]
    async with ctx.rt.db.read() as tx:
        [record] = await jmap_emails.records(tx, user_id, [number])
    new_id = encode(EMAIL_PREFIX, number)
    created(ctx, creation_id, new_id)
    return {
        "id": new_id,
        "blobId": blob_of(record.blob_sha),
        "threadId": objectids.thread_id(record.thread_id),
        "size": record.size - len((record.trace or "").encode("utf-8")),
    }


def stored_keywords(keywords: Iterable[str]) -> tuple[str, ...]:
    """The keywords kept as rows (the others are the flag columns), for ``IngestOptions``:
    stored with the email in one transaction, so no client sees it without them."""
    return tuple(sorted(k for k in keywords if k not in KEYWORDS))


class SetErrorBlob(_Refused):
    def __init__(self, blob_id: str) -> None:
        super().__init__("blobNotFound", f"no blob {blob_id}")
        self.wire["notFound"] = [blob_id]
