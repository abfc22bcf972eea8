"""API schemas of outbound mail: queue entries and per-recipient delivery status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

RecipientState = Literal["queued", "deferred", "delivered", "failed", "canceled"]


class DeliveryStatus(BaseModel):
    """Where one recipient of a sent message stands, with the last reply about it."""

    address: str
    status: RecipientState = Field(
        description="queued (not tried yet), deferred (temporary failure, will retry), "
        "delivered, failed (permanent failure or too old; the sender got a DSN), canceled (a "
        "delayed send its sender canceled before its time)."
    )
    attempts: int
    last_code: int | None = Field(default=None, description="SMTP code of the last reply.")
    last_reply: str | None = None
    updated_at: datetime


class QueueEntry(BaseModel):
    """A message in the outbound queue and its recipients."""

    id: int
    source: str = Field(description="submission, api, forward, alias, relay, autoreply or dsn.")
    status: Literal["queued", "done"] = Field(description="queued while any recipient is waiting.")
    mail_from: str = Field(description="Envelope sender; empty for bounces and auto-replies.")
    message_id: str | None
    subject: str
    size: int
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    recipients: list[DeliveryStatus]


class SubmittedRecipient(BaseModel):
    """One recipient's outcome of a submission."""

    address: str
    status: Literal["delivered", "queued", "error"]
    reason: str | None = None


class Submission(BaseModel):
    """What happened to a submitted message."""

    message_id: str | None
    queue_id: int | None
    sent_email_id: int | None
    recipients: list[SubmittedRecipient]
