"""Accounts, ids and states as JMAP spells them.

- An account is a mailbox: ``accountId`` is ``u<user id>``; a caller sees exactly one, their
  own (API keys act as their owner). Any other id is ``accountNotFound``.
- Object ids are a one-letter prefix and the row id (``M12`` a Mailbox, ``T7`` a Thread,
  ``e42`` an Email...): short, URL-safe, and what the prefix says makes a mix-up fail.
- Every type's state is the account's modseq (store/changelog.py), as a string.
"""

from __future__ import annotations

from mailroom.domain.numbers import INT32_MAX
from mailroom.registry import Context
from mailroom.services.jmap._errors import MethodError
from mailroom.store import changelog
from mailroom.store.engine import Tx

ACCOUNT_PREFIX = "u"


def account_id(user_id: int) -> str:
    return f"{ACCOUNT_PREFIX}{user_id}"


def account_of(ctx: Context, given: str) -> int:
    """The user id behind ``accountId``, if it is the caller's; else ``accountNotFound``."""
    user_id = ctx.principal.user_id
    if user_id is None or given != account_id(user_id):
        raise MethodError("accountNotFound", f"no account {given}")
    return user_id


def encode(prefix: str, row_id: int) -> str:
    return f"{prefix}{row_id}"


def decode(prefix: str, value: str) -> int | None:
    """The row id of ``value`` if it is ``prefix`` + a row id; None otherwise (not found)."""
    if not value.startswith(prefix):
        return None
    digits = value[len(prefix) :]
    if not digits.isascii() or not digits.isdigit() or digits.startswith("0"):
        return None
    n = int(digits)
    return n if n <= INT32_MAX else None


async def state(tx: Tx, user_id: int) -> str:
    """The account's state string (one for every type)."""
    return str((await changelog.state(tx, user_id)).modseq)


def parse_state(value: str) -> int | None:
    """A state string back to its modseq; None for a string we never handed out."""
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value)


async def check_if_in_state(tx: Tx, user_id: int, if_in_state: str | None) -> str:
    """The current state, or ``stateMismatch`` if the client named another one (RFC 8620 §5.3)."""
    current = await state(tx, user_id)
    if if_in_state is not None and if_in_state != current:
        raise MethodError("stateMismatch", f"the state is {current}, not {if_in_state}")
    return current


async def changes_since(
    tx: Tx, user_id: int, kind: changelog.Kind, since_state: str, max_changes: int | None, default_max: int
) -> changelog.Changes:
    """The change log read for a /changes method; a state never handed out (or from before
    the log) is ``cannotCalculateChanges``."""
    since = parse_state(since_state)
    if since is None:
        raise MethodError("cannotCalculateChanges", f"{since_state} is not a state of this account")
    if max_changes is not None and max_changes < 1:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    limit = min(max_changes or default_max, default_max)
    current = await changelog.state(tx, user_id)
    if since > current.modseq:
        raise MethodError("cannotCalculateChanges", f"{since_state} is not a state of this account")
    return await changelog.changes(
        tx, user_id, changelog.ChangesQuery(kind=kind, since=since, max_changes=limit)
    )


#: The id prefixes of the object types (docs/jmap.md).
MAILBOX_PREFIX = "M"
THREAD_PREFIX = "T"
EMAIL_PREFIX = "e"
IDENTITY_PREFIX = "I"
