"""How an import turns a configuration document into steps: pure functions, no I/O.

:func:`check_document` looks at the document alone (duplicates, secrets that cannot be
stored, rules between an entry's fields). :func:`plan` compares it with the database
(:class:`State`) and returns the steps that make the database match, after checking the
state the import would leave behind (references, limits, cross-kind name clashes). Both
report every problem at once, located by its path in the request (``document.users.3.email``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from mailroom.auth.passwords import scheme_of
from mailroom.domain.aliases import alias_problems
from mailroom.domain.config import (
    KINDS,
    MASK,
    ConfigChange,
    ConfigDocument,
    ConfigDomain,
    ConfigUser,
    FieldChange,
    Kind,
)
from mailroom.domain.directory import DIRECTORY_SOURCE, NO_PASSWORD
from mailroom.domain.dkim import key_bits
from mailroom.domain.dns import dkim_public_from_private
from mailroom.domain.names import domain_of
from mailroom.domain.users import DEFAULT_QUOTA_BYTES, rule_errors
from mailroom.errors import FieldError
from mailroom.store.aliases import AliasRecord
from mailroom.store.alternatives import AlternativeRecord
from mailroom.store.config import StoredDomain, StoredManager, StoredUser
from mailroom.store.relays import RelayRecord

#: What the database holds of one object of any kind.
Stored = StoredDomain | AlternativeRecord | RelayRecord | StoredUser | AliasRecord | StoredManager

DOMAIN_FIELDS = ("comment", "max_users", "max_aliases", "max_quota_bytes", "signup_enabled")
ALTERNATIVE_FIELDS = ("domain", "comment")
RELAY_FIELDS = ("smarthost", "comment")
ALIAS_FIELDS = ("destinations", "wildcard", "comment")
USER_FIELDS = tuple(n for n in ConfigUser.model_fields if n not in ("email", "password", "password_hash"))

#: The document's list holding each kind.
LISTS: dict[Kind, str] = {
    "domain": "domains",
    "alternative": "alternatives",
    "relay": "relays",
    "user": "users",
    "alias": "aliases",
    "manager": "managers",
}
_NAME_LABEL: dict[Kind, str] = {
    "domain": "a domain",
    "alternative": "an alternative domain",
    "relay": "a relayed domain",
}
_ADDRESS_LABEL: dict[Kind, str] = {"user": "a user", "alias": "an alias"}
_DKIM_BITS = (1024, 4096)
#: Kinds whose keys share one namespace: domain names, and addresses.
_SHARED_KEYS: tuple[tuple[tuple[Kind, ...], dict[Kind, str]], ...] = (
    (("domain", "alternative", "relay"), _NAME_LABEL),
    (("user", "alias"), _ADDRESS_LABEL),
)


@dataclass
class State:
    """The database as the import sees it: every row of every kind, by key."""

    domains: dict[str, StoredDomain] = field(default_factory=dict)
    alternatives: dict[str, AlternativeRecord] = field(default_factory=dict)
    relays: dict[str, RelayRecord] = field(default_factory=dict)
    users: dict[str, StoredUser] = field(default_factory=dict)
    aliases: dict[str, AliasRecord] = field(default_factory=dict)
    managers: dict[str, StoredManager] = field(default_factory=dict)

    def of(self, kind: Kind) -> Mapping[str, Stored]:
        rows: Mapping[str, Stored] = getattr(self, LISTS[kind])
        return rows


@dataclass
class Step:
    """One change: what the diff shows and the column values the store writes."""

    change: ConfigChange
    values: dict[str, Any] = field(default_factory=dict)
    row: Stored | None = None


def manager_key(domain: str, email: str) -> str:
    return f"{domain}/{email}"


#: The field that names an entry (a manager is named by both of its fields).
KEY_FIELDS: dict[Kind, str] = {
    "domain": "name",
    "alternative": "name",
    "relay": "name",
    "user": "email",
    "alias": "address",
    "manager": "email",
}


def entry_key(kind: Kind, entry: Any) -> str:
    if kind == "manager":
        return manager_key(entry.domain, entry.email)
    return str(getattr(entry, KEY_FIELDS[kind]))


def entries(document: ConfigDocument, kind: Kind) -> list[Any]:
    items: list[Any] = getattr(document, LISTS[kind])
    return items


def _loc(kind: Kind, index: int, name: str) -> str:
    return f"document.{LISTS[kind]}.{index}.{name}"


# -- the document alone ----------------------------------------------------------------


def check_document(document: ConfigDocument) -> list[FieldError]:
    """Problems visible in the document alone; empty when there are none."""
    errors: list[FieldError] = []
    for kind in KINDS:
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries(document, kind)):
            key = entry_key(kind, entry)
            if key in seen:
                message = f"{key} is listed twice (first at index {seen[key]})"
                errors.append(FieldError(_loc(kind, i, KEY_FIELDS[kind]), message, "duplicate"))
            else:
                seen[key] = i
    errors += _cross_kind_duplicates(document)
    for i, domain in enumerate(document.domains):
        if domain.dkim_private_key is not None:
            problem = _dkim_problem(domain.dkim_private_key)
            if problem:
                errors.append(FieldError(_loc("domain", i, "dkim_private_key"), problem))
    for i, user in enumerate(document.users):
        if user.auth_source == DIRECTORY_SOURCE and (
            user.password is not None or user.password_hash is not None
        ):
            message = "the LDAP directory keeps this user's password: give neither password nor password_hash"
            field = "password" if user.password is not None else "password_hash"
            errors.append(FieldError(_loc("user", i, field), message))
            continue
        if user.password is not None and user.password_hash is not None:
            errors.append(FieldError(_loc("user", i, "password"), "give password or password_hash, not both"))
        if user.password_hash is not None:
            scheme = scheme_of(user.password_hash)
            if scheme == "PLAIN":
                message = "a plaintext scheme is never stored: give it as password to have it hashed"
                errors.append(FieldError(_loc("user", i, "password_hash"), message))
            elif scheme == "UNKNOWN":
                message = "not a password hash mailroom can verify (argon2, SHA-crypt, bcrypt, SSHA, PBKDF2)"
                errors.append(FieldError(_loc("user", i, "password_hash"), message))
    for i, alias in enumerate(document.aliases):
        problems = alias_problems(alias.address, wildcard=alias.wildcard, destinations=alias.destinations)
        errors += [FieldError(_loc("alias", i, f), message) for f, message in problems.items()]
    return errors


def _cross_kind_duplicates(document: ConfigDocument) -> list[FieldError]:
    """A name is one domain, alternative or relay; an address one user or alias."""
    errors: list[FieldError] = []
    for kinds, labels in _SHARED_KEYS:
        owners: dict[str, Kind] = {}
        for kind in kinds:
            for i, entry in enumerate(entries(document, kind)):
                key = entry_key(kind, entry)
                other = owners.setdefault(key, kind)
                if other != kind:
                    message = f"{key} is also listed as {labels[other]}"
                    errors.append(FieldError(_loc(kind, i, KEY_FIELDS[kind]), message, "duplicate"))
    return errors


def _dkim_problem(pem: str) -> str | None:
    try:
        bits = key_bits(dkim_public_from_private(pem))
    except ValueError as exc:
        return str(exc)
    low, high = _DKIM_BITS
    if not low <= bits <= high:
        return f"DKIM keys have {low}-{high} bits, this one has {bits}"
    return None


# -- against the database ----------------------------------------------------------------


@dataclass
class Passwords:
    """What the import knows about plain passwords, worked out outside the transaction.

    ``verified`` maps an address to the stored hash its plain password was checked against
    (a password that matches needs no change); ``hashes`` holds the new hashes to store.
    A dry run has no hashes: it never writes one.
    """

    verified: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)


class StaleVerification(Exception):
    """A stored hash changed between checking a password and the write transaction."""


def plan(
    document: ConfigDocument,
    state: State,
    *,
    prune: bool,
    default_selector: str,
    passwords: Passwords,
    dry_run: bool,
) -> tuple[list[Step], list[FieldError]]:
    """The steps that make ``state`` match ``document``, or the problems that prevent it."""
    target = _Target(document, state, prune, default_selector)
    errors = target.check()
    if errors:
        return [], errors
    steps: list[Step] = []
    if prune:
        for kind in reversed(KINDS):
            wanted = {entry_key(kind, e) for e in entries(document, kind)}
            for key, row in sorted(state.of(kind).items()):
                if key not in wanted:
                    steps.append(Step(ConfigChange(action="delete", kind=kind, key=key), row=row))
    for kind in KINDS:
        for entry in sorted(entries(document, kind), key=lambda e: entry_key(kind, e)):
            step = _step(kind, entry, target, passwords, dry_run)
            if step is not None:
                steps.append(step)
    return steps, []


def _step(kind: Kind, entry: Any, target: _Target, passwords: Passwords, dry_run: bool) -> Step | None:
    key = entry_key(kind, entry)
    state = target.state
    row = state.of(kind).get(key)
    if kind == "manager":
        if row is not None:
            return None
        values = {"domain": entry.domain, "email": entry.email}
        return Step(_created(kind, key, values), values=values)
    if kind == "domain":
        domain = state.domains.get(key)
        values = _changed(entry, domain, DOMAIN_FIELDS)
        values |= target.dkim_columns(entry, domain)
    elif kind == "alternative":
        values = _changed(entry, row, ALTERNATIVE_FIELDS)
    elif kind == "relay":
        values = _changed(entry, row, RELAY_FIELDS)
    elif kind == "alias":
        values = _changed(entry, row, ALIAS_FIELDS)
        if row is None:
            values["domain"] = domain_of(key)
    else:
        user = state.users.get(key)
        values = _changed(entry, user, USER_FIELDS)
        values["quota_bytes"] = target.user_quota(entry, user)
        if user is not None and values["quota_bytes"] == user.quota_bytes:
            del values["quota_bytes"]
        if _source(entry, user) == DIRECTORY_SOURCE:
            if user is None or user.password_hash != NO_PASSWORD:
                values["password_hash"] = NO_PASSWORD  # the directory checks it; none is kept
        else:
            values |= _password_columns(entry, user, passwords, dry_run)
        if user is None:
            values["domain"] = domain_of(key)
    if row is None:
        return Step(_created(kind, key, values), values=values)
    if not values:
        return None
    change = ConfigChange(action="update", kind=kind, key=key, changes=_field_changes(values, row))
    return Step(change, values=values, row=row)


def _changed(entry: BaseModel, row: Stored | None, names: Iterable[str]) -> dict[str, Any]:
    """A new object's every field; for an existing one the fields the entry sets that differ
    (the entry's fields and the stored record's attributes share their names)."""
    values: dict[str, Any] = {}
    for name in names:
        value = getattr(entry, name)
        if row is None or (name in entry.model_fields_set and value != getattr(row, name)):
            values[name] = value
    return values


def _source(entry: ConfigUser, row: StoredUser | None) -> str:
    """The user's ``auth_source`` after the import (a stored user keeps theirs unless the
    entry sets it)."""
    if row is None or "auth_source" in entry.model_fields_set:
        return entry.auth_source
    return row.auth_source


def _password_columns(
    entry: ConfigUser, row: StoredUser | None, passwords: Passwords, dry_run: bool
) -> dict[str, Any]:
    if entry.password_hash is not None:
        if row is None or row.password_hash != entry.password_hash:
            return {"password_hash": entry.password_hash}
        return {}
    if entry.password is None:
        return {}
    if row is not None:
        checked = passwords.verified.get(entry.email)
        if checked is not None and checked == row.password_hash:
            return {}
    new = passwords.hashes.get(entry.email)
    if new is None:
        if not dry_run:
            raise StaleVerification(entry.email)
        new = MASK
    return {"password_hash": new}


_SECRET_COLUMNS = frozenset({"password_hash", "dkim_private_key"})
_HIDDEN_COLUMNS = frozenset({"domain", "dkim_public_key"})


def _shown(name: str, value: Any) -> Any:
    if name in _SECRET_COLUMNS and value is not None:
        return MASK
    return value


def _created(kind: Kind, key: str, values: Mapping[str, Any]) -> ConfigChange:
    """Every field of a new object; a manager's key already says all there is."""
    changes = {
        n: FieldChange(old=None, new=_shown(n, v))
        for n, v in values.items()
        if kind != "manager" and (n not in _HIDDEN_COLUMNS or (n == "domain" and kind == "alternative"))
    }
    return ConfigChange(action="create", kind=kind, key=key, changes=changes)


def _field_changes(values: Mapping[str, Any], row: Stored) -> dict[str, FieldChange]:
    out = {}
    for name, value in values.items():
        if name == "dkim_public_key":
            continue
        out[name] = FieldChange(old=_shown(name, getattr(row, name, None)), new=_shown(name, value))
    return out


_LIMIT_FIELDS = ("max_users", "max_aliases", "max_quota_bytes")


@dataclass(frozen=True, slots=True)
class _Limits:
    """A domain's limits (None: no limit)."""

    max_users: int | None = None
    max_aliases: int | None = None
    max_quota_bytes: int | None = None


class _Target:
    """The state an import would leave: the document over the database (or instead of it,
    with ``prune``). Checked as a whole before anything is written."""

    def __init__(self, document: ConfigDocument, state: State, prune: bool, default_selector: str) -> None:
        self.document = document
        self.state = state
        self.prune = prune
        self.default_selector = default_selector
        self.doc: dict[Kind, dict[str, tuple[int, Any]]] = {
            kind: {entry_key(kind, e): (i, e) for i, e in enumerate(entries(document, kind))}
            for kind in KINDS
        }

    def keys(self, kind: Kind) -> set[str]:
        kept = set() if self.prune else set(self.state.of(kind))
        return kept | set(self.doc[kind])

    def limits(self, name: str) -> _Limits:
        """The domain's limits after the import (it must be a target domain)."""
        row = self.state.domains.get(name)
        stored = _Limits() if row is None else _Limits(row.max_users, row.max_aliases, row.max_quota_bytes)
        if name not in self.doc["domain"]:
            return stored
        entry: ConfigDomain = self.doc["domain"][name][1]
        set_ = [f for f in _LIMIT_FIELDS if row is None or f in entry.model_fields_set]
        return dataclasses.replace(stored, **{f: getattr(entry, f) for f in set_})

    def user_quota(self, entry: ConfigUser, row: StoredUser | None) -> int:
        if entry.quota_bytes is not None:
            return entry.quota_bytes
        if row is not None:
            return row.quota_bytes
        cap = self.limits(domain_of(entry.email)).max_quota_bytes
        return cap if cap is not None else DEFAULT_QUOTA_BYTES

    def dkim_columns(self, entry: ConfigDomain, row: StoredDomain | None) -> dict[str, Any]:
        has_key = row is not None and row.dkim_selector is not None
        if entry.dkim_private_key is not None:
            selector = entry.dkim_selector or (row.dkim_selector if has_key and row else None)
            selector = selector or self.default_selector
            if (
                has_key
                and row
                and row.dkim_private_key == entry.dkim_private_key
                and row.dkim_selector == selector
            ):
                return {}
            return {
                "dkim_selector": selector,
                "dkim_private_key": entry.dkim_private_key,
                "dkim_public_key": dkim_public_from_private(entry.dkim_private_key),
            }
        if row is None or "dkim_selector" not in entry.model_fields_set or not has_key:
            # A key is created only from its private half; without a key a selector means nothing.
            return {}
        if entry.dkim_selector is None:
            if self.prune:
                return {"dkim_selector": None, "dkim_private_key": None, "dkim_public_key": None}
            return {}
        if entry.dkim_selector != row.dkim_selector:
            return {"dkim_selector": entry.dkim_selector}
        return {}

    # -- checks ------------------------------------------------------------------------

    def check(self) -> list[FieldError]:
        errors = self._name_clashes()
        errors += self._references()
        if not errors:
            errors += self._limits_and_rules()
        return errors

    def _name_clashes(self) -> list[FieldError]:
        """A name the document gives one kind must not stay another kind in the database."""
        errors: list[FieldError] = []
        hint = "" if self.prune else " (import with prune to replace it)"
        for kinds, labels in _SHARED_KEYS:
            for kind in kinds:
                for key, (i, _entry) in self.doc[kind].items():
                    for other in kinds:
                        if other == kind or key in self.doc[other]:
                            continue  # the same list, or a duplicate check_document reports
                        if key in self.keys(other):
                            message = f"{key} is already {labels[other]}{hint}"
                            errors.append(FieldError(_loc(kind, i, KEY_FIELDS[kind]), message, "conflict"))
        return errors

    def _missing_domain(self, name: str) -> str:
        if name in self.keys("alternative"):
            return f"{name} is an alternative name of another domain, not a domain"
        if name in self.keys("relay"):
            return f"{name} is relayed to another server: it has no users or aliases"
        where = "in the document" if self.prune else "in the document or the database"
        return f"there is no domain {name} {where}"

    def _references(self) -> list[FieldError]:
        errors: list[FieldError] = []
        domains = self.keys("domain")
        users = self.keys("user")

        def refer(kind: Kind, i: int, name: str, domain: str) -> None:
            if domain not in domains:
                errors.append(FieldError(_loc(kind, i, name), self._missing_domain(domain), "reference"))

        for i, alt in self.doc["alternative"].values():
            refer("alternative", i, "domain", alt.domain)
        for kind in ("user", "alias"):
            for key, (i, _entry) in self.doc[kind].items():
                refer(kind, i, KEY_FIELDS[kind], domain_of(key))
        for i, mgr in self.doc["manager"].values():
            refer("manager", i, "domain", mgr.domain)
            if mgr.email not in users:
                where = "in the document" if self.prune else "in the document or the database"
                message = f"there is no user {mgr.email} {where}"
                errors.append(FieldError(_loc("manager", i, "email"), message, "reference"))
        return errors

    def _limits_and_rules(self) -> list[FieldError]:
        errors: list[FieldError] = []
        users = self._target_users()
        for email, (i, entry) in self.doc["user"].items():
            row = self.state.users.get(email)
            merged = (dataclasses.asdict(row) if row is not None else {}) | {
                f: getattr(entry, f) for f in USER_FIELDS if row is None or f in entry.model_fields_set
            }
            errors += rule_errors(email, merged, f"document.users.{i}.")
            needs_password = row is None or row.auth_source == DIRECTORY_SOURCE
            if (
                needs_password
                and _source(entry, row) != DIRECTORY_SOURCE
                and entry.password is None
                and entry.password_hash is None
            ):
                message = (
                    "a new user needs password or password_hash (export with password hashes to copy them)"
                    if row is None
                    else "a directory user made local needs password or password_hash"
                )
                errors.append(FieldError(f"document.users.{i}.password", message, "missing"))
        per_domain_users = Counter(domain_of(e) for e in users)
        per_domain_aliases = Counter(domain_of(a) for a in self.keys("alias"))
        for name in sorted(self.keys("domain")):
            limits = self.limits(name)
            in_doc = self.doc["domain"].get(name)
            counted: tuple[tuple[str, int | None, Counter[str], Kind], ...] = (
                ("max_users", limits.max_users, per_domain_users, "user"),
                ("max_aliases", limits.max_aliases, per_domain_aliases, "alias"),
            )
            for limit, cap, counts, kind in counted:
                used = counts[name]
                if cap is not None and used > cap:
                    message = f"{name} would have {used} {LISTS[kind]} (max {cap})"
                    loc = self._domain_loc(in_doc, name, kind, limit)
                    errors.append(FieldError(loc, message, "limit_exceeded"))
            cap = limits.max_quota_bytes
            if cap is None:
                continue
            for email, quota in sorted(users.items()):
                if domain_of(email) == name and quota > cap:
                    message = f"a quota of {quota} bytes is more than {name} allows a mailbox ({cap} bytes)"
                    loc = (
                        f"document.users.{self.doc['user'][email][0]}.quota_bytes"
                        if email in self.doc["user"]
                        else self._domain_loc(in_doc, name, "user", "max_quota_bytes")
                    )
                    errors.append(FieldError(loc, message, "limit_exceeded"))
        return errors

    def _domain_loc(self, in_doc: tuple[int, Any] | None, name: str, kind: Kind, limit: str) -> str:
        if in_doc is not None:
            return _loc("domain", in_doc[0], limit)
        # The domain is not in the document, so the document's entries break its limit.
        mine = [i for key, (i, _e) in self.doc[kind].items() if domain_of(key) == name]
        return _loc(kind, min(mine), KEY_FIELDS[kind]) if mine else "document"

    def _target_users(self) -> dict[str, int]:
        """Every user after the import, with their quota."""
        out: dict[str, int] = {}
        if not self.prune:
            out |= {email: row.quota_bytes for email, row in self.state.users.items()}
        for email, (_i, entry) in self.doc["user"].items():
            out[email] = self.user_quota(entry, self.state.users.get(email))
        return out
