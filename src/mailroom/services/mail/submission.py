"""mail.submission.*: what the submission listener asks while an authenticated user sends.

``check_sender`` answers MAIL FROM (may this user use this envelope sender?), ``submit``
answers DATA (send it: delivery/outbound.py ``submit``, which applies the sender rule to the
envelope and to the ``From`` and ``Sender`` headers again). Both raise ``SenderNotAllowed``
for a refused sender (delivery/senders.py; the listener answers ``553 5.7.1``). Both are
internal methods: the listener calls them in-process with the internal principal once it has
authenticated the user itself (``Authenticator``), so the user id they carry is trusted.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailroom.delivery.outbound import submit as submit_message
from mailroom.delivery.senders import check_may_send
from mailroom.domain.numbers import Id
from mailroom.domain.outbound import Submission, SubmittedRecipient
from mailroom.registry import Context, Internal
from mailroom.services.mail._api import api

Address = Annotated[str, Field(max_length=512)]


@api.method("mail.submission.check_sender", access=Internal())
async def check_sender(ctx: Context, user_id: Id, mail_from: Address) -> None:
    """Refuse (``sender_not_allowed``) unless ``user_id`` may send with envelope sender
    ``mail_from``: their own address, an alias of theirs, a send-as identity of theirs, or
    anything with ``allow_spoofing``."""
    await check_may_send(ctx.rt, user_id, mail_from=mail_from)


@api.method("mail.submission.submit", access=Internal(), mutating=True)
async def submit(
    ctx: Context,
    raw: bytes,
    mail_from: Address,
    recipients: Annotated[list[Address], Field(min_length=1, max_length=10_000)],
    user_id: Id,
    helo: Annotated[str | None, Field(max_length=255)] = None,
) -> Submission:
    """Send a message an authenticated user submitted: local recipients at once, remote ones
    through the outbound queue; a copy in the sender's ``sent`` label."""
    result = await submit_message(
        ctx.rt,
        raw,
        mail_from=mail_from,
        recipients=recipients,
        source="submission",
        sender_user_id=user_id,
        client_ip=ctx.call.client_ip,
        client_helo=helo,
    )
    return Submission(
        message_id=result.message_id,
        queue_id=result.queue_id,
        sent_email_id=result.sent_email_id,
        recipients=[
            SubmittedRecipient(address=r.address, status=r.status, reason=r.reason) for r in result.recipients
        ],
    )
