"""Recipient resolution: what a RCPT address means, decided before the message is read.

An address resolves to local mailboxes (users), external addresses (alias destinations and
forwarding, relayed domains) or a refusal. Precedence, like Postfix ``virtual_alias_maps``
followed by the mailbox table:

1. The domain: a mail domain; an alternative domain (mapped to its primary domain); a
   relayed domain (accepted, passed to its relay); anything else is refused (not ours).
2. In a mail domain: the exact alias for the address, else the user with that address
   (an address is one or the other: the ``addresses`` table makes them exclusive).
3. With the recipient delimiter (``user+tag@``): the same two look-ups for ``user@``.
4. Wildcard aliases of the domain, the most specific first (longest fixed text, so
   ``sales-*@`` beats the catch-all ``*@``), matched against the full then the base address.
5. Otherwise: unknown (``550 5.1.1``).

Before all this, with an :class:`SrsKey`: a local part ``SRS0=...``/``SRS1=...`` at one of our
mail domains (or their alternatives) is an envelope sender our forwarding made (delivery/
srs.py), and mail to it (bounces) goes back to the address it encodes: the hash and the
timestamp are checked by :func:`srs.reverse`; a forged, expired or malformed one is refused
(``550 5.1.1``) and nothing else is tried (no alias, no wildcard). The decoded address is
resolved like a destination: ours → our mailboxes; a relayed domain → its relay; anything
else → an ``srs`` intent for the outbound queue.

Alias destinations and a user's forwarding destinations are resolved again, recursively:
local ones become mailboxes, external ones outbound intents. A visited set stops cycles (each
address is expanded once per resolution) and the depth is limited to :data:`MAX_DEPTH`, so a
loop neither hangs nor multiplies mail. A user with forwarding keeps a local copy only with
``forward_keep``. A disabled user is refused (``550 5.2.1``); a destination that fails inside
an expansion is skipped, and the address is refused only when nothing deliverable is left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from mailroom.delivery import srs
from mailroom.domain.names import normalize_address, normalize_domain
from mailroom.store import recipients as store
from mailroom.store.engine import Tx

if TYPE_CHECKING:
    from mailroom.runtime import Runtime

#: Expansion levels followed before giving up (alias of alias of ... / forward chains).
MAX_DEPTH = 20

Status = Literal["accepted", "unknown", "disabled", "loop", "not_local", "invalid", "over_quota", "bad_srs"]
Reason = Literal["alias", "forward", "relay", "srs"]

_REPLIES: dict[Status, str] = {
    "accepted": "250 2.1.5 <{a}>: recipient ok",
    "unknown": "550 5.1.1 <{a}>: recipient address rejected: user unknown",
    "disabled": "550 5.2.1 <{a}>: mailbox disabled",
    "loop": "550 5.4.6 <{a}>: alias or forwarding loop",
    "not_local": "554 5.7.1 <{a}>: relay access denied",
    "invalid": "501 5.1.3 <{a}>: bad recipient address syntax",
    "over_quota": "452 4.2.2 <{a}>: mailbox full",
    "bad_srs": "550 5.1.1 <{a}>: recipient address rejected: forged, expired or malformed SRS address",
}
#: When nothing is deliverable, the most telling failure found in the expansion answers.
_FAILURE_ORDER: tuple[Status, ...] = ("over_quota", "disabled", "loop", "bad_srs", "unknown", "not_local")
#: An SRS local part as we make and decode it: dot-atom characters, case kept (the hash is
#: base64), and longer than the 64 characters a mailbox name may have.
_SRS_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,512}$")


@dataclass(frozen=True, slots=True)
class SrsKey:
    """What decoding our SRS addresses needs: the server secret and the time now."""

    secret: bytes
    now: datetime

    @classmethod
    def of(cls, rt: Runtime) -> SrsKey:
        """The server secret's key, at the runtime clock's time now."""
        return cls(rt.settings.secret_key.get_secret_value().encode(), rt.clock.now())


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """A mailbox that gets a copy. ``tag`` is what followed the recipient delimiter."""

    user_id: int
    email: str
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class ExternalTarget:
    """An address mail goes on to: ``via`` is the local address whose rule sent it there."""

    address: str
    reason: Reason
    via: str
    relay: str | None = None  # smarthost of a relayed domain ('' = its MX)


@dataclass(slots=True)
class Resolution:
    """What one RCPT address resolved to; ``reply`` is the SMTP reply for RCPT."""

    address: str
    status: Status
    local: list[LocalTarget] = field(default_factory=list)
    external: list[ExternalTarget] = field(default_factory=list)
    #: A mailbox was left out because it is full (``quota_check``): resolved without the
    #: check it would be a target, so this resolution may not stand in for one made at DATA.
    held_back: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def reply(self) -> str:
        return _REPLIES[self.status].format(a=self.address)

    @property
    def code(self) -> int:
        return int(self.reply[:3])


@lru_cache(maxsize=1024)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def _specificity(pattern: str) -> tuple[int, str]:
    # More fixed characters first; ties broken by the pattern, so the choice is stable.
    return (-len(pattern.replace("*", "")), pattern)


def split_tag(local: str, delimiters: str) -> tuple[str, str | None]:
    """``alice+news`` → (``alice``, ``news``) for delimiters ``+``; each character is one."""
    if not delimiters:
        return local, None
    for i, ch in enumerate(local):
        if ch in delimiters and i > 0:
            return local[:i], local[i + 1 :]
    return local, None


def _srs_form(value: str) -> str | None:
    """``SRS0=HHHH=TT=Example.NET=Bob@Our.Example`` → local part as given, domain normalised."""
    local, at, domain = value.rpartition("@")
    if not at or not _SRS_LOCAL.match(local):
        return None
    try:
        return f"{local}@{normalize_domain(domain)}"
    except ValueError:
        return None


class _Walk:
    """One resolution: the visited set, the targets found and the failures met."""

    def __init__(self, tx: Tx, delimiters: str, quota_check: bool, srs_key: SrsKey | None = None) -> None:
        self.tx = tx
        self.delimiters = delimiters
        self.quota_check = quota_check
        self.srs_key = srs_key
        self.visited: set[str] = set()
        self.local: dict[int, LocalTarget] = {}
        self.external: dict[str, ExternalTarget] = {}
        self.failures: list[Status] = []
        self.full: set[int] = set()

    def fail(self, status: Status) -> None:
        self.failures.append(status)

    async def expand(self, address: str, depth: int, reason: Reason, via: str) -> None:
        if address in self.visited:
            self.fail("loop")
            return
        if depth > MAX_DEPTH:
            self.fail("loop")
            return
        self.visited.add(address)
        local, _, domain = address.rpartition("@")
        kind = await store.domain_kind(self.tx, domain)
        if kind == "alternative":
            primary = await store.primary_of(self.tx, domain)
            if primary is None:
                self.fail("unknown")
                return
            domain = primary
            address = f"{local}@{domain}"
            self.visited.add(address)
            kind = "domain"
        if kind == "relay":
            relay = await store.relay(self.tx, domain)
            smarthost = relay.smarthost if relay else ""
            self.external.setdefault(address, ExternalTarget(address, "relay", via or address, smarthost))
            return
        if kind != "domain":
            if depth == 0:
                self.fail("not_local")
            else:
                self.external.setdefault(address, ExternalTarget(address, reason, via))
            return
        if await self._mailbox_or_alias(address, None, depth):
            return
        base, tag = split_tag(local, self.delimiters)
        if tag is not None and await self._mailbox_or_alias(f"{base}@{domain}", tag, depth):
            return
        if await self._wildcard(local, base if tag is not None else None, domain, depth):
            return
        self.fail("unknown")

    async def srs_address(self, address: str, depth: int) -> bool:
        """Mail to an SRS address at one of our domains goes back to the address it encodes.

        ``address``: local part as received (the hash is case-sensitive), domain normalised.
        False when the domain is not one of our mail domains (then it is an ordinary address).
        """
        key = self.srs_key
        domain = address.rpartition("@")[2]
        if key is None or await store.domain_kind(self.tx, domain) not in ("domain", "alternative"):
            return False
        if depth > MAX_DEPTH:
            self.fail("loop")
            return True
        self.visited.add(address.lower())
        decoded = srs.reverse(address, key.secret, key.now)
        original = _srs_form(decoded) if decoded is not None else None
        if original is None:
            self.fail("bad_srs")
            return True
        local, _, domain = original.rpartition("@")
        kind = await store.domain_kind(self.tx, domain)
        if kind in ("domain", "alternative"):
            # SRS1 of ours wrapping an SRS0 of ours, or mail to a sender of ours: as local mail.
            if srs.is_srs(local):
                return await self.srs_address(original, depth + 1)
            try:
                await self.expand(normalize_address(original), depth + 1, "srs", address)
            except ValueError:
                self.fail("bad_srs")
            return True
        relay: str | None = None  # None: the global smarthost, like other remote mail
        if kind == "relay":
            route = await store.relay(self.tx, domain)
            relay = route.smarthost if route else ""
        self.external.setdefault(original, ExternalTarget(original, "srs", address, relay))
        return True

    def resolution(self, address: str) -> Resolution:
        if self.local or self.external:
            return Resolution(
                address, "accepted", list(self.local.values()), list(self.external.values()), bool(self.full)
            )
        status: Status = next((s for s in _FAILURE_ORDER if s in self.failures), "unknown")
        return Resolution(address, status)

    async def _mailbox_or_alias(self, address: str, tag: str | None, depth: int) -> bool:
        alias = await store.alias(self.tx, address)
        if alias is not None:
            await self._destinations(alias.destinations, depth, "alias", address)
            return True
        user = await store.user(self.tx, address)
        if user is None:
            return False
        if not user.enabled:
            self.fail("disabled")
            return True
        forwarding = bool(user.forward_enabled and user.forward_destinations)
        if not forwarding or user.forward_keep:
            if self.quota_check and _full(user):
                self.full.add(user.id)
                self.fail("over_quota")
            else:
                self.local.setdefault(user.id, LocalTarget(user.id, user.email, tag))
        if forwarding:
            await self._destinations(user.forward_destinations, depth, "forward", user.email)
        return True

    async def _wildcard(self, local: str, base: str | None, domain: str, depth: int) -> bool:
        candidates = await store.wildcard_aliases(self.tx, domain)
        if not candidates:
            return False
        candidates.sort(key=lambda alias: _specificity(alias.address.rpartition("@")[0]))
        for probe in (local, base):
            if probe is None:
                continue
            for alias in candidates:
                if _wildcard_regex(alias.address.rpartition("@")[0]).match(probe):
                    await self._destinations(alias.destinations, depth, "alias", f"{local}@{domain}")
                    return True
        return False

    async def _destinations(self, destinations: list[str], depth: int, reason: Reason, via: str) -> None:
        for destination in destinations:
            try:
                address = normalize_address(destination)
            except ValueError:
                self.fail("unknown")
                continue
            await self.expand(address, depth + 1, reason, via)


def _full(user: store.RecipientUser) -> bool:
    """Quota 0 means unlimited (as in Dovecot)."""
    quota = user.quota_bytes
    return quota > 0 and user.quota_bytes_used >= quota


def normalize_recipient(address: str) -> str | None:
    """The stored form of a RCPT address (``<>`` and spaces removed), or None if malformed."""
    value = address.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    try:
        return normalize_address(value)
    except ValueError:
        return None


async def resolve(
    tx: Tx,
    address: str,
    *,
    delimiters: str = "+",
    quota_check: bool = False,
    srs_key: SrsKey | None = None,
) -> Resolution:
    """Resolve one recipient address (see the module docstring for the rules).

    With ``quota_check`` (RCPT time), a mailbox that is already full counts as a temporary
    failure (``452 4.2.2``) unless something else is deliverable. With ``srs_key``, SRS
    addresses at our domains are decoded (bounces to forwarded mail); without, they are
    ordinary (unknown) addresses.
    """
    if srs_key is not None:
        value = address.strip()
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1]
        target = _srs_form(value) if srs.is_srs(value) else None
        if target is not None:
            walk = _Walk(tx, delimiters, quota_check, srs_key)
            if await walk.srs_address(target, 0):
                return walk.resolution(target)
    normalized = normalize_recipient(address)
    if normalized is None:
        return Resolution(address=address.strip().strip("<>"), status="invalid")
    walk = _Walk(tx, delimiters, quota_check, srs_key)
    await walk.expand(normalized, 0, "alias", "")
    return walk.resolution(normalized)
