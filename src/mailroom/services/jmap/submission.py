"""``EmailSubmission/get|changes|query|queryChanges|set`` (RFC 8621 §7).

A submission sends one of the account's stored emails through the outbound pipeline
(delivery/outbound.submit: the sender rule of delivery/senders.check_may_send, DKIM, local
delivery through ingest, the queue for the rest), without a second copy in Sent: the
client moves the draft there with ``onSuccessUpdateEmail`` (or destroys it with
``onSuccessDestroyEmail``). A submission is the outbound queue's entry for that message:
id ``S<queue id>``, ``deliveryStatus`` per recipient from the queue. Sending is immediate
(``undoStatus`` ``final``) unless the envelope's mailFrom parameters hold it (RFC 4865
FUTURERELEASE: ``holdUntil`` a date-time, ``holdFor`` seconds, at most ``maxDelayedSend``
ahead): then nothing goes out before ``sendAt``, to local recipients neither, and the
submission is ``pending`` until then; an update to ``undoStatus: canceled`` cancels it
(``canceled``; ``cannotUnsend`` once it is not pending). The queue keeps its entries, so
destroying one is ``forbidden``.
Their states come from store/jmap_states.py: each read compares the submissions and their
recipients' statuses with those last seen, so ``/changes`` and ``/queryChanges`` answer
from any state handed out.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailroom.delivery import mime as mime_store
from mailroom.delivery.outbound import submit
from mailroom.delivery.push import StatusUpdate, announce_status
from mailroom.domain.mime import jmap as mime_jmap
from mailroom.domain.mime import without_fields
from mailroom.errors import SenderNotAllowed
from mailroom.registry import Context
from mailroom.services.jmap._accounts import (
    EMAIL_PREFIX,
    THREAD_PREFIX,
    account_of,
    check_state,
    decode,
    encode,
    observed,
    type_changes,
)
from mailroom.services.jmap._api import SUBMISSION, method
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._get import check_ids, check_properties, get_response
from mailroom.services.jmap._query import MAX_QUERY_LIMIT, FilterOperatorBase, window
from mailroom.services.jmap._request import created, resolve, then_call
from mailroom.services.jmap._set import (
    CreateMap,
    DestroyList,
    UpdateMap,
    check_set_size,
    set_error,
    set_response,
)
from mailroom.services.jmap._types import (
    AddedItem,
    ChangesResponse,
    Comparator,
    GetResponse,
    IdOrRef,
    Int,
    JmapId,
    PropertyName,
    QueryChangesResponse,
    QueryResponse,
    SetResponse,
    State,
    UnsignedInt,
)
from mailroom.services.jmap.email._email import utc_date
from mailroom.services.jmap.identity import identity_id
from mailroom.store import jmap as jmap_store
from mailroom.store import jmap_emails
from mailroom.store import outbound as outbound_store
from mailroom.store.blobs import BlobNotFound
from mailroom.store.engine import Tx
from mailroom.store.jmap_emails import Submission

PREFIX = "S"
KIND = "EmailSubmission"
MAX_CHANGES = 5000
PROPERTIES = (
    "id", "identityId", "emailId", "threadId", "envelope", "sendAt", "undoStatus",
    "deliveryStatus", "dsnBlobIds", "mdnBlobIds",
)  # fmt: skip
_DELIVERED = {"queued": "queued", "delivered": "yes", "failed": "no"}


async def _load(
    tx: Tx, user_id: int, now: datetime
) -> tuple[tuple[list[Submission], dict[str, str]], dict[str, str]]:
    """The account's submissions and identities (id → address), and the submissions'
    digests (made, or a recipient's delivery status changed: store/jmap_states.py)."""
    found = await jmap_emails.submissions(tx, user_id)
    digests = {}
    for s in found:
        digest = hashlib.sha256(f"{s.email_id}:{undo_status(s, now)}:".encode())
        for r in s.recipients:
            digest.update(f"{r.address}={r.status}/{r.code}/{r.reply};".encode())
        digests[encode(PREFIX, s.id)] = digest.hexdigest()[:32]
    return (found, await _identities(tx, user_id)), digests


async def _state(ctx: Context, user_id: int, now: datetime) -> tuple[list[Submission], dict[str, str], str]:
    """The account's submissions, identities and their state, taking the next state if any
    was made or changed since last seen (a read transaction when none was)."""
    (found, identities), state = await observed(ctx, user_id, KIND, lambda tx: _load(tx, user_id, now))
    return found, identities, state


async def _identities(tx: Tx, user_id: int) -> dict[str, str]:
    """identity id → address."""
    return {identity_id(s.address): s.address for s in await jmap_store.send_as_addresses(tx, user_id)}


def undo_status(s: Submission, now: datetime) -> str:
    """``pending`` while a delayed send waits (it can be canceled), ``canceled``, or ``final``."""
    if any(r.status == "canceled" for r in s.recipients):
        return "canceled"
    if s.hold_until is not None and s.hold_until > now and all(r.status == "queued" for r in s.recipients):
        return "pending"
    return "final"


def _object(s: Submission, identities: dict[str, str], now: datetime) -> dict[str, Any]:
    by_address = {address.lower(): ident for ident, address in identities.items()}
    return {
        "id": encode(PREFIX, s.id),
        "identityId": by_address.get(s.mail_from.lower()),
        "emailId": encode(EMAIL_PREFIX, s.email_id) if s.email_id is not None else None,
        "threadId": encode(THREAD_PREFIX, s.thread_id) if s.thread_id is not None else None,
        "envelope": {
            "mailFrom": {"email": s.mail_from, "parameters": None},
            "rcptTo": [{"email": r.address, "parameters": None} for r in s.recipients],
        },
        "sendAt": utc_date(s.hold_until or s.created_at),
        "undoStatus": undo_status(s, now),
        "deliveryStatus": {
            r.address: {
                "smtpReply": r.reply or ("250 2.0.0 queued" if r.status == "queued" else "250 2.0.0 OK"),
                "delivered": _DELIVERED.get(r.status, "unknown"),
                "displayed": "unknown",
            }
            for r in s.recipients
        },
        "dsnBlobIds": [],
        "mdnBlobIds": [],
    }


@method("EmailSubmission/get", capability=SUBMISSION)
async def submission_get(
    ctx: Context,
    accountId: JmapId,
    ids: Annotated[list[IdOrRef], Field(max_length=100_000)] | None = None,
    properties: Annotated[list[PropertyName], Field(max_length=20)] | None = None,
) -> GetResponse:
    """The account's submissions (all of them with ``ids: null``)."""
    user_id = account_of(ctx, accountId)
    wanted = check_ids(ctx, ids)
    props = check_properties(properties, PROPERTIES)
    now = ctx.rt.clock.now()
    found, identities, current = await _state(ctx, user_id, now)
    by_id = {encode(PREFIX, s.id): s for s in found}
    return get_response(accountId, current, by_id, lambda s: _object(s, identities, now), wanted, props)


@method("EmailSubmission/changes", capability=SUBMISSION)
async def submission_changes(
    ctx: Context, accountId: JmapId, sinceState: State, maxChanges: UnsignedInt | None = None
) -> ChangesResponse:
    """Submissions made, and those whose delivery status changed, since ``sinceState``."""
    user_id = account_of(ctx, accountId)
    if maxChanges is not None and maxChanges < 1:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    await _state(ctx, user_id, ctx.rt.clock.now())
    return await type_changes(ctx, user_id, accountId, KIND, sinceState, maxChanges, MAX_CHANGES)


class SubmissionFilterCondition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identityIds: Annotated[list[JmapId], Field(max_length=1000)] | None = None
    emailIds: Annotated[list[JmapId], Field(max_length=1000)] | None = None
    threadIds: Annotated[list[JmapId], Field(max_length=1000)] | None = None
    undoStatus: Literal["pending", "final", "canceled"] | None = None
    before: AwareDatetime | None = None
    after: AwareDatetime | None = None


class SubmissionFilterOperator(FilterOperatorBase):
    conditions: Annotated[list[SubmissionFilter], Field(max_length=100)]


SubmissionFilter = Union[SubmissionFilterOperator, SubmissionFilterCondition]  # noqa: UP007
SubmissionFilterOperator.model_rebuild()


def _matches(obj: dict[str, Any], s: Submission, f: SubmissionFilter) -> bool:
    if isinstance(f, SubmissionFilterOperator):
        results = [_matches(obj, s, c) for c in f.conditions]
        return (
            all(results) if f.operator == "AND" else any(results) if f.operator == "OR" else not any(results)
        )
    checks = [
        f.identityIds is None or obj["identityId"] in f.identityIds,
        f.emailIds is None or obj["emailId"] in f.emailIds,
        f.threadIds is None or obj["threadId"] in f.threadIds,
        f.undoStatus is None or f.undoStatus == obj["undoStatus"],
        f.before is None or (s.hold_until or s.created_at) < f.before,
        f.after is None or (s.hold_until or s.created_at) >= f.after,
    ]
    return all(checks)


@method("EmailSubmission/query", capability=SUBMISSION)
async def submission_query(
    ctx: Context,
    accountId: JmapId,
    filter: SubmissionFilter | None = None,
    sort: Annotated[list[Comparator], Field(max_length=5)] | None = None,
    position: Int = 0,
    anchor: JmapId | None = None,
    anchorOffset: Int = 0,
    limit: UnsignedInt | None = None,
    calculateTotal: bool = False,
) -> QueryResponse:
    """The account's submissions matching ``filter`` (default order: sent, oldest first)."""
    user_id = account_of(ctx, accountId)
    now = ctx.rt.clock.now()
    found, identities, current = await _state(ctx, user_id, now)
    pairs = [(s, _object(s, identities, now)) for s in found]
    if filter is not None:
        pairs = [(s, o) for s, o in pairs if _matches(o, s, filter)]
    for c in reversed(sort or []):
        if c.property not in ("emailId", "threadId", "sentAt"):
            raise MethodError("unsupportedSort", f"cannot sort submissions by {c.property}")
        key = {"emailId": "emailId", "threadId": "threadId", "sentAt": "sendAt"}[c.property]
        pairs.sort(key=lambda p: (p[1][key] is not None, p[1][key] or ""), reverse=not c.isAscending)
    ids = [o["id"] for _, o in pairs]
    start, page, cut = window(ids, position=position, anchor=anchor, anchor_offset=anchorOffset, limit=limit)
    return QueryResponse(
        accountId=accountId, queryState=current, canCalculateChanges=True, position=start, ids=page,
        total=len(ids) if calculateTotal else None, limit=cut,
    )  # fmt: skip


@method("EmailSubmission/queryChanges", capability=SUBMISSION)
async def submission_query_changes(
    ctx: Context,
    accountId: JmapId,
    sinceQueryState: State,
    filter: SubmissionFilter | None = None,
    sort: Annotated[list[Comparator], Field(max_length=5)] | None = None,
    maxChanges: UnsignedInt | None = None,
    upToId: JmapId | None = None,
    calculateTotal: bool = False,
) -> QueryChangesResponse:
    """How the results of an EmailSubmission/query changed since ``sinceQueryState``: every
    submission made or changed since is in ``removed``, and those of them in the results now
    in ``added`` with their index (RFC 8620 §5.6)."""
    account_of(ctx, accountId)
    if maxChanges is not None and maxChanges < 1:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    found = await submission_changes(ctx, accountId, sinceQueryState, None)
    if found.hasMoreChanges:
        raise MethodError("cannotCalculateChanges", "too many changes: query again")
    touched = [*found.created, *found.updated, *found.destroyed]
    if maxChanges is not None and len(touched) > maxChanges:
        raise MethodError("tooManyChanges", f"{len(touched)} changes, more than maxChanges")
    now = await submission_query(ctx, accountId, filter, sort, limit=MAX_QUERY_LIMIT, calculateTotal=True)
    position = {i: n for n, i in enumerate(now.ids)}
    added = sorted(
        (AddedItem(id=i, index=position[i]) for i in touched if i in position), key=lambda a: a.index
    )
    if upToId is not None and upToId in position:
        added = [a for a in added if a.index <= position[upToId]]
    return QueryChangesResponse(
        accountId=accountId, oldQueryState=sinceQueryState, newQueryState=now.queryState,
        total=now.total if calculateTotal else None, removed=touched, added=added,
    )  # fmt: skip


class _Refused(Exception):
    def __init__(
        self, kind: str, description: str, properties: list[str] | None = None, **extra: Any
    ) -> None:
        super().__init__(description)
        self.wire = set_error(kind, description, properties)
        self.wire.update(extra)


def _envelope_addresses(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(a, dict) and isinstance(a.get("email"), str) for a in value
    ):
        raise _Refused("invalidProperties", f"{where} must be a list of addresses", ["envelope"])
    return [str(a["email"]) for a in value]


def _hold_until(ctx: Context, parameters: Any) -> datetime | None:
    """When a delayed send goes out (RFC 4865 FUTURERELEASE in the mailFrom parameters:
    ``holdUntil`` an RFC 3339 date-time, ``holdFor`` seconds); None: now. Other parameters
    are ignored, as before."""
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise _Refused("invalidProperties", "mailFrom parameters must be an object", ["envelope"])
    until, hold_for = parameters.get("holdUntil"), parameters.get("holdFor")
    if until is None and hold_for is None:
        return None
    if until is not None and hold_for is not None:
        raise _Refused("invalidProperties", "give holdUntil or holdFor, not both", ["envelope"])
    most = ctx.rt.settings.jmap_max_delayed_send_seconds
    if not most:
        raise _Refused("invalidProperties", "this server sends at once (maxDelayedSend 0)", ["envelope"])
    now = ctx.rt.clock.now()
    try:
        if hold_for is not None:
            if not isinstance(hold_for, str) or not hold_for.isdigit() or len(hold_for) > 10:
                raise ValueError(hold_for)
            when = now + timedelta(seconds=int(hold_for))
        else:
            if not isinstance(until, str) or not until[:4].isdigit():
                raise ValueError(until)
            when = datetime.fromisoformat(until.replace("z", "Z"))
            if when.tzinfo is None:
                raise ValueError(until)
    except (ValueError, OverflowError):
        why = "holdFor is whole seconds; holdUntil an RFC 3339 date-time with its offset"
        raise _Refused("invalidProperties", why, ["envelope"]) from None
    if when > now + timedelta(seconds=most):
        raise _Refused("invalidProperties", f"a send can be held at most {most} seconds", ["envelope"])
    return when.astimezone(UTC) if when > now else None


async def _create(ctx: Context, user_id: int, obj: dict[str, Any]) -> Submission:
    unknown = [p for p in obj if p not in ("identityId", "emailId", "envelope")]
    if unknown:
        raise _Refused("invalidProperties", "only identityId, emailId and envelope can be set", unknown)
    email_ref = obj.get("emailId")
    number = decode(EMAIL_PREFIX, resolve(ctx, str(email_ref)) or str(email_ref)) if email_ref else None
    async with ctx.rt.db.read() as tx:
        identities = await _identities(tx, user_id)
        found = await jmap_emails.records(tx, user_id, [number]) if number is not None else []
    address = identities.get(str(obj.get("identityId")))
    if address is None:
        raise _Refused("invalidProperties", "no such identity", ["identityId"])
    if not found:
        raise _Refused("invalidProperties", "no such email", ["emailId"])
    record = found[0]
    try:
        blob = await ctx.rt.blobs.get(record.blob_sha)
    except BlobNotFound:
        raise _Refused("invalidProperties", "the email's message is gone", ["emailId"]) from None
    envelope = obj.get("envelope")
    hold_until = None
    if envelope is not None:
        if not isinstance(envelope, dict) or not isinstance(envelope.get("mailFrom"), dict):
            raise _Refused("invalidProperties", "envelope needs mailFrom and rcptTo", ["envelope"])
        hold_until = _hold_until(ctx, envelope["mailFrom"].get("parameters"))
        mail_from = str(envelope["mailFrom"].get("email", ""))
        recipients = _envelope_addresses(envelope.get("rcptTo"), "rcptTo")
    else:
        mail_from = address
        structure = (await mime_store.structures(ctx.rt, [record.blob_sha]))[record.blob_sha]
        fields = mime_jmap.header_fields(blob, structure.root)
        recipients = []
        for name in ("To", "Cc", "Bcc"):
            for item in mime_jmap.header_value(fields, mime_jmap.HeaderProperty(name, "Addresses", True)):
                recipients += [a["email"] for a in item if "@" in a["email"]]
    recipients = list(dict.fromkeys(recipients))
    if not recipients:
        raise _Refused("noRecipients", "the message has no recipients")
    if len(blob) > ctx.rt.settings.max_message_bytes:
        raise _Refused(
            "tooLarge", "the message is larger than the limit", maxSize=ctx.rt.settings.max_message_bytes
        )
    try:
        result = await submit(
            ctx.rt,
            without_fields(blob, {b"bcc"}),
            mail_from=mail_from,
            recipients=recipients,
            source="api",
            sender_user_id=user_id,
            copy_of=record.id,
            hold_until=hold_until,
        )
    except SenderNotAllowed as exc:
        field = exc.data.get("field")
        kind = "forbiddenMailFrom" if field == "mail_from" else "forbiddenFrom"
        raise _Refused(kind, str(exc)) from None
    if not result.accepted:
        bad = [r.address for r in result.recipients if r.status == "error"]
        raise _Refused("invalidRecipients", "no recipient could be sent to", invalidRecipients=bad)
    async with ctx.rt.db.read() as tx:
        [submission] = await jmap_emails.submissions(tx, user_id, [result.queue_id or 0])
    return submission


async def _cancel(
    ctx: Context, user_id: int, given: str, patch: dict[str, Any]
) -> tuple[outbound_store.QueuedMessage, list[StatusUpdate], list[outbound_store.QueuedRecipient]]:
    """RFC 8621 §7.5: the only update is ``undoStatus`` to ``canceled``, while pending.
    Returns the queue entry and its recipients' new status, for the push event."""
    unknown = [p for p in patch if p != "undoStatus"]
    if unknown:
        raise _Refused("invalidProperties", "only undoStatus can be changed", unknown)
    if patch.get("undoStatus") != "canceled":
        raise _Refused("invalidProperties", "undoStatus can only become canceled", ["undoStatus"])
    target = resolve(ctx, given)
    number = decode(PREFIX, target) if target is not None else None
    async with ctx.rt.db.write() as tx:
        if number is None or not await jmap_emails.submissions(tx, user_id, [number]):
            raise _Refused("notFound", f"no submission {given}")
        entry = await outbound_store.get(tx, number)
        waiting = [
            r for r in await outbound_store.recipients(tx, number) if r.status in outbound_store.WAITING
        ]
        if entry is None or not await outbound_store.cancel_held(tx, number, user_id, ctx.rt.clock.now()):
            raise _Refused("cannotUnsend", "the message is no longer pending: it was sent or is being sent")
    updates: list[StatusUpdate] = [(r.id, "canceled", 554, outbound_store.CANCELED_REPLY) for r in waiting]
    return entry, updates, waiting


@method("EmailSubmission/set", capability=SUBMISSION)
async def submission_set(
    ctx: Context,
    accountId: JmapId,
    ifInState: State | None = None,
    create: CreateMap | None = None,
    update: UpdateMap | None = None,
    destroy: DestroyList | None = None,
    onSuccessUpdateEmail: Annotated[dict[IdOrRef, dict[str, Any]], Field(max_length=1000)] | None = None,
    onSuccessDestroyEmail: Annotated[list[IdOrRef], Field(max_length=1000)] | None = None,
) -> SetResponse:
    """Send emails (``create``, delayed with FUTURERELEASE parameters); cancel a delayed one
    that is still pending (``update`` ``undoStatus: canceled``; else ``cannotUnsend``); a
    destroy is ``forbidden``. Then the Email/set of ``onSuccess*Email``."""
    user_id = account_of(ctx, accountId)
    check_set_size(ctx, create, update, destroy)
    _, _, current = await _state(ctx, user_id, ctx.rt.clock.now())
    old = check_state(current, ifInState)
    made: dict[str, dict[str, Any]] = {}
    refused: dict[str, dict[str, Any]] = {}
    email_of: dict[str, str] = {}  # submission id or #creation id → email id
    for creation_id, obj in (create or {}).items():
        try:
            s = await _create(ctx, user_id, obj)
        except _Refused as exc:
            refused[creation_id] = exc.wire
            continue
        new_id = encode(PREFIX, s.id)
        created(ctx, creation_id, new_id)
        made[creation_id] = {
            "id": new_id,
            "undoStatus": undo_status(s, ctx.rt.clock.now()),
            "sendAt": utc_date(s.hold_until or s.created_at),
        }
        if s.email_id is not None:
            email_of[f"#{creation_id}"] = email_of[new_id] = encode(EMAIL_PREFIX, s.email_id)
    updated: dict[str, dict[str, Any] | None] = {}
    not_updated: dict[str, dict[str, Any]] = {}
    canceled = []
    for given, patch in (update or {}).items():
        try:
            canceled.append(await _cancel(ctx, user_id, given, patch))
        except _Refused as exc:
            not_updated[given] = exc.wire
            continue
        updated[given] = None
    not_destroyed = {
        i: set_error("forbidden", "the outbound queue keeps its entries") for i in (destroy or [])
    }
    _, _, new = await _state(ctx, user_id, ctx.rt.clock.now())
    for entry, updates, waiting in canceled:  # push: the EmailSubmission state it took
        await announce_status(ctx.rt, entry, waiting, updates, states={"EmailSubmission": new})
    email_updates = {
        email_of[key]: patch for key, patch in (onSuccessUpdateEmail or {}).items() if key in email_of
    }
    email_destroys = [email_of[key] for key in (onSuccessDestroyEmail or []) if key in email_of]
    if email_updates or email_destroys:
        args: dict[str, Any] = {"accountId": accountId}
        if email_updates:
            args["update"] = email_updates
        if email_destroys:
            args["destroy"] = email_destroys
        then_call(ctx, "Email/set", args)
    return set_response(
        accountId,
        old,
        new,
        created=made,
        updated=updated,
        not_created=refused,
        not_updated=not_updated,
        not_destroyed=not_destroyed,
    )
