"""Sign-up user names: the allowed spelling, the canonical form that decides uniqueness.

A user name is 2-32 characters of ``[a-zA-Z0-9_.]``; dots may not lead, trail or repeat.
Uniqueness ignores dots and case, the way Gmail does: ``John.Smith`` and ``johnsmith`` are
one account. The canonical form (lowercase, dots removed) is what the store indexes; the
spelling the person chose, lowercased, becomes the mailbox address.
"""

from __future__ import annotations

import re

USERNAME_MIN = 2
USERNAME_MAX = 32
_USERNAME = re.compile(r"^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)*$")

#: Names nobody may sign up with, compared in canonical form (``post.master`` is refused too).
#: Role addresses (RFC 2142) and names that suggest the operator.
RESERVED = frozenset(
    {
        "abuse",
        "admin",
        "administrator",
        "billing",
        "daemon",
        "ftp",
        "help",
        "hostmaster",
        "info",
        "mailer_daemon",
        "mailerdaemon",
        "mailroom",
        "marketing",
        "news",
        "noc",
        "noreply",
        "no_reply",
        "nobody",
        "postmaster",
        "root",
        "sales",
        "security",
        "ssladmin",
        "staff",
        "support",
        "sysadmin",
        "system",
        "usenet",
        "uucp",
        "webmaster",
        "www",
    }
)


def canonical(name: str) -> str:
    """The form uniqueness is decided on: lowercase, dots removed."""
    return name.lower().replace(".", "")


def check_username(value: str) -> str:
    """Validate a sign-up user name; raises ``ValueError`` with the reason."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not USERNAME_MIN <= len(value) <= USERNAME_MAX:
        raise ValueError(f"must be {USERNAME_MIN} to {USERNAME_MAX} characters")
    if not _USERNAME.match(value):
        raise ValueError("use letters, digits, '_' and '.'; a dot may not come first, last or twice in a row")
    if canonical(value) in RESERVED:
        raise ValueError("this name is reserved")
    return value


def looks_like_username(value: str) -> bool:
    """Whether a login name could be a sign-up user name (no ``@``, allowed characters)."""
    return bool(_USERNAME.match(value)) and len(value) <= USERNAME_MAX
