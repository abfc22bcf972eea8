"""admin.config.*: the whole configuration as one document, exported and imported.

The document (:class:`~mailroom.domain.config.ConfigDocument`) is structured data, not a
YAML file: JSON-RPC and XML-RPC carry it natively (a YAML ``Download`` would reach them as
an opaque base64 string), its schema is published in OpenAPI and OpenRPC like every other
result, and what export returns is exactly what import takes, on every protocol. The CLI
writes and reads it as YAML (or JSON), where people edit it.

An import applies everything in one write transaction through the per-object repositories:
a failure midway (a database conflict, a crash) rolls the whole import back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, cast

from mailroom.domain.config import (
    ConfigAlias,
    ConfigAlternative,
    ConfigChange,
    ConfigDocument,
    ConfigDomain,
    ConfigImportResult,
    ConfigManager,
    ConfigRelay,
    ConfigUser,
)
from mailroom.domain.directory import DIRECTORY_SOURCE
from mailroom.errors import Conflict, InvalidParams
from mailroom.events import Revocation, revoke_safely
from mailroom.registry import GET, POST, Admin, Context
from mailroom.services.admin._api import api
from mailroom.services.admin._config_plan import (
    ALIAS_FIELDS,
    ALTERNATIVE_FIELDS,
    DOMAIN_FIELDS,
    RELAY_FIELDS,
    USER_FIELDS,
    Passwords,
    StaleVerification,
    State,
    Step,
    Stored,
    check_document,
    manager_key,
    plan,
)
from mailroom.services.admin.users import access_ended
from mailroom.store import accounts, aliases, alternatives, domains, managers, relays, users
from mailroom.store import config as store
from mailroom.store.config import StoredManager, StoredUser
from mailroom.store.engine import Tx

log = logging.getLogger("mailroom.admin.config")


async def load_state(tx: Tx, *, lock: bool = False) -> State:
    """Every configuration row, by key, secrets included (they never leave this module raw).

    ``lock`` (in the import's write transaction) locks the domain rows first.
    """
    return State(
        domains={r.name: r for r in await store.all_domains(tx, lock=lock)},
        alternatives={r.name: r for r in await store.all_alternatives(tx)},
        relays={r.name: r for r in await store.all_relays(tx)},
        users={r.email: r for r in await store.all_users(tx)},
        aliases={r.address: r for r in await store.all_aliases(tx)},
        managers={manager_key(r.domain, r.email): r for r in await store.all_managers(tx)},
    )


def build_document(state: State, *, with_password_hashes: bool, include_secrets: bool) -> ConfigDocument:
    """The document for ``state``; every list sorted by key.

    Rows are stored data, checked when they were written: the entries are built without
    validating them again, so that one odd row can never make a backup impossible.
    """

    def pick(row: Stored, names: tuple[str, ...]) -> dict[str, Any]:
        """The record's attributes named like the entry's fields."""
        return {n: getattr(row, n) for n in names}

    return ConfigDocument.model_construct(
        domains=[
            ConfigDomain.model_construct(
                name=name,
                **pick(row, DOMAIN_FIELDS),
                dkim_selector=row.dkim_selector,
                dkim_private_key=row.dkim_private_key if include_secrets else None,
            )
            for name, row in sorted(state.domains.items())
        ],
        alternatives=[
            ConfigAlternative.model_construct(name=name, **pick(row, ALTERNATIVE_FIELDS))
            for name, row in sorted(state.alternatives.items())
        ],
        relays=[
            ConfigRelay.model_construct(name=name, **pick(row, RELAY_FIELDS))
            for name, row in sorted(state.relays.items())
        ],
        users=[
            ConfigUser.model_construct(
                email=email,
                **pick(row, USER_FIELDS),
                # A directory user's stored "hash" is only the mark that none is stored.
                password_hash=row.password_hash
                if with_password_hashes and row.auth_source != DIRECTORY_SOURCE
                else None,
            )
            for email, row in sorted(state.users.items())
        ],
        aliases=[
            ConfigAlias.model_construct(address=address, **pick(row, ALIAS_FIELDS))
            for address, row in sorted(state.aliases.items())
        ],
        managers=[
            ConfigManager.model_construct(domain=row.domain, email=row.email)
            for _key, row in sorted(state.managers.items())
        ],
    )


@api.method("admin.config.export", http=GET("/config"), access=Admin())
async def export_config(
    ctx: Context, with_password_hashes: bool = False, include_secrets: bool = False
) -> ConfigDocument:
    """Export the whole configuration: domains, alternatives, relays, users, aliases, managers.

    Lists are sorted by name or address, so two exports diff cleanly. Secrets stay out
    unless asked for: ``with_password_hashes`` adds each user's stored password hash (the
    one case where hashes leave the server, for moving users to another instance);
    ``include_secrets`` adds DKIM private keys. API keys, mail and timestamps are not
    configuration and are not exported.
    """
    async with ctx.rt.db.read() as tx:
        state = await load_state(tx)
    if with_password_hashes or include_secrets:
        log.warning(
            "configuration exported with %s by %s",
            " and ".join(
                n
                for n, on in (("password hashes", with_password_hashes), ("DKIM keys", include_secrets))
                if on
            ),
            ctx.principal.label,
        )
    return build_document(state, with_password_hashes=with_password_hashes, include_secrets=include_secrets)


@api.method("admin.config.import", http=POST("/config"), access=Admin())
async def import_config(
    ctx: Context, document: ConfigDocument, dry_run: bool = False, prune: bool = False
) -> ConfigImportResult:
    """Import a configuration document: create what is missing, update what differs.

    Nothing is deleted unless ``prune`` is true; then every domain, alternative, relay, user
    (with their mail), alias and manager missing from the document is deleted, and a domain
    whose ``dkim_selector`` is null loses its DKIM key. Fields an entry leaves out keep their
    stored values. ``password`` is hashed; ``password_hash`` is stored as given. The whole
    document is checked before anything is written (``invalid_params`` locates every problem,
    as in ``document.users.3.email``) and applied in one transaction. ``dry_run`` returns the
    same list of changes without making them.
    """
    errors = check_document(document)
    if errors:
        raise InvalidParams(errors)
    default_selector = ctx.rt.settings.dkim_selector
    async with ctx.rt.db.read() as tx:
        state = await load_state(tx)
    passwords = await _check_passwords(ctx, document, state, hash_new=not dry_run)
    if dry_run:
        steps, errors = plan(
            document, state, prune=prune, default_selector=default_selector, passwords=passwords, dry_run=True
        )
        if errors:
            raise InvalidParams(errors)
        return _result(steps, dry_run=True)
    now = ctx.rt.clock.now()
    async with ctx.rt.db.write() as tx:
        state = await load_state(tx, lock=True)
        try:
            steps, errors = plan(
                document,
                state,
                prune=prune,
                default_selector=default_selector,
                passwords=passwords,
                dry_run=False,
            )
        except StaleVerification as exc:
            raise Conflict(f"the password of {exc} changed during the import; import again") from None
        if errors:
            raise InvalidParams(errors)
        for step in steps:
            await _apply(tx, step, now)
    log.info("configuration imported by %s: %d changes", ctx.principal.label, len(steps))
    for revocation in _access_ended(steps):
        await revoke_safely(ctx.rt.events, revocation)
    return _result(steps, dry_run=False)


def _access_ended(steps: list[Step]) -> list[Revocation]:
    """The open connections the import cut, as the admin API's changes would: of users it
    disabled, deleted, turned a protocol off for, or changed the password of."""
    out: list[Revocation] = []
    for step in steps:
        row = step.row
        if step.change.kind != "user" or not isinstance(row, StoredUser):
            continue
        if step.change.action == "delete":
            out.append(Revocation("account deleted", user_id=row.id))
        elif step.change.action == "update":
            out += access_ended(row.id, step.values)
    return out


async def _check_passwords(
    ctx: Context, document: ConfigDocument, state: State, *, hash_new: bool
) -> Passwords:
    """Check plain passwords against stored hashes, and hash the ones that change.

    argon2 is slow on purpose, so this runs in worker threads before the write transaction
    opens (its lock is shared with every other writer).
    """
    passwords = Passwords()
    hasher = ctx.rt.passwords
    for user in document.users:
        if user.password is None:
            continue
        plain = user.password.get_secret_value()
        row = state.users.get(user.email)
        if row is not None:
            verdict = await asyncio.to_thread(hasher.verify, row.password_hash, plain)
            if verdict.ok:
                passwords.verified[user.email] = row.password_hash
                continue
        if hash_new:
            passwords.hashes[user.email] = await asyncio.to_thread(hasher.hash, plain)
    return passwords


def _result(steps: list[Step], *, dry_run: bool) -> ConfigImportResult:
    changes: list[ConfigChange] = [s.change for s in steps]
    count = {
        action: sum(1 for c in changes if c.action == action) for action in ("create", "update", "delete")
    }
    return ConfigImportResult(
        dry_run=dry_run,
        changes=changes,
        created=count["create"],
        updated=count["update"],
        deleted=count["delete"],
    )


async def _apply(tx: Tx, step: Step, now: datetime) -> None:
    """Write one step with the repository of its kind."""
    change, values = step.change, step.values
    kind, key = change.kind, change.key
    if change.action == "delete":
        await _delete(tx, step)
        return
    created = change.action == "create"
    stamps = {"created_at": now, "updated_at": now} if created else {"updated_at": now}
    if kind == "domain":
        if created:
            await domains.insert_domain(tx, cast(domains.NewDomain, {"name": key, **values, **stamps}))
        else:
            await domains.update_domain(tx, key, cast(domains.DomainChanges, values | stamps))
    elif kind == "relay":
        if created:
            await relays.insert_relay(tx, cast(relays.NewRelay, {"name": key, **values, **stamps}))
        else:
            await relays.update_relay(tx, key, cast(relays.RelayChanges, values | stamps))
    elif kind == "alternative":
        # Alternatives have no updated_at column.
        if created:
            row = {"name": key, **values, "created_at": now}
            await alternatives.insert_alternative(tx, cast(alternatives.NewAlternative, row))
        else:
            await store.update_alternative(tx, key, cast(store.AlternativeChanges, values))
    elif kind == "user":
        if created:
            row = {"email": key, "quota_bytes_used": 0, **values, **stamps}
            await users.insert_user(tx, cast(users.NewUser, row))
        else:
            await users.update_user(tx, key, cast(users.UserChanges, values | stamps))
    elif kind == "alias":
        if created:
            await aliases.insert_alias(tx, cast(aliases.NewAlias, {"address": key, **values, **stamps}))
        else:
            await aliases.update_alias(tx, key, cast(aliases.AliasChanges, values | stamps))
    else:
        user = await accounts.user_for_auth(tx, email=values["email"])
        assert user is not None, "the plan checked that the manager is a user"
        await managers.insert_manager(tx, values["domain"], user.id, now)


async def _delete(tx: Tx, step: Step) -> None:
    kind, key, row = step.change.kind, step.change.key, step.row
    assert row is not None
    if kind == "domain":
        await domains.delete_domain(tx, key)
    elif kind == "relay":
        await relays.delete_relay(tx, key)
    elif kind == "alternative":
        assert isinstance(row, alternatives.AlternativeRecord)
        await alternatives.delete_alternative(tx, row.domain, key)
    elif kind == "user":
        await users.delete_user(tx, key)
    elif kind == "alias":
        await aliases.delete_alias(tx, key)
    else:
        assert isinstance(row, StoredManager)
        await managers.delete_manager(tx, row.domain, row.user_id)
