"""Secrets never reach a log line, whichever component logs it.

Credentials travel where loggers look: a browser's WebSocket or ``EventSource`` can only
send its session token in the URL (``/api/v1/events?token=ms_...``), which uvicorn logs
when it accepts the connection even with the access log off; aiosmtpd and the websockets
library log protocol lines and frames at debug level; an exception message may quote a
URL or a header. Instead of trusting every logger (ours and the libraries') never to do
that, every log record is scrubbed once, when it is made: :func:`install` wraps the
process's log-record factory, so every logger and every handler — uvicorn's, aiosmtpd's,
Python's last-resort handler — only ever sees the scrubbed record. :class:`RedactSecrets`
does the same as a handler filter, for logging configurations (``cli/serve.py``) that
should stay safe even if something replaces the record factory.

What is scrubbed (:func:`redact`):

* every secret mailroom issues (``<prefix>_<lookup id>_<random>``: API keys ``mr_``,
  session tokens ``ms_``, refresh tokens ``msr_``, invites ``mi_``), wherever it appears:
  the prefix and lookup id stay (they are not secret and say which key or session it was),
  the random part becomes ``[redacted]``;
* ``name=value`` and ``name='value'`` pairs whose name says credential (``token``, ``access_token``, ``key``,
  ``api_key``, ``password``, ``secret``, ``ticket``, ...), as in query strings and forms;
* ``Authorization`` / ``Proxy-Authorization`` header values (``Bearer``, ``Basic``, ...);
* JSON or dict fields named like a credential (``"password": "..."``);
* the password in a URL's user information (``redis://user:pw@host``);
* OAuth authorization codes in URLs (``?code=``) and JWTs (OpenID Connect tokens);
* the argument of SMTP ``AUTH PLAIN|LOGIN|...`` lines, and the undecodable AUTH answer
  aiosmtpd would otherwise log as it came.

The record's arguments are scrubbed one by one, so formatters that read them (uvicorn's
access formatter) keep working; a record whose secret only shows once formatted is turned
into its scrubbed text. Tracebacks and stack information are scrubbed too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["REDACTED", "RedactSecrets", "install", "redact", "scrub"]

REDACTED = "[redacted]"

# A value must not start with "%": a log message's own "token=%s" keeps its placeholder.
_VALUE = r"(?!%|\[redacted\])[^&\s\"'#;,)\]}]+"
_CREDENTIAL_NAME = re.compile(
    r"[\w-]*(?:token|secret|passw(?:or)?d|pwd|api_?key|apikey|ticket|signature)[\w-]*|key|auth|otp", re.I
)
#: Words one of which a text must contain (lowercased) for a named credential to be in it.
_CREDENTIAL_WORDS = ("token", "secret", "passw", "pwd", "key", "ticket", "signature", "auth", "otp")


def _named(m: re.Match[str]) -> str:
    """name=value: the value goes when the name says credential."""
    return f"{m[1]}={REDACTED}" if _CREDENTIAL_NAME.fullmatch(m[1]) else m[0]


def _named_quoted(m: re.Match[str]) -> str:
    """name='value': the value goes when the name says credential."""
    return f"{m[1]}={m[2]}{REDACTED}{m[2]}" if _CREDENTIAL_NAME.fullmatch(m[1]) else m[0]


def _quoted(m: re.Match[str]) -> str:
    """ "name": "value": the value goes when the name says credential."""
    if not _CREDENTIAL_NAME.fullmatch(m[2]) or m[5].startswith("%"):
        return m[0]
    return f"{m[1]}{m[2]}{m[1]}{m[3]}{m[4]}{REDACTED}{m[4]}"


def _authorization(m: re.Match[str]) -> str:
    if not m[4] or m[4].startswith(("%", "[redacted")):
        return m[0]
    return f"{m[1]}{m[2]}{m[3] or ''}{REDACTED}"


Replacement = str | Callable[[re.Match[str]], str]

# (needs, pattern, replacement): the pattern runs only on text that contains one of
# ``needs`` (lowercased), which keeps the common log line, with nothing of the kind, at a
# few substring tests. Every pattern starts matching only at a word's start or at a
# literal, so that a long line costs linear time.
_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str], Replacement]] = [
    # name=value (query strings, forms, key=value log fields).
    (_CREDENTIAL_WORDS, re.compile(rf"(?<![\w-])([\w-]+)=({_VALUE})"), _named),
    # name='value' (the repr of a dataclass or keyword arguments: Client(client_secret='...')).
    (
        _CREDENTIAL_WORDS,
        re.compile(r"(?<![\w-])([\w-]+)=([\"'])((?!%|\[redacted\])(?:\\.|(?!\2).)+)\2"),
        _named_quoted,
    ),
    # Issued secrets, prefix_lookupid_random (auth/tokens.py). No word boundary before the
    # prefix: "Bearer%20ms_..." must match too.
    (("_",), re.compile(r"([a-z][a-z0-9]{0,15})_([A-Za-z0-9]{8})_[A-Za-z0-9_-]{32,}"), rf"\1_\2_{REDACTED}"),
    # Authorization headers, as text, in dicts or in ASGI header tuples (b'authorization', b'...').
    (
        ("authorization",),
        re.compile(
            r"(?i)\b((?:proxy-)?authorization)([\"']?\s*[:=,]\s*(?:b(?=[\"']))?[\"']?)"
            r"((?:bearer|basic|token|digest|negotiate)\s+)?([^\s\"',;)\]}]*)"
        ),
        _authorization,
    ),
    # SMTP AUTH with an initial response (not the EHLO line that lists the mechanisms).
    (
        ("auth",),
        re.compile(
            r"(?i)(?<!250-)(?<!250 )\b(AUTH\s+"
            r"(?:PLAIN|LOGIN|XOAUTH2?|OAUTHBEARER|CRAM-MD5|DIGEST-MD5|NTLM|SCRAM-[A-Z0-9-]+)\s+)"
            r"(?!%|\[redacted\])[^\s\"'\\]+"
        ),
        rf"\1{REDACTED}",
    ),
    # Quoted fields named like a credential: "password": "...", 'token': '...'.
    (
        _CREDENTIAL_WORDS,
        re.compile(r"([\"'])([\w-]+)\1(\s*[:=]\s*)([\"'])((?:\\.|(?!\4).)*)\4"),
        _quoted,
    ),
    # OAuth authorization codes in URLs (the OpenID Connect callback's query).
    (("code=",), re.compile(r"([?&]code=)(?!%|\[redacted\])[^&\s\"'#]+"), rf"\1{REDACTED}"),
    # JWTs (OpenID Connect ID and access tokens), wherever they appear.
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), f"eyJ{REDACTED}"),
    # user:password@ in URLs.
    (("://",), re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
]

# Log calls of libraries whose arguments are credentials whatever they look like:
# (logger name, message template) -> positions of the arguments to hide.
_SECRET_ARGUMENTS: dict[tuple[str, str], frozenset[int]] = {
    # aiosmtpd logs an AUTH answer it cannot decode as base64 as it came: a password typed
    # into the wrong prompt.
    ("mail.log", "%r can't decode base64: %s"): frozenset({1}),
}


#: Anything any pattern needs; most log lines have none of it. (Substring tests on the
#: lowercased text: a case-insensitive regular expression of these costs ten times more.)
_HINTS = tuple(dict.fromkeys(n for needs, _, _ in _PATTERNS for n in needs))


def redact(text: str) -> str:
    """``text`` with every credential it shows replaced by ``[redacted]``."""
    lower = text.lower()
    for hint in _HINTS:
        if hint in lower:
            break
    else:
        return text
    for needs, pattern, replacement in _PATTERNS:
        if any(n in lower for n in needs):
            text = pattern.sub(replacement, text)
    return text


class _Redacted:
    """Stands in for a log argument whose text showed a secret; formats as the scrubbed text."""

    __slots__ = ("_repr", "_str")

    def __init__(self, value: object) -> None:
        self._str = redact(str(value))
        self._repr = redact(repr(value))

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


def _scrub_argument(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("latin-1")
        return value if redact(text) == text else _Redacted(value)
    try:
        if redact(repr(value)) == repr(value) and redact(str(value)) == str(value):
            return value
    except Exception:
        return "[unprintable]"
    return _Redacted(value)


def scrub(record: logging.LogRecord) -> None:
    """Remove credentials from ``record`` in place (idempotent).

    The common record shows nothing of the kind: it costs one formatting of its message
    and one search for the hints. Only a record that shows a credential has its arguments
    scrubbed one by one (keeping their number, for formatters that read them).
    """
    if getattr(record, "_mailroom_scrubbed", False):
        return
    record._mailroom_scrubbed = True
    args = record.args
    if isinstance(record.msg, str) and isinstance(args, tuple):
        hidden = _SECRET_ARGUMENTS.get((record.name, record.msg))
        if hidden is not None:
            record.args = args = tuple(REDACTED if i in hidden else a for i, a in enumerate(args))
    try:
        message = record.getMessage()
    except Exception:  # the handler would print the arguments raw in its error report
        record.msg = redact(f"{record.msg!s} {record.args!r}")
        record.args = None
    else:
        if redact(message) != message:
            if isinstance(args, tuple):
                record.args = tuple(_scrub_argument(a) for a in args)
            elif isinstance(args, Mapping):
                record.args = {k: _scrub_argument(v) for k, v in args.items()}
            record.msg = redact(record.msg) if isinstance(record.msg, str) else _scrub_argument(record.msg)
            try:
                scrubbed = record.getMessage()
            except Exception:
                scrubbed = message
            # A secret that only shows once formatted ("token=%s" % "abc"): the text alone.
            if redact(scrubbed) != scrubbed:
                record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactSecrets(logging.Filter):
    """A handler filter that scrubs every record passing through (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


def install() -> None:
    """Scrub every log record of this process when it is made (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_mailroom_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        scrub(record)
        return record

    factory._mailroom_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
