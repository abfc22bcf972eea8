"""API schemas for relayed domains: domains whose mail mailroom accepts and passes on.

A relay's ``smarthost`` says where the mail goes: ``host``, ``host:port`` or ``[ipv6]:port``;
empty means "look up the domain's MX records and deliver there".
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated

import idna
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from mailroom.domain.names import DomainName

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")


def _port(text: str) -> int:
    if not _PORT.match(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _host(text: str) -> str:
    if not text:
        raise ValueError("the host name is empty")
    if _DOTTED_NUMBERS.match(text):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise ValueError(f"{text} is not a valid IPv4 address") from None
    try:
        name = idna.encode(text.rstrip("."), uts46=True, std3_rules=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"{text!r} is not a valid host name: {exc}") from None
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"{text!r} is not a valid host name")
    if name.rpartition(".")[2].isdigit():
        raise ValueError(f"{text!r} is neither a host name nor an IPv4 address")
    return name


def normalize_smarthost(value: str) -> str:
    """``Relay.Example:25`` → ``relay.example:25``; ``[2001:DB8::1]:25`` → ``[2001:db8::1]:25``.

    Host names become lowercase A-labels and IPv6 addresses their compressed form, so equal
    smarthosts are equal strings. Raises ``ValueError`` saying what is wrong.
    """
    text = value.strip()
    if not text:
        return ""
    if any(c.isspace() for c in text):
        raise ValueError("a smarthost cannot contain spaces")
    if text.startswith("["):
        inner, closed, rest = text[1:].partition("]")
        if not closed:
            raise ValueError("an IPv6 address in brackets needs its closing ]")
        try:
            host = f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise ValueError(
                f"[{inner}] is not an IPv6 address; write host names and IPv4 addresses without brackets"
            ) from None
        if not rest:
            return host
        if not rest.startswith(":"):
            raise ValueError("after [ipv6] only :port may follow")
        return f"{host}:{_port(rest[1:])}"
    if text.count(":") > 1:
        raise ValueError("write an IPv6 address in brackets, such as [2001:db8::1]:25")
    name, has_port, port = text.partition(":")
    host = _host(name)
    return f"{host}:{_port(port)}" if has_port else host


Smarthost = Annotated[
    str,
    Field(
        max_length=300,
        description="host, host:port or [ipv6]:port to pass the domain's mail to; empty: deliver by MX.",
        examples=["relay.example.net:25", "[2001:db8::25]:2525", ""],
    ),
    AfterValidator(normalize_smarthost),
]
Comment = Annotated[str, Field(max_length=1000)]


class RelayCreate(BaseModel):
    """A new relayed domain."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "partner.example", "smarthost": "mx.partner.example:25"}]},
    )

    name: DomainName
    smarthost: Smarthost = ""
    comment: Comment = ""


class RelayUpdate(BaseModel):
    """Fields to change; absent (or null) fields stay as they are. The name cannot change."""

    model_config = ConfigDict(extra="forbid")

    smarthost: Smarthost | None = None
    comment: Comment | None = None


class Relay(BaseModel):
    """A relayed domain as the API shows it."""

    name: str
    smarthost: str = Field(description="Where its mail goes; empty: delivered by MX.")
    comment: str
    created_at: datetime
    updated_at: datetime
