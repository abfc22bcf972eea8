"""Passwords checked against an LDAP directory (python-ldap, in threads of its own).

Two ways to find a user's entry (docs/auth.md, "LDAP"):

- search + bind: bind as the service account (``ldap_bind_dn``; anonymous without one),
  search ``ldap_user_base`` with ``ldap_user_filter`` for exactly one entry, then bind as it
  with the presented password;
- direct bind: bind as the DN ``ldap_user_dn_template`` names, then read that entry with
  ``ldap_user_filter`` (base scope): a user who no longer matches the filter is refused.

Every value taken from the login is escaped: RFC 4515 in filters, RFC 4514 in DNs. An empty
password is refused before anything is sent (LDAP takes a simple bind with a DN and no
password as an anonymous bind, RFC 4513 5.1.2). The connection is TLS (ldaps:// or
StartTLS) unless the settings allowed plain ldap:// (loopback, or ``ldap_allow_plaintext``).

python-ldap is blocking: each login runs in one of ``ldap_max_connections`` threads, with
libldap's own network and operation timeouts and an overall deadline on the awaiting side,
so the event loop never waits on the directory. Connections are kept and reused (at most
``ldap_max_connections`` idle ones, none idle longer than :data:`MAX_IDLE_SECONDS`): a login
costs its binds and searches, not a TCP and TLS handshake each. A kept connection that the
directory dropped (a restart) is found out at its first operation; the login then retries
once on a new connection, and the other kept ones are closed. A directory that cannot be reached or
answers an error is :class:`DirectoryUnavailable` (a temporary failure, never "wrong
password"); a wrong password, an unknown or ambiguous login, or an entry outside the filter
is None.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ldap
import ldap.dn
import ldap.filter

from mailroom.errors import Unavailable
from mailroom.settings import Settings

log = logging.getLogger("mailroom.auth.ldap")


#: What a user's bind may answer that refuses this user, not the directory's failure:
#: a wrong password or DN (INVALID_CREDENTIALS), a refusal of the account (password policy,
#: locked: UNWILLING_TO_PERFORM, INAPPROPRIATE_AUTH, CONSTRAINT_VIOLATION), a DN that is not one.
_REFUSALS = (
    ldap.INVALID_CREDENTIALS,
    ldap.UNWILLING_TO_PERFORM,
    ldap.INAPPROPRIATE_AUTH,
    ldap.CONSTRAINT_VIOLATION,
    ldap.INVALID_DN_SYNTAX,
    ldap.NO_SUCH_OBJECT,
)


#: A kept connection idle longer than this is closed, not reused (a directory or a firewall
#: may drop idle connections without a word; a fresh one costs a handshake, a dead one a
#: timeout).
MAX_IDLE_SECONDS = 60.0
#: What says the connection itself broke (not the request): a kept one is then replaced.
_BROKEN = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)


class _Connection:
    """A directory connection and whether it is bound as the service account now."""

    __slots__ = ("as_service", "conn", "idle_since")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.as_service = False
        self.idle_since = 0.0


class DirectoryUnavailable(Unavailable):
    """The directory could not be asked: try again later (SMTP 454, IMAP [UNAVAILABLE], 503)."""


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A user the directory vouched for: the password was right and the entry matches."""

    dn: str
    login: str
    display_name: str | None
    quota_bytes: int | None
    aliases: tuple[str, ...]
    #: Normalised DNs (see :func:`normalise_dn`) of the groups the user is in.
    groups: frozenset[str]


def normalise_dn(dn: str) -> str:
    """One spelling per DN (case, spaces and escapes), so that group DNs compare."""
    try:
        return str(ldap.dn.dn2str(ldap.dn.str2dn(dn))).lower()
    except ldap.DECODING_ERROR:
        return dn.strip().lower()


def _placeholders(login: str, escape: Any) -> dict[str, str]:
    local, _, domain = login.rpartition("@")
    return {"login": escape(login), "localpart": escape(local), "domain": escape(domain)}


def _first(values: list[bytes] | None) -> str | None:
    if not values:
        return None
    return values[0].decode("utf-8", "replace")


class Directory:
    """The configured LDAP directory; one per process (bootstrap makes it when ``ldap_url``
    is set)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.ldap_url is not None
        self.url = settings.ldap_url.rstrip("/")
        self.starttls = settings.ldap_starttls and self.url.startswith("ldap://")
        self.ca_file = str(settings.ldap_ca_file) if settings.ldap_ca_file is not None else None
        self.verify_tls = settings.ldap_verify_tls
        self.timeout = settings.ldap_timeout_seconds
        self.bind_dn = settings.ldap_bind_dn
        self._bind_password = settings.ldap_bind_password
        self.user_base = settings.ldap_user_base
        self.user_filter = settings.ldap_user_filter
        self.dn_template = settings.ldap_user_dn_template
        self.group_base = settings.ldap_group_base if settings.ldap_group_base is not None else self.user_base
        self.group_filter = settings.ldap_group_filter
        self.display_name_attribute = settings.ldap_display_name_attribute
        self.quota_attribute = settings.ldap_quota_attribute
        self.alias_attribute = settings.ldap_alias_attribute
        self.wants_groups = bool(settings.ldap_admin_groups or settings.ldap_manager_groups)
        self.attributes = [
            a
            for a in (self.display_name_attribute, "cn", self.quota_attribute, self.alias_attribute)
            if a is not None
        ]
        # A template with an unknown {name} fails here, at start-up, not at the first login.
        sample = _placeholders("user@example.org", str)
        for template in (self.user_filter, self.dn_template or ""):
            template.format(**sample)
        self.group_filter.format(dn="x")
        self._threads = ThreadPoolExecutor(settings.ldap_max_connections, thread_name_prefix="ldap")
        self.max_idle = settings.ldap_max_connections
        #: Connections kept for the next logins, the most recently used last.
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        #: False: a connection per login, closed after it (what mailroom did before).
        self.keep_connections = True
        #: Connections opened (or tried) so far: tests and figures.
        self.opened = 0

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._drain()

    async def authenticate(self, login: str, password: str) -> DirectoryEntry | None:
        """The entry of ``login`` when ``password`` is its password, else None; raises
        :class:`DirectoryUnavailable` when the directory cannot answer in time."""
        if not password or "\x00" in password:
            return None  # never an anonymous ("unauthenticated") bind
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._threads, self._authenticate, login, password)
        try:
            # libldap's own timeouts end the thread's work; this bounds the wait for a free
            # thread as well (connect, StartTLS, two binds and two searches at most).
            return await asyncio.wait_for(work, timeout=self.timeout * 3)
        except TimeoutError:
            log.warning("LDAP directory %s did not answer within %.1fs", self.url, self.timeout * 3)
            raise DirectoryUnavailable("the user directory is not answering; try again later") from None

    # The rest runs in a directory thread.

    def _connect(self) -> Any:
        conn = ldap.initialize(self.url)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
        conn.set_option(ldap.OPT_TIMEOUT, self.timeout)
        if self.url.startswith("ldaps://") or self.starttls:
            if self.ca_file is not None:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, self.ca_file)
            conn.set_option(
                ldap.OPT_X_TLS_REQUIRE_CERT,
                ldap.OPT_X_TLS_DEMAND if self.verify_tls else ldap.OPT_X_TLS_NEVER,
            )
            conn.set_option(ldap.OPT_X_TLS_PROTOCOL_MIN, ldap.OPT_X_TLS_PROTOCOL_TLS1_2)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: applies the TLS options above
        if self.starttls:
            conn.start_tls_s()
        return conn

    def _service_bind(self, conn: Any) -> None:
        password = self._bind_password.get_secret_value() if self._bind_password is not None else ""
        try:
            conn.simple_bind_s(self.bind_dn or "", password)
        except ldap.INVALID_CREDENTIALS:
            # Our own account refused: a configuration error, not the user's wrong password.
            log.error("LDAP service account %s was refused by %s", self.bind_dn, self.url)
            raise DirectoryUnavailable("the user directory refused mailroom's account") from None

    def _authenticate(self, login: str, password: str) -> DirectoryEntry | None:
        for retry in (True, False):
            held = self._acquire()
            kept = held is not None
            try:
                if held is None:
                    held = _Connection(self._connect())
                    with self._lock:
                        self.opened += 1
                found = self._check(held, login, password)
            except _BROKEN as error:
                self._close(held)
                if kept and retry:  # dropped while it waited (a restart?): so were the others
                    log.info("LDAP: a kept connection to %s was dropped; reconnecting", self.url)
                    self._drain()
                    continue
                raise self._unavailable(error) from None
            except ldap.LDAPError as error:
                self._close(held)
                raise self._unavailable(error) from None
            except BaseException:
                self._close(held)
                raise
            self._release(held)
            return found
        raise AssertionError("unreachable")  # the second round returns or raises

    def _acquire(self) -> _Connection | None:
        """A kept connection (None: open a new one); those idle too long are closed."""
        stale: list[_Connection] = []
        held = None
        with self._lock:
            oldest = time.monotonic() - MAX_IDLE_SECONDS
            while self._idle:
                candidate = self._idle.pop()
                if candidate.idle_since < oldest:
                    stale.append(candidate)
                else:
                    held = candidate
                    break
        for connection in stale:
            self._close(connection)
        return held

    def _release(self, held: _Connection) -> None:
        if self.keep_connections:
            with self._lock:
                if len(self._idle) < self.max_idle:
                    held.idle_since = time.monotonic()
                    self._idle.append(held)
                    return
        self._close(held)

    @staticmethod
    def _close(held: _Connection | None) -> None:
        if held is not None:
            with contextlib.suppress(ldap.LDAPError):
                held.conn.unbind_s()

    def _drain(self) -> None:
        """Close every kept connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for held in idle:
            self._close(held)

    def _unavailable(self, error: ldap.LDAPError) -> DirectoryUnavailable:
        # The class names the failure (SERVER_DOWN, TIMEOUT, ...); its details never hold
        # the password, but they are not needed either.
        log.warning("LDAP directory %s failed: %s", self.url, type(error).__name__)
        return DirectoryUnavailable("the user directory is unavailable; try again later")

    def _check(self, held: _Connection, login: str, password: str) -> DirectoryEntry | None:
        conn = held.conn
        user_filter = self.user_filter.format(**_placeholders(login, ldap.filter.escape_filter_chars))
        if self.dn_template is not None:
            dn = self.dn_template.format(**_placeholders(login, ldap.dn.escape_dn_chars))
            held.as_service = False
            if not self._user_bind(conn, dn, password):
                return None
            if self.bind_dn is not None:
                self._service_bind(conn)
                held.as_service = True
            try:
                found = self._entries(conn, dn, ldap.SCOPE_BASE, user_filter)
            except ldap.NO_SUCH_OBJECT:
                return None
            if len(found) != 1:
                return None
            attributes = found[0][1]
            groups = self._groups(conn, dn)
        else:
            if not held.as_service:  # a kept connection still bound as the service account
                self._service_bind(conn)
                held.as_service = True
            found = self._entries(conn, self.user_base, ldap.SCOPE_SUBTREE, user_filter)
            if len(found) != 1:
                if found:
                    log.warning("LDAP: %d entries match the login %s; refused", len(found), login)
                return None
            dn, attributes = found[0]
            groups = self._groups(conn, dn)  # as the service account, before the user's bind
            held.as_service = False
            if not self._user_bind(conn, dn, password):
                return None
        return self._entry(dn, login, attributes, groups)

    @staticmethod
    def _user_bind(conn: Any, dn: str, password: str) -> bool:
        """Bind as the user: False when the directory refuses this user's credentials (a
        wrong password, no such DN, or a refusal for this account such as a locked one)."""
        try:
            conn.simple_bind_s(dn, password)
        except _REFUSALS:
            return False
        return True

    def _entries(
        self, conn: Any, base: str, scope: int, search: str
    ) -> list[tuple[str, dict[str, list[bytes]]]]:
        try:
            results = conn.search_ext_s(base, scope, search, self.attributes, sizelimit=2)
        except ldap.SIZELIMIT_EXCEEDED:
            return [("", {}), ("", {})]  # ambiguous: more than one
        return [(dn, attrs) for dn, attrs in results if dn is not None]  # referrals have no DN

    def _groups(self, conn: Any, dn: str) -> frozenset[str]:
        if not self.wants_groups:
            return frozenset()
        search = self.group_filter.format(dn=ldap.filter.escape_filter_chars(dn))
        results = conn.search_ext_s(self.group_base, ldap.SCOPE_SUBTREE, search, ["1.1"])
        return frozenset(normalise_dn(found) for found, _ in results if found is not None)

    def _entry(
        self, dn: str, login: str, attributes: dict[str, list[bytes]], groups: frozenset[str]
    ) -> DirectoryEntry:
        by_name = {name.lower(): values for name, values in attributes.items()}
        display = _first(by_name.get(self.display_name_attribute.lower())) or _first(by_name.get("cn"))
        quota: int | None = None
        if self.quota_attribute is not None:
            raw = _first(by_name.get(self.quota_attribute.lower()))
            if raw is not None and raw.strip().isdigit():
                quota = int(raw.strip())
        found_aliases: tuple[str, ...] = ()
        if self.alias_attribute is not None:
            values = by_name.get(self.alias_attribute.lower()) or []
            found_aliases = tuple(v.decode("utf-8", "replace").strip().lower() for v in values)
        return DirectoryEntry(
            dn=dn,
            login=login,
            display_name=display,
            quota_bytes=quota,
            aliases=found_aliases,
            groups=groups,
        )
