"""The look-up tables an MTA in front of mailroom asks (Postfix socketmap, docs/internal-api.md).

Each table answers a key with a value or nothing (:data:`None`), from the same rules mailroom
applies when it receives mail itself (delivery/resolve.py), so Postfix and mailroom's own
listeners never disagree about who exists:

- ``domain`` (``virtual_mailbox_domains``): mail domains and their alternative domains.
- ``mailbox`` (``virtual_mailbox_maps``): enabled mailboxes, in any spelling their owner's
  address has (case, dots of signed-up names, a ``+tag``).
- ``alias`` (``virtual_alias_maps``): what an address that is not simply a mailbox becomes:
  aliases, wildcards and catch-alls, alternative domains, forwarding; the final addresses
  after every expansion, comma-separated (Postfix expands again and stops at itself).
- ``transport`` (``transport_maps``): relayed domains → ``smtp:[host]:port`` (``smtp:`` for
  MX delivery), our domains → the LMTP next hop.
- ``sender_login`` (``smtpd_sender_login_maps``): the logins that may use an address as
  sender: its mailbox, the mailboxes an alias of it delivers to, and the users granted it as
  a send-as identity (the same rule as delivery/senders.py, seen from the address).
- ``recipient`` (``recipient_canonical_maps``): the original address an SRS address of ours
  encodes, so bounces to forwarded mail go back to the sender.

Keys arrive as Postfix writes them; anything that is not a well-formed domain or address is
simply not found. Postfix tries ``user+tag@domain`` and then ``user@domain`` only for some
table types, so the tables do that fallback themselves.
"""

from __future__ import annotations

from typing import Literal

from mailroom.delivery import srs
from mailroom.delivery.resolve import SrsKey, resolve, split_tag
from mailroom.domain.names import normalize_address, normalize_domain
from mailroom.store import identities
from mailroom.store import recipients as store
from mailroom.store.engine import Tx

#: The tables :func:`lookup` knows (``sender_access`` is answered by the service: it counts).
TableName = Literal["domain", "mailbox", "alias", "transport", "sender_login", "recipient"]
TABLES: tuple[TableName, ...] = ("domain", "mailbox", "alias", "transport", "sender_login", "recipient")


def _domain(key: str) -> str | None:
    try:
        return normalize_domain(key)
    except ValueError:
        return None


def _address(key: str) -> str | None:
    if "@" not in key:
        return None
    try:
        return normalize_address(key)
    except ValueError:
        return None


def lmtp_nexthop(host: str, port: int) -> str:
    """Postfix's form of mailroom's LMTP listener: ``lmtp:inet:127.0.0.1:2424``."""
    if ":" in host:
        host = f"[{host}]"
    return f"lmtp:inet:{host}:{port}"


def smtp_nexthop(smarthost: str) -> str:
    """A relay's smarthost as a Postfix transport: ``host:587`` → ``smtp:[host]:587``.

    Brackets stop Postfix from looking up MX records of the smarthost (it is the host to
    connect to, as in mailroom's own relay); no smarthost means MX delivery (``smtp:``).
    """
    if not smarthost:
        return "smtp:"
    if smarthost.startswith("["):
        return f"smtp:{smarthost}"  # already [host]:port (IPv6)
    host, sep, port = smarthost.rpartition(":")
    if not sep or not port.isdigit():
        host, port = smarthost, "25"
    return f"smtp:[{host}]:{port}"


class Tables:
    """The tables over one read transaction; ``delimiters`` as for delivery
    (``recipient_delimiter``), ``lmtp`` the next hop for our own domains."""

    def __init__(self, tx: Tx, *, delimiters: str, lmtp: str, srs_key: SrsKey) -> None:
        self.tx = tx
        self.delimiters = delimiters
        self.lmtp = lmtp
        self.srs_key = srs_key

    async def lookup(self, table: TableName, key: str) -> str | None:
        key = key.strip()
        if table == "domain":
            return await self.domain(key)
        if table == "mailbox":
            return await self.mailbox(key)
        if table == "alias":
            return await self.alias(key)
        if table == "transport":
            return await self.transport(key)
        if table == "sender_login":
            return await self.sender_login(key)
        return await self.recipient(key)

    async def domain(self, key: str) -> str | None:
        name = _domain(key)
        if name is None:
            return None
        kind = await store.domain_kind(self.tx, name)
        return name if kind in ("domain", "alternative") else None

    async def _mailbox_row(self, address: str) -> store.RecipientUser | None:
        row = await store.user(self.tx, address)
        if row is None:
            local, _, domain = address.rpartition("@")
            base, tag = split_tag(local, self.delimiters)
            if tag is not None:
                row = await store.user(self.tx, f"{base}@{domain}")
        return row

    async def mailbox(self, key: str) -> str | None:
        address = _address(key)
        if address is None:
            return None
        row = await self._mailbox_row(address)
        if row is None or not row.enabled:
            return None
        return row.email

    async def user_id(self, address: str) -> int | None:
        """The id of the enabled mailbox ``address`` names (in any spelling)."""
        row = await self._mailbox_row(address)
        return row.id if row is not None and row.enabled else None

    async def alias(self, key: str) -> str | None:
        address = _address(key)
        if address is None:
            return None
        resolution = await resolve(self.tx, address, delimiters=self.delimiters)
        if not resolution.accepted:
            return None
        final: list[str] = []
        for target in resolution.local:
            if target.tag is None:
                final.append(target.email)
            else:
                local, _, domain = target.email.rpartition("@")
                final.append(f"{local}{self.delimiters[:1]}{target.tag}@{domain}")
        for external in resolution.external:
            if external.reason == "relay" and external.address == address:
                return None  # an address of a relayed domain: the transport table's business
            final.append(external.address)
        if final == [address] or (len(final) == 1 and await self.mailbox(address) == final[0]):
            return None  # simply a mailbox: virtual_mailbox_maps answers it
        return ",".join(dict.fromkeys(final))

    async def transport(self, key: str) -> str | None:
        name = _domain(key.rpartition("@")[2])
        if name is None:
            return None
        kind = await store.domain_kind(self.tx, name)
        if kind in ("domain", "alternative"):
            return self.lmtp
        if kind == "relay":
            relay = await store.relay(self.tx, name)
            return smtp_nexthop(relay.smarthost) if relay else None
        return None

    async def sender_login(self, key: str) -> str | None:
        address = _address(key)
        if address is None:
            return None
        logins: list[str] = []
        owner = await self._mailbox_row(address)
        if owner is not None:
            if owner.enabled:
                logins.append(owner.email)
        else:
            resolution = await resolve(self.tx, address, delimiters=self.delimiters)
            logins.extend(target.email for target in resolution.local)
        logins.extend(await identities.holders(self.tx, address))
        return ",".join(dict.fromkeys(logins)) or None

    async def recipient(self, key: str) -> str | None:
        """The address an SRS address of ours stands for; an SRS1 address whose first
        forwarder is us too is unwrapped all the way (canonical maps apply once)."""
        value: str | None = key
        for _ in range(2):  # SRS1 of ours → SRS0 of ours → the original
            if value is None or not srs.is_srs(value):
                break
            if await self.domain(value.rpartition("@")[2]) is None:
                break  # not one of our domains: not ours to decode
            value = srs.reverse(value, self.srs_key.secret, self.srs_key.now)
        return value if value is not None and value != key else None
