"""mail.dovecot.*: accounts for operators who keep Dovecot for the mailboxes (dict proxy).

Dovecot's ``passdb`` and ``userdb`` of driver ``dict`` ask mailroom's dict-proxy listener
(frontends/dovecot) for keys under ``shared/``; its ``quota_clone`` plugin writes each
user's usage under ``priv/quota/``. These internal methods answer them:

- ``lookup``: ``shared/passdb/<user>`` (or ``shared/passdb/<service>/<user>`` with
  ``password_key = passdb/%s/%u``, so IMAP and POP3 logins honour ``enable_imap`` and
  ``enable_pop``) → ``{"password": "{SCHEME}hash"}``, which Dovecot checks itself;
  ``{"nopassword": "y"}`` instead when ``dovecot_nopassword`` says a proxy in front (nginx
  with auth_http) already checked the password. ``shared/userdb/<user>`` → ``home`` from
  ``dovecot_home`` and ``quota_rule`` from the mailbox's quota.
- ``iterate``: ``shared/userdb/`` → every enabled mailbox (``doveadm user -A``, ``-u '*'``).
- ``commit``: ``priv/quota/storage`` of a user → that mailbox's ``quota_bytes_used``.

Values are JSON objects, Dovecot's default ``value_format``. A user whose hash Dovecot
cannot check (passlib's PBKDF2 formats) is not found by passdb: such an account logs in
through mailroom (its password is upgraded to argon2id there) before Dovecot can check it.
Nor is a user with a second factor (docs/auth.md): the account password must not open IMAP
or POP3 for them, and their app passwords are checked by mailroom, so they reach Dovecot
through nginx's auth_http (with ``dovecot_nopassword``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field

from mailroom.auth.passwords import scheme_of
from mailroom.registry import Context, Internal
from mailroom.services.mail._api import api
from mailroom.store import accounts, identity

log = logging.getLogger("mailroom.dovecot")

Key = Annotated[str, Field(max_length=2048)]
#: Schemes whose hashes Dovecot's own password schemes can check.
_DOVECOT_SCHEMES = frozenset(
    (
        "ARGON2ID",
        "ARGON2I",
        "SHA512-CRYPT",
        "SHA256-CRYPT",
        "MD5-CRYPT",
        "BLF-CRYPT",
        "SSHA512",
        "SSHA256",
        "SSHA",
        "PBKDF2",
    )
)
#: Whether a Dovecot service may serve a mailbox.
_SERVICE_FLAGS: dict[str, Callable[[accounts.DovecotUser], bool]] = {
    "imap": lambda user: user.enable_imap,
    "pop3": lambda user: user.enable_pop,
}
PASSDB = "shared/passdb/"
USERDB = "shared/userdb/"
QUOTA_STORAGE = "priv/quota/storage"


class DictValue(BaseModel):
    """A dict look-up's answer: ``found`` with its ``value``."""

    found: bool
    value: str = ""


class DictEntry(BaseModel):
    key: str
    value: str


class QuotaChange(BaseModel):
    """One ``SET`` of a committed transaction."""

    model_config = ConfigDict(extra="forbid")

    key: Key
    value: Annotated[str, Field(max_length=64)]


def dovecot_password(stored: str) -> str | None:
    """A stored hash in Dovecot's ``{SCHEME}`` form, or None when Dovecot cannot check it."""
    scheme = scheme_of(stored)
    if scheme not in _DOVECOT_SCHEMES:
        return None
    return stored if stored.startswith("{") else f"{{{scheme}}}{stored}"


def _userdb(ctx: Context, user: accounts.DovecotUser) -> dict[str, str]:
    local, _, domain = user.email.rpartition("@")
    fields = {"home": ctx.rt.settings.dovecot_home.replace("%d", domain).replace("%n", local)}
    quota = user.quota_bytes
    if quota > 0:
        fields["quota_rule"] = f"*:bytes={quota}"
    return fields


def _json(fields: dict[str, str]) -> str:
    return orjson.dumps(fields).decode()


@api.method("mail.dovecot.lookup", access=Internal())
async def lookup(ctx: Context, key: Key) -> DictValue:
    """Answer a dict look-up of Dovecot's passdb or userdb (see the module docstring)."""
    if key.startswith(PASSDB):
        service, _, user = key[len(PASSDB) :].rpartition("/")
        table = "passdb"
    elif key.startswith(USERDB):
        service, user, table = "", key[len(USERDB) :], "userdb"
    else:
        return DictValue(found=False)
    async with ctx.rt.db.read() as tx:
        row = await accounts.dovecot_user(tx, user.strip().lower())
    if row is None or not row.enabled:
        return DictValue(found=False)
    if table == "userdb":
        return DictValue(found=True, value=_json(_userdb(ctx, row)))
    flag = _SERVICE_FLAGS.get(service.lower())
    if flag is not None and not flag(row):
        return DictValue(found=False)
    if ctx.rt.settings.dovecot_nopassword:
        return DictValue(found=True, value=_json({"nopassword": "y"}))
    async with ctx.rt.db.read() as tx:
        two_factor = await identity.totp_enabled(tx, row.id)
    if two_factor:
        # Dovecot would accept the account password, which a second factor forbids on mail
        # protocols; such users log in with app passwords, which nginx's auth_http checks.
        log.info("passdb: %s has a second factor: not for Dovecot's own password check", row.email)
        return DictValue(found=False)
    password = dovecot_password(row.password_hash)
    if password is None:
        log.warning("passdb: the password hash of %s is not in a scheme Dovecot can check", row.email)
        return DictValue(found=False)
    return DictValue(found=True, value=_json({"password": password}))


@api.method("mail.dovecot.iterate", access=Internal())
async def iterate(
    ctx: Context, path: Key, after: Key = "", limit: Annotated[int, Field(ge=1, le=10_000)] = 1000
) -> list[DictEntry]:
    """The next ``limit`` userdb entries under ``path`` after the key ``after`` (user iteration)."""
    if not USERDB.startswith(path) and not path.startswith(USERDB):
        return []
    start = after[len(USERDB) :] if after.startswith(USERDB) else ""
    async with ctx.rt.db.read() as tx:
        rows = await accounts.dovecot_users(tx, after=start, limit=limit)
    return [DictEntry(key=USERDB + str(row.email), value=_json(_userdb(ctx, row))) for row in rows]


@api.method("mail.dovecot.commit", access=Internal(), mutating=True)
async def commit(
    ctx: Context,
    user: Key,
    changes: Annotated[list[QuotaChange], Field(max_length=100)],
) -> bool:
    """Apply a committed dict transaction of ``user``: the storage ``quota_clone`` counted.

    Other keys are accepted and ignored (mailroom keeps no other per-user dict state); False
    when the user is unknown.
    """
    used = [c for c in changes if c.key == QUOTA_STORAGE]
    if not used:
        return True
    try:
        value = max(0, int(used[-1].value))
    except ValueError:
        return True  # not a number: nothing to record
    async with ctx.rt.db.write() as tx:
        return await accounts.set_quota_used(tx, user.strip().lower(), value)
