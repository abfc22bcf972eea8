"""mail.imap.*: what the IMAP server (frontends/imap) asks of a mailbox, as the mailbox's owner.

IMAP mailboxes are labels (Gmail's model, docs/imap.md): a message in two labels is in two
mailboxes, with a UID in each (store/changelog.py). These methods answer in the shapes the
server needs and do the label operations with IMAP's meaning:

- ``view``: a label's messages by UID with flags, MODSEQ, size and arrival (parallel lists,
  so a 10,000-message mailbox is a few lists of integers, not 10,000 objects), or only those
  changed since a MODSEQ plus the UIDs that left it (QRESYNC's VANISHED);
- ``flags``: ``\\Seen`` is read, ``\\Flagged`` starred, ``\\Draft`` the draft flag (and so are
  the keywords ``$seen``, ``$flagged``, ``$draft``: JMAP's names of them); every other flag
  is a stored keyword (domain/keywords.py), the ones JMAP reads;
- ``copy``: adds the target label (and with ``from_label`` removes that one: MOVE);
- ``subscriptions``/``subscribe``: SUBSCRIBE and UNSUBSCRIBE, stored per user by label id
  (store/imap_schema.py, so a renamed label keeps its choice; JMAP's ``isSubscribed`` is the
  same): a label is subscribed unless unsubscribed; a name with no label is
  subscribed only when the client said so (and stays so when the label goes, RFC 9051 §6.3.7);
- ``expunge``: from Trash or Junk destroys; from Archive moves to Trash; from INBOX archives;
  from Drafts destroys a draft in no other label; from any other label removes the label, and
  mail left in no label at all goes to Archive (nothing disappears without passing Trash).

Every change publishes ``thread.updated`` and ``label.counts`` like a batch action, so web
clients, JMAP and other IMAP sessions (IDLE) learn of it at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailroom.delivery.ingest import IngestOptions, ingest, search_document
from mailroom.delivery.mime import structures as mime_structures
from mailroom.delivery.parse import parse_message
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.domain.keywords import COLUMN_KEYWORDS
from mailroom.domain.numbers import INT64_MAX, Id
from mailroom.errors import BadRequest, LimitExceeded, NotFound, PayloadTooLarge, Unavailable
from mailroom.registry import Context, UserSelf
from mailroom.services.jmap.email.query import read_all_headers
from mailroom.services.mail._actions import Target, apply
from mailroom.services.mail._api import api
from mailroom.services.mail._mailbox import user_id_of
from mailroom.services.mail._push import announce_flags, announce_labels, announce_threads
from mailroom.store import accounts, changelog, fulltext, imap_search
from mailroom.store import emails as email_store
from mailroom.store import imap as imap_store
from mailroom.store import labels as label_store
from mailroom.store import mailbox_queries as queries
from mailroom.store import mime as mime_rows
from mailroom.store.blobs import BlobNotFound
from mailroom.store.engine import Tx
from mailroom.store.mailbox_queries import LabelRecord

#: At most this many emails per call (the server sends larger sets in chunks).
MAX_IDS = 5000
ModSeq = Annotated[int, Field(ge=0, le=INT64_MAX)]
EmailIds = Annotated[list[Id], Field(min_length=1, max_length=MAX_IDS)]
#: An IMAP keyword or flag beyond the three columns, in JMAP's lower-case form: the
#: characters RFC 8621 §4.1.1 allows (IMAP's atom characters), at most 64 (a keyword JMAP
#: set can be stored back by an IMAP client).
_KEYWORD_CHARS = r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]"
Keyword = Annotated[
    str, Field(pattern=rf"^\\?{_KEYWORD_CHARS}{{1,63}}$|^{_KEYWORD_CHARS}{{64}}$", max_length=64)
]
Keywords = Annotated[list[Keyword], Field(max_length=50)]


class ImapAccount(BaseModel):
    """The logged-in mailbox and whether IMAP is enabled for it."""

    email: str
    imap: bool


class ImapMailbox(BaseModel):
    """A label as an IMAP mailbox, with what STATUS and LIST-STATUS answer."""

    id: int
    name: str
    kind: Literal["system", "user"]
    messages: int
    unseen: int
    uidvalidity: int
    uidnext: int
    size: int | None = Field(description="Bytes of its messages; None unless ``sizes`` was asked.")
    recent: int | None = Field(
        default=None, description="Messages no IMAP session was told of yet (\\Recent); with ``counts``."
    )
    deleted: int | None = Field(default=None, description="Messages flagged \\Deleted; with ``counts``.")


class ImapMailboxes(BaseModel):
    highest_modseq: int
    mailboxes: list[ImapMailbox]


class ImapView(BaseModel):
    """A label's messages in UID order (parallel lists); with ``changed_since``, only those
    whose MODSEQ is higher, and ``vanished``: the UIDs that left the label since then."""

    label_id: int
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    uids: list[int]
    email_ids: list[int]
    thread_ids: list[int]
    modseqs: list[int]
    flags: list[int] = Field(description="Bits: 1 seen, 2 flagged, 4 draft.")
    sizes: list[int]
    received: list[int] = Field(description="Arrival times, Unix seconds.")
    keywords: list[tuple[int, str]] = Field(description="(UID, keyword) of the messages listed.")
    vanished: list[int]


class ImapCopied(BaseModel):
    """The UIDs the emails have in the target label, in the order of ``email_ids``."""

    uidvalidity: int
    email_ids: list[int]
    uids: list[int]


class ImapTextTerm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: "any" is TEXT (header fields and body); "header" names its field in ``header``.
    field: Literal["any", "body", "subject", "from", "to", "cc", "bcc", "header"]
    #: "" with "header": the field exists, whatever its value.
    text: Annotated[str, Field(max_length=1000)]
    header: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[!-9;-~]+$")] | None = None


async def _label(tx: Tx, user_id: int, label_id: int) -> LabelRecord:
    row = await queries.label_by_id(tx, user_id, label_id)
    if row is None:
        raise NotFound.of("label", label_id)
    return row


@api.method("mail.imap.account", access=UserSelf())
async def account(ctx: Context) -> ImapAccount:
    """The caller's address and whether their account may use IMAP (``enable_imap``)."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.read() as tx:
        services = await accounts.enabled_services(tx, user_id)
    return ImapAccount(email=ctx.principal.email or "", imap="imap" in services)


@api.method("mail.imap.mailboxes", access=UserSelf())
async def mailboxes(ctx: Context, sizes: bool = True, counts: bool = False) -> ImapMailboxes:
    """Every label of the caller with its IMAP numbers and, with ``sizes``, the bytes of its
    messages (a sum over the whole mailbox: SELECT, which only looks a name up, goes without);
    with ``counts``, its \\Recent and \\Deleted messages (STATUS RECENT and DELETED).
    System labels are made on first use."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.read() as tx:
        known = await label_store.ids_by_name(tx, user_id)
    if any(name not in known for name in label_store.SYSTEM_LABELS):
        async with ctx.rt.db.write() as tx:
            await label_store.ensure_system(tx, user_id, ctx.rt.clock.now())
    async with ctx.rt.db.read() as tx:
        state = await changelog.state(tx, user_id)
        rows = await queries.label_counts(tx, user_id)
        numbers = await imap_store.label_numbers(tx, user_id)
        size_of = await imap_store.label_sizes(tx, user_id) if sizes else None
        flag_counts = await imap_store.flag_counts(tx, user_id, [r.id for r in rows]) if counts else None
    out = []
    for row in rows:
        label_id = row.id
        uidvalidity, uidnext = numbers.get(label_id, (1, 1))
        out.append(
            ImapMailbox(
                id=label_id,
                name=row.name,
                kind=row.kind,
                messages=row.emails_total,
                unseen=row.emails_unread,
                uidvalidity=uidvalidity,
                uidnext=uidnext,
                size=size_of.get(label_id, 0) if size_of is not None else None,
                recent=flag_counts[label_id][0] if flag_counts is not None else None,
                deleted=flag_counts[label_id][1] if flag_counts is not None else None,
            )
        )
    return ImapMailboxes(highest_modseq=state.modseq, mailboxes=out)


@api.method("mail.imap.view", access=UserSelf())
async def view(ctx: Context, label: Id, changed_since: ModSeq = 0) -> ImapView:
    """The label's messages (or those changed since a MODSEQ, and the UIDs that left it).

    ``cannot_calculate_changes`` when the change log no longer reaches back that far.
    """
    user_id = user_id_of(ctx)
    async with ctx.rt.db.read() as tx:
        status = await changelog.label_status(tx, user_id, label)
        if status is None:
            raise NotFound.of("label", label)
        if changed_since and changed_since >= status.highest_modseq:
            # The account's MODSEQ has not moved: nothing changed anywhere (every command's
            # closing sync, most of the time), so none of the reads below.
            found, keywords, vanished = imap_store.MailboxColumns([], [], [], [], [], [], []), [], []
        elif changed_since:
            found = await imap_store.messages(tx, user_id, label, changed_since=changed_since)
            keywords = await imap_store.keywords(tx, label, changed_since=changed_since)
            vanished = await changelog.vanished(tx, user_id, label, changed_since)
        else:  # a SELECT: the whole label, unchanged since the last one read it more often than not
            state = (status.uidvalidity, status.highest_modseq)
            whole = await imap_store.label_view(tx, user_id, label, state=state, cache=ctx.rt.db)
            found, keywords, vanished = whole.columns, whole.keywords, []
    return ImapView(
        label_id=label,
        uidvalidity=status.uidvalidity,
        uidnext=status.uidnext,
        highest_modseq=status.highest_modseq,
        uids=found.uids,
        email_ids=found.email_ids,
        thread_ids=found.thread_ids,
        modseqs=found.modseqs,
        flags=found.flags,
        sizes=found.sizes,
        received=found.received,
        keywords=keywords,
        vanished=vanished,
    )


async def _targets(tx: Tx, user_id: int, email_ids: list[int]) -> dict[int, Target]:
    owned = await queries.thread_ids_of_emails(tx, user_id, email_ids)
    return {e: Target((e,), (t,)) for e, t in owned.items()}


@api.method("mail.imap.flags", access=UserSelf(), mutating=True)
async def flags(
    ctx: Context,
    email_ids: EmailIds,
    seen: bool | None = None,
    flagged: bool | None = None,
    draft: bool | None = None,
    add_keywords: Keywords | None = None,
    remove_keywords: Keywords | None = None,
    keywords: Keywords | None = None,
) -> None:
    """Set or clear ``\\Seen`` (read), ``\\Flagged`` (starred) and ``\\Draft`` on emails, and
    add, remove or replace (``keywords``) their other flags and keywords."""
    user_id = user_id_of(ctx)
    now = ctx.rt.clock.now()
    add = {k.lower() for k in add_keywords or ()}
    remove = {k.lower() for k in remove_keywords or ()}
    replace = {k.lower() for k in keywords} if keywords is not None else None
    # The keywords $seen, $flagged and $draft are JMAP's names of the three columns: a client
    # giving them as IMAP keywords sets those flags, so both protocols see one state.
    columns = {"$seen": seen, "$flagged": flagged, "$draft": draft}
    for keyword in COLUMN_KEYWORDS:
        if keyword in add or (replace is not None and keyword in replace):
            columns[keyword] = True
        elif keyword in remove and columns[keyword] is None:
            columns[keyword] = False
    seen, flagged, draft = columns["$seen"], columns["$flagged"], columns["$draft"]
    add -= set(COLUMN_KEYWORDS)
    remove -= set(COLUMN_KEYWORDS)
    if replace is not None:
        replace -= set(COLUMN_KEYWORDS)
    async with ctx.rt.db.write() as tx:
        rows = await email_store.owned(tx, user_id, email_ids)  # the caller's, once
        targets = {r.id: Target((r.id,), (r.thread_id,)) for r in rows}
        ids = sorted(targets)
        if ids and (seen is not None or flagged is not None):
            await email_store.set_flags(
                tx, user_id, ids, now=now, is_read=seen, is_starred=flagged, owned_rows=rows
            )
        if ids and draft is not None:
            await imap_store.set_draft(tx, user_id, ids, draft)
        if ids and (add or remove or replace is not None):
            await imap_store.change_keywords(tx, ids, add=add, remove=remove, replace=replace)
    await announce_flags(ctx.rt, user_id, [t.thread_ids[0] for t in targets.values()], "imap")


@api.method("mail.imap.copy", access=UserSelf(), mutating=True)
async def copy(ctx: Context, email_ids: EmailIds, to_label: Id, from_label: Id | None = None) -> ImapCopied:
    """Give emails the label ``to_label`` (COPY); with ``from_label``, also take that one off
    (MOVE; the same label: new UIDs in it). Answers the UIDs they have in the target."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        target = await _label(tx, user_id, to_label)
        targets = await _targets(tx, user_id, email_ids)
        name = target.name
        if from_label == to_label:
            # MOVE into the mailbox itself: the messages leave it and come back with new UIDs
            # (RFC 6851 §3.3 allows it; Dovecot does so).
            await apply(tx, ctx.rt, user_id, "remove_label", targets, label=name, until=None)
        await apply(tx, ctx.rt, user_id, "add_label", targets, label=name, until=None)
        if from_label is not None and from_label != to_label:
            source = await _label(tx, user_id, from_label)
            await apply(tx, ctx.rt, user_id, "remove_label", targets, label=source.name, until=None)
        uids = await imap_store.uids_in(tx, to_label, sorted(targets))
        status = await changelog.label_status(tx, user_id, to_label)
    await announce_threads(ctx.rt, user_id, [t.thread_ids[0] for t in targets.values()], "imap")
    ordered = [e for e in email_ids if e in uids]
    return ImapCopied(
        uidvalidity=status.uidvalidity if status else 0, email_ids=ordered, uids=[uids[e] for e in ordered]
    )


@api.method("mail.imap.append", access=UserSelf(), mutating=True)
async def append(
    ctx: Context,
    label: Id,
    message: Annotated[str, Field(description="The raw RFC 5322 message, base64.")],
    seen: bool = False,
    flagged: bool = False,
    draft: bool = False,
    keywords: Keywords | None = None,
    received_at: datetime | None = None,
) -> ImapCopied:
    """APPEND: store the message as a new email of the label, with exactly these flags, through
    the same ingest as all mail (threads, search index, quota). Unlike ``mail.messages.import``
    it never answers an older copy of the same bytes: every APPEND adds a message (RFC 9051
    §6.3.12), so a client re-appending a message it deleted gets it back without the old
    flags (``\\Deleted``) and with a new UID."""
    user_id = user_id_of(ctx)
    try:
        raw = base64.b64decode(message, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("message is not valid base64") from None
    if not raw.strip():
        raise BadRequest("the message is empty")
    if len(raw) > ctx.rt.settings.max_message_bytes:
        raise PayloadTooLarge(f"the message is larger than {ctx.rt.settings.max_message_bytes} bytes")
    if received_at is not None and received_at.tzinfo is None:
        raise BadRequest("received_at needs a time zone")
    async with ctx.rt.db.read() as tx:
        target = await _label(tx, user_id, label)
    email = ctx.principal.email or ""
    extra = {k.lower() for k in keywords or ()} - set(COLUMN_KEYWORDS)
    options = IngestOptions(
        labels=(target.name,),
        is_read=seen or "$seen" in {k.lower() for k in keywords or ()},
        is_starred=flagged or "$flagged" in {k.lower() for k in keywords or ()},
        is_draft=draft or "$draft" in {k.lower() for k in keywords or ()},
        received_at=received_at,
        trace=False,
        keywords=tuple(sorted(extra)),
        always_new=True,
    )
    resolution = Resolution(email, "accepted", [LocalTarget(user_id, email)])
    [result] = await ingest(ctx.rt, raw, mail_from="", recipients=[resolution], source="api", options=options)
    if not result.ok:
        if result.code == 452:
            raise LimitExceeded(f"the mailbox {email} is full")
        if result.temporary:
            raise Unavailable("the message could not be stored now; try again")
        raise BadRequest(result.reply[4:])
    async with ctx.rt.db.read() as tx:
        uids = await imap_store.uids_in(tx, label, list(result.email_ids))
        status = await changelog.label_status(tx, user_id, label)
    ordered = [e for e in result.email_ids if e in uids]
    return ImapCopied(
        uidvalidity=status.uidvalidity if status else 0, email_ids=ordered, uids=[uids[e] for e in ordered]
    )


async def _expunge(
    tx: Tx, ctx: Context, user_id: int, label: LabelRecord, targets: dict[int, Target]
) -> None:
    name = label.name
    rt = ctx.rt
    ids = sorted(targets)
    if name in ("trash", "spam"):
        rows = await email_store.delete_emails(tx, user_id, ids)
        await queries.release_blobs(tx, rt.blobs, [r.blob_sha for r in rows])
        return
    if name == "archive":
        await apply(tx, rt, user_id, "trash", targets, label=None, until=None)
        return
    if name == "inbox":
        await apply(tx, rt, user_id, "archive", targets, label=None, until=None)
        return
    label_id = label.id
    held = await imap_store.labels_of(tx, ids)
    await apply(tx, rt, user_id, "remove_label", targets, label=name, until=None)
    starred = (await label_store.ids_by_name(tx, user_id)).get("starred")
    alone = [e for e, ls in held.items() if not (ls - {label_id, starred})]
    if name == "drafts" and alone:
        rows = await email_store.delete_emails(tx, user_id, alone)
        await queries.release_blobs(tx, rt.blobs, [r.blob_sha for r in rows])
    elif alone:
        await apply(tx, rt, user_id, "add_label", {e: targets[e] for e in alone}, label="archive", until=None)


@api.method("mail.imap.expunge", access=UserSelf(), mutating=True)
async def expunge(ctx: Context, label: Id, email_ids: EmailIds) -> None:
    """Expunge emails from a label with the meaning of the module docstring."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        row = await _label(tx, user_id, label)
        targets = await _targets(tx, user_id, email_ids)
        if targets:
            await _expunge(tx, ctx, user_id, row, targets)
    await announce_threads(ctx.rt, user_id, [t.thread_ids[0] for t in targets.values()], "imap")


@api.method("mail.imap.search", access=UserSelf())
async def search(
    ctx: Context,
    terms: Annotated[list[ImapTextTerm], Field(min_length=1, max_length=50)],
    label: Id | None = None,
) -> list[int]:
    """Ids of the caller's emails (those in ``label`` if given) that every term matches, with
    IMAP SEARCH's meaning (RFC 9051 6.4.4): the field (decoded, addresses as displayed; the
    body text for "body"; either for "any") contains the term's text, case-insensitively."""
    user_id = user_id_of(ctx)
    if label is not None:
        async with ctx.rt.db.read() as tx:
            await _label(tx, user_id, label)
    if any(t.field != "body" for t in terms):
        await read_all_headers(ctx, user_id)  # each blob's header fields once in its life
    out: set[int] | None = None
    for term in terms:
        found = await _term_matches(ctx, user_id, label, term)
        out = found if out is None else out & found
        if not out:
            break
    return sorted(out or ())


async def _term_matches(ctx: Context, user_id: int, label: int | None, term: ImapTextTerm) -> set[int]:
    if term.field in ("body", "any"):
        found: set[int] = set()
        if term.field == "any":
            async with ctx.rt.db.read() as tx:
                found = await imap_search.header_matches(tx, user_id, label, None, term.text)
        async with ctx.rt.db.read() as tx:
            body = await imap_search.body_matches(tx, user_id, label, term.text)
        found |= body.found
        unsure = sorted(body.unsure - found)
        if unsure:
            found |= await _bodies_containing(ctx, user_id, unsure, term.text)
        return found
    if term.field == "header":
        if term.header is None:
            raise BadRequest("a header term names its field")
        name = term.header.lower()
    else:
        name = term.field
    async with ctx.rt.db.read() as tx:
        return await imap_search.header_matches(tx, user_id, label, name, term.text or None)


async def _bodies_containing(ctx: Context, user_id: int, email_ids: list[int], needle: str) -> set[int]:
    """Those of ``email_ids`` whose body text (as the full-text index has it) contains
    ``needle`` case-insensitively, read from the messages (the index could only narrow)."""
    want = imap_search.folded(needle)
    async with ctx.rt.db.read() as tx:
        blobs = await imap_store.blobs_of(tx, user_id, email_ids)

    def check(batch: list[int]) -> set[int]:
        out = set()
        for email_id in batch:
            try:
                raw = ctx.rt.blobs.get_sync(blobs[email_id][0])
            except (BlobNotFound, FileNotFoundError, KeyError):
                continue
            body = search_document(parse_message(raw)).body[: fulltext.MAX_BODY_CHARS]
            if want in imap_search.folded(body):
                out.add(email_id)
        return out

    found: set[int] = set()
    for start in range(0, len(email_ids), 256):
        found |= await asyncio.to_thread(check, email_ids[start : start + 256])
    return found


class ImapStructure(BaseModel):
    """An email's stored MIME structure (``MimeStructure.to_json``, offsets in its blob) and
    the length of the trace lines in front of the blob in the message IMAP serves."""

    email_id: int
    trace_size: int
    structure: str


@api.method("mail.imap.structures", access=UserSelf())
async def structures(
    ctx: Context, email_ids: Annotated[list[Id], Field(min_length=1, max_length=500)]
) -> list[ImapStructure]:
    """The stored MIME structures of the caller's emails (ENVELOPE, BODYSTRUCTURE and
    sections are rendered from them without parsing the message)."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.read() as tx:
        found = await imap_store.blobs_of(tx, user_id, email_ids)
        # Sent on as stored: the server parses each once, not the store and the server both.
        stored = await mime_rows.read_encoded(tx, {sha for sha, _ in found.values()})
    missing = {sha for sha, _ in found.values() if stored.get(sha) is None}
    if missing:  # a blob from before the structures were kept: computed and saved now
        for sha, structure in (await mime_structures(ctx.rt, missing)).items():
            stored[sha] = mime_rows.encode(structure)
    out = []
    for email_id in email_ids:
        if email_id in found:
            sha, trace_size = found[email_id]
            encoded = stored.get(sha)
            if encoded is not None:
                out.append(ImapStructure(email_id=email_id, trace_size=trace_size, structure=encoded))
    return out


class ImapQuota(BaseModel):
    """The mailbox's storage quota (RFC 9208 STORAGE): bytes used and the limit (0: none)."""

    used: int
    limit: int


@api.method("mail.imap.quota", access=UserSelf())
async def quota(ctx: Context) -> ImapQuota:
    """The caller's storage used and quota, in bytes."""
    async with ctx.rt.db.read() as tx:
        row = await email_store.quota(tx, user_id_of(ctx))
    if row is None:
        raise NotFound.of("user", ctx.principal.email or "")
    return ImapQuota(used=row.quota_bytes_used, limit=row.quota_bytes)


MailboxName = Annotated[str, Field(min_length=1, max_length=255)]
Uid = Annotated[int, Field(ge=1, le=INT64_MAX)]


class ImapSubscriptions(BaseModel):
    """Label names (and names with no label) the user subscribed to explicitly, and those
    unsubscribed. A label in neither list is subscribed (the default)."""

    subscribed: list[str]
    unsubscribed: list[str]


@api.method("mail.imap.subscriptions", access=UserSelf())
async def subscriptions(ctx: Context) -> ImapSubscriptions:
    """The caller's subscription choices (LSUB, LIST (SUBSCRIBED); JMAP isSubscribed)."""
    async with ctx.rt.db.read() as tx:
        found = await imap_store.subscriptions(tx, user_id_of(ctx))
    return ImapSubscriptions(subscribed=sorted(found.subscribed), unsubscribed=sorted(found.unsubscribed))


@api.method("mail.imap.subscribe", access=UserSelf(), mutating=True)
async def subscribe(ctx: Context, name: MailboxName, subscribed: bool = True) -> None:
    """Subscribe to (or unsubscribe from) a label by name, or a name with no label yet.
    Unsubscribing from a name with no label forgets it."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        if not subscribed and name not in await label_store.ids_by_name(tx, user_id):
            await imap_store.forget_subscription(tx, user_id, name)
        elif not await imap_store.set_subscribed(tx, user_id, name, subscribed):
            limit = imap_store.MAX_SUBSCRIPTION_ROWS
            raise LimitExceeded(f"at most {limit} subscription choices", limit=limit, used=limit)
    # A label's choice is its Mailbox's isSubscribed (JMAP): push the change.
    await announce_labels(ctx.rt, user_id)


@api.method("mail.imap.recent", access=UserSelf(), mutating=True)
async def recent(
    ctx: Context, label: Id, below: Annotated[int, Field(ge=1, le=INT64_MAX)], claim: bool
) -> int:
    """IMAP4rev1's \\Recent: the first UID of the label no session had been told of; with
    ``claim``, the caller's session is told of every UID below ``below`` (they are recent in
    it alone, RFC 3501 §2.3.2)."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.read() as tx:
        await _label(tx, user_id, label)
        first = await imap_store.first_recent(tx, label)
    if not claim or below <= first:  # nothing new to claim: no write (a SELECT's usual case)
        return first
    async with ctx.rt.db.write() as tx:
        await _label(tx, user_id, label)
        return await imap_store.claim_recent(tx, label, below)


class ImapReferences(BaseModel):
    """What RFC 5256's REFERENCES threading reads of an email (ids without angle brackets)."""

    email_id: int
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]


@api.method("mail.imap.references", access=UserSelf())
async def references(ctx: Context, email_ids: EmailIds) -> list[ImapReferences]:
    """Message-ID, In-Reply-To and References of the caller's emails (THREAD=REFERENCES)."""
    async with ctx.rt.db.read() as tx:
        found = await imap_store.threading_fields(tx, user_id_of(ctx), email_ids)
    return [
        ImapReferences(
            email_id=e, message_id=f.message_id, in_reply_to=f.in_reply_to, references=f.references
        )
        for e, f in found.items()
    ]


@api.method("mail.imap.keyword_spellings", access=UserSelf())
async def keyword_spellings(ctx: Context) -> dict[str, str]:
    """``{keyword as stored (lower case): as the account first wrote it}`` for its mixed-case
    keywords: IMAP shows a keyword as first stored (``$Label1``), JMAP in lower case."""
    async with ctx.rt.db.read() as tx:
        return await imap_store.keyword_spellings(tx, user_id_of(ctx))


@api.method("mail.imap.keep_spellings", access=UserSelf(), mutating=True)
async def keep_spellings(ctx: Context, keywords: Keywords) -> dict[str, str]:
    """Remember how these keywords are written unless a spelling is already kept (the first
    one stays: keywords compare without regard to case, RFC 9051 §2.3.2); answers them all."""
    user_id = user_id_of(ctx)
    async with ctx.rt.db.write() as tx:
        await imap_store.keep_spellings(tx, user_id, keywords)
        return await imap_store.keyword_spellings(tx, user_id)
