"""mail.delivery.*: what the SMTP and LMTP listeners ask while a message arrives.

``check`` answers RCPT (who is this?), ``deliver`` answers DATA (store it for these). Both are
internal methods: the listeners call them in-process with the internal principal; nobody
reaches them from outside. Replies are complete SMTP replies (``250 2.1.5 ...``), so a
listener only relays them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailroom.delivery.ingest import IngestOptions, ingest, temporary_failure
from mailroom.delivery.resolve import Resolution, SrsKey, resolve
from mailroom.delivery.rspamd import screen
from mailroom.delivery.trace import Arrival
from mailroom.registry import Context, Internal
from mailroom.services.mail._api import api

Address = Annotated[str, Field(max_length=512)]


class RecipientCheck(BaseModel):
    """The answer to RCPT TO for one address."""

    address: str
    accepted: bool
    reply: str


class SmtpSession(BaseModel):
    """Who handed the message over, for its ``Received`` line (delivery/trace.py)."""

    model_config = ConfigDict(extra="forbid")

    protocol: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,16}$", description="SMTP, ESMTPS, LMTP, ...")]
    helo: Annotated[str | None, Field(max_length=255)] = None
    peer_ip: Annotated[str | None, Field(max_length=64)] = None
    peer_name: Annotated[str | None, Field(max_length=255, description="verified rDNS (XCLIENT NAME)")] = None


class DeliveryStatus(BaseModel):
    """The outcome of DATA for one recipient (LMTP sends one per recipient)."""

    address: str
    code: int
    reply: str


@api.method("mail.delivery.check", access=Internal())
async def check_recipient(ctx: Context, address: Address) -> RecipientCheck:
    """Resolve a RCPT address: users, aliases, alternatives, relays, wildcards, the delimiter.

    Full mailboxes answer ``452 4.2.2`` here already; unknown addresses ``550 5.1.1``, and so
    do SRS addresses of ours that are forged, expired or malformed.
    """
    settings = ctx.rt.settings
    async with ctx.rt.db.read() as tx:
        resolution = await resolve(
            tx, address, delimiters=settings.recipient_delimiter, quota_check=True, srs_key=SrsKey.of(ctx.rt)
        )
    return RecipientCheck(address=resolution.address, accepted=resolution.accepted, reply=resolution.reply)


@api.method("mail.delivery.deliver", access=Internal(), mutating=True)
async def deliver(
    ctx: Context,
    raw: bytes,
    mail_from: Annotated[str, Field(max_length=512)],
    recipients: Annotated[list[Address], Field(min_length=1, max_length=10_000)],
    source: Literal["smtp", "lmtp"] = "lmtp",
    session: SmtpSession | None = None,
) -> list[DeliveryStatus]:
    """Store a message for its recipients (resolved again now) and answer one status each.

    Temporary problems (a full mailbox, the database) are 4xx; nothing here answers 5xx
    except for recipients that do not exist (any more) or are disabled, and, with
    ``rspamd_url`` set, mail rspamd refuses (DMARC reject, its reject action:
    delivery/rspamd.py, which also writes the verdict's headers).
    """
    settings = ctx.rt.settings
    resolutions: list[Resolution] = []
    srs_key = SrsKey.of(ctx.rt)
    try:
        async with ctx.rt.db.read() as tx:
            for address in recipients:
                resolutions.append(
                    await resolve(tx, address, delimiters=settings.recipient_delimiter, srs_key=srs_key)
                )
    except Exception:
        return [DeliveryStatus(address=a, code=451, reply=temporary_failure(a)) for a in recipients]
    if settings.rspamd_url or settings.spam_trusted_hosts:  # off by default: no cost then
        screened = await screen(
            settings,
            raw,
            mail_from=mail_from,
            recipients=recipients,
            peer_ip=session.peer_ip if session else None,
            helo=session.helo if session else None,
            peer_name=session.peer_name if session else None,
        )
        if screened.refusal is not None:
            code = int(screened.refusal[:3])
            return [DeliveryStatus(address=a, code=code, reply=screened.refusal) for a in recipients]
        raw = screened.raw
    options = None
    if session is not None:
        options = IngestOptions(arrival=Arrival(session.protocol, session.helo, session.peer_ip))
    results = await ingest(
        ctx.rt, raw, mail_from=mail_from, recipients=resolutions, source=source, options=options
    )
    return [
        DeliveryStatus(address=a, code=r.code, reply=r.reply)
        for a, r in zip(recipients, results, strict=True)
    ]
