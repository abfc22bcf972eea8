"""``jmap.session.get``: the JMAP Session resource's data (RFC 8620 §2), without its URLs.

The front-end adds ``apiUrl``, ``downloadUrl``, ``uploadUrl``, ``eventSourceUrl``, the
WebSocket URL and ``state``: they depend on where it is served.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from mailroom.registry import Context, UserSelf
from mailroom.services.jmap._accounts import account_id, state
from mailroom.services.jmap._api import CORE, MAIL, SUBMISSION, VACATION, WEBSOCKET, api
from mailroom.settings import Settings

#: RFC 4790 collations the server knows (Mailbox/query and Email/query sort on them).
COLLATIONS = ["i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"]
#: The longest mailbox (label) name, in characters (the labels' own rule).
MAX_MAILBOX_NAME = 100


class SessionData(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    capabilities: dict[str, dict[str, Any]]
    accounts: dict[str, dict[str, Any]]
    primaryAccounts: dict[str, str]
    username: str


def core_capability(settings: Settings) -> dict[str, Any]:
    return {
        "maxSizeUpload": settings.upload_max_bytes,
        "maxConcurrentUpload": settings.jmap_max_concurrent_upload,
        "maxSizeRequest": settings.jmap_max_size_request,
        "maxConcurrentRequests": settings.jmap_max_concurrent_requests,
        "maxCallsInRequest": settings.jmap_max_calls_in_request,
        "maxObjectsInGet": settings.jmap_max_objects_in_get,
        "maxObjectsInSet": settings.jmap_max_objects_in_set,
        "collationAlgorithms": COLLATIONS,
    }


def submission_capability(settings: Settings) -> dict[str, Any]:
    """RFC 8621 §1.3.2. Delayed send is RFC 4865 FUTURERELEASE (``holdUntil``/``holdFor`` in
    the envelope's mailFrom parameters), listed with its longest interval only: its other
    argument, the latest date-time, would change the Session every second."""
    most = settings.jmap_max_delayed_send_seconds
    return {
        "maxDelayedSend": most,
        "submissionExtensions": {"FUTURERELEASE": [str(most)]} if most else {},
    }


def account_capabilities(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        CORE: {},
        MAIL: {
            "maxMailboxesPerEmail": None,
            "maxMailboxDepth": None,  # labels nest by name, up to maxSizeMailboxName
            "maxSizeMailboxName": MAX_MAILBOX_NAME,
            "maxSizeAttachmentsPerEmail": settings.upload_max_bytes,
            "emailQuerySortOptions": ["receivedAt", "sentAt", "size", "from", "to", "subject"],
            "mayCreateTopLevelMailbox": True,
        },
        SUBMISSION: submission_capability(settings),
        VACATION: {},
    }


@api.method("jmap.session.get", access=UserSelf())
async def get_session(ctx: Context) -> SessionData:
    """The caller's JMAP session: capabilities with their limits, and their one account."""
    settings = ctx.rt.settings
    user_id = ctx.principal.user_id
    assert user_id is not None  # UserSelf
    email = ctx.principal.email or ""
    acc = account_id(user_id)
    account_caps = account_capabilities(settings)
    return SessionData(
        capabilities={
            CORE: core_capability(settings),
            MAIL: {},
            SUBMISSION: {},
            VACATION: {},
            WEBSOCKET: {"supportsPush": True},
        },
        accounts={
            acc: {
                "name": email,
                "isPersonal": True,
                "isReadOnly": False,
                "accountCapabilities": account_caps,
            }
        },
        primaryAccounts={cap: acc for cap in account_caps},
        username=email,
    )


class AccountState(BaseModel):
    state: str


@api.method("jmap.state.get", access=UserSelf())
async def get_state(ctx: Context) -> AccountState:
    """The caller's account state (every JMAP type's): what push StateChanges carry."""
    user_id = ctx.principal.user_id
    assert user_id is not None  # UserSelf
    async with ctx.rt.db.read() as tx:
        return AccountState(state=await state(tx, user_id))
