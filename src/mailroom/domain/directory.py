"""Users whose password an LDAP directory keeps (docs/auth.md, "LDAP")."""

from __future__ import annotations

from mailroom.errors import Conflict

#: ``users.auth_source`` of a user provisioned from the directory; local users have "local".
DIRECTORY_SOURCE = "ldap"
LOCAL_SOURCE = "local"
#: The stored ``password_hash`` of a directory user: no scheme, so no password matches it
#: (PasswordHasher.verify refuses it, and Dovecot's passdb is never given it).
NO_PASSWORD = "!ldap"


def directory_password_error(email: str) -> Conflict:
    """The answer to setting the password of a directory user: mailroom never stores it."""
    return Conflict(
        f"the password of {email} is kept in the LDAP directory: change it there",
        address=email,
        auth_source=DIRECTORY_SOURCE,
    )
