"""The authorisation matrix's world: principals, and valid parameters for every registry method.

Every method needs a row in :data:`ROWS` (a new method fails the matrix test until it has
one). A row builds the call's parameters — fresh objects where the call changes or deletes
something, so that every principal and protocol meets the same state — and says whose the
target is: the mail ``domain`` it lives in and its ``owner`` (a principal name). Expected
outcomes come from the method's access policy and that ownership (:func:`expected`).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mailroom.auth.principal import SYSTEM, Principal
from mailroom.bootstrap import Mailroom
from mailroom.clock import FakeClock
from mailroom.registry import Admin, Authenticated, Internal, Manager, MethodSpec, Owner, Public, UserSelf

PASSWORD = "correct horse battery staple"

#: Columns of the matrix, in order.
PRINCIPALS = (
    "anonymous",
    "user_a",
    "user_b",
    "user_c",
    "manager_1",
    "manager_2",
    "admin",
    "scoped_key",
    "wrong_network_key",
    "expired_key",
    "revoked_session",
)
TITLES = {
    "anonymous": "anonymous",
    "user_a": "user A (domain 1)",
    "user_b": "user B (domain 1)",
    "user_c": "user C (domain 2)",
    "manager_1": "manager of domain 1",
    "manager_2": "manager of domain 2",
    "admin": "global admin",
    "scoped_key": "key, scope excludes method",
    "wrong_network_key": "key, caller outside its networks",
    "expired_key": "expired key",
    "revoked_session": "revoked session",
}
USERS = {
    "user_a": "alice@one.test",
    "user_b": "bob@one.test",
    "user_c": "carol@two.test",
    "manager_1": "mgr1@one.test",
    "manager_2": "mgr2@two.test",
    "admin": "root@admin.test",
}
INVALID_CREDENTIALS = frozenset({"wrong_network_key", "expired_key", "revoked_session"})


@dataclass
class World:
    """A started mailroom with two domains, their users and managers, and their credentials."""

    mailroom: Mailroom
    tokens: dict[str, str | None] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    async def call(self, name: str, params: dict[str, Any], as_: str | None = None) -> Any:
        principal = SYSTEM if as_ is None else self.principals[as_]
        return await self.mailroom.registry.call(name, params, principal=principal)

    def n(self) -> int:
        return next(self.counter)


async def build_world(mailroom: Mailroom, clock: FakeClock) -> World:
    w = World(mailroom)
    reg = mailroom.registry
    for domain in ("one.test", "two.test", "admin.test"):
        await reg.call("admin.domains.create", {"domain": {"name": domain, "signup_enabled": True}})
    for who, email in USERS.items():
        await reg.call(
            "admin.users.create",
            {"user": {"email": email, "password": PASSWORD, "global_admin": who == "admin"}},
        )
    await reg.call("admin.managers.create", {"domain": "one.test", "manager": {"email": USERS["manager_1"]}})
    await reg.call("admin.managers.create", {"domain": "two.test", "manager": {"email": USERS["manager_2"]}})

    async def key(who: str, **extra: Any) -> str:
        created = await reg.call(
            "admin.apikeys.create", {"key": {"name": f"{who}-{w.n()}", "owner": USERS["user_a"], **extra}}
        )
        return str(created["key"])

    auth = mailroom.authenticator
    w.tokens["anonymous"] = None
    for who, email in USERS.items():
        created = await reg.call("admin.apikeys.create", {"key": {"name": f"matrix-{who}", "owner": email}})
        w.tokens[who] = created["key"]
        w.principals[who] = await auth.bearer(created["key"], "127.0.0.1")
    w.tokens["scoped_key"] = await key("scoped", scopes=["nothing.at.all"])
    w.tokens["wrong_network_key"] = await key("network", allowed_networks=["10.0.0.0/8"])
    w.tokens["expired_key"] = await key(
        "expired", expires_at=(clock.now() + timedelta(minutes=5)).isoformat()
    )
    login = await reg.call("mail.sessions.login", {"username": USERS["user_a"], "password": PASSWORD})
    session = await auth.bearer(login["token"], "127.0.0.1")
    await reg.call("mail.sessions.logout", {}, principal=session)
    w.tokens["revoked_session"] = login["token"]
    clock.advance(minutes=10)  # the expiring key has expired
    return w


# -- rows ----------------------------------------------------------------------------------

Params = Callable[[World], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Row:
    params: Params
    #: The mail domain of the target (for Manager/Owner policies).
    domain: str | None = None
    #: Who owns the target (a principal name), for Owner/UserSelf/Authenticated policies.
    owner: str | None = None
    #: What a principal the policy lets through gets (``not_found`` for a target that cannot
    #: be made here, ``invalid_params`` for input only a real client could produce).
    allowed: str = "ok"
    #: Per-principal outcomes decided by the service beyond the policy, with the reason.
    overrides: dict[str, str] = field(default_factory=dict)
    why: str = ""


def static(params: dict[str, Any]) -> Params:
    async def make(w: World) -> dict[str, Any]:
        return dict(params)

    return make


def fresh(factory: Callable[[World, int], Awaitable[dict[str, Any]]]) -> Params:
    async def make(w: World) -> dict[str, Any]:
        return await factory(w, w.n())

    return make


async def _alias(w: World, n: int) -> dict[str, Any]:
    address = f"alias{n}@one.test"
    await w.call("admin.aliases.create", {"alias": {"address": address, "destinations": [USERS["user_a"]]}})
    return {"address": address}


async def _identity(w: World, n: int) -> dict[str, Any]:
    address = f"shared{n}@one.test"
    await w.call("admin.identities.create", {"email": USERS["user_a"], "identity": {"address": address}})
    return {"email": USERS["user_a"], "address": address}


async def _alternative(w: World, n: int) -> dict[str, Any]:
    await w.call("admin.alternatives.create", {"domain": "one.test", "alternative": {"name": f"alt{n}.test"}})
    return {"domain": "one.test", "name": f"alt{n}.test"}


async def _alice_key(w: World, n: int) -> dict[str, Any]:
    created = await w.call("admin.apikeys.create", {"key": {"name": f"a{n}", "owner": USERS["user_a"]}})
    return {"id": created["id"]}


async def _domain(w: World, n: int) -> dict[str, Any]:
    await w.call("admin.domains.create", {"domain": {"name": f"d{n}.test"}})
    return {"name": f"d{n}.test"}


async def _relay(w: World, n: int) -> dict[str, Any]:
    await w.call("admin.relays.create", {"relay": {"name": f"relay{n}.test"}})
    return {"name": f"relay{n}.test"}


async def _user(w: World, n: int) -> dict[str, Any]:
    await w.call("admin.users.create", {"user": {"email": f"u{n}@one.test", "password": PASSWORD}})
    return {"email": f"u{n}@one.test"}


async def _manager(w: World, n: int) -> dict[str, Any]:
    await _user(w, n)
    await w.call("admin.managers.create", {"domain": "one.test", "manager": {"email": f"u{n}@one.test"}})
    return {"domain": "one.test", "email": f"u{n}@one.test"}


async def _invite(w: World, n: int) -> dict[str, Any]:
    created = await w.call("admin.invites.create", {"invite": {"domain": "one.test"}})
    return {"id": created["id"]}


async def _contact(w: World, n: int) -> dict[str, Any]:
    created = await w.call("mail.contacts.create", {"contact": {"name": f"Contact {n}"}}, as_="user_a")
    return {"id": created["id"]}


async def _label(w: World, n: int) -> dict[str, Any]:
    created = await w.call("mail.labels.create", {"label": {"name": f"Label {n}"}}, as_="user_a")
    return {"id": created["id"]}


async def _imap_label(w: World, n: int) -> dict[str, Any]:
    return {"label": (await _label(w, n))["id"]}


async def _imap_recent(w: World, n: int) -> dict[str, Any]:
    return {**await _imap_label(w, n), "below": 1, "claim": True}


async def _imap_append(w: World, n: int) -> dict[str, Any]:
    raw = MESSAGE.format(n=f"a{n}").encode()
    return {**await _imap_label(w, n), "message": base64.b64encode(raw).decode()}


def _imap_emails(**extra: Any) -> Params:
    """One of user A's emails for mail.imap.* (``to_label``/``label``: one of A's labels)."""

    async def make(w: World) -> dict[str, Any]:
        made = await _email(w, w.n())
        params: dict[str, Any] = {"email_ids": [made["id"]], **extra}
        for key in ("to_label", "label"):
            if key in params:
                params[key] = (await _label(w, w.n()))["id"]
        return params

    return make


async def _upload(w: World, n: int) -> dict[str, Any]:
    created = await w.call("mail.uploads.create", {"file": UPLOAD}, as_="user_a")
    return {"id": created["attachment_id"]}


async def _renamed_label(w: World, n: int) -> dict[str, Any]:
    return {**await _label(w, n), "label": {"name": f"Renamed {n}"}}


UPLOAD = {
    "content_base64": base64.b64encode(b"file").decode(),
    "filename": "a.txt",
    "content_type": "text/plain",
}

MESSAGE = (
    "From: bob@example.net\r\nTo: alice@one.test\r\nSubject: hi\r\nMessage-ID: <{n}@example.net>\r\n"
    'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
    "Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/plain\r\n"
    'Content-Disposition: attachment; filename="a.txt"\r\n\r\nfile\r\n--b--\r\n'
)


async def _email(w: World, n: int) -> dict[str, Any]:
    imported = await w.call(
        "mail.messages.import", {"email": USERS["user_a"], "message": MESSAGE.format(n=n), "encoding": "text"}
    )
    return {"id": imported["email_id"], "thread_id": imported["thread_id"]}


async def _draft(w: World, n: int) -> dict[str, Any]:
    """A draft of user A's, to user B."""
    made = await w.call(
        "mail.emails.send",
        {"email": {"to": [USERS["user_b"]], "subject": f"Draft {n}", "body": "x", "draft": True}},
        as_="user_a",
    )
    return {"id": made["email_id"]}


async def _dkim(w: World, n: int) -> dict[str, Any]:
    await w.call("admin.dkim.generate", {"domain": "one.test", "bits": 1024})
    return {"domain": "one.test"}


async def _refresh_token(w: World, n: int) -> dict[str, Any]:
    login = await w.call("mail.sessions.login", {"username": USERS["user_a"], "password": PASSWORD})
    return {"refresh_token": login["refresh_token"]}


async def _app_password(w: World, n: int) -> dict[str, Any]:
    params = {"app_password": {"name": f"app {n}", "protocols": ["smtp"]}}
    created = await w.call("mail.app_passwords.create", params, as_="user_a")
    return {"id": created["id"]}


async def _session(w: World, n: int) -> dict[str, Any]:
    login = await w.call("mail.sessions.login", {"username": USERS["user_a"], "password": PASSWORD})
    return {"id": login["session_id"]}


def _with(factory: Callable[[World, int], Awaitable[dict[str, Any]]], **extra: Any) -> Params:
    async def make(w: World) -> dict[str, Any]:
        return {**await factory(w, w.n()), **extra}

    return make


def _email_params(keys: tuple[str, ...], **extra: Any) -> Params:
    async def make(w: World) -> dict[str, Any]:
        made = await _email(w, w.n())
        return {**{k: made[k] for k in keys}, **extra}

    return make


def _batch(key: str) -> Params:
    """A batch action on one of user A's emails or threads (``read``: repeatable)."""

    async def make(w: World) -> dict[str, Any]:
        made = await _email(w, w.n())
        return {"ids": [made[key]], "action": "read"}

    return make


async def _thread(w: World) -> dict[str, Any]:
    made = await _email(w, w.n())
    return {"id": made["thread_id"]}


NOT_A_KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n"
RAW = base64.b64encode(b"From: a@b.test\r\n\r\nx\r\n").decode()


def _jmap_account(w: World) -> str:
    user_id = w.principals["user_a"].user_id
    return f"u{user_id}"


def _jmap(*, fromAccountId: bool = False, **args: Any) -> Params:
    """JMAP arguments on user A's account."""

    async def make(w: World) -> dict[str, Any]:
        account = _jmap_account(w)
        extra = {"fromAccountId": account} if fromAccountId else {}
        return {"accountId": account, **extra, **args}

    return make


async def _jmap_identity_state(w: World) -> dict[str, Any]:
    account = _jmap_account(w)
    got = await w.call("jmap.Identity.get", {"accountId": account}, as_="user_a")
    return {"accountId": account, "sinceState": got["state"]}


def _jmap_state(method: str, argument: str, key: str = "state") -> Params:
    """Arguments naming user A's current state of a type whose older states are not kept."""

    async def make(w: World) -> dict[str, Any]:
        account = _jmap_account(w)
        got = await w.call("jmap." + method.replace("/", "."), {"accountId": account}, as_="user_a")
        return {"accountId": account, argument: got[key]}

    return make


async def _jmap_blob(w: World) -> dict[str, Any]:
    account = _jmap_account(w)
    made = await w.call("jmap.blob.upload", {"accountId": account, "file": UPLOAD}, as_="user_a")
    return {"accountId": account, "blobId": made["blobId"], "name": "a.txt"}


_USER_DOC = {"version": 1, "domains": []}

ROWS: dict[str, Row] = {
    # admin: aliases, alternatives
    "admin.aliases.create": Row(
        fresh(
            lambda w, n: _ret({"alias": {"address": f"new{n}@one.test", "destinations": ["x@example.net"]}})
        ),
        domain="one.test",
    ),
    "admin.aliases.delete": Row(fresh(_alias), domain="one.test"),
    "admin.aliases.get": Row(fresh(_alias), domain="one.test"),
    "admin.aliases.list": Row(static({"domain": "one.test"}), domain="one.test"),
    "admin.aliases.update": Row(_with(_alias, changes={"comment": "changed"}), domain="one.test"),
    "admin.alternatives.create": Row(
        fresh(lambda w, n: _ret({"domain": "one.test", "alternative": {"name": f"newalt{n}.test"}})),
        domain="one.test",
    ),
    "admin.alternatives.delete": Row(fresh(_alternative), domain="one.test"),
    "admin.alternatives.list": Row(static({"domain": "one.test"}), domain="one.test"),
    # admin: API keys (owned by user A)
    "admin.apikeys.create": Row(fresh(lambda w, n: _ret({"key": {"name": f"made{n}"}}))),
    "admin.apikeys.delete": Row(fresh(_alice_key), owner="user_a"),
    "admin.apikeys.get": Row(fresh(_alice_key), owner="user_a"),
    "admin.apikeys.get_limits": Row(fresh(_alice_key), owner="user_a"),
    "admin.apikeys.list": Row(static({})),
    "admin.apikeys.set_limits": Row(_with(_alice_key, limits={"limits": [{"limit": "100/minute"}]})),
    "admin.audit.list": Row(static({})),
    "admin.config.export": Row(static({})),
    "admin.config.import": Row(static({"document": _USER_DOC, "dry_run": True})),
    # admin: DKIM and DNS of domain 1
    "admin.dkim.delete": Row(fresh(_dkim), domain="one.test"),
    "admin.dkim.generate": Row(static({"domain": "one.test", "bits": 1024}), domain="one.test"),
    "admin.dkim.get": Row(fresh(_dkim), domain="one.test"),
    "admin.dns.get": Row(static({"domain": "one.test"}), domain="one.test"),
    "admin.dns.check": Row(static({"domain": "one.test"}), domain="one.test"),
    "admin.dns.zone": Row(static({"domain": "one.test"}), domain="one.test"),
    # admin: domains
    "admin.domains.create": Row(fresh(lambda w, n: _ret({"domain": {"name": f"new{n}.test"}}))),
    "admin.domains.delete": Row(fresh(_domain)),
    "admin.domains.get": Row(static({"name": "one.test"}), domain="one.test"),
    "admin.domains.list": Row(static({})),
    "admin.domains.update": Row(static({"name": "one.test", "changes": {"comment": "changed"}})),
    # admin: send-as identities of user A (addresses of domain 1)
    "admin.identities.create": Row(
        fresh(
            lambda w, n: _ret({"email": USERS["user_a"], "identity": {"address": f"new-shared{n}@one.test"}})
        ),
        domain="one.test",
    ),
    "admin.identities.delete": Row(fresh(_identity), domain="one.test"),
    "admin.identities.get": Row(fresh(_identity), domain="one.test"),
    "admin.identities.list": Row(static({"email": USERS["user_a"]}), domain="one.test"),
    # admin: invites, managers, queue, relays
    "admin.invites.create": Row(static({"invite": {"domain": "one.test"}}), domain="one.test"),
    "admin.invites.delete": Row(
        fresh(_invite),
        overrides={"manager_2": "not_found"},
        why="invites.delete: a manager of another domain does not see the invite",
    ),
    "admin.invites.list": Row(static({"domain": "one.test"}), domain="one.test"),
    "admin.managers.create": Row(
        fresh(lambda w, n: _user_then({"domain": "one.test", "manager": {"email": f"u{n}@one.test"}}, w, n))
    ),
    "admin.managers.delete": Row(fresh(_manager)),
    "admin.managers.list": Row(static({"domain": "one.test"}), domain="one.test"),
    "admin.queue.delete": Row(static({"id": 999999}), allowed="not_found"),
    "admin.queue.get": Row(static({"id": 999999}), allowed="not_found"),
    "admin.queue.list": Row(static({})),
    "admin.queue.retry": Row(static({"id": 999999}), allowed="not_found"),
    "admin.relays.create": Row(fresh(lambda w, n: _ret({"relay": {"name": f"newrelay{n}.test"}}))),
    "admin.relays.delete": Row(fresh(_relay)),
    "admin.relays.get": Row(fresh(_relay)),
    "admin.relays.list": Row(static({})),
    "admin.relays.update": Row(_with(_relay, changes={"comment": "changed"})),
    "admin.usage.report": Row(static({})),
    # admin: users (user A is the owner; created and deleted ones are fresh users of domain 1)
    "admin.users.create": Row(
        fresh(lambda w, n: _ret({"user": {"email": f"new{n}@one.test", "password": PASSWORD}})),
        domain="one.test",
    ),
    "admin.users.delete": Row(fresh(_user), domain="one.test"),
    "admin.users.reset_totp": Row(fresh(_user), domain="one.test"),
    "admin.users.kick": Row(fresh(_user), domain="one.test"),
    "admin.users.get": Row(static({"email": USERS["user_a"]}), domain="one.test", owner="user_a"),
    "admin.users.list": Row(static({"domain": "one.test"}), domain="one.test"),
    "admin.users.update": Row(
        static({"email": USERS["user_a"], "changes": {"display_name": "Alice"}}),
        domain="one.test",
        owner="user_a",
    ),
    "admin.domains.get_attachment_policy": Row(static({"name": "one.test"}), domain="one.test"),
    "admin.domains.set_attachment_policy": Row(
        static({"name": "one.test", "policy": {"require_encrypted": False}}), domain="one.test"
    ),
    "admin.waitlist.admit": Row(static({"id": 999999}), allowed="not_found"),
    "admin.waitlist.delete": Row(static({"id": 999999}), allowed="not_found"),
    "admin.waitlist.list": Row(static({"domain": "one.test"}), domain="one.test"),
    # JMAP (user A's account; another caller's accountId is not_found)
    "jmap.Blob.copy": Row(_jmap(fromAccountId=True, blobIds=[]), owner="user_a"),
    "jmap.Email.changes": Row(_jmap(sinceState="0"), owner="user_a"),
    "jmap.Email.copy": Row(
        _jmap(fromAccountId=True, create={}),
        owner="user_a",
        allowed="jmap_method_error",
        why="one account per caller: a copy within it is Email/set's job (invalidArguments)",
    ),
    "jmap.Email.get": Row(_jmap(ids=[]), owner="user_a"),
    "jmap.Email.import": Row(_jmap(emails={}), owner="user_a"),
    "jmap.Email.parse": Row(_jmap(blobIds=[]), owner="user_a"),
    "jmap.Email.query": Row(_jmap(), owner="user_a"),
    "jmap.Email.queryChanges": Row(_jmap(sinceQueryState="0"), owner="user_a"),
    "jmap.Email.set": Row(_jmap(), owner="user_a"),
    "jmap.EmailSubmission.changes": Row(_jmap_state("EmailSubmission/get", "sinceState"), owner="user_a"),
    "jmap.EmailSubmission.get": Row(_jmap(ids=[]), owner="user_a"),
    "jmap.EmailSubmission.query": Row(_jmap(), owner="user_a"),
    "jmap.EmailSubmission.queryChanges": Row(
        _jmap_state("EmailSubmission/query", "sinceQueryState", "queryState"), owner="user_a"
    ),
    "jmap.EmailSubmission.set": Row(_jmap(), owner="user_a"),
    "jmap.Identity.changes": Row(_jmap_identity_state, owner="user_a"),
    "jmap.Identity.get": Row(_jmap(), owner="user_a"),
    "jmap.Identity.set": Row(_jmap(), owner="user_a"),
    "jmap.Mailbox.changes": Row(_jmap(sinceState="0"), owner="user_a"),
    "jmap.Mailbox.get": Row(_jmap(ids=[]), owner="user_a"),
    "jmap.Mailbox.query": Row(_jmap(), owner="user_a"),
    "jmap.Mailbox.queryChanges": Row(_jmap(sinceQueryState="0"), owner="user_a"),
    "jmap.Mailbox.set": Row(_jmap(), owner="user_a"),
    "jmap.PushSubscription.get": Row(static({})),
    "jmap.PushSubscription.set": Row(static({})),
    "jmap.SearchSnippet.get": Row(_jmap(emailIds=[]), owner="user_a"),
    "jmap.Thread.changes": Row(_jmap(sinceState="0"), owner="user_a"),
    "jmap.Thread.get": Row(_jmap(ids=[]), owner="user_a"),
    "jmap.VacationResponse.get": Row(_jmap(), owner="user_a"),
    "jmap.VacationResponse.set": Row(_jmap(), owner="user_a"),
    "jmap.blob.download": Row(_jmap_blob, owner="user_a"),
    "jmap.blob.upload": Row(_jmap(file=UPLOAD), owner="user_a"),
    "jmap.session.get": Row(static({})),
    "jmap.state.get": Row(static({})),
    # mail client API (user A's mailbox)
    "mail.clientconfig.get": Row(static({"domain": "one.test"})),
    "mail.changes": Row(static({"since": 0})),
    "mail.contacts.create": Row(static({"contact": {"name": "Someone"}})),
    "mail.contacts.delete": Row(fresh(_contact), owner="user_a"),
    "mail.contacts.get": Row(fresh(_contact), owner="user_a"),
    "mail.contacts.list": Row(static({})),
    "mail.contacts.update": Row(_with(_contact, changes={"name": "Renamed"}), owner="user_a"),
    "mail.delivery.check": Row(static({"address": USERS["user_a"]})),
    "mail.dovecot.lookup": Row(static({"key": f"shared/userdb/{USERS['user_a']}"})),
    "mail.dovecot.iterate": Row(static({"path": "shared/userdb/"})),
    "mail.dovecot.commit": Row(static({"user": USERS["user_a"], "changes": []})),
    "mail.keyserver.search": Row(static({"email": USERS["user_a"]})),
    "mail.keyserver.wkd": Row(static({"domain": "one.test", "local_hash": "y" * 32})),
    "mail.keyserver.add": Row(static({"keytext": NOT_A_KEY}), allowed="invalid_params"),
    "mail.keyserver.confirmation": Row(static({"token": "mkc_unknown"}), allowed="not_found"),
    "mail.keyserver.confirm": Row(static({"token": "mkc_unknown"}), allowed="not_found"),
    "mail.maps.lookup": Row(static({"table": "mailbox", "key": USERS["user_a"]})),
    "mail.proxy.login": Row(static({"protocol": "imap", "user": USERS["user_a"], "password": PASSWORD})),
    "mail.pop3.login": Row(static({"user": USERS["user_a"], "password": PASSWORD})),
    "mail.pop3.open": Row(static({"user_id": 1, "session": "a" * 32})),
    "mail.pop3.renew": Row(static({"user_id": 1, "session": "a" * 32})),
    "mail.pop3.message": Row(static({"user_id": 1, "id": 1})),
    "mail.pop3.close": Row(static({"user_id": 1, "session": "a" * 32, "deleted": []})),
    "mail.proxy.xclient_login": Row(static({"user": USERS["user_a"]})),
    "mail.delivery.deliver": Row(
        static({"raw": RAW, "mail_from": "a@b.test", "recipients": [USERS["user_a"]]})
    ),
    "mail.emails.attachment": Row(_email_params(("id",), n=0), owner="user_a"),
    "mail.emails.get": Row(_email_params(("id",)), owner="user_a"),
    "mail.emails.raw": Row(_email_params(("id",)), owner="user_a"),
    "mail.emails.batch": Row(
        _batch("id"), why="per-id results: another user's ids come back not_found inside a 200"
    ),
    "mail.emails.send": Row(static({"email": {"subject": "Matrix", "body": "x", "draft": True}})),
    "mail.identities.list": Row(static({})),
    "mail.emails.update": Row(_with(_draft, subject="Edited", if_version=1), owner="user_a"),
    "mail.emails.send_draft": Row(_with(_draft, if_version=1), owner="user_a"),
    "mail.emails.delete": Row(_email_params(("id",)), owner="user_a"),
    "mail.keys.delete": Row(static({"fingerprint": "0" * 40}), allowed="not_found"),
    "mail.keys.list": Row(static({})),
    "mail.keys.lookup": Row(static({"email": USERS["user_a"]})),
    "mail.keys.publish": Row(static({"public_key": NOT_A_KEY}), allowed="invalid_params"),
    "mail.keys.vote": Row(
        static({"fingerprint": "0" * 40, "vote": {"authentic": True}}), allowed="not_found"
    ),
    "mail.keys.unvote": Row(static({"fingerprint": "0" * 40}), allowed="not_found"),
    "mail.labels.create": Row(fresh(lambda w, n: _ret({"label": {"name": f"New {n}"}}))),
    "mail.uploads.create": Row(static({"file": UPLOAD})),
    "mail.uploads.delete": Row(fresh(_upload), owner="user_a"),
    "mail.uploads.get": Row(fresh(_upload), owner="user_a"),
    "mail.labels.delete": Row(fresh(_label), owner="user_a"),
    "mail.labels.get": Row(fresh(_label), owner="user_a"),
    "mail.labels.list": Row(static({})),
    "mail.imap.account": Row(static({})),
    "mail.imap.mailboxes": Row(static({})),
    "mail.imap.quota": Row(static({})),
    "mail.imap.search": Row(static({"terms": [{"field": "any", "text": "matrix"}]})),
    "mail.imap.view": Row(fresh(_imap_label), owner="user_a"),
    "mail.imap.structures": Row(
        _imap_emails(), why="another user's ids are left out of the answer (an empty list)"
    ),
    "mail.imap.flags": Row(_imap_emails(seen=True), why="another user's ids are left alone (no-op)"),
    "mail.imap.copy": Row(_imap_emails(to_label=0), owner="user_a"),
    "mail.imap.expunge": Row(_imap_emails(label=0), owner="user_a"),
    "mail.imap.subscriptions": Row(static({})),
    "mail.imap.subscribe": Row(static({"name": "Matrix", "subscribed": False})),
    "mail.imap.keyword_spellings": Row(static({})),
    "mail.imap.keep_spellings": Row(static({"keywords": ["$Matrix"]})),
    "mail.imap.references": Row(
        _imap_emails(), why="another user's ids are left out of the answer (an empty list)"
    ),
    "mail.imap.recent": Row(fresh(_imap_recent), owner="user_a"),
    "mail.imap.append": Row(fresh(_imap_append), owner="user_a"),
    "mail.labels.update": Row(fresh(_renamed_label), owner="user_a"),
    "mail.messages.import": Row(
        fresh(
            lambda w, n: _ret(
                {"email": USERS["user_a"], "message": MESSAGE.format(n=f"i{n}"), "encoding": "text"}
            )
        ),
        domain="one.test",
        owner="user_a",
        overrides={"manager_1": "not_found"},
        why="messages.import: only admins and the mailbox's owner may import, not domain managers",
    ),
    "mail.app_passwords.create": Row(static({"app_password": {"name": "client", "protocols": ["imap"]}})),
    "mail.app_passwords.list": Row(static({})),
    "mail.app_passwords.revoke": Row(fresh(_app_password), owner="user_a"),
    "mail.password.change": Row(
        static({"current_password": PASSWORD, "new_password": PASSWORD}),
    ),
    "mail.sessions.list": Row(static({})),
    "mail.sessions.login": Row(static({"username": USERS["user_a"], "password": PASSWORD})),
    "mail.sessions.login_oidc": Row(
        static(
            {"code": "code", "code_verifier": "v" * 43, "redirect_uri": "http://127.0.0.1/cb", "nonce": "n"}
        ),
        allowed="not_found",
        why="sessions.login_oidc: no OpenID Connect provider in this world (tests/oidc logs in through one)",
    ),
    "mail.sessions.logout": Row(
        static({}),
        allowed="bad_request",
        why="sessions.logout ends the caller's session; these callers use API keys",
    ),
    "mail.sessions.refresh": Row(
        fresh(_refresh_token),
        overrides={who: "unauthenticated" for who in ("user_b", "user_c", "manager_1", "manager_2", "admin")},
        why="sessions.refresh: a caller signed in as another user than the session's is refused",
    ),
    "mail.sessions.revoke": Row(fresh(_session), owner="user_a"),
    "mail.sessions.revoke_others": Row(static({})),
    "mail.settings.get": Row(static({})),
    "mail.state": Row(static({})),
    "mail.settings.replace": Row(static({"settings": {}})),
    "mail.settings.update": Row(static({"changes": {}})),
    "mail.signup.create": Row(
        fresh(lambda w, n: _ret({"username": f"newbie{n}", "password": PASSWORD, "domain": "one.test"})),
    ),
    "mail.submission.check_sender": Row(static({"user_id": 1, "mail_from": USERS["user_a"]})),
    "mail.submission.submit": Row(
        static({"raw": RAW, "mail_from": USERS["user_a"], "recipients": ["x@example.net"], "user_id": 1})
    ),
    "mail.totp.confirm": Row(
        static({"code": "not-a-code"}),
        allowed="invalid_params",
        why="totp.confirm: a real code needs an authenticator app; the shape is checked first",
    ),
    "mail.totp.disable": Row(
        static({"otp": "not-a-code"}),
        allowed="invalid_params",
        why="totp.disable: a real code needs an authenticator app; the shape is checked first",
    ),
    "mail.totp.get": Row(static({})),
    "mail.totp.setup": Row(static({})),
    "mail.threads.get": Row(_thread, owner="user_a"),
    "mail.threads.list": Row(static({})),
    "mail.threads.batch": Row(
        _batch("thread_id"), why="per-id results: another user's ids come back not_found inside a 200"
    ),
    # system and interop
    "system.apis.list": Row(static({})),
    "system.health.get": Row(static({})),
    "system.methods.describe": Row(static({"name": "system.health.get"})),
    "get_data": Row(static({})),
    "notify_hello": Row(static({"value": 1})),
    "notify_sum": Row(static({"a": 1, "b": 2})),
    "subtract": Row(static({"minuend": 3, "subtrahend": 1})),
    "sum": Row(static({"a": 1, "b": 2})),
    "update": Row(static({"a": 1})),
    "validator1.arrayOfStructsTest": Row(static({"structs": [{"moe": 1, "larry": 2, "curly": 3}]})),
    "validator1.countTheEntities": Row(static({"text": "<&>"})),
    "validator1.easyStructTest": Row(static({"stooges": {"moe": 1, "larry": 2, "curly": 3}})),
    "validator1.echoStructTest": Row(static({"struct": {"a": 1}})),
    "validator1.manyTypesTest": Row(
        static(
            {
                "number": 1,
                "boolean": True,
                "string": "s",
                "double": 1.5,
                "when": "2026-01-01T00:00:00",
                "data": "YQ==",
            }
        )
    ),
    "validator1.moderateSizeArrayCheck": Row(static({"strings": ["a", "b"]})),
    "validator1.nestedStructTest": Row(
        static({"calendar": {"2000": {"04": {"01": {"moe": 1, "larry": 2, "curly": 3}}}}})
    ),
    "validator1.simpleStructReturnTest": Row(static({"number": 2})),
}


async def _ret(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def _user_then(value: dict[str, Any], w: World, n: int) -> dict[str, Any]:
    await _user(w, n)
    return value


# -- expectations --------------------------------------------------------------------------


def _manages(who: str, domain: str | None) -> bool:
    return domain is not None and (
        (who == "manager_1" and domain == "one.test") or (who == "manager_2" and domain == "two.test")
    )


def expected(spec: MethodSpec, row: Row, who: str) -> str:
    """The outcome the access policy and the target's ownership call for."""
    if who in INVALID_CREDENTIALS:
        return "unauthenticated"  # bad credentials fail every call, public ones too
    if who == "scoped_key":
        return "forbidden"
    if who in row.overrides:
        return row.overrides[who]
    access = spec.access
    if isinstance(access, Public):
        return row.allowed
    if who == "anonymous":
        return "unauthenticated"
    if isinstance(access, Internal):
        return "forbidden"
    if isinstance(access, Admin):
        return row.allowed if who == "admin" else "forbidden"
    if isinstance(access, Manager):
        if who == "admin":
            return row.allowed
        if who not in ("manager_1", "manager_2"):
            return "forbidden"
        if access.param is None or row.domain is None:
            return row.allowed
        return row.allowed if _manages(who, row.domain) else "not_found"
    if isinstance(access, Owner):
        if who == "admin" or who == row.owner or _manages(who, row.domain):
            return row.allowed
        return "not_found"
    if isinstance(access, UserSelf | Authenticated):
        if row.owner is None or who == row.owner:
            return row.allowed
        if isinstance(access, Authenticated) and who == "admin":
            return row.allowed
        return "not_found"
    raise AssertionError(f"{spec.name}: no expectation for access policy {access!r}")
