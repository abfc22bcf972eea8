"""``PushSubscription/get|set`` (RFC 8620 §7.2) and the delivery of StateChanges to them.

A subscription is verified before anything is pushed to it: on create the server POSTs a
``PushVerification`` with a code to its URL, and the client sets ``verificationCode`` to
that code. Then each change to the mailbox is POSTed as a ``StateChange`` (the types the
subscription asked for, each with the account's new state), from the process that made the
change (the event broker's publish hook), so it works however many workers there are.

URLs must be ``https://`` to a host that is not an IP literal of a private or loopback
network, nor a host name that resolves to one when a push is sent
(``jmap_push_allow_loopback`` lets tests use ``http://127.0.0.1``). Encrypted push
(``keys``, RFC 8291) is not supported: ``keys`` must be null. A subscription lives at most
:data:`MAX_DAYS` days; the client renews it by updating ``expires``; expired ones are deleted
at the account's next ``PushSubscription/set``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import orjson
from pydantic import BaseModel, Field

from mailroom.registry import Context
from mailroom.runtime import Runtime
from mailroom.services.jmap._api import CORE, method
from mailroom.services.jmap._get import check_ids, check_properties, pick
from mailroom.services.jmap._ids import account_id
from mailroom.services.jmap._request import created, resolve
from mailroom.services.jmap._set import (
    CreateMap,
    DestroyList,
    UpdateMap,
    check_set_size,
    flatten_patch,
    set_error,
)
from mailroom.services.jmap._types import IdOrRef, PropertyName
from mailroom.settings import Settings
from mailroom.store import jmap as jmap_store

log = logging.getLogger("mailroom.jmap.push")

MAX_DAYS = 7
MAX_PER_USER = 50
POST_TIMEOUT_SECONDS = 5.0
PROPERTIES = ("id", "deviceClientId", "url", "keys", "verificationCode", "expires", "types")
#: The types each event may change (as the EventSource and WebSocket say them).
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "email.received": ("Mailbox", "Email", "Thread", "EmailDelivery"),
    "thread.updated": ("Mailbox", "Email", "Thread"),
    "label.counts": ("Mailbox", "Email", "Thread"),
    "email.status": ("EmailSubmission",),
}
#: Background POSTs in flight (a reference keeps each task alive).
_TASKS: set[asyncio.Task[None]] = set()


class PushGetResponse(BaseModel):
    """RFC 8620 §7.2.1: no accountId, no state."""

    items: list[dict[str, Any]] = Field(alias="list")
    notFound: list[str]

    model_config = {"populate_by_name": True}


class PushSetResponse(BaseModel):
    created: dict[str, dict[str, Any]] | None = None
    updated: dict[str, dict[str, Any] | None] | None = None
    destroyed: list[str] | None = None
    notCreated: dict[str, dict[str, Any]] | None = None
    notUpdated: dict[str, dict[str, Any]] | None = None
    notDestroyed: dict[str, dict[str, Any]] | None = None


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _object(sub: jmap_store.PushSubscription) -> dict[str, Any]:
    # url and keys are never returned (RFC 8620 §7.2.1); the code only once verified.
    return {
        "id": sub.id,
        "deviceClientId": sub.device_client_id,
        "url": None,
        "keys": None,
        "verificationCode": sub.verification_code if sub.verified else None,
        "expires": _utc(sub.expires),
        "types": None if sub.types is None else list(sub.types),
    }


def check_url(settings: Settings, url: Any) -> str | None:
    """Why ``url`` may not be pushed to, or None."""
    if not isinstance(url, str) or len(url) > 2048:
        return "url must be a URL of at most 2048 characters"
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if (
        settings.jmap_push_allow_loopback
        and parts.scheme in ("http", "https")
        and ip is not None
        and ip.is_loopback
    ):
        return None
    if parts.scheme != "https" or not host:
        return "url must be https://"
    if host == "localhost" or (ip is not None and (ip.is_private or ip.is_loopback or ip.is_link_local)):
        return "url must name a public host"
    return None


def _expires(value: Any, now: datetime) -> datetime | None:
    """The expiry asked for, cut to MAX_DAYS; None when it is not a UTCDate."""
    longest = now + timedelta(days=MAX_DAYS)
    if value is None:
        return longest
    if not isinstance(value, str) or not value.endswith("Z"):
        return None
    try:
        asked = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return min(asked, longest)


def _types(value: Any) -> tuple[str, ...] | bool | None:
    """The types (None: all); False when malformed."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) < 64 for t in value):
        return False
    return tuple(dict.fromkeys(value))


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast


async def _public_host(url: str, allow_loopback: bool) -> bool:
    """Whether the URL's host resolves only to public addresses (or, when allowed, loopback
    ones): a host name pointing inside the network is refused as an IP literal is."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443)
    except OSError:
        return False
    addresses = {str(info[4][0]) for info in infos}
    if allow_loopback and addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses):
        return True
    return bool(addresses) and not any(_internal(a) for a in addresses)


async def _post(url: str, body: dict[str, Any], allow_loopback: bool) -> None:
    if not await _public_host(url, allow_loopback):
        log.info("push: a subscription's host resolves to an internal address; not sent")
        return
    try:
        async with httpx.AsyncClient(timeout=POST_TIMEOUT_SECONDS, follow_redirects=False) as http:
            r = await http.post(
                url, content=orjson.dumps(body), headers={"Content-Type": "application/json", "TTL": "86400"}
            )
        if r.status_code >= 300:
            log.info("push to a subscription answered %s", r.status_code)
    except httpx.HTTPError as exc:
        log.info("push to a subscription failed: %s", type(exc).__name__)


def _in_background(url: str, body: dict[str, Any], allow_loopback: bool) -> None:
    task = asyncio.create_task(_post(url, body, allow_loopback))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


@method("PushSubscription/get", capability=CORE)
async def push_get(
    ctx: Context,
    ids: Annotated[list[IdOrRef], Field(max_length=1000)] | None = None,
    properties: Annotated[list[PropertyName], Field(max_length=100)] | None = None,
) -> PushGetResponse:
    """The caller's push subscriptions (never their url or keys)."""
    user_id = ctx.principal.user_id
    assert user_id is not None
    wanted = check_ids(ctx, ids)
    props = check_properties(properties, PROPERTIES)
    async with ctx.rt.db.read() as tx:
        subs = {s.id: _object(s) for s in await jmap_store.push_subscriptions(tx, user_id)}
    if wanted is None:
        return PushGetResponse(items=[pick(o, props) for o in subs.values()], notFound=[])
    return PushGetResponse(
        items=[pick(subs[i], props) for i in wanted if i in subs],
        notFound=[i for i in wanted if i not in subs],
    )


@method("PushSubscription/set", capability=CORE)
async def push_set(
    ctx: Context,
    create: CreateMap | None = None,
    update: UpdateMap | None = None,
    destroy: DestroyList | None = None,
) -> PushSetResponse:
    """Create (then verify), update and destroy the caller's push subscriptions."""
    user_id = ctx.principal.user_id
    assert user_id is not None
    check_set_size(ctx, create, update, destroy)
    now = ctx.rt.clock.now()
    out = PushSetResponse()
    made: dict[str, dict[str, Any]] = {}
    not_made: dict[str, dict[str, Any]] = {}
    async with ctx.rt.db.write() as tx:
        # Expired ones go now: they no longer count, and nothing is pushed to them.
        await jmap_store.delete_expired_push_subscriptions(tx, user_id, now)
        have = {s.id: s for s in await jmap_store.push_subscriptions(tx, user_id)}
    for cid, props in (create or {}).items():
        unknown = [k for k in props if k not in PROPERTIES or k in ("id", "verificationCode")]
        device = props.get("deviceClientId")
        why = check_url(ctx.rt.settings, props.get("url"))
        expires = _expires(props.get("expires"), now)
        types = _types(props.get("types"))
        if unknown:
            not_made[cid] = set_error("invalidProperties", "these cannot be given", unknown)
        elif not isinstance(device, str) or not 0 < len(device) <= 255:
            not_made[cid] = set_error("invalidProperties", "deviceClientId is required", ["deviceClientId"])
        elif why is not None:
            not_made[cid] = set_error("invalidProperties", why, ["url"])
        elif props.get("keys") is not None:
            not_made[cid] = set_error("invalidProperties", "encrypted push (keys) is not supported", ["keys"])
        elif expires is None:
            not_made[cid] = set_error("invalidProperties", "expires is a UTCDate", ["expires"])
        elif types is False:
            not_made[cid] = set_error("invalidProperties", "types is null or a list of type names", ["types"])
        elif len(have) >= MAX_PER_USER:
            not_made[cid] = set_error("overQuota", f"at most {MAX_PER_USER} push subscriptions")
        else:
            assert types is not True
            assert isinstance(device, str)
            assert isinstance(props["url"], str)
            sub = jmap_store.PushSubscription(
                id="P" + secrets.token_urlsafe(18),
                user_id=user_id,
                device_client_id=device,
                url=props["url"],
                verification_code=secrets.token_urlsafe(24),
                verified=False,
                expires=expires,
                types=types,
            )
            async with ctx.rt.db.write() as tx:
                await jmap_store.add_push_subscription(tx, sub, now)
            have[sub.id] = sub
            created(ctx, cid, sub.id)
            made[cid] = {"id": sub.id, "keys": None, "expires": _utc(sub.expires)}
            _in_background(
                sub.url,
                {
                    "@type": "PushVerification",
                    "pushSubscriptionId": sub.id,
                    "verificationCode": sub.verification_code,
                },
                ctx.rt.settings.jmap_push_allow_loopback,
            )
    updated: dict[str, dict[str, Any] | None] = {}
    not_updated: dict[str, dict[str, Any]] = {}
    for given, patch in (update or {}).items():
        target = resolve(ctx, given)
        known = have.get(target) if target is not None else None
        if known is None:
            not_updated[given] = set_error("notFound", f"no push subscription {given}")
            continue
        sub = known
        error = None
        changes: dict[str, Any] = {}
        for key, value in flatten_patch(patch).items():
            if key == "verificationCode":
                if value != sub.verification_code:
                    error = set_error("invalidProperties", "wrong verification code", [key])
                changes["verified"] = True
            elif key == "expires":
                when = _expires(value, now)
                if when is None:
                    error = set_error("invalidProperties", "expires is a UTCDate", [key])
                changes["expires"] = when
            elif key == "types":
                types = _types(value)
                if types is False:
                    error = set_error("invalidProperties", "types is null or a list of type names", [key])
                changes["types"] = types
            else:
                error = set_error("invalidProperties", f"{key} cannot change", [key])
            if error:
                break
        if error:
            not_updated[given] = error
            continue
        new = jmap_store.PushSubscription(
            id=sub.id,
            user_id=user_id,
            device_client_id=sub.device_client_id,
            url=sub.url,
            verification_code=sub.verification_code,
            verified=changes.get("verified", sub.verified),
            expires=changes.get("expires", sub.expires),
            types=changes.get("types", sub.types),
        )
        async with ctx.rt.db.write() as tx:
            await jmap_store.update_push_subscription(tx, new)
        have[sub.id] = new
        updated[given] = {"expires": _utc(new.expires)} if "expires" in changes else None
    destroyed: list[str] = []
    not_destroyed: dict[str, dict[str, Any]] = {}
    for given in destroy or []:
        target = resolve(ctx, given)
        async with ctx.rt.db.write() as tx:
            gone = target is not None and await jmap_store.delete_push_subscription(tx, user_id, target)
        if gone:
            destroyed.append(given)
        else:
            not_destroyed[given] = set_error("notFound", f"no push subscription {given}")
    _changed()  # this worker's deliveries see the new subscriptions at once
    out.created = made or None
    out.notCreated = not_made or None
    out.updated = updated or None
    out.notUpdated = not_updated or None
    out.destroyed = destroyed or None
    out.notDestroyed = not_destroyed or None
    return out


#: How long a worker trusts its list of the users who have push subscriptions before it
#: asks the database again. A change made through this process is seen at once; one made
#: through another worker within this bound (a client verifying a new subscription).
SUBSCRIBERS_CACHE_SECONDS = 2.0
_changes = 0  # bumped by every PushSubscription/set in this process


def _changed() -> None:
    global _changes
    _changes += 1


class _Subscribers:
    """Which users have a verified, unexpired subscription: one query every
    :data:`SUBSCRIBERS_CACHE_SECONDS` at most, instead of one per delivered message."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.users: frozenset[int] = frozenset()
        self.loaded_at = -1.0e9
        self.seen_changes = -1

    async def any_of(self, user_ids: set[int]) -> bool:
        now = asyncio.get_running_loop().time()
        if self.seen_changes != _changes or now - self.loaded_at > SUBSCRIBERS_CACHE_SECONDS:
            seen = _changes
            async with self.rt.db.read() as tx:
                self.users = await jmap_store.users_with_push_subscriptions(tx, self.rt.clock.now())
            self.loaded_at, self.seen_changes = now, seen
        return not self.users.isdisjoint(user_ids)


def install(rt: Runtime) -> None:
    """POST a StateChange to the verified subscriptions of each mailbox that changes."""
    subscribers = _Subscribers(rt)

    def hook(type: str) -> Any:
        kinds = EVENT_TYPES[type]

        async def push(events: list[tuple[int, dict[str, Any]]]) -> None:
            users: dict[int, Any] = {}
            own: dict[int, dict[str, Any]] = {}
            for user_id, data in events:
                users[user_id] = data.get("state")  # the last state of each mailbox
                if isinstance(data.get("states"), dict):  # a type's own (EmailSubmission)
                    own[user_id] = data["states"]
            if not await subscribers.any_of(set(users)):
                return
            now = rt.clock.now()
            async with rt.db.read() as tx:
                for user_id, state in users.items():
                    for sub in await jmap_store.push_subscriptions(tx, user_id):
                        if not sub.verified or sub.expires < now:
                            continue
                        types = [t for t in kinds if sub.types is None or t in sub.types]
                        states = {t: own.get(user_id, {}).get(t, state) for t in types}
                        states = {t: str(v) for t, v in states.items() if v is not None}
                        if not states:
                            continue
                        change = {account_id(user_id): states}
                        body = {"@type": "StateChange", "changed": change}
                        _in_background(sub.url, body, rt.settings.jmap_push_allow_loopback)

        return push

    for type in EVENT_TYPES:
        rt.events.add_enricher(type, hook(type))
