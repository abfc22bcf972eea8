"""mail.settings.*: the mail client's settings of the signed-in user.

``display_name``, ``reply``, ``forward`` and ``spam`` are the mailbox's own fields (what
``admin.users.get`` shows as ``reply_subject``, ``forward_destinations``, ...): changing
them here changes them there, and the same rules apply (forwarding needs a destination and
never to the mailbox itself; an auto-reply cannot end before it starts). The other settings
are client preferences stored beside the mailbox.
"""

from __future__ import annotations

from typing import cast

from mailroom.domain.clientsettings import (
    PREFERENCES,
    ClientSettings,
    SettingsPatch,
    from_mailbox,
    mailbox_fields,
    merge,
)
from mailroom.domain.users import rule_errors
from mailroom.errors import FieldError, InvalidParams, NotFound
from mailroom.registry import GET, PATCH, PUT, Context, UserSelf
from mailroom.services.mail._api import api
from mailroom.store import client_settings as store
from mailroom.store import users as users_store
from mailroom.store.engine import Tx

#: Where the admin API's field rules point, in the settings' own shape.
_RULE_LOCS = {"forward_destinations": "forward.destinations", "reply_end": "reply.end"}


async def _current(ctx: Context, tx: Tx) -> tuple[users_store.UserRecord, ClientSettings]:
    p = ctx.principal
    assert p.user_id is not None
    assert p.email is not None
    user = await users_store.get(tx, p.email)
    if user is None:
        raise NotFound.of("user", p.email)
    stored = await store.get(tx, p.user_id)
    preferences = {k: v for k, v in stored.items() if k in PREFERENCES}
    return user, from_mailbox(user, preferences)


async def _save(ctx: Context, tx: Tx, settings: ClientSettings, prefix: str) -> ClientSettings:
    p = ctx.principal
    assert p.user_id is not None
    assert p.email is not None
    fields = mailbox_fields(settings)
    errors = rule_errors(p.email, fields, "")
    if errors:
        raise InvalidParams(
            [FieldError(f"{prefix}.{_RULE_LOCS.get(e.loc, e.loc)}", e.message, e.type) for e in errors]
        )
    now = ctx.rt.clock.now()
    # mailbox_fields gives user columns (the forwarding, auto-reply and spam settings).
    await users_store.update_user(tx, p.email, cast(users_store.UserChanges, fields | {"updated_at": now}))
    await store.put(tx, p.user_id, settings.model_dump(mode="json", include=set(PREFERENCES)), now)
    return settings


@api.method("mail.settings.get", http=GET("/me/settings"), access=UserSelf())
async def get_settings(ctx: Context) -> ClientSettings:
    """The caller's settings, every field present (defaults where nothing was saved)."""
    async with ctx.rt.db.read() as tx:
        return (await _current(ctx, tx))[1]


@api.method("mail.settings.replace", http=PUT("/me/settings"), access=UserSelf())
async def replace_settings(ctx: Context, settings: ClientSettings) -> ClientSettings:
    """Replace every setting: absent fields get their defaults (auto-reply and forwarding off)."""
    async with ctx.rt.db.write() as tx:
        await _current(ctx, tx)
        return await _save(ctx, tx, settings, "settings")


@api.method("mail.settings.update", http=PATCH("/me/settings"), access=UserSelf())
async def update_settings(ctx: Context, changes: SettingsPatch) -> ClientSettings:
    """Change some settings: objects (``reply``, ``forward``, ...) merge key by key."""
    async with ctx.rt.db.write() as tx:
        _, current = await _current(ctx, tx)
        merged = merge(current.model_dump(), changes.model_dump(exclude_unset=True))
        return await _save(ctx, tx, ClientSettings.model_validate(merged), "changes")
