"""Who may send as whom: the one sender rule of every way a user sends mail.

The envelope sender (MAIL FROM) and every address of the header ``From`` and ``Sender``
must each be an address the authenticated user may send as:

- their own address in any spelling the resolver takes for their mailbox: case, IDNA, an
  alternative domain of theirs, a tag after the recipient delimiter (``alice+news@``) and,
  for a signed-up account, the dots of its name (``john.smith@`` is ``johnsmith@``);
- an alias (an exact one, not a wildcard) that lists them among its destinations, in any of
  those spellings;
- a send-as identity granted to them (``admin.identities.*``: a shared address, an external
  address of theirs).

Anything else is refused with :class:`~mailroom.errors.SenderNotAllowed` (SMTP ``553 5.7.1``,
REST 403, the RPC protocols' error for ``sender_not_allowed``). A user with ``allow_spoofing``
(only global administrators grant it) may use any address; the null sender belongs to
nobody (users do not send bounces); a disabled account sends nothing. A ``From`` or
``Sender`` that cannot be read unambiguously (the stdlib's two address parsers disagree, or
it names no mailbox) is refused too: what the rule checked must be what the reader sees.

:func:`check_may_send` is the entry point. ``delivery.outbound.submit`` (the one way a
user's mail leaves) calls it for every message, so every path that sends through it
(submission, ``POST /emails``, drafts sent later, the RPC protocols) applies the rule; the
submission listener also calls it at MAIL FROM to refuse early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import errors as email_errors
from email.policy import SMTP as SMTP_POLICY
from email.utils import getaddresses
from typing import Literal

from mailroom.delivery.resolve import normalize_recipient, split_tag
from mailroom.delivery.signing import split_head
from mailroom.domain.names import normalize_address
from mailroom.errors import SenderNotAllowed
from mailroom.runtime import Runtime
from mailroom.store import identities as identity_store
from mailroom.store import outbound as outbound_store
from mailroom.store import recipients as recipient_store
from mailroom.store.engine import Tx
from mailroom.store.outbound import SenderProfile

HeaderField = Literal["from", "sender"]

_SENDER_LINE = re.compile(rb"^(from|sender)[ \t]*:(.*)$", re.IGNORECASE | re.DOTALL)
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_LINE = re.compile(rb"\r?\n")
_ADDR = r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)"
#: ``local@domain`` or ``Plain Name <local@domain>`` (no quotes, comments, groups or commas):
#: what almost every From is, read the same by both stdlib parsers (a test holds them to it)
#: at a fraction of their cost, on every message a user sends.
_SIMPLE_MAILBOX = re.compile(rf"[ \t]*(?:[A-Za-z0-9 \t_'-]*<{_ADDR}>|{_ADDR})[ \t]*")


@dataclass(frozen=True, slots=True)
class HeaderSender:
    """One ``From`` or ``Sender`` line: its addresses (normalised), or None when unreadable."""

    field: HeaderField
    addresses: tuple[str, ...] | None


def _read_addresses(value: str) -> tuple[str, ...] | None:
    """Every address either stdlib parser finds in a header value; None when they disagree
    about its shape, when it names no mailbox or when an address is not one we can store."""
    simple = _SIMPLE_MAILBOX.fullmatch(value)
    if simple is not None:
        try:
            return (normalize_address(simple.group(1) or simple.group(2)),)
        except ValueError:
            pass  # the parsers say why (or find nothing either)
    return parsed_addresses(value)


def parsed_addresses(value: str) -> tuple[str, ...] | None:
    """:func:`_read_addresses` the long way, by both stdlib parsers."""
    try:
        header = SMTP_POLICY.header_factory("from", value)
        if any(isinstance(d, email_errors.InvalidHeaderDefect) for d in header.defects):
            return None
        found = [a.addr_spec for a in header.addresses]
        found += [addr for _, addr in getaddresses([value])]
    except Exception:  # the header parser has failed on odd input before
        return None
    if not found:
        return None
    out: list[str] = []
    for address in dict.fromkeys(found):
        try:
            out.append(normalize_address(address))
        except ValueError:
            return None
    return tuple(dict.fromkeys(out))


def header_senders(raw: bytes) -> list[HeaderSender]:
    """The message's ``From`` and ``Sender`` lines, each with its addresses.

    Read from the unfolded header block line by line rather than by the stdlib's message
    parser, so that a line it would skip (``From : x``, allowed by RFC 5322's obsolete
    syntax and read by some clients) is checked as well.
    """
    head, _ = split_head(raw)
    out: list[HeaderSender] = []
    for line in _LINE.split(_FOLD.sub(b"", head)):
        match = _SENDER_LINE.match(line)
        if match is None:
            continue
        field: HeaderField = "from" if match.group(1).lower() == b"from" else "sender"
        value = match.group(2).decode("utf-8", "replace").strip()
        out.append(HeaderSender(field, _read_addresses(value)))
    return out


def aligned_domain(raw: bytes) -> str | None:
    """The one domain of the message's ``From`` (one line, readable, every address in that
    domain): the only domain its DKIM signature may name. None otherwise."""
    lines = [h for h in header_senders(raw) if h.field == "from"]
    if len(lines) != 1 or not lines[0].addresses:
        return None
    domains = {a.rpartition("@")[2] for a in lines[0].addresses}
    return domains.pop() if len(domains) == 1 else None


class SenderRule:
    """The rule for one user inside one read transaction; each address is decided once."""

    def __init__(self, tx: Tx, user: SenderProfile, delimiters: str) -> None:
        self.tx = tx
        self.user_id = user.id
        self.email = user.email.lower()
        self.spoofing = bool(user.allow_spoofing)
        self.delimiters = delimiters
        self._decided: dict[str, bool] = {}

    async def allows(self, address: str) -> bool:
        """May the user send as ``address`` (any form; the null sender never)?"""
        normalized = normalize_recipient(address) if address else None
        if normalized is None:
            return False
        if self.spoofing:
            return True
        decided = self._decided.get(normalized)
        if decided is None:
            decided = self._decided[normalized] = await self._decide(normalized)
        return decided

    async def _decide(self, address: str) -> bool:
        spellings = await self._spellings(address)
        for spelling in spellings:
            if spelling == self.email:
                return True
            # An alias first, then a mailbox: the resolver's order (delivery/resolve.py).
            alias = await recipient_store.alias(self.tx, spelling)
            if alias is not None:
                if await self._lists_user(alias.destinations):
                    return True
                continue  # an alias for others
            mailbox = await recipient_store.user(self.tx, spelling)
            if mailbox is not None and mailbox.id == self.user_id:
                return True
        return await identity_store.granted(self.tx, self.user_id, spellings)

    async def _spellings(self, address: str) -> list[str]:
        """``address``, its primary-domain form when its domain is an alternative, and for
        our domains the same without a recipient-delimiter tag."""
        local, _, domain = address.rpartition("@")
        kind = await recipient_store.domain_kind(self.tx, domain)
        forms = [address]
        if kind == "alternative":
            primary = await recipient_store.primary_of(self.tx, domain)
            if primary:
                forms.append(f"{local}@{primary}")
        if kind in ("domain", "alternative"):
            base, tag = split_tag(local, self.delimiters)
            if tag is not None:
                forms += [f"{base}@{form.rpartition('@')[2]}" for form in list(forms)]
        return list(dict.fromkeys(forms))

    async def _lists_user(self, destinations: list[str]) -> bool:
        for destination in destinations:
            try:
                address = normalize_address(str(destination))
            except ValueError:
                continue
            if address == self.email:
                return True
            local, _, domain = address.rpartition("@")
            if await recipient_store.domain_kind(self.tx, domain) == "alternative":
                primary = await recipient_store.primary_of(self.tx, domain)
                address = f"{local}@{primary}" if primary else address
            mailbox = await recipient_store.user(self.tx, address)
            if mailbox is not None and mailbox.id == self.user_id:
                return True
        return False


_HEADER_NAMES: dict[HeaderField, str] = {"from": "From", "sender": "Sender"}


async def check_may_send(
    rt: Runtime, user_id: int, *, mail_from: str | None = None, raw: bytes | None = None
) -> None:
    """Refuse (:class:`SenderNotAllowed`) unless ``user_id`` may send with envelope sender
    ``mail_from`` ('' is the null sender; None: not checked) a message ``raw`` whose ``From``
    and ``Sender`` (when ``raw`` is given) name only addresses they may send as.

    Every sending path calls this before anything is stored or queued (see the module
    docstring); it only reads.
    """
    async with rt.db.read() as tx:
        user = await outbound_store.sender_profile(tx, user_id)
        if user is None or not user.enabled:
            raise SenderNotAllowed("the account is disabled")
        rule = SenderRule(tx, user, rt.settings.recipient_delimiter)
        if mail_from is not None and not await rule.allows(mail_from):
            raise SenderNotAllowed(
                f"<{_printable(mail_from)}>: sender address rejected: not owned by user {rule.email}",
                field="mail_from",
                address=_printable(mail_from),
            )
        if raw is None:
            return
        for header in header_senders(raw):
            name = _HEADER_NAMES[header.field]
            if header.addresses is None:
                raise SenderNotAllowed(
                    f"{name}: header rejected: it does not read as one or more addresses", field=header.field
                )
            for address in header.addresses:
                if not await rule.allows(address):
                    raise SenderNotAllowed(
                        f"{name}: <{address}>: sender address rejected: not owned by user {rule.email}",
                        field=header.field,
                        address=address,
                    )


def _printable(value: str) -> str:
    """An address as it may appear in a reply: one line, bounded."""
    return "".join(c if c.isprintable() else "?" for c in value)[:320]
