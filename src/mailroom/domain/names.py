"""Domain names and mail addresses: validation and the one normal form we store.

Domains are stored as lowercase IDNA A-labels (``bücher.example`` → ``xn--bcher-kva.example``)
so that lookups from the MTA, which sees A-labels on the wire, match without conversion.
Local parts are lowercased dot-atoms (RFC 5322 ``atext``); quoted local parts are refused:
no MTA we serve needs them and they are a classic source of ambiguity.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

import idna
from pydantic import AfterValidator, BeforeValidator, Field

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ATEXT = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@lru_cache(maxsize=8192)
def normalize_domain(value: str) -> str:
    """Lowercase A-label form of a domain name; raises ``ValueError`` with a clear reason."""
    name = value.strip().rstrip(".")
    if not name:
        raise ValueError("a domain name is required")
    if any(c.isspace() for c in name):
        raise ValueError("a domain name cannot contain spaces")
    try:
        name = idna.encode(name, uts46=True, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"not a valid domain name: {exc}") from None
    name = name.lower()
    if len(name) > 253:
        raise ValueError("a domain name is at most 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError("a domain name needs at least two labels (example.org)")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"invalid label {label!r} in domain name")
    if labels[-1].isdigit():
        raise ValueError("the top-level label cannot be numeric")
    return name


def normalize_localpart(value: str, *, wildcard: bool = False) -> str:
    local = value.strip().lower()
    if not local:
        raise ValueError("the local part (before @) is empty")
    if len(local) > 64:
        raise ValueError("the local part is at most 64 characters")
    if wildcard and "*" in local:
        probe = local.replace("*", "x")
        if not _ATEXT.match(probe):
            raise ValueError("invalid characters in the local part")
        return local
    if not _ATEXT.match(local):
        raise ValueError(
            "invalid local part: use letters, digits and !#$%&'*+/=?^_`{|}~.- without leading, "
            "trailing or double dots"
        )
    return local


def split_address(value: str) -> tuple[str, str]:
    if not isinstance(value, str) or value.count("@") != 1:
        raise ValueError("an address is local-part@domain")
    local, _, domain = value.strip().partition("@")
    return local, domain


@lru_cache(maxsize=8192)
def normalize_address(value: str) -> str:
    """``Local.Part@Bücher.Example`` → ``local.part@xn--bcher-kva.example``."""
    local, domain = split_address(value)
    return f"{normalize_localpart(local)}@{normalize_domain(domain)}"


def normalize_alias_address(value: str) -> str:
    """Like an address, but the local part may hold ``*`` wildcards (``*@example.org``)."""
    local, domain = split_address(value)
    return f"{normalize_localpart(local, wildcard=True)}@{normalize_domain(domain)}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


# What the schema publishes (``pattern``) is the ASCII form the server answers with; the
# validators also accept the Unicode form (IDN, converted to A-labels), any case, surrounding
# spaces and a trailing dot (so a domain name publishes 253 characters at most, the limit of
# its normal form, and takes 255). The patterns are published, never enforced by pydantic:
# the validators are the rule (docs/api.md, "What the schema says").
_LDH = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN_PATTERN = rf"^({_LDH}\.)+[A-Za-z]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?$"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
LOCAL_PATTERN = rf"{_ATOM}{{1,16}}(\.{_ATOM}{{1,15}}){{0,3}}"  # at most 64 characters
ADDRESS_PATTERN = f"^{LOCAL_PATTERN}@{DOMAIN_PATTERN[1:]}"
ALIAS_PATTERN = ADDRESS_PATTERN.replace("~-]", "~*-]")


DomainName = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=1,
        max_length=255,
        examples=["example.org"],
        json_schema_extra={"pattern": DOMAIN_PATTERN, "maxLength": 253},
    ),
    AfterValidator(normalize_domain),
]
EmailAddress = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=3,
        max_length=320,
        examples=["alice@example.org"],
        json_schema_extra={"pattern": ADDRESS_PATTERN},
    ),
    AfterValidator(normalize_address),
]
AliasAddress = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=3,
        max_length=320,
        examples=["sales@example.org", "*@example.org"],
        json_schema_extra={"pattern": ALIAS_PATTERN},
    ),
    AfterValidator(normalize_alias_address),
]
