"""mail.messages.*: putting existing mail into a mailbox (imports, migrations, the API)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mailroom.delivery.ingest import IngestOptions, Source, ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.domain.names import EmailAddress
from mailroom.errors import BadRequest, Conflict, LimitExceeded, NotFound, PayloadTooLarge, Unavailable
from mailroom.registry import POST, Context, Owner
from mailroom.services.mail._api import api
from mailroom.store import emails as email_store
from mailroom.store import recipients as mailbox_store
from mailroom.store.labels import SYSTEM_LABELS

LabelName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ImportedMessage(BaseModel):
    """Where an imported message went; ``duplicate`` when it was already in the mailbox."""

    email_id: int
    thread_id: int
    duplicate: bool


def _label_names(labels: list[str] | None) -> tuple[str, ...] | None:
    if labels is None:
        return None
    names = [n.strip().lower() if n.strip().lower() in SYSTEM_LABELS else n.strip() for n in labels]
    return tuple(dict.fromkeys(n for n in names if n))


@api.method(
    "mail.messages.import",
    http=POST("/users/{email}/messages/import", status=201),
    access=Owner("email"),
    mutating=True,
)
async def import_message(
    ctx: Context,
    email: EmailAddress,
    message: Annotated[str, Field(description="The raw RFC 5322 message, base64 (default) or as text.")],
    encoding: Literal["base64", "text"] = "base64",
    labels: Annotated[
        list[LabelName] | None,
        Field(max_length=50, description="Labels to give; default inbox (or spam by the mailbox's rule)."),
    ] = None,
    is_read: bool = False,
    is_starred: bool = False,
    is_draft: bool = False,
    received_at: Annotated[
        datetime | None, Field(description="Arrival time to record (default now); needs a time zone.")
    ] = None,
) -> ImportedMessage:
    """Store an existing message in a mailbox through the same ingest as arriving mail.

    Idempotent: the same message (Message-ID and bytes) imported again is not stored twice
    and the answer says ``duplicate``. Only global administrators and the mailbox's owner
    may import. No auto-reply or forwarding happens for imported mail.
    """
    principal = ctx.principal
    if not principal.is_admin and principal.email != email:
        raise NotFound.of("user", email)
    if encoding == "base64":
        try:
            raw = base64.b64decode(message, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("message is not valid base64") from None
    else:
        raw = message.encode("utf-8", "surrogateescape")
    if not raw.strip():
        raise BadRequest("the message is empty")
    if len(raw) > ctx.rt.settings.max_message_bytes:
        raise PayloadTooLarge(f"the message is larger than {ctx.rt.settings.max_message_bytes} bytes")
    if received_at is not None and received_at.tzinfo is None:
        raise BadRequest("received_at needs a time zone")
    async with ctx.rt.db.read() as tx:
        user = await mailbox_store.user_by_email(tx, email)
    if user is None:
        raise NotFound.of("user", email)
    resolution = Resolution(email, "accepted", [LocalTarget(user.id, email)])
    options = IngestOptions(
        labels=_label_names(labels),
        is_read=is_read,
        is_starred=is_starred,
        is_draft=is_draft,
        received_at=received_at,
        trace=False,  # mail that arrived elsewhere, earlier: it has its own trace headers
    )
    source: Source = "import" if ctx.call.protocol == "cli" else "api"
    [result] = await ingest(
        ctx.rt, raw, mail_from="", recipients=[resolution], source=source, options=options
    )
    if not result.ok:
        if result.code == 452:
            raise LimitExceeded(f"the mailbox {email} is full")
        if result.code == 550:
            raise Conflict(f"the mailbox {email} is disabled")
        if result.temporary:
            raise Unavailable("the message could not be stored now; try again")
        raise BadRequest(result.reply[4:])
    async with ctx.rt.db.read() as tx:
        row = await email_store.get(tx, user.id, result.email_ids[0])
    if row is None:  # deleted between the two transactions
        raise NotFound.of("email", result.email_ids[0])
    return ImportedMessage(email_id=row.id, thread_id=row.thread_id, duplicate=result.duplicate)
