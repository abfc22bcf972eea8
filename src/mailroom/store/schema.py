"""Tables of the admin scope: domains, names, users, aliases, relays, managers, API keys.

Uniqueness that spans object kinds is enforced by the database, not by hope: every domain
name (domain, alternative domain, relayed domain) has a row in ``domain_names``, and every
address (user or alias) a row in ``addresses``; a second claim is an IntegrityError, which
the store turns into ``Conflict``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mailroom.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Every name that identifies a mail domain, whatever its kind.
domain_names = Table(
    "domain_names",
    metadata,
    Column("name", String(253), primary_key=True),
    Column("kind", String(16), nullable=False),  # domain | alternative | relay
)

domains = Table(
    "domains",
    metadata,
    Column("name", String(253), ForeignKey("domain_names.name"), primary_key=True),
    Column("comment", Text, nullable=False, default=""),
    Column("max_users", Integer, nullable=True),
    Column("max_aliases", Integer, nullable=True),
    Column("max_quota_bytes", BigInteger, nullable=True),
    Column("signup_enabled", Boolean, nullable=False, default=False),
    Column("dkim_selector", String(63), nullable=True),
    Column("dkim_private_key", Text, nullable=True),
    Column("dkim_public_key", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

alternatives = Table(
    "alternatives",
    metadata,
    Column("name", String(253), ForeignKey("domain_names.name"), primary_key=True),
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

relays = Table(
    "relays",
    metadata,
    Column("name", String(253), ForeignKey("domain_names.name"), primary_key=True),
    Column("smarthost", String(300), nullable=False, default=""),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Every local address, user or alias: one owner each.
addresses = Table(
    "addresses",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("kind", String(16), nullable=False),  # user | alias
    Column("domain", String(253), nullable=False, index=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), ForeignKey("addresses.address"), nullable=False, unique=True),
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("password_hash", Text, nullable=False),
    Column("display_name", String(200), nullable=False, default=""),
    Column("quota_bytes", BigInteger, nullable=False),
    Column("quota_bytes_used", BigInteger, nullable=False, default=0),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("enable_imap", Boolean, nullable=False, default=True),
    Column("enable_pop", Boolean, nullable=False, default=True),
    Column("enable_smtp", Boolean, nullable=False, default=True),
    Column("global_admin", Boolean, nullable=False, default=False),
    Column("forward_enabled", Boolean, nullable=False, default=False),
    Column("forward_destinations", JSON, nullable=False),
    Column("forward_keep", Boolean, nullable=False, default=True),
    Column("reply_enabled", Boolean, nullable=False, default=False),
    Column("reply_subject", String(255), nullable=False, default=""),
    Column("reply_body", Text, nullable=False, default=""),
    Column("reply_start", Date, nullable=True),
    Column("reply_end", Date, nullable=True),
    Column("spam_enabled", Boolean, nullable=False, default=True),
    Column("spam_mark_as_read", Boolean, nullable=False, default=False),
    Column("spam_threshold", Float, nullable=False, default=5.0),
    Column("change_pw_next_login", Boolean, nullable=False, default=False),
    Column("allow_spoofing", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Where the password is checked: "local" (password_hash) or "ldap" (the directory; the
    # hash is then a value no password matches). Migration 0017_ldap.
    Column("auth_source", String(16), nullable=False, server_default="local"),
    # Changed by the database itself on every insert and update (triggers of migration
    # 0003_row_version), never by this code: the key of typed records kept in memory
    # (store/row_cache.py RowCache). Random, not +1, so a user deleted and created again
    # under the same id never repeats an (id, row_version) pair.
    Column("row_version", BigInteger, nullable=False, server_default="0"),
    sqlite_autoincrement=True,  # JMAP ids are never reused (migration 0014_jmap)
)

aliases = Table(
    "aliases",
    metadata,
    Column("address", String(320), ForeignKey("addresses.address"), primary_key=True),
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("destinations", JSON, nullable=False),
    Column("wildcard", Boolean, nullable=False, default=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The directory user (address) LDAP provisioning made this alias for; NULL for the rest.
    Column("directory_user", String(320), nullable=True, index=True),
)

managers = Table(
    "managers",
    metadata,
    Column("domain", String(253), ForeignKey("domains.name", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_managers_user_id", "user_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),  # the lookup id embedded in the key
    Column("name", String(100), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("scopes", JSON, nullable=True),
    Column("allowed_networks", JSON, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    UniqueConstraint("owner_id", "name"),
)

#: Send-as identities: addresses a user may send as beyond their own and their aliases'
#: (a shared mailbox's address, an external address they own), granted by a manager or admin.
send_as = Table(
    "send_as",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("display_name", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)
