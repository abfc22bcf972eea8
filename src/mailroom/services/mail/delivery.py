"""mail.delivery.*: what the SMTP and LMTP listeners ask while a message arrives.

``check`` answers RCPT (who is this?), ``deliver`` answers DATA (store it for these). Both are
internal methods: the listeners call them in-process with the internal principal; nobody
reaches them from outside. Replies are complete SMTP replies (``250 2.1.5 ...``), so a
listener only relays them.

Each recipient is resolved once per transaction: ``check`` with ``hold`` keeps its
resolution in this process for a while and answers an opaque ``handle``; the listener keeps
it on the envelope and hands it back to ``deliver``, which takes the resolution back
instead of resolving again. A handle that is unknown (another process, evicted, expired,
already used) only costs a fresh resolution. What may change in between (a user disabled,
a mailbox filled) is checked inside the delivery's write transaction anyway, as it always
was; an alias changed after RCPT applies from the next transaction on.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailroom.delivery.ingest import IngestOptions, ingest, temporary_failure
from mailroom.delivery.resolve import Resolution, SrsKey, resolve
from mailroom.delivery.rspamd import screen
from mailroom.delivery.trace import Arrival
from mailroom.registry import Context, Internal
from mailroom.services.mail._api import api

Address = Annotated[str, Field(max_length=512)]
Handle = Annotated[str, Field(max_length=64)]

#: How long a held resolution waits for its DATA (an SMTP transaction is seconds; aiosmtpd
#: drops an idle session after 5 minutes) and how many this process holds at most.
HOLD_SECONDS = 600.0
HOLD_MAX = 10_000


class _Held:
    """The resolutions RCPT made, by handle, oldest first; bounded in number and age."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, int, str, Resolution]] = OrderedDict()

    def keep(self, owner: object, address: str, resolution: Resolution) -> str:
        now = time.monotonic()
        self._expire(now)
        while len(self._entries) >= HOLD_MAX:
            self._entries.popitem(last=False)
        handle = secrets.token_urlsafe(16)
        self._entries[handle] = (now + HOLD_SECONDS, id(owner), address, resolution)
        return handle

    def take(self, owner: object, handle: str | None, address: str) -> Resolution | None:
        """The resolution kept under ``handle`` if RCPT asked for ``address`` (once), else None."""
        if handle is None:
            return None
        entry = self._entries.pop(handle, None)
        if entry is None:
            return None
        expires, owner_id, asked, resolution = entry
        if owner_id != id(owner) or expires < time.monotonic() or asked != address:
            return None
        return resolution

    def _expire(self, now: float) -> None:
        while self._entries:
            expires = next(iter(self._entries.values()))[0]
            if expires >= now:
                break
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


_held = _Held()


class RecipientCheck(BaseModel):
    """The answer to RCPT TO for one address."""

    address: str
    accepted: bool
    reply: str
    handle: str | None = Field(
        default=None, description="with ``hold``: pass it back to ``deliver`` (``handles``) for this address"
    )


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
async def check_recipient(ctx: Context, address: Address, hold: bool = False) -> RecipientCheck:
    """Resolve a RCPT address: users, aliases, alternatives, relays, wildcards, the delimiter.

    Full mailboxes answer ``452 4.2.2`` here already; unknown addresses ``550 5.1.1``, and so
    do SRS addresses of ours that are forged, expired or malformed. With ``hold``, an
    accepted address's resolution is kept for ``deliver`` under the answer's ``handle``.
    """
    settings = ctx.rt.settings
    async with ctx.rt.db.read() as tx:
        resolution = await resolve(
            tx, address, delimiters=settings.recipient_delimiter, quota_check=True, srs_key=SrsKey.of(ctx.rt)
        )
    handle = None
    # A resolution that left a full mailbox out differs from DATA's (which keeps it and lets
    # the write transaction answer for it): such a recipient is resolved again at DATA.
    if hold and resolution.accepted and not resolution.held_back:
        handle = _held.keep(ctx.rt, address, resolution)
    return RecipientCheck(
        address=resolution.address, accepted=resolution.accepted, reply=resolution.reply, handle=handle
    )


@api.method("mail.delivery.deliver", access=Internal(), mutating=True)
async def deliver(
    ctx: Context,
    raw: bytes,
    mail_from: Annotated[str, Field(max_length=512)],
    recipients: Annotated[list[Address], Field(min_length=1, max_length=10_000)],
    source: Literal["smtp", "lmtp"] = "lmtp",
    session: SmtpSession | None = None,
    handles: Annotated[list[Handle | None] | None, Field(max_length=10_000)] = None,
) -> list[DeliveryStatus]:
    """Store a message for its recipients and answer one status each.

    ``handles`` (one per recipient, from ``check`` with ``hold``) take back the resolutions
    RCPT made; a recipient without a usable one is resolved now.

    Temporary problems (a full mailbox, the database) are 4xx; nothing here answers 5xx
    except for recipients that do not exist (any more) or are disabled, and, with
    ``rspamd_url`` set, mail rspamd refuses (DMARC reject, its reject action:
    delivery/rspamd.py, which also writes the verdict's headers).
    """
    settings = ctx.rt.settings
    resolutions: list[Resolution] = []
    srs_key = SrsKey.of(ctx.rt)
    if handles is None or len(handles) != len(recipients):
        handles = [None] * len(recipients)
    held = [_held.take(ctx.rt, h, a) for a, h in zip(recipients, handles, strict=True)]
    try:
        if any(r is None for r in held):
            async with ctx.rt.db.read() as tx:
                for address, kept in zip(recipients, held, strict=True):
                    resolutions.append(
                        kept
                        or await resolve(
                            tx, address, delimiters=settings.recipient_delimiter, srs_key=srs_key
                        )
                    )
        else:
            resolutions = [r for r in held if r is not None]
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
