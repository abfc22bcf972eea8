"""Address lists (RFC 5322 §3.4) read leniently, groups kept: what ENVELOPE and JMAP's
asAddresses / asGroupedAddresses need. Total: any text gives a (possibly empty) result."""

from __future__ import annotations

from dataclasses import dataclass

_SPECIALS = ",:;@.<>"
_MAX_ITEMS = 10_000  # a hostile header with a million commas stops here


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One address as written: display name (None when absent, encoded words not decoded),
    source route, local part and domain (None when there is no '@'), and the comment that
    followed a bare addr-spec (RFC 8621 uses it as the name when there is no display name)."""

    name: str | None
    route: str | None
    local: str
    domain: str | None
    comment: str | None = None

    @property
    def email(self) -> str:
        return self.local if self.domain is None else f"{self.local}@{self.domain}"


@dataclass(frozen=True, slots=True)
class Group:
    """A group (`name: a, b;`) or, with `name` None, the addresses outside any group."""

    name: str | None
    mailboxes: tuple[Mailbox, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    """("q", quoted) ("c", comment) ("<", angle content) ("a", atom) or (special, special)."""
    out: list[tuple[str, str]] = []
    pos, size = 0, len(text)
    while pos < size and len(out) < _MAX_ITEMS * 4:
        char = text[pos]
        if char in " \t\r\n":
            pos += 1
        elif char == '"':
            buf: list[str] = []
            pos += 1
            while pos < size and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < size:
                    pos += 1
                buf.append(text[pos])
                pos += 1
            out.append(("q", "".join(buf)))
            pos += 1
        elif char == "(":
            depth, start = 1, pos + 1
            pos += 1
            while pos < size and depth:
                if text[pos] == "\\":
                    pos += 1
                elif text[pos] == "(":
                    depth += 1
                elif text[pos] == ")":
                    depth -= 1
                pos += 1
            out.append(("c", text[start : pos - 1 if depth == 0 else pos]))
        elif char == "<":
            end = text.find(">", pos + 1)
            end = size if end < 0 else end
            out.append(("<", text[pos + 1 : end]))
            pos = end + 1
        elif char in _SPECIALS:
            out.append((char, char))
            pos += 1
        else:
            start = pos
            while pos < size and text[pos] not in ' \t\r\n"(<' and text[pos] not in _SPECIALS:
                pos += 1
            out.append(("a", text[start:pos]))
    return out


def parse_address_list(text: str) -> list[Group]:
    """Read an address list into groups; ungrouped addresses are groups named None.

    Consecutive ungrouped mailboxes share one `Group(None, ...)`, as RFC 8621's
    GroupedAddresses form wants.
    """
    groups: list[Group] = []
    loose: list[Mailbox] = []
    group_name: str | None = None
    members: list[Mailbox] = []
    in_group = False
    current: list[tuple[str, str]] = []

    def finish_mailbox() -> None:
        mailbox = _mailbox(current)
        current.clear()
        if mailbox is not None:
            (members if in_group else loose).append(mailbox)

    def flush_loose() -> None:
        if loose:
            groups.append(Group(None, tuple(loose)))
            loose.clear()

    for kind, value in _tokens(text):
        if kind == ",":
            finish_mailbox()
        elif kind == ":" and not in_group and not any(k == "<" for k, _ in current):
            flush_loose()
            group_name = _phrase(current) or ""
            current.clear()
            in_group, members = True, []
        elif kind == ";" and in_group:
            finish_mailbox()
            groups.append(Group(group_name, tuple(members)))
            in_group, group_name = False, None
        else:
            current.append((kind, value))
        if len(loose) + len(members) > _MAX_ITEMS:
            break
    finish_mailbox()
    if in_group:  # an unterminated group still counts
        groups.append(Group(group_name, tuple(members)))
    flush_loose()
    return groups


def _phrase(tokens: list[tuple[str, str]]) -> str | None:
    words = [value for kind, value in tokens if kind in ("a", "q") or kind == "."]
    joined = ""
    for word in words:
        if word == "." or joined.endswith("."):
            joined += word
        else:
            joined = f"{joined} {word}" if joined else word
    return joined or None


def _mailbox(tokens: list[tuple[str, str]]) -> Mailbox | None:
    if not tokens:
        return None
    angle = next((i for i, (kind, _) in enumerate(tokens) if kind == "<"), None)
    if angle is not None:
        name = _phrase(tokens[:angle])
        route, local, domain = _addr_spec(tokens[angle][1])
        if not local and domain is None:
            return None if name is None else Mailbox(name, None, "", None)
        return Mailbox(name, route, local, domain)
    comments = [value for kind, value in tokens if kind == "c"]
    spec = "".join(f'"{value}"' if kind == "q" else value for kind, value in tokens if kind != "c")
    if not spec:
        return None
    _, local, domain = _addr_spec(spec)
    if not local and domain is None:
        return None
    return Mailbox(None, None, local, domain, comments[-1].strip() if comments else None)


def _addr_spec(text: str) -> tuple[str | None, str, str | None]:
    text = text.strip()
    route = None
    if text.startswith("@") and ":" in text:
        route, _, text = text.partition(":")
    at = text.rfind("@")
    if at < 0:
        return route, "".join(text.split()), None
    local = "".join(text[:at].split())
    if len(local) > 1 and local.startswith('"') and local.endswith('"') and '"' not in local[1:-1]:
        inner = local[1:-1]
        if inner and all(c.isalnum() or c in "!#$%&'*+-/=?^_`{|}~." for c in inner):
            local = inner
    return route, local, "".join(text[at + 1 :].split())
