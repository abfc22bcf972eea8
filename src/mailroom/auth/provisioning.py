"""Mailboxes for directory users: made on their first login, kept in step on every login.

After the directory vouched for a login (:mod:`mailroom.auth.directory`):

- no mailbox yet and ``ldap_provision`` on: one is made when the address's domain is an
  existing mail domain (mail domains stay in mailroom) with room under its ``max_users``;
  its password is never stored (``auth_source = "ldap"``, a hash no password matches);
- then, on every login, what the directory decides is brought up to date: the display name,
  the quota (capped at the domain's ``max_quota_bytes``), new aliases from the alias
  attribute (free addresses in existing mail domains, marked as the directory's), the
  removal of those aliases the directory made that it no longer lists (only those: an
  administrator's alias, or one an administrator changed, is never removed; each addition
  and removal is audited), and, when group mappings are configured, global administration
  and the domains the user manages.

The read comes first and a write transaction opens only when something changed, so an
unchanged user's login costs two small reads.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass

from mailroom.auth.directory import DirectoryEntry, normalise_dn
from mailroom.clock import Clock
from mailroom.domain.directory import DIRECTORY_SOURCE
from mailroom.domain.names import domain_of, normalize_address
from mailroom.domain.users import DEFAULT_QUOTA_BYTES
from mailroom.errors import Conflict
from mailroom.settings import Settings
from mailroom.store import addresses, audit, domains
from mailroom.store import directory as store
from mailroom.store.engine import Database, Tx

log = logging.getLogger("mailroom.auth.ldap")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Provisioning:
    create: bool
    admin_groups: frozenset[str]
    #: Normalised group DN → the mail domain its members manage.
    manager_groups: dict[str, str]
    #: An alias attribute is configured: the directory decides the aliases it made.
    manage_aliases: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Provisioning:
        return cls(
            create=settings.ldap_provision,
            admin_groups=frozenset(normalise_dn(dn) for dn in settings.ldap_admin_groups),
            manager_groups={
                normalise_dn(dn): domain.strip().lower()
                for dn, domain in settings.ldap_manager_groups.items()
            },
            manage_aliases=settings.ldap_alias_attribute is not None,
        )


@dataclass(frozen=True, slots=True)
class Changes:
    display_name: str | None = None
    quota_bytes: int | None = None
    global_admin: bool | None = None
    managed: frozenset[str] | None = None
    aliases: tuple[str, ...] = ()
    #: Aliases the directory made for the user that it no longer lists.
    removed_aliases: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return self != Changes()

    @property
    def roles(self) -> bool:
        return self.global_admin is not None or self.managed is not None


def _display_name(entry: DirectoryEntry) -> str | None:
    if entry.display_name is None:
        return None
    return _CONTROL.sub(" ", entry.display_name).strip()[:200]


def _quota(entry: DirectoryEntry, cap: int | None) -> int | None:
    if entry.quota_bytes is None:
        return None
    return entry.quota_bytes if cap is None else min(entry.quota_bytes, cap)


class Provisioner:
    def __init__(self, db: Database, clock: Clock, policy: Provisioning) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy

    async def apply(self, entry: DirectoryEntry) -> tuple[bool, bool]:
        """(the login has a directory mailbox now, its roles changed)."""
        email = entry.login
        async with self.db.read() as tx:
            current = await store.user(tx, email)
            domain = await store.mail_domain(tx, domain_of(email))
        if current is None:
            if not self.policy.create:
                return False, False
            if not await self._create(entry):
                return False, False
            async with self.db.read() as tx:
                current = await store.user(tx, email)
            if current is None:
                return False, False
        elif current.auth_source != DIRECTORY_SOURCE:
            return False, False  # a local user's password is checked locally, never here
        changes = await self._changes(entry, current, None if domain is None else domain.max_quota_bytes)
        if changes.any:
            async with self.db.write() as tx:
                now = self.clock.now()
                if (
                    changes.display_name is not None
                    or changes.quota_bytes is not None
                    or changes.global_admin is not None
                ):
                    await store.update_user(
                        tx,
                        current.id,
                        now=now,
                        display_name=changes.display_name,
                        quota_bytes=changes.quota_bytes,
                        global_admin=changes.global_admin,
                    )
                if changes.managed is not None:
                    await store.set_managed(tx, current.id, changes.managed, now)
                for alias in changes.aliases:
                    if await store.add_alias(tx, alias, domain_of(alias), email, now):
                        log.info("LDAP: alias %s of %s made from the directory", alias, email)
                        await self._audit(tx, entry, current.id, alias, "added")
                for alias in changes.removed_aliases:
                    if await store.remove_alias(tx, alias, email):
                        log.info(
                            "LDAP: alias %s of %s removed: the directory no longer lists it", alias, email
                        )
                        await self._audit(tx, entry, current.id, alias, "removed")
        return True, changes.roles

    async def _audit(self, tx: Tx, entry: DirectoryEntry, user_id: int, alias: str, what: str) -> None:
        """An audit entry for an alias the directory made or took back."""
        await audit.add(
            tx,
            {
                "at": self.clock.now(),
                "principal": f"ldap:{entry.dn}"[:320],
                "user_id": user_id,
                "key_id": None,
                "protocol": "ldap",
                "client_ip": None,
                "request_id": None,
                "method": "auth.ldap.provision",
                "object": "aliases",
                "target": alias,
                "domain": domain_of(alias),
                "params": {},
                "changes": {"alias": {what: alias, "destination": entry.login}},
            },
        )

    async def _create(self, entry: DirectoryEntry) -> bool:
        try:
            return await self._insert(entry)
        except Conflict:
            # A concurrent first login (another protocol, another worker) made it; or an
            # alias took the address meanwhile, which the caller's read then finds out.
            return True

    async def _insert(self, entry: DirectoryEntry) -> bool:
        email = entry.login
        name = domain_of(email)
        async with self.db.write() as tx:
            domain = await store.lock_mail_domain(tx, name)
            if domain is None:
                log.info("LDAP: no mailbox for %s: %s is not a mail domain here", email, name)
                return False
            holder = await addresses.kind_of(tx, email)
            if holder == "user":
                return True  # made by a concurrent first login; the caller reads which kind
            if holder is not None:
                log.info("LDAP: no mailbox for %s: the address is an alias", email)
                return False
            if domain.max_users is not None and await store.user_count(tx, name) >= domain.max_users:
                log.warning("LDAP: no mailbox for %s: %s has max_users users", email, name)
                return False
            quota = _quota(entry, domain.max_quota_bytes)
            if quota is None:
                quota = domain.max_quota_bytes if domain.max_quota_bytes is not None else DEFAULT_QUOTA_BYTES
            await store.create_user(
                tx,
                email=email,
                domain=name,
                display_name=_display_name(entry) or "",
                quota_bytes=quota,
                now=self.clock.now(),
            )
        log.info("LDAP: mailbox %s made for the directory entry %s", email, entry.dn)
        return True

    async def _changes(self, entry: DirectoryEntry, current: store.DirectoryUser, cap: int | None) -> Changes:
        display = _display_name(entry)
        quota = _quota(entry, cap)
        admin: bool | None = None
        if self.policy.admin_groups:
            admin = bool(entry.groups & self.policy.admin_groups)
        managed: frozenset[str] | None = None
        if self.policy.manager_groups:
            managed = frozenset(d for dn, d in self.policy.manager_groups.items() if dn in entry.groups)
        new_aliases: list[str] = []
        removed: tuple[str, ...] = ()
        listed: set[str] = set()
        for value in entry.aliases:
            with contextlib.suppress(ValueError):
                listed.add(normalize_address(value))
        if self.policy.manage_aliases:
            async with self.db.read() as tx:
                removed = tuple(
                    a for a in await store.directory_aliases(tx, current.email) if a not in listed
                )
        if entry.aliases:
            async with self.db.read() as tx:
                for value in entry.aliases:
                    try:
                        alias = normalize_address(value)
                    except ValueError:
                        continue
                    if alias == current.email or alias in new_aliases:
                        continue
                    if await addresses.kind_of(tx, alias) is not None:
                        continue  # held already (by this user's alias, or someone else)
                    if await domains.name_kind(tx, domain_of(alias)) != "domain":
                        continue
                    new_aliases.append(alias)
        return Changes(
            display_name=display if display is not None and display != current.display_name else None,
            quota_bytes=quota if quota is not None and quota != current.quota_bytes else None,
            global_admin=admin if admin is not None and admin != current.global_admin else None,
            managed=managed if managed is not None and managed != current.managed else None,
            aliases=tuple(new_aliases),
            removed_aliases=removed,
        )
