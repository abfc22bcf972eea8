"""Sender Rewriting Scheme (SRS0/SRS1) for forwarded mail.

A forwarded copy leaves from our servers, so SPF at the next hop checks *our* addresses
against the envelope sender's domain: keeping ``bob@example.net`` fails SPF there. The
envelope sender of a forward becomes an address of the forwarding domain that encodes the
original one, and bounces to it can be traced back (and only to it: the hash is an HMAC under
the server secret, so nobody can make us relay bounces to arbitrary addresses)::

    bob@example.net  →  SRS0=HHHH=TT=example.net=bob@forwarder.example
    SRS0=HHHH=TT=example.net=bob@forwarder.example (forwarded again by other.example)
                     →  SRS1=GGGG=forwarder.example==HHHH=TT=example.net=bob@other.example

``HHHH``: the first four base64 characters of HMAC-SHA256(secret, timestamp|domain|local);
``TT``: the day number modulo 1024 in two base32 characters (addresses expire after
:data:`MAX_AGE_DAYS`). This follows the layout of libsrs2 / postsrsd so tools recognise it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
MAX_AGE_DAYS = 21
_TS_RANGE = 1024


def _timestamp(now: datetime) -> str:
    day = int(now.timestamp() // 86400) % _TS_RANGE
    return _B32[day >> 5] + _B32[day & 31]


def _hash(secret: bytes, *parts: str) -> str:
    mac = hmac.new(secret, "|".join(p.lower() for p in parts).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")[:4]


def _same_hash(given: str, expected: str) -> bool:
    """Compared without regard to case, as libsrs2 does: some MTAs lowercase addresses on the
    way, and the base64 hash keeps ~21 of its 24 bits that way. Bytes, so that any input
    (non-ASCII too) is just unequal."""
    return hmac.compare_digest(given.encode("utf-8", "replace").lower(), expected.encode("ascii").lower())


def is_srs(address: str) -> bool:
    return address[:5].upper() in ("SRS0=", "SRS1=")


def forward(address: str, forwarder_domain: str, secret: bytes, now: datetime) -> str:
    """The envelope sender for ``address``'s mail forwarded by ``forwarder_domain``.

    The null sender stays null (a bounce must not get a bounce address).
    """
    if not address:
        return ""
    local, _, domain = address.rpartition("@")
    if not local:
        return address
    upper = local[:5].upper()
    if upper == "SRS0=":
        # Already rewritten by someone else: wrap it (SRS1) instead of nesting SRS0s.
        rest = local[4:]  # "=HHHH=TT=domain=local"
        return f"SRS1={_hash(secret, domain, rest)}={domain}={rest}@{forwarder_domain}"
    if upper == "SRS1=":
        # SRS1=HHHH=first.example==... : keep the first forwarder, re-sign for ourselves.
        parts = local.split("=", 3)
        if len(parts) == 4:
            first, rest = parts[2], parts[3]
            return f"SRS1={_hash(secret, first, rest)}={first}={rest}@{forwarder_domain}"
    ts = _timestamp(now)
    return f"SRS0={_hash(secret, ts, domain, local)}={ts}={domain}={local}@{forwarder_domain}"


def reverse(address: str, secret: bytes, now: datetime) -> str | None:
    """The original address of an SRS0 address we made (None: not ours, forged or expired).

    SRS1 addresses reverse to the SRS0 address of the first forwarder.
    """
    local = address.rpartition("@")[0]
    upper = local[:5].upper()
    if upper == "SRS0=":
        parts = local.split("=", 4)
        if len(parts) != 5:
            return None
        _, given, ts, domain, orig_local = parts
        if not _same_hash(given, _hash(secret, ts, domain, orig_local)):
            return None
        if len(ts) != 2 or any(c not in _B32 for c in ts.upper()):
            return None
        then = (_B32.index(ts.upper()[0]) << 5) | _B32.index(ts.upper()[1])
        today = int(now.timestamp() // 86400) % _TS_RANGE
        if (today - then) % _TS_RANGE > MAX_AGE_DAYS:
            return None
        return f"{orig_local}@{domain}"
    if upper == "SRS1=":
        parts = local.split("=", 3)
        if len(parts) != 4 or not parts[3].startswith("="):
            return None
        _, given, first, rest = parts
        if not _same_hash(given, _hash(secret, first, rest)):
            return None
        return f"SRS0{rest}@{first}"
    return None
