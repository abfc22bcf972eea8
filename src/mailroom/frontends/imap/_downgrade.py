"""7-bit forms of raw UTF-8 header text for sessions that did not enable UTF8=ACCEPT (RFC 6855 §5).

Mail with UTF-8 in its header fields (RFC 6532) is stored as it arrived. A client that enabled
UTF8=ACCEPT gets it as it is; any other client gets the header text it reads in a form it can
parse: in ENVELOPE and BODYSTRUCTURE strings, and in the header fields of BODY[HEADER],
BODY[HEADER.FIELDS (...)], BODY[n.MIME] and RFC822.HEADER, non-ASCII text becomes RFC 2047
encoded-words (``=?utf-8?b?...?=``), non-ASCII domains their IDNA A-label (``xn--``). A
non-ASCII local part has no 7-bit form (RFC 6857 §3 turns such an address into a group); it
is written as an encoded-word too, so the client sees 7-bit text rather than bytes it cannot
read. Content-Type and Content-Disposition keep their syntax: a non-ASCII parameter value
takes RFC 2231's form (``name*=utf-8''...``). BODY[], RFC822 and BODY[TEXT] stay the stored
bytes, so that their sizes agree with RFC822.SIZE (IMAP literals may carry 8-bit octets).
"""

from __future__ import annotations

import base64
import re
from email.utils import getaddresses
from urllib.parse import quote

from mailroom.domain.mime.imap import ImapValue

#: Header fields holding address lists (their display names and domains are encoded apart).
_ADDRESS_FIELDS = frozenset(
    (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"resent-from", b"resent-to", b"resent-cc")
)
#: A field: its name, and its value with the folded continuation lines.
_FIELD = re.compile(rb"^([^\s:]+)[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.MULTILINE)
#: Bytes of text per encoded-word: 45 bytes are 60 characters of base64, a word of 72.
_WORD_BYTES = 45


def encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded-words (UTF-8, base64) when it is not ASCII, else itself."""
    if text.isascii():
        return text
    data = text.encode("utf-8", "surrogateescape")
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # never split a character
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start = end
    return " ".join(words)


def _domain(host: str) -> str:
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return encoded_words(host)


def value(item: ImapValue) -> ImapValue:
    """BODYSTRUCTURE data (or any) with every non-ASCII string as encoded-words."""
    if isinstance(item, str):
        return encoded_words(item)
    if isinstance(item, list):
        return [value(v) for v in item]
    if isinstance(item, tuple):
        return tuple(value(v) for v in item)
    return item


def envelope(items: list[ImapValue]) -> list[ImapValue]:
    """ENVELOPE data (domain/mime/imap.py's ``envelope``) in 7 bits: strings as encoded-words,
    in addresses the name and local part so and the host as IDNA."""
    out = [value(v) for v in items]
    for i in range(2, 8):  # from, sender, reply-to, to, cc, bcc
        addresses = items[i]
        if isinstance(addresses, list):
            out[i] = [_address(a) for a in addresses]
    return out


def _address(item: ImapValue) -> ImapValue:
    if not isinstance(item, list) or len(item) != 4:
        return value(item)
    name, adl, mailbox, host = item
    return [value(name), adl, value(mailbox), _domain(host) if isinstance(host, str) else host]


def _address_field(text: str) -> str:
    out = []
    for name, address in getaddresses([text]):
        local, at, host = address.rpartition("@")
        shown = f"{encoded_words(local)}@{_domain(host)}" if at else encoded_words(address)
        out.append(f"{encoded_words(name)} <{shown}>" if name else shown)
    return ", ".join(out)


#: A parameter of a Content-* field: ``; name="value"`` or ``; name=value``.
_PARAM = re.compile(r';(\s*)([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[^;\s]*)')


def _mime_field(text: str) -> str:
    """A Content-Type or Content-Disposition value with its non-ASCII parameter values in
    RFC 2231's form (``name*=utf-8''f%C3%BC.txt``), so that it still parses as one."""

    def param(match: re.Match[str]) -> str:
        given = match[3]
        if given.isascii():
            return match[0]
        raw = given[1:-1] if given.startswith('"') and given.endswith('"') else given
        quoted = quote(raw.encode("utf-8", "surrogateescape"), safe="")
        return f";{match[1]}{match[2]}*=utf-8''{quoted}"

    return encoded_words(_PARAM.sub(param, text))


def header(block: bytes) -> bytes:
    """A header block (or the fields of one) with each field holding 8-bit bytes rewritten in
    7-bit: its value as encoded-words (address fields address by address)."""
    if block.isascii():
        return block

    def field(match: re.Match[bytes]) -> bytes:
        name, raw = match[1], match[2]
        if raw.isascii():
            return match[0]
        text = re.sub(r"\r?\n[ \t]", " ", raw.decode("utf-8", "surrogateescape")).strip()
        lower = name.lower()
        if lower in _ADDRESS_FIELDS:
            encoded = _address_field(text)
        elif lower.startswith(b"content-"):
            encoded = _mime_field(text)
        else:
            encoded = encoded_words(text)
        return name + b": " + encoded.encode("ascii", "replace")

    return _FIELD.sub(field, block)
