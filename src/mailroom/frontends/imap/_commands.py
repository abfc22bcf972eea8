"""The IMAP commands (RFC 9051 and the extensions of docs/imap.md), as a mixin of the session.

Each ``cmd_*`` takes the parsed command and returns the text of its tagged OK (or None for
the default), raising ``ParseError`` for BAD and a ``MailroomError`` (or :class:`No`) for NO.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from mailroom.domain import objectids
from mailroom.domain.mime import MimeStructure, scan
from mailroom.domain.mime import imap as imap_mime
from mailroom.domain.mime.imap import ImapValue
from mailroom.errors import CannotCalculateChanges, LimitExceeded, MailroomError, NotFound
from mailroom.frontends.imap import _downgrade, _envelopes, _snapshots
from mailroom.frontends.imap._headers import Headers, headers
from mailroom.frontends.imap._mailbox import (
    COLUMN_FLAGS,
    SPELLINGS,
    Message,
    Selected,
    Snapshot,
    flags_list,
    shown_keyword,
    stored_keyword,
    uid_set,
    unspelled,
)
from mailroom.frontends.imap._names import (
    BY_NAME,
    DELIMITER,
    decode_utf7,
    encode_utf7,
    imap_name,
    key_name,
    label_key,
    special_use,
)
from mailroom.frontends.imap._parser import Atom, Command, ParseError, Value, astring, number, sequence_set
from mailroom.frontends.imap._wire import astring as wire_astring
from mailroom.frontends.imap._wire import literal, nstring, qstring, render

if TYPE_CHECKING:
    from mailroom.auth.principal import Principal

#: Emails per registry call when a command names many.
CHUNK = 5000
#: Stored MIME structures asked for at a time during a FETCH.
STRUCTURES_PER_CALL = 200
#: Lines of a UID/FLAGS/MODSEQ FETCH gathered into one write.
PLAIN_LINES_PER_WRITE = 2000
#: A message's stored structure and the length of the trace lines in front of its blob.
Loaded = tuple[MimeStructure, int]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "HIGHESTMODSEQ", "RECENT", "DELETED")


class No(MailroomError):
    """A NO with this text."""

    code = "imap_no"


Handler = Callable[[Command], Awaitable[str | None]]


def _date(epoch: int) -> str:
    when = datetime.fromtimestamp(epoch, UTC)
    return f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year} {when:%H:%M:%S} +0000"


def _parse_date(text: str) -> datetime:
    """``d-Mon-yyyy`` (SEARCH) as midnight UTC."""
    try:
        day, month, year = text.split("-")
        return datetime(int(year), _MONTHS.index(month.capitalize()) + 1, int(day), tzinfo=UTC)
    except (ValueError, IndexError):
        raise ParseError("invalid date") from None


def _parse_datetime(text: str) -> datetime:
    """APPEND's date-time ``dd-Mon-yyyy hh:mm:ss +zzzz``."""
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        raise ParseError("invalid date-time") from None


class Commands:
    """The commands; :class:`~mailroom.frontends.imap._server.ImapSession` supplies I/O."""

    # Supplied by the session:
    principal: Principal | None
    user_id: int
    email: str
    tls: bool
    tls_context: Any
    plaintext_ok: bool
    max_append: int
    idle_limit: float
    mailroom: Any
    reader: Any

    def __init__(self) -> None:
        self.selected: Selected | None = None
        self.enabled: set[str] = set()
        self.condstore = False
        self.cache: OrderedDict[int, bytes] = OrderedDict()
        # Keyword spellings (``$Label1`` as first stored): read at the first SELECT, updated in
        # place; shown_keyword reads them through the connection task's context.
        self.spellings: dict[str, str] = {}
        self.spellings_read = False
        SPELLINGS.set(self.spellings)

    # Provided by the session (declared for the type checker).
    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def untagged(self, text: str | bytes) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        raise NotImplementedError

    async def call(self, name: str, params: Any) -> Any:
        raise NotImplementedError

    async def starttls(self) -> None:
        raise NotImplementedError

    async def authenticate(self, username: str, secret: str) -> str | None:
        raise NotImplementedError

    async def compress(self) -> None:
        raise NotImplementedError

    async def _line(self, seconds: float) -> bytes:
        raise NotImplementedError

    # -- state and capabilities --------------------------------------------------------

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    def capabilities(self) -> str:
        caps = ["IMAP4rev2", "IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE"]
        if self.principal is None:
            if not self.tls and self.tls_context is not None:
                caps.append("STARTTLS")
            caps.append("AUTH=PLAIN" if self.plaintext_ok else "LOGINDISABLED")
            return " ".join(caps)
        caps += [
            "UIDPLUS",
            "MOVE",
            "SPECIAL-USE",
            "UNSELECT",
            "ESEARCH",
            "SEARCHRES",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "STATUS=SIZE",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "CHILDREN",
            "OBJECTID",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "COMPRESS=DEFLATE",
            "SORT",
            "SORT=DISPLAY",
            "THREAD=REFERENCES",
            "UTF8=ACCEPT",
            f"APPENDLIMIT={self.max_append}",
        ]
        return " ".join(caps)

    def handler(self, name: str) -> Handler | None:
        anywhere = {"CAPABILITY", "NOOP", "LOGOUT", "ID"}
        before = {"STARTTLS", "LOGIN", "AUTHENTICATE"}
        selected_only = {
            "SORT",
            "THREAD",
            "FETCH",
            "STORE",
            "SEARCH",
            "COPY",
            "MOVE",
            "EXPUNGE",
            "CLOSE",
            "UNSELECT",
            "UID",
            "CHECK",
        }
        if name in anywhere:
            pass
        elif name in before:
            if self.principal is not None:
                return None
        elif self.principal is None or (name in selected_only and self.selected is None):
            return None
        method = getattr(self, "cmd_" + name.lower(), None)
        return method if callable(method) else None

    # -- any state -----------------------------------------------------------------------

    async def cmd_capability(self, command: Command) -> str | None:
        self.untagged("CAPABILITY " + self.capabilities())
        return None

    async def cmd_noop(self, command: Command) -> str | None:
        if self.selected is not None:
            await self.sync(expunge=True)
        return None

    async def cmd_check(self, command: Command) -> str | None:
        return await self.cmd_noop(command)

    async def cmd_logout(self, command: Command) -> str | None:
        from mailroom.frontends.imap._server import Closing

        self.untagged("BYE logging out")
        self.send(f"{command.tag} OK LOGOUT completed".encode())
        raise Closing

    async def cmd_compress(self, command: Command) -> str | None:
        if len(command.args) != 1 or not isinstance(command.args[0], Atom):
            raise ParseError("COMPRESS takes a mechanism")
        if command.args[0].upper() != "DEFLATE":
            raise No("[CANNOT] only DEFLATE")
        if getattr(self, "compressed", False):
            raise No("[COMPRESSIONACTIVE] already compressed")
        self.send(f"{command.tag} OK DEFLATE active".encode())
        await self.compress()
        return _Silent.mark

    async def cmd_id(self, command: Command) -> str | None:
        self.untagged('ID ("name" "mailroom")')
        return None

    # -- not authenticated -------------------------------------------------------------

    async def cmd_starttls(self, command: Command) -> str | None:
        if self.tls or self.tls_context is None:
            raise No("TLS is already active" if self.tls else "TLS is not available")
        if command.args:
            raise ParseError("STARTTLS takes no arguments")
        self.send(f"{command.tag} OK begin TLS negotiation now".encode())
        await self.starttls()
        return _Silent.mark

    async def cmd_login(self, command: Command) -> str | None:
        if len(command.args) != 2:
            raise ParseError("LOGIN needs a user name and a password")
        if not self.plaintext_ok:
            raise No("[PRIVACYREQUIRED] use STARTTLS first")
        failure = await self.authenticate(astring(command.args[0]), astring(command.args[1]))
        if failure is not None:
            raise No(failure)
        return f"[CAPABILITY {self.capabilities()}] logged in"

    async def cmd_authenticate(self, command: Command) -> str | None:
        if not command.args or not isinstance(command.args[0], Atom):
            raise ParseError("AUTHENTICATE needs a mechanism")
        if command.args[0].upper() != "PLAIN":
            raise No("[CANNOT] unsupported mechanism")
        if not self.plaintext_ok:
            raise No("[PRIVACYREQUIRED] use STARTTLS first")
        if len(command.args) > 1:
            response = astring(command.args[1])
        else:
            self.send(b"+ ")
            await self.flush()
            response = (await self._line(60.0)).decode("ascii", "replace").strip()
        if response == "*":
            raise ParseError("authentication cancelled")
        if response == "=":
            response = ""
        try:
            decoded = base64.b64decode(response, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ParseError("invalid base64") from None
        parts = decoded.split("\x00")
        if len(parts) != 3:
            raise ParseError("invalid PLAIN response")
        authzid, user, password = parts
        if authzid and authzid.lower() != user.lower():
            raise No("[AUTHORIZATIONFAILED] cannot act as another user")
        failure = await self.authenticate(user, password)
        if failure is not None:
            raise No(failure)
        return f"[CAPABILITY {self.capabilities()}] logged in"

    # -- authenticated: mailboxes --------------------------------------------------------

    @property
    def utf8(self) -> bool:
        """Mailbox names and strings in UTF-8 (IMAP4rev2, or UTF8=ACCEPT: RFC 6855), not
        modified UTF-7."""
        return self.rev2 or "UTF8=ACCEPT" in self.enabled

    @property
    def utf8_headers(self) -> bool:
        """Raw UTF-8 header text may go out as it is stored (the client enabled UTF8=ACCEPT);
        otherwise it is sent in 7 bits (_downgrade.py, RFC 6855 §5)."""
        return "UTF8=ACCEPT" in self.enabled

    def _decode_name(self, value: Value, *, new: bool = False) -> str:
        """A mailbox name from the client. Not valid modified UTF-7 (``&'`` say): a name to
        create is refused (NO); any other is taken as it is, so SELECT answers NO and a LIST
        pattern matches nothing (as Dovecot does; imaptest's atoms test)."""
        name = astring(value)
        if not self.utf8:
            try:
                name = decode_utf7(name)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                if new:
                    raise No("[CANNOT] the mailbox name is not valid modified UTF-7") from None
        return name

    def _encode_name(self, name: str) -> bytes:
        if self.utf8:
            return wire_astring(name, utf8=True)
        return wire_astring(encode_utf7(name))

    async def mailboxes(
        self, *, sizes: bool = True, counts: bool = False
    ) -> tuple[int, list[dict[str, Any]]]:
        result = await self.call("mail.imap.mailboxes", {"sizes": sizes, "counts": counts})
        return int(result["highest_modseq"]), list(result["mailboxes"])

    async def find(
        self, name: str, *, sizes: bool = False, target: bool = False, counts: bool = False
    ) -> dict[str, Any]:
        """The mailbox of that name (its ``size`` only with ``sizes``: a sum over every
        message, which SELECT, APPEND, COPY and the others do not need). ``target``: the
        destination of APPEND, COPY or MOVE, whose absence is ``[TRYCREATE]`` (RFC 9051 §7.1)."""
        _, boxes = await self.mailboxes(sizes=sizes, counts=counts)
        label = BY_NAME.get(name.upper())
        for box in boxes:
            if label is not None and box["kind"] == "system" and box["name"] == label:
                return box
            if box["kind"] == "user" and box["name"] == name:
                return box
        raise No(f"[{'TRYCREATE' if target else 'NONEXISTENT'}] no mailbox {name[:100]}")

    def _condstore_on(self) -> None:
        """A CONDSTORE-enabling command: with a mailbox selected, the first one tells its
        HIGHESTMODSEQ (RFC 7162 §3.1)."""
        if not self.condstore and self.selected is not None:
            self.untagged(f"OK [HIGHESTMODSEQ {self.selected.highest_modseq}] highest")
        self.condstore = True

    async def cmd_enable(self, command: Command) -> str | None:
        done = []
        for arg in command.args:
            if not isinstance(arg, Atom):
                raise ParseError("ENABLE takes capability names")
            cap = arg.upper()
            if cap in ("IMAP4REV2", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT") and cap not in self.enabled:
                self.enabled.add(cap)
                done.append(str(arg))
                if cap in ("CONDSTORE", "QRESYNC"):
                    self._condstore_on()
        self.untagged("ENABLED" + "".join(" " + d for d in done))
        return None

    async def cmd_namespace(self, command: Command) -> str | None:
        self.untagged(f'NAMESPACE (("" "{DELIMITER}")) NIL NIL')
        return None

    async def cmd_subscribe(self, command: Command) -> str | None:
        if len(command.args) != 1:
            raise ParseError("SUBSCRIBE takes a mailbox")
        await self._subscribe(self._decode_name(command.args[0]), True)
        return None

    async def cmd_unsubscribe(self, command: Command) -> str | None:
        if len(command.args) != 1:
            raise ParseError("UNSUBSCRIBE takes a mailbox")
        await self._subscribe(self._decode_name(command.args[0]), False)
        return None

    async def _subscribe(self, name: str, subscribed: bool) -> None:
        key = label_key(name.rstrip(DELIMITER))
        if not key or len(key) > 255:
            raise No("[CANNOT] invalid mailbox name")
        try:
            await self.call("mail.imap.subscribe", {"name": key, "subscribed": subscribed})
        except LimitExceeded:
            raise No("[LIMIT] too many subscriptions") from None

    async def _subscribed(self, boxes: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        """The IMAP names subscribed that have a mailbox, and those that have none."""
        found = await self.call("mail.imap.subscriptions", {})
        off, on = set(found["unsubscribed"]), set(found["subscribed"])
        keys = {str(b["name"]) for b in boxes}
        existing = {imap_name(b["name"], b["kind"]) for b in boxes if b["name"] not in off}
        return existing, {key_name(k) for k in on - keys}

    async def cmd_lsub(self, command: Command) -> str | None:
        return await self._list(command, lsub=True)

    async def cmd_list(self, command: Command) -> str | None:
        return await self._list(command, lsub=False)

    async def _list(self, command: Command, *, lsub: bool) -> str | None:
        args = list(command.args)
        select_opts: list[str] = []
        first = args[0] if args else None
        if isinstance(first, list):
            args.pop(0)
            select_opts = [str(a).upper() for a in first if isinstance(a, str)]
        if len(args) < 2:
            raise ParseError("LIST needs a reference and a pattern")
        reference = self._decode_name(args[0])
        patterns_value = args[1]
        patterns = (
            [self._decode_name(p) for p in patterns_value]
            if isinstance(patterns_value, list)
            else [self._decode_name(patterns_value)]
        )
        return_opts: list[str] = []
        status_items: list[str] = []
        if len(args) >= 4 and isinstance(args[2], Atom) and args[2].upper() == "RETURN":
            ret = args[3]
            if not isinstance(ret, list):
                raise ParseError("RETURN needs a list")
            i = 0
            while i < len(ret):
                item = str(ret[i]).upper()
                return_opts.append(item)
                if item == "STATUS" and i + 1 < len(ret) and isinstance(ret[i + 1], list):
                    status_items = [str(s).upper() for s in ret[i + 1]]  # type: ignore[union-attr]
                    i += 1
                i += 1
        # RFC 5258 §3: unknown options, and RECURSIVEMATCH without another selection option,
        # are BAD.
        unknown = set(select_opts) - {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
        if unknown or (
            select_opts
            and set(select_opts) <= {"RECURSIVEMATCH", "REMOTE"}
            and "RECURSIVEMATCH" in select_opts
        ):
            raise ParseError("unknown or incomplete LIST selection options")
        if set(return_opts) - {"SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"}:
            raise ParseError("unknown LIST return option")
        verb = "LSUB" if lsub else "LIST"
        if patterns == [""]:
            self.untagged(f'{verb} (\\Noselect) "{DELIMITER}" ""')
            return None
        highest, boxes = await self.mailboxes(counts=bool({"RECENT", "DELETED"} & set(status_items)))
        names: dict[str, dict[str, Any] | None] = {imap_name(b["name"], b["kind"]): b for b in boxes}
        only_subscribed = lsub or "SUBSCRIBED" in select_opts
        show_subscribed = only_subscribed or "SUBSCRIBED" in return_opts
        subscribed: set[str] = set()
        if show_subscribed:
            subscribed, missing = await self._subscribed(boxes)
            for name in missing:
                names.setdefault(name, None)
        special_only = "SPECIAL-USE" in select_opts
        for name in sorted(names, key=lambda n: (n != "INBOX", n)):
            box = names[name]
            if not any(_matches(reference + p, name) for p in patterns):
                continue
            if only_subscribed and name not in subscribed and box is not None:
                continue
            use = special_use(box["name"], box["kind"]) if box is not None else ""
            if special_only and not use:
                continue
            attrs = []
            if box is None:
                attrs.append("\\Noselect" if lsub else "\\NonExistent")
            else:
                has_children = any(other.startswith(name + DELIMITER) for other in names)
                attrs.append("\\HasChildren" if has_children else "\\HasNoChildren")
            if show_subscribed and not lsub and (box is None or name in subscribed):
                attrs.append("\\Subscribed")
            if use and ("SPECIAL-USE" in return_opts or not return_opts or special_only):
                attrs.append(use)
            line = f'{verb} ({" ".join(attrs)}) "{DELIMITER}" '.encode() + self._encode_name(name)
            self.untagged(line)
            if status_items and not lsub and box is not None:
                self.untagged(self._status_line(name, box, status_items, highest))
        return None

    def _status_line(self, name: str, box: dict[str, Any], items: list[str], highest: int) -> bytes:
        values = []
        for item in items:
            if item == "MESSAGES":
                values.append(f"MESSAGES {box['messages']}")
            elif item == "UIDNEXT":
                values.append(f"UIDNEXT {box['uidnext']}")
            elif item == "UIDVALIDITY":
                values.append(f"UIDVALIDITY {box['uidvalidity']}")
            elif item == "UNSEEN":
                values.append(f"UNSEEN {box['unseen']}")
            elif item == "SIZE":
                values.append(f"SIZE {box['size']}")
            elif item == "HIGHESTMODSEQ":
                values.append(f"HIGHESTMODSEQ {highest}")
            elif item == "RECENT":
                values.append(f"RECENT {box['recent']}")
            elif item == "DELETED":
                values.append(f"DELETED {box['deleted']}")
            elif item == "APPENDLIMIT":
                values.append(f"APPENDLIMIT {self.max_append}")
            elif item == "MAILBOXID":
                values.append(f"MAILBOXID ({objectids.mailbox_id(box['id'])})")
            else:
                raise ParseError(f"unknown status item {item[:20]}")
        return b"STATUS " + self._encode_name(name) + b" (" + " ".join(values).encode() + b")"

    async def cmd_status(self, command: Command) -> str | None:
        if len(command.args) != 2 or not isinstance(command.args[1], list):
            raise ParseError("STATUS needs a mailbox and a list of items")
        name = self._decode_name(command.args[0])
        items = [str(i).upper() for i in command.args[1]]
        box = await self.find(name, sizes="SIZE" in items, counts=bool({"RECENT", "DELETED"} & set(items)))
        highest, _ = await self.mailboxes(sizes=False)
        if any(i == "HIGHESTMODSEQ" for i in items):
            self._condstore_on()
        shown = imap_name(box["name"], box["kind"])
        self.untagged(self._status_line(shown, box, items, highest))
        return None

    async def cmd_create(self, command: Command) -> str | None:
        if not command.args:
            raise ParseError("CREATE needs a mailbox name")
        name = self._decode_name(command.args[0], new=True).rstrip(DELIMITER)
        if not name or name.upper() in BY_NAME:
            raise No("[ALREADYEXISTS] that mailbox exists")
        await self.call("mail.labels.create", {"label": {"name": name}})
        return None

    async def cmd_delete(self, command: Command) -> str | None:
        if len(command.args) != 1:
            raise ParseError("DELETE needs a mailbox name")
        box = await self.find(self._decode_name(command.args[0]))
        if box["kind"] == "system":
            raise No("[CANNOT] system mailboxes cannot be deleted")
        await self.call("mail.labels.delete", {"id": box["id"]})
        if self.selected is not None and self.selected.label_id == box["id"]:
            self.selected = None  # deleting the selected mailbox leaves the selected state
        return None

    async def cmd_rename(self, command: Command) -> str | None:
        if len(command.args) != 2:
            raise ParseError("RENAME needs two mailbox names")
        box = await self.find(self._decode_name(command.args[0]))
        new = self._decode_name(command.args[1], new=True).rstrip(DELIMITER)
        if not new or new.upper() in BY_NAME:
            raise No("[ALREADYEXISTS] that mailbox exists")
        if box["kind"] == "system" and imap_name(box["name"], box["kind"]) == "INBOX":
            return await self._rename_inbox(int(box["id"]), new)
        if box["kind"] == "system":
            raise No("[CANNOT] system mailboxes cannot be renamed")
        # The subscription choice moves with the mailbox (as Dovecot does): it is kept by
        # label id (services mail.imap.subscribe), its children's too. The mailboxes below it
        # go with it (RFC 9051 §6.3.6): mail.labels.update renames the label's subtree.
        await self.call("mail.labels.update", {"id": box["id"], "label": {"name": new}})
        return None

    async def _rename_inbox(self, inbox: int, new: str) -> str:
        """RENAME INBOX (RFC 9051 §6.3.6): a new mailbox gets INBOX's messages, INBOX stays,
        empty. Labels: the messages take the new label and lose the inbox one (a MOVE)."""
        created = await self.call("mail.labels.create", {"label": {"name": new}})
        view = await self.call("mail.imap.view", {"label": inbox})
        ids = list(view["email_ids"])
        for start in range(0, len(ids), CHUNK):
            params = {"email_ids": ids[start : start + CHUNK], "to_label": created["id"], "from_label": inbox}
            await self.call("mail.imap.copy", params)
        if self.selected is not None and self.selected.label_id == inbox:
            await self.sync(expunge=True)
        return "RENAME completed"

    # -- QUOTA (RFC 9208): one root, "", for the whole account -----------------------------

    async def _quota_line(self) -> str:
        quota = await self.call("mail.imap.quota", {})
        if not quota["limit"]:
            return 'QUOTA "" ()'
        return f'QUOTA "" (STORAGE {(quota["used"] + 1023) // 1024} {quota["limit"] // 1024})'

    async def cmd_getquotaroot(self, command: Command) -> str | None:
        if len(command.args) != 1:
            raise ParseError("GETQUOTAROOT takes a mailbox")
        name = self._decode_name(command.args[0])
        await self.find(name)
        self.untagged(b"QUOTAROOT " + self._encode_name(name) + b' ""')
        self.untagged(await self._quota_line())
        return None

    async def cmd_getquota(self, command: Command) -> str | None:
        if len(command.args) != 1:
            raise ParseError("GETQUOTA takes a quota root")
        if astring(command.args[0]) != "":
            raise No('[NONEXISTENT] the only quota root is ""')
        self.untagged(await self._quota_line())
        return None

    async def cmd_setquota(self, command: Command) -> str | None:
        raise No("[NOPERM] quotas are set by the administrator")

    # -- SELECT and the sync ---------------------------------------------------------------

    async def cmd_select(self, command: Command) -> str | None:
        return await self._select(command, readonly=False)

    async def cmd_examine(self, command: Command) -> str | None:
        return await self._select(command, readonly=True)

    async def _select(self, command: Command, *, readonly: bool) -> str | None:
        if not command.args:
            raise ParseError("SELECT needs a mailbox")
        if self.selected is not None:
            self.selected = None
            if self.qresync:
                self.untagged("OK [CLOSED] previous mailbox closed")
        name = self._decode_name(command.args[0])
        qresync: list[Value] | None = None
        if len(command.args) > 1:
            params = command.args[1]
            if not isinstance(params, list):
                raise ParseError("SELECT parameters must be a list")
            i = 0
            while i < len(params):
                key = str(params[i]).upper()
                if key == "CONDSTORE":
                    self._condstore_on()
                elif key == "QRESYNC" and i + 1 < len(params) and isinstance(params[i + 1], list):
                    if not self.qresync:
                        raise ParseError("QRESYNC must be enabled first")
                    qresync = params[i + 1]  # type: ignore[assignment]
                    i += 1
                else:
                    raise ParseError("unknown SELECT parameter")
                i += 1
        box = await self.find(name)
        selected = Selected(
            label_id=int(box["id"]),
            name=imap_name(box["name"], box["kind"]),
            readonly=readonly,
            uidvalidity=0,
            uidnext=0,
            highest_modseq=0,
        )
        selected.load(*await self._snapshot(int(box["id"])))
        if not self.spellings_read or any(
            k not in self.spellings and shown_keyword(k) == k for k in selected.announced
        ):
            await self._read_spellings()
        flags = flags_list(selected.announced)
        self.untagged(f"{len(selected.uids)} EXISTS")
        if not self.rev2:
            # RFC 3501 §2.3.2: recent in the one session first told of it; EXAMINE only looks.
            first = await self._recent(selected, selected.uidnext)
            self.untagged(f"{selected.mark_recent(first)} RECENT")
        self.untagged(f"FLAGS ({flags})")
        perm = flags + " \\*"
        self.untagged(f"OK [PERMANENTFLAGS ({perm if not readonly else ''})] stored flags")
        if not self.rev2:
            # RFC 3501 §6.3.1: the first unseen message (RFC 9051 dropped it).
            unseen = next((i for i, u in enumerate(selected.uids, 1) if not selected.messages[u].bits & 1), 0)
            if unseen:
                self.untagged(f"OK [UNSEEN {unseen}] first unseen")
        self.untagged(f"OK [UIDVALIDITY {selected.uidvalidity}] UIDs valid")
        self.untagged(f"OK [UIDNEXT {selected.uidnext}] predicted next UID")
        self.untagged(f"OK [HIGHESTMODSEQ {selected.highest_modseq}] highest")
        self.untagged(f"OK [MAILBOXID ({objectids.mailbox_id(box['id'])})] mailbox id")
        self.selected = selected
        if qresync is not None:
            await self._qresync(selected, qresync)
        return (
            f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {'EXAMINE' if readonly else 'SELECT'} completed"
        )

    async def _snapshot(self, label_id: int) -> tuple[Snapshot, int]:
        """The whole mailbox and its UIDNEXT: the worker's kept snapshot of it when nothing in
        it changed since (one "what changed since" read, along an index), else read whole."""
        cache = _snapshots.cache_of(self.mailroom.runtime.db)
        kept = _snapshots.get(cache, self.user_id, label_id)
        if kept is not None:
            with contextlib.suppress(CannotCalculateChanges):
                params = {"label": label_id, "changed_since": kept.highest_modseq}
                changes = await self.call("mail.imap.view", params)
                unchanged = not (changes["uids"] or changes["vanished"] or changes["keywords"])
                if unchanged and int(changes["uidvalidity"]) == kept.uidvalidity:
                    highest = int(changes["highest_modseq"])
                    if highest != kept.highest_modseq:  # other mailboxes changed: still this one
                        kept = _snapshots.put(cache, dataclasses.replace(kept, highest_modseq=highest))
                    return kept, int(changes["uidnext"])
        view = await self.call("mail.imap.view", {"label": label_id})
        return _snapshots.put(cache, Snapshot.of(self.user_id, view)), int(view["uidnext"])

    async def _read_spellings(self) -> None:
        self.spellings.clear()
        self.spellings.update(await self.call("mail.imap.keyword_spellings", {}))
        self.spellings_read = True

    async def _keep_spellings(self, flags: Iterable[str]) -> None:
        """Remember the case of mixed-case keywords this session stores (the first wins)."""
        new = unspelled(flags, self.spellings)
        if new:
            kept = await self.call("mail.imap.keep_spellings", {"keywords": new[:50]})
            self.spellings.clear()
            self.spellings.update(kept)

    async def _qresync(self, selected: Selected, params: list[Value]) -> None:
        if len(params) < 2:
            raise ParseError("QRESYNC needs UIDVALIDITY and MODSEQ")
        uidvalidity = number(params[0])
        modseq = number(params[1], limit=2**63 - 1)
        known: list[int] | None = None
        if len(params) > 2 and isinstance(params[2], Atom):
            ranges = sequence_set(params[2], allow_saved=False)
            assert ranges is not None
            known = selected.by_uid(ranges) if ranges else []
        if uidvalidity != selected.uidvalidity or modseq == 0:
            return
        try:
            view = await self.call("mail.imap.view", {"label": selected.label_id, "changed_since": modseq})
        except CannotCalculateChanges:
            return
        gone = [u for u in view["vanished"] if u not in selected.messages]
        if known is not None:
            gone = [u for u in gone if any(True for _ in [u])]
        if gone:
            self.untagged(f"VANISHED (EARLIER) {uid_set(sorted(set(gone)))}")
        for uid in view["uids"]:
            message = selected.messages.get(uid)
            if message is not None:
                self.untagged(self._fetch_line(selected, uid, message, ["UID", "FLAGS", "MODSEQ"]))

    async def sync(self, *, expunge: bool) -> None:
        """Tell the client what changed in the selected mailbox since the last sync."""
        selected = self.selected
        if selected is None:
            return
        try:
            view = await self.call(
                "mail.imap.view", {"label": selected.label_id, "changed_since": selected.highest_modseq}
            )
            vanished = [u for u in view["vanished"] if u in selected.messages]
        except NotFound:
            # Another session deleted the selected mailbox: no state to go on with (as Dovecot).
            from mailroom.frontends.imap._server import Closing

            self.untagged("BYE selected mailbox was deleted, have to disconnect")
            raise Closing from None
        except CannotCalculateChanges:
            view = await self.call("mail.imap.view", {"label": selected.label_id})
            present = set(view["uids"])
            vanished = [u for u in selected.uids if u not in present]
        selected.pending_expunge.update(vanished)
        last = selected.uids[-1] if selected.uids else 0
        changed: list[int] = []
        added = 0
        keywords: dict[int, set[str]] = {}
        for kw_uid, keyword in view["keywords"]:
            keywords.setdefault(kw_uid, set()).add(keyword)
        for uid, e, t, m, f, s, r in zip(
            view["uids"],
            view["email_ids"],
            view["thread_ids"],
            view["modseqs"],
            view["flags"],
            view["sizes"],
            view["received"],
            strict=True,
        ):
            message = selected.messages.get(uid)
            now_keywords = keywords.get(uid, set())
            if message is not None:
                differs = message.bits != f or message.keywords != now_keywords
                if differs or (self.condstore and message.modseq != m):
                    message.bits = f
                    message.keywords = now_keywords
                    message.modseq = m
                    changed.append(uid)
                else:
                    message.modseq = m
            elif uid > last and uid not in selected.pending_expunge:
                selected.uids.append(uid)
                selected.messages[uid] = Message(e, t, m, f, s, r, now_keywords)
                added += 1
        if expunge and selected.pending_expunge:
            self._announce_expunged(selected, sorted(selected.pending_expunge))
        new_keywords = {k for ks in keywords.values() for k in ks} - selected.announced
        if new_keywords:
            # A keyword no FLAGS response named yet: the client learns of it before a FETCH
            # shows it (RFC 9051 §7.3.5; imaptest checks this).
            selected.announced |= new_keywords
            if any(k not in self.spellings and shown_keyword(k) == k for k in new_keywords):
                await self._read_spellings()  # another session may have spelled it
            listed = flags_list(selected.announced)
            self.untagged(f"FLAGS ({listed})")
            if not selected.readonly:
                self.untagged(f"OK [PERMANENTFLAGS ({listed} \\*)] stored flags")
        if added:
            self.untagged(f"{len(selected.uids)} EXISTS")
            if not self.rev2:
                first = await self._recent(selected, selected.uids[-1] + 1)
                self.untagged(f"{selected.mark_recent(first, since=last)} RECENT")
        for uid in changed:
            if uid in selected.messages:
                items = ["FLAGS", "UID"]
                if self.condstore:
                    items.append("MODSEQ")
                self.untagged(self._fetch_line(selected, uid, selected.messages[uid], items))
        selected.uidnext = max(selected.uidnext, int(view["uidnext"]))
        selected.highest_modseq = max(selected.highest_modseq, int(view["highest_modseq"]))

    async def _recent(self, selected: Selected, below: int) -> int:
        """The first UID recent in this session: those below ``below`` are claimed for it
        (read-write) or only looked at (EXAMINE)."""
        params = {"label": selected.label_id, "below": max(1, below), "claim": not selected.readonly}
        return int(await self.call("mail.imap.recent", params))

    def _announce_expunged(self, selected: Selected, uids: list[int]) -> None:
        present = [u for u in uids if u in selected.messages]
        if self.qresync:
            for uid in present:
                selected.remove(uid)
            if present:
                self.untagged(f"VANISHED {uid_set(present)}")
        else:
            for uid in sorted(present, reverse=True):
                self.untagged(f"{selected.remove(uid)} EXPUNGE")
        selected.pending_expunge.difference_update(uids)

    async def cmd_unselect(self, command: Command) -> str | None:
        self.selected = None
        return None

    async def cmd_close(self, command: Command) -> str | None:
        selected = self.selected
        assert selected is not None
        if not selected.readonly:
            deleted = [u for u, m in selected.messages.items() if "$deleted" in m.keywords]
            await self._expunge_uids(selected, deleted, announce=False)
        self.selected = None
        return None

    # -- messages: which ones --------------------------------------------------------------

    def _set(self, selected: Selected, value: Value, *, uid: bool) -> list[int]:
        ranges = sequence_set(value)
        if ranges is None:  # "$"
            return [u for u in selected.saved if u in selected.messages]
        return selected.by_uid(ranges) if uid else selected.by_sequence(ranges)

    async def cmd_uid(self, command: Command) -> str | None:
        if not command.args or not isinstance(command.args[0], Atom):
            raise ParseError("UID needs a command")
        sub = command.args[0].upper()
        inner = Command(command.tag, sub, command.args[1:])
        if sub == "FETCH":
            return await self._fetch(inner, uid=True)
        if sub == "STORE":
            return await self._store(inner, uid=True)
        if sub == "SEARCH":
            return await self._search(inner, uid=True)
        if sub == "SORT":
            return await self._sort(inner, uid=True)
        if sub == "THREAD":
            return await self._thread(inner, uid=True)
        if sub in ("COPY", "MOVE"):
            return await self._copy(inner, uid=True, move=sub == "MOVE")
        if sub == "EXPUNGE":
            selected = self.selected
            assert selected is not None
            if not inner.args:
                raise ParseError("UID EXPUNGE needs a UID set")
            chosen = set(self._set(selected, inner.args[0], uid=True))
            deleted = [
                u for u in selected.uids if u in chosen and "$deleted" in selected.messages[u].keywords
            ]
            await self._expunge_uids(selected, deleted, announce=True)
            return None
        raise ParseError("unknown UID command")

    # -- FETCH -------------------------------------------------------------------------------

    async def cmd_fetch(self, command: Command) -> str | None:
        return await self._fetch(command, uid=False)

    async def _fetch(self, command: Command, *, uid: bool) -> str | None:
        selected = self.selected
        assert selected is not None
        if len(command.args) < 2:
            raise ParseError("FETCH needs a set and items")
        uids = self._set(selected, command.args[0], uid=uid)
        items = _fetch_items(command.args[1])
        changed_since: int | None = None
        vanished = False
        if len(command.args) > 2:
            mods = command.args[2]
            if not isinstance(mods, list):
                raise ParseError("FETCH modifiers must be a list")
            i = 0
            while i < len(mods):
                key = str(mods[i]).upper()
                if key == "CHANGEDSINCE" and i + 1 < len(mods):
                    changed_since = number(mods[i + 1], limit=2**63 - 1)
                    self._condstore_on()
                    i += 2
                elif key == "VANISHED":
                    if not (uid and self.qresync):
                        raise ParseError("VANISHED needs UID FETCH and QRESYNC")
                    vanished = True
                    i += 1
                else:
                    raise ParseError("unknown FETCH modifier")
        if vanished and changed_since is None:
            raise ParseError("VANISHED needs CHANGEDSINCE")
        if uid and "UID" not in items:
            items.insert(0, "UID")
        if changed_since is not None and "MODSEQ" not in items:
            items.append("MODSEQ")
        if any(i.startswith("MODSEQ") for i in items):
            self._condstore_on()
        if vanished and changed_since is not None:
            view = await self.call(
                "mail.imap.view", {"label": selected.label_id, "changed_since": changed_since}
            )
            ranges = sequence_set(command.args[0])
            wanted = set(view["vanished"])
            if ranges is not None:
                wanted = {u for u in wanted if any(_in_range(u, r) for r in ranges)}
            gone = sorted(u for u in wanted if u not in selected.messages)
            if gone:
                self.untagged(f"VANISHED (EARLIER) {uid_set(gone)}")
        sets_seen = not selected.readonly and any(
            (i.startswith("BODY[") or i.startswith("BINARY[") or i in ("RFC822", "RFC822.TEXT"))
            for i in items
        )
        mark_seen: list[int] = []
        if changed_since is None and selected.pristine() is not None:
            chosen = uids  # a pristine session's UIDs are all its messages (none expunged)
        else:
            chosen = [
                u
                for u in uids
                if u in selected.messages
                and (changed_since is None or selected.messages[u].modseq > changed_since)
            ]
        need_structure = any((i in _STRUCTURE_ITEMS or "[" in i) and not _whole(i) for i in items)
        need_bytes = any(i in _BYTES_ITEMS or "[" in i for i in items)
        # ENVELOPE alone of the structure items: served from the worker's rendered ones
        # (_envelopes), the structure read only for those not there yet.
        envelope_only = (
            need_structure and not need_bytes and _PLAIN_ITEMS.union(("ENVELOPE",)).issuperset(items)
        )
        envelopes = _envelopes.cache_of(self.mailroom.runtime.db)
        if _PLAIN_ITEMS.issuperset(items):
            await self._fetch_plain(selected, chosen, items)
            chosen = []
        for start in range(0, len(chosen), STRUCTURES_PER_CALL):
            batch = chosen[start : start + STRUCTURES_PER_CALL]
            loaded: dict[int, Loaded] = {}
            to_read = [selected.messages[u].email_id for u in batch]
            if envelope_only:
                # (a rendered one with 8-bit text is re-rendered in 7 bits from the structure)
                seven_bit = not self.utf8_headers
                to_read = [
                    e for e in to_read if (c := envelopes.get(e)) is None or (seven_bit and not c.isascii())
                ]
            if need_structure and to_read:
                loaded = await self._structures(to_read)
            for count, message_uid in enumerate(batch, 1):
                message = selected.messages[message_uid]
                found = loaded.get(message.email_id)
                try:
                    raw = await self._raw(message.email_id) if need_bytes else None
                    cached_envelope = envelopes.get(message.email_id) if envelope_only else None
                    if (
                        need_structure
                        and found is None
                        and not (
                            cached_envelope is not None and (self.utf8_headers or cached_envelope.isascii())
                        )
                    ):
                        found = (scan(raw if raw is not None else await self._raw(message.email_id)), 0)
                except NotFound:
                    continue  # destroyed by another session; its EXPUNGE is still to be sent
                if sets_seen and not message.bits & 1:
                    mark_seen.append(message_uid)
                self.untagged(self._fetch_line(selected, message_uid, message, items, found, raw))
                if count % 100 == 0:
                    await self.flush()
        if mark_seen:
            await self._set_flags(selected, mark_seen, {"seen": True})
            await self.sync(expunge=False)
        else:
            await self.sync(expunge=uid)
        return None

    async def _fetch_plain(self, selected: Selected, chosen: list[int], items: list[str]) -> None:
        """FETCH of UID, FLAGS and MODSEQ only (a client's flag sync of the whole mailbox): the
        answer straight from the session's view, each line formatted in one step and written in
        large blocks."""
        snapshot = selected.pristine()
        if snapshot is not None and len(chosen) == len(selected.uids):
            # The whole mailbox as the worker's snapshot holds it: rendered once, kept there.
            self.send(snapshot.render_fetch(items))
            return
        uids = selected.uids
        messages = selected.messages
        block: list[bytes] = []
        for uid in chosen:
            message = messages[uid]
            fields: list[bytes] = []
            for item in items:
                if item == "UID":
                    fields.append(b"UID %d" % uid)
                elif item == "FLAGS":
                    fields.append(message.flags_item())
                else:
                    fields.append(b"MODSEQ (%d)" % message.modseq)
            block.append(b"* %d FETCH (%b)\r\n" % (bisect_left(uids, uid) + 1, b" ".join(fields)))
            if len(block) == PLAIN_LINES_PER_WRITE:
                self.send(b"".join(block))
                block.clear()
                await self.flush()
        if block:
            self.send(b"".join(block))

    async def _structures(self, email_ids: list[int]) -> dict[int, Loaded]:
        """The stored MIME structures (and trace sizes) of these emails."""
        found = await self.call("mail.imap.structures", {"email_ids": email_ids})
        out: dict[int, Loaded] = {}
        for item in found:
            structure = MimeStructure.from_json(item["structure"])
            if structure is not None:
                out[int(item["email_id"])] = (structure, int(item["trace_size"]))
        return out

    async def _raw(self, email_id: int) -> bytes:
        """The message as served (trace lines and blob), a few kept per session."""
        cached = self.cache.get(email_id)
        if cached is not None:
            self.cache.move_to_end(email_id)
            return cached
        download = await self.call("mail.emails.raw", {"id": email_id})
        raw = bytes(download.content) if hasattr(download, "content") else bytes(download)
        self.cache[email_id] = raw
        while len(self.cache) > 8:
            self.cache.popitem(last=False)
        return raw

    async def _headers(self, email_id: int) -> Headers:
        """The message's header fields (SEARCH HEADER, BCC, SENT*)."""
        return headers(await self._raw(email_id))

    def _fetch_line(
        self,
        selected: Selected,
        uid: int,
        message: Message,
        items: list[str],
        loaded: Loaded | None = None,
        raw: bytes | None = None,
    ) -> bytes:
        out: list[bytes] = []
        for item in items:
            if item == "UID":
                out.append(f"UID {uid}".encode())
            elif item == "FLAGS":
                out.append(f"FLAGS ({' '.join(message.flags())})".encode())
            elif item == "INTERNALDATE":
                out.append(f'INTERNALDATE "{_date(message.received)}"'.encode())
            elif item == "RFC822.SIZE":
                size = len(raw) if raw is not None else message.size
                out.append(f"RFC822.SIZE {size}".encode())
            elif item == "MODSEQ":
                out.append(f"MODSEQ ({message.modseq})".encode())
            elif item == "EMAILID":
                out.append(f"EMAILID ({objectids.email_id(message.email_id)})".encode())
            elif item == "THREADID":
                out.append(f"THREADID ({objectids.thread_id(message.thread_id)})".encode())
            elif item == "SAVEDATE":
                out.append(f'SAVEDATE "{_date(message.received)}"'.encode())
            elif item == "RFC822":
                assert raw is not None
                out.append(b"RFC822 " + literal(raw))
            elif item == "ENVELOPE":
                envelopes = _envelopes.cache_of(self.mailroom.runtime.db)
                cached = _envelopes.get(envelopes, message.email_id)
                if cached is None:
                    assert loaded is not None
                    cached = _envelopes.put(envelopes, message.email_id, _structure_item(item, loaded, raw))
                if not self.utf8_headers and not cached.isascii():
                    assert loaded is not None
                    cached = _structure_item(item, loaded, raw, seven_bit=True)
                out.append(cached)
            elif _whole(item):
                assert raw is not None
                out.append(_whole_item(item, raw))
            else:
                assert loaded is not None
                out.append(_structure_item(item, loaded, raw, seven_bit=not self.utf8_headers))
        seq = selected.seq_of(uid)
        return f"{seq} FETCH (".encode() + b" ".join(out) + b")"

    # -- STORE -------------------------------------------------------------------------------

    async def cmd_store(self, command: Command) -> str | None:
        return await self._store(command, uid=False)

    async def _store(self, command: Command, *, uid: bool) -> str | None:
        selected = self.selected
        assert selected is not None
        if selected.readonly:
            raise No("[READ-ONLY] mailbox is read-only")
        args = list(command.args)
        if len(args) < 3:
            raise ParseError("STORE needs a set, an action and flags")
        uids = self._set(selected, args[0], uid=uid)
        unchanged_since: int | None = None
        if isinstance(args[1], list):
            mods = args.pop(1)
            assert isinstance(mods, list)
            if len(mods) != 2 or str(mods[0]).upper() != "UNCHANGEDSINCE":
                raise ParseError("unknown STORE modifier")
            unchanged_since = number(mods[1], limit=2**63 - 1)
            self._condstore_on()
        if len(args) < 3 or not isinstance(args[1], Atom):
            raise ParseError("STORE needs an action")
        action = args[1].upper()
        silent = action.endswith(".SILENT")
        action = action.removesuffix(".SILENT")
        if action not in ("FLAGS", "+FLAGS", "-FLAGS"):
            raise ParseError("STORE action must be FLAGS, +FLAGS or -FLAGS")
        raw_flags = args[2] if isinstance(args[2], list) else args[2:]
        flags: list[str] = []
        for f in raw_flags:
            if not isinstance(f, Atom):
                raise ParseError("flags must be atoms")
            flags.append(_canonical_flag(f))
        modified: list[int] = []
        if unchanged_since is not None:
            modified = [u for u in uids if selected.messages[u].modseq > unchanged_since]
            uids = [u for u in uids if u not in modified]
        columns = {"\\Seen": "seen", "\\Flagged": "flagged", "\\Draft": "draft"}
        params: dict[str, Any] = {}
        for flag, key in columns.items():
            if action == "FLAGS":
                params[key] = flag in flags
            elif flag in flags:
                params[key] = action == "+FLAGS"
        others = sorted({stored_keyword(f) for f in flags if f not in columns and f != "\\Recent"})
        await self._keep_spellings(flags)
        if action == "FLAGS":
            params["keywords"] = others
        elif others:
            params["add_keywords" if action == "+FLAGS" else "remove_keywords"] = others
        before = {u: (selected.messages[u].bits, set(selected.messages[u].keywords)) for u in uids}
        if params and uids:
            await self._set_flags(selected, uids, params)
        await self.sync(expunge=uid)
        if not silent:
            for u in uids:
                current = selected.messages.get(u)
                if current is None or (current.bits, current.keywords) != before[u]:
                    continue  # already announced by the sync (or expunged)
                items = ["FLAGS", "UID"] + (["MODSEQ"] if self.condstore else [])
                self.untagged(self._fetch_line(selected, u, current, items))
        if modified:
            shown = uid_set(modified) if uid else ",".join(str(selected.seq_of(u)) for u in modified)
            return f"[MODIFIED {shown}] conditional STORE failed for some"
        return None

    async def _set_flags(self, selected: Selected, uids: list[int], params: dict[str, Any]) -> None:
        ids = [selected.messages[u].email_id for u in uids if u in selected.messages]
        for start in range(0, len(ids), CHUNK):
            await self.call("mail.imap.flags", {"email_ids": ids[start : start + CHUNK], **params})

    # -- COPY, MOVE, EXPUNGE -----------------------------------------------------------------

    async def cmd_copy(self, command: Command) -> str | None:
        return await self._copy(command, uid=False, move=False)

    async def cmd_move(self, command: Command) -> str | None:
        return await self._copy(command, uid=False, move=True)

    async def _copy(self, command: Command, *, uid: bool, move: bool) -> str | None:
        selected = self.selected
        assert selected is not None
        if len(command.args) != 2:
            raise ParseError("COPY needs a set and a mailbox")
        if move and selected.readonly:
            raise No("[READ-ONLY] mailbox is read-only")
        uids = self._set(selected, command.args[0], uid=uid)
        target = await self.find(self._decode_name(command.args[1]), target=True)
        if not uids:
            return "nothing to copy" if not move else "nothing to move"
        source_uids: list[int] = []
        target_uids: list[int] = []
        uidvalidity = 0
        by_email = {selected.messages[u].email_id: u for u in uids}
        ids = list(by_email)
        for start in range(0, len(ids), CHUNK):
            params: dict[str, Any] = {"email_ids": ids[start : start + CHUNK], "to_label": target["id"]}
            if move:
                params["from_label"] = selected.label_id
            result = await self.call("mail.imap.copy", params)
            uidvalidity = int(result["uidvalidity"])
            for e, new_uid in zip(result["email_ids"], result["uids"], strict=True):
                source_uids.append(by_email[e])
                target_uids.append(new_uid)
        pairs = sorted(zip(source_uids, target_uids, strict=True))
        sources = ",".join(str(s) for s, _ in pairs)
        targets = ",".join(str(t) for _, t in pairs)
        code = f"[COPYUID {uidvalidity} {sources} {targets}]" if pairs else ""
        if move:
            self.untagged(f"OK {code} moved".encode() if code else b"OK moved")
            self._announce_expunged(selected, sorted(uids))
            await self.sync(expunge=True)
            return "MOVE completed"
        await self.sync(expunge=uid)
        return f"{code} COPY completed".strip()

    async def cmd_expunge(self, command: Command) -> str | None:
        selected = self.selected
        assert selected is not None
        if selected.readonly:
            raise No("[READ-ONLY] mailbox is read-only")
        deleted = [u for u in selected.uids if "$deleted" in selected.messages[u].keywords]
        await self._expunge_uids(selected, deleted, announce=True)
        return None

    async def _expunge_uids(self, selected: Selected, uids: list[int], *, announce: bool) -> None:
        ids = [selected.messages[u].email_id for u in uids]
        for start in range(0, len(ids), CHUNK):
            await self.call(
                "mail.imap.expunge", {"label": selected.label_id, "email_ids": ids[start : start + CHUNK]}
            )
        if announce:
            self._announce_expunged(selected, uids)
            await self.sync(expunge=True)
        else:
            for uid in uids:
                selected.remove(uid)

    # -- SEARCH ------------------------------------------------------------------------------

    async def cmd_search(self, command: Command) -> str | None:
        return await self._search(command, uid=False)

    async def _search(self, command: Command, *, uid: bool) -> str | None:
        from mailroom.frontends.imap._search import Search

        selected = self.selected
        assert selected is not None
        args = list(command.args)
        returns: list[str] | None = None
        if len(args) >= 2 and isinstance(args[0], Atom) and args[0].upper() == "RETURN":
            ret = args[1]
            if not isinstance(ret, list):
                raise ParseError("RETURN needs a list")
            returns = [str(r).upper() for r in ret] or ["ALL"]
            args = args[2:]
        if len(args) >= 2 and isinstance(args[0], Atom) and args[0].upper() == "CHARSET":
            charset = astring(args[1]).upper()
            if charset not in ("UTF-8", "US-ASCII"):
                raise No("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset")
            args = args[2:]
        if not args:
            raise ParseError("SEARCH needs criteria")
        search = Search(self, selected)
        found = await search.run(args)
        modseq = search.uses_modseq
        if modseq:
            self._condstore_on()
        if returns is None:
            shown = found if uid else [selected.seq_of(u) for u in found]
            line = "SEARCH" + "".join(f" {n}" for n in shown)
            if modseq and found:
                line += f" (MODSEQ {max(selected.messages[u].modseq for u in found)})"
            self.untagged(line)
        else:
            if "SAVE" in returns:
                selected.saved = list(found)
            numbers = found if uid else [selected.seq_of(u) for u in found]
            parts = [f'(TAG "{command.tag}")'] + (["UID"] if uid else [])
            wanted = [r for r in returns if r != "SAVE"] or ([] if "SAVE" in returns else ["ALL"])
            if numbers:
                if "MIN" in wanted:
                    parts.append(f"MIN {numbers[0]}")
                if "MAX" in wanted:
                    parts.append(f"MAX {numbers[-1]}")
                if "ALL" in wanted:
                    parts.append(f"ALL {uid_set(numbers)}")
            if "COUNT" in wanted:
                parts.append(f"COUNT {len(numbers)}")
            if modseq and found:
                # RFC 7162 §3.1.5: with MIN and/or MAX alone, the MODSEQ of those messages.
                shown_uids = found
                if wanted and set(wanted) <= {"MIN", "MAX"}:
                    shown_uids = [found[0]] * ("MIN" in wanted) + [found[-1]] * ("MAX" in wanted)
                parts.append(f"MODSEQ {max(selected.messages[u].modseq for u in shown_uids)}")
            if wanted:
                self.untagged("ESEARCH " + " ".join(parts))
        await self.sync(expunge=uid)
        return None

    # -- SORT and THREAD (RFC 5256) -------------------------------------------------------

    async def cmd_sort(self, command: Command) -> str | None:
        return await self._sort(command, uid=False)

    async def cmd_thread(self, command: Command) -> str | None:
        return await self._thread(command, uid=False)

    async def _envelopes(self, selected: Selected, uids: list[int]) -> dict[int, Any]:
        ids = [selected.messages[u].email_id for u in uids]
        out: dict[int, Any] = {}
        for start in range(0, len(ids), STRUCTURES_PER_CALL):
            found = await self._structures(ids[start : start + STRUCTURES_PER_CALL])
            out.update({e: structure.envelope for e, (structure, _) in found.items()})
        return out

    async def _matching(self, selected: Selected, args: list[Value]) -> list[int]:
        from mailroom.frontends.imap._search import Search

        if not args:
            raise ParseError("search criteria missing")
        charset = astring(args[0]).upper()
        if charset not in ("UTF-8", "US-ASCII"):
            raise No("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset")
        if len(args) < 2:
            raise ParseError("search criteria missing")
        return await Search(self, selected).run(args[1:])

    async def _sort(self, command: Command, *, uid: bool) -> str | None:
        from mailroom.frontends.imap import _sort

        selected = self.selected
        assert selected is not None
        if len(command.args) < 3 or not isinstance(command.args[0], list):
            raise ParseError("SORT needs criteria, a charset and search keys")
        keys = _sort.criteria([str(k) for k in command.args[0]])
        found = await self._matching(selected, list(command.args[1:]))
        needs_envelope = any(k not in ("ARRIVAL", "SIZE") for k, _ in keys)
        envelopes = await self._envelopes(selected, found) if needs_envelope else {}
        seq = {u: selected.seq_of(u) for u in found}
        ordered = _sort.sort(found, selected.messages, envelopes, keys, seq)
        shown = ordered if uid else [seq[u] for u in ordered]
        self.untagged("SORT" + "".join(f" {n}" for n in shown))
        await self.sync(expunge=uid)
        return None

    async def _thread(self, command: Command, *, uid: bool) -> str | None:
        from mailroom.frontends.imap import _sort, _threading

        selected = self.selected
        assert selected is not None
        if len(command.args) < 3 or not isinstance(command.args[0], Atom):
            raise ParseError("THREAD needs an algorithm, a charset and search keys")
        if command.args[0].upper() != "REFERENCES":
            raise ParseError("unsupported threading algorithm")
        found = await self._matching(selected, list(command.args[1:]))
        envelopes = await self._envelopes(selected, found)
        fields: dict[int, dict[str, Any]] = {}
        ids = [selected.messages[u].email_id for u in found]
        for start in range(0, len(ids), 5000):
            for item in await self.call("mail.imap.references", {"email_ids": ids[start : start + 5000]}):
                fields[int(item["email_id"])] = item
        threadable = []
        for u in found:
            message = selected.messages[u]
            envelope = envelopes.get(message.email_id)
            got = fields.get(message.email_id, {})
            base, reply = _sort.subject_info(envelope.subject if envelope is not None else None)
            threadable.append(
                _threading.Threadable(
                    key=u,
                    message_id=got.get("message_id"),
                    in_reply_to=got.get("in_reply_to") or (),
                    references=got.get("references") or (),
                    sent=_sort.sent(envelope, message),
                    base_subject=base,
                    is_reply=reply,
                )
            )
        roots = _threading.thread(threadable)
        # "* THREAD" alone when nothing matched (RFC 5256: thread-data = "THREAD" [SP 1*thread-list]).
        shown = _threading.render(roots, (lambda u: u) if uid else selected.seq_of)
        self.untagged(f"THREAD {shown}" if shown else "THREAD")
        await self.sync(expunge=uid)
        return None

    # -- APPEND ------------------------------------------------------------------------------

    async def cmd_append(self, command: Command) -> str | None:
        args = list(command.args)
        if len(args) < 2:
            raise ParseError("APPEND needs a mailbox and a message")
        box = await self.find(self._decode_name(args.pop(0)), target=True)
        flags: list[str] = []
        received: datetime | None = None
        first = args[0] if args else None
        if isinstance(first, list):
            args.pop(0)
            flags = [_canonical_flag(str(f)) for f in first]
        first = args[0] if args else None
        if isinstance(first, str) and not isinstance(first, Atom):
            args.pop(0)
            received = _parse_datetime(first)
        if len(args) == 2 and isinstance(args[0], Atom) and args[0].upper() == "UTF8":
            if not self.utf8_headers:  # RFC 6855 §4: only after ENABLE UTF8=ACCEPT
                raise ParseError("UTF8 needs ENABLE UTF8=ACCEPT first")
            inner = args[1]
            if not isinstance(inner, list) or len(inner) != 1:
                raise ParseError("UTF8 needs a parenthesised literal")
            args = inner
        if len(args) != 1 or not isinstance(args[0], bytes):
            raise ParseError("APPEND needs the message as a literal")
        raw = args[0]
        if not raw.strip():
            raise No("the message is empty")
        if len(raw) > self.max_append:
            raise No("[TOOBIG] message too large")
        others = sorted({stored_keyword(f) for f in flags if f not in COLUMN_FLAGS and f != "\\Recent"})
        await self._keep_spellings(flags)
        params: dict[str, Any] = {
            "label": box["id"],
            "message": base64.b64encode(raw).decode("ascii"),
            "seen": "\\Seen" in flags,
            "flagged": "\\Flagged" in flags,
            "draft": "\\Draft" in flags,
            "keywords": others,
        }
        if received is not None:
            params["received_at"] = received.isoformat()
        copied = await self.call("mail.imap.append", params)
        if self.selected is not None:
            await self.sync(expunge=False)
        uid = copied["uids"][0] if copied["uids"] else 0
        return f"[APPENDUID {copied['uidvalidity']} {uid}] APPEND completed"

    # -- IDLE --------------------------------------------------------------------------------

    async def cmd_idle(self, command: Command) -> str | None:
        events = self.mailroom.runtime.events
        subscription = await events.subscribe(self.user_id)
        try:
            self.send(b"+ idling")
            await self.sync(expunge=True)
            await self.flush()
            line_task = asyncio.ensure_future(self._line(self.idle_limit))
            try:
                while True:
                    event_task = asyncio.ensure_future(subscription.__anext__())
                    done, _ = await asyncio.wait({line_task, event_task}, return_when=asyncio.FIRST_COMPLETED)
                    if event_task in done:
                        with contextlib.suppress(Exception):
                            event_task.result()
                        await self.sync(expunge=True)
                        await self.flush()
                    else:
                        event_task.cancel()
                        with contextlib.suppress(BaseException):
                            await event_task
                    if line_task in done:
                        line = line_task.result()
                        if line.strip().upper() != b"DONE":
                            raise ParseError("expected DONE")
                        return "IDLE terminated"
            finally:
                if not line_task.done():
                    line_task.cancel()
                    with contextlib.suppress(BaseException):
                        await line_task
        finally:
            await subscription.aclose()


class _Silent:
    """STARTTLS answers its OK before the handshake; the loop must not answer again."""

    mark = "\x00silent"


def _matches(pattern: str, name: str) -> bool:
    """LIST wildcards: ``*`` anything, ``%`` anything but the delimiter."""
    import re

    regex = "".join(
        ".*" if c == "*" else f"[^{re.escape(DELIMITER)}]*" if c == "%" else re.escape(c) for c in pattern
    )
    if re.fullmatch(regex, name, re.DOTALL):
        return True
    return pattern.upper() == "INBOX" and name == "INBOX"


def _in_range(uid: int, r: tuple[int | None, int | None]) -> bool:
    low, high = r
    a = low if low is not None else 2**32
    b = high if high is not None else 2**32
    return min(a, b) <= uid <= max(a, b)


_MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"],
}
_SIMPLE = {
    "UID",
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "MODSEQ",
    "EMAILID",
    "THREADID",
    "SAVEDATE",
}


def _fetch_items(value: Value) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out: list[str] = []
    for v in values:
        if not isinstance(v, Atom):
            raise ParseError("invalid FETCH item")
        item = str(v)
        upper = item.upper()
        if upper in _MACROS and not isinstance(value, list):
            out.extend(_MACROS[upper])
        elif upper in _SIMPLE:
            out.append(upper)
        elif "[" in upper and upper.split("[", 1)[0] in (
            "BODY",
            "BODY.PEEK",
            "BINARY",
            "BINARY.PEEK",
            "BINARY.SIZE",
        ):
            head, _, rest = item.partition("[")
            if "]" not in rest:  # the parser lets "[" stand alone in an atom (a flag keyword)
                raise ParseError("unbalanced bracket")
            out.append(head.upper() + "[" + rest.upper().replace("HEADER.FIELDS", "HEADER.FIELDS"))
        else:
            raise ParseError(f"unknown FETCH item {item[:40]}")
    return out


_STRUCTURE_ITEMS = frozenset(("ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.HEADER", "RFC822.TEXT"))
#: FETCH items answered from the session's view alone, by :meth:`Commands._fetch_plain`.
_PLAIN_ITEMS = frozenset(("UID", "FLAGS", "MODSEQ"))
_BYTES_ITEMS = frozenset(("RFC822", "RFC822.HEADER", "RFC822.TEXT"))


def _whole(item: str) -> bool:
    """``BODY[]``/``BODY.PEEK[]`` (partial or not): the message as stored, no structure."""
    return item.startswith(("BODY[]", "BODY.PEEK[]"))


def _partial(partial: str) -> tuple[int, int] | None:
    """``<origin.count>`` after a section (None when there is none); BAD when malformed."""
    if not partial:
        return None
    a, dot, b = partial[1:-1].partition(".")
    valid = partial.startswith("<") and partial.endswith(">") and dot
    if not valid or not (a.isascii() and a.isdigit() and b.isascii() and b.isdigit()) or len(a + b) > 20:
        raise ParseError("invalid partial")
    return int(a), int(b)


def _whole_item(item: str, raw: bytes) -> bytes:
    """``BODY[]`` of the message: its bytes as served (trace lines and blob), sent on as they
    are, with no structure read or section computed (the whole message is every octet)."""
    partial = _partial(item.partition("]")[2])
    if partial is None:
        return b"BODY[] {%d}\r\n%b" % (len(raw), raw)
    origin, count = partial
    data = raw[origin : origin + count]
    return b"BODY[]<%d> {%d}\r\n%b" % (origin, len(data), data)


def _structure_item(item: str, loaded: Loaded, raw: bytes | None, *, seven_bit: bool = False) -> bytes:
    """An item served from the stored structure (and, for bytes, the message). ``seven_bit``:
    header text with raw UTF-8 in ENVELOPE, BODY(STRUCTURE) and header sections goes out as
    encoded-words (a session without UTF8=ACCEPT, _downgrade.py)."""
    structure, trace_size = loaded
    if item in ("ENVELOPE", "BODYSTRUCTURE", "BODY"):
        shape: list[ImapValue]
        if item == "ENVELOPE":
            shape = imap_mime.envelope(structure.envelope)
        else:
            shape = imap_mime.body_structure(structure.root, extensible=item == "BODYSTRUCTURE")
        rendered = render(shape)
        if seven_bit and not rendered.isascii():
            rendered = render(_downgrade.envelope(shape) if item == "ENVELOPE" else _downgrade.value(shape))
        return item.encode() + b" " + rendered
    assert raw is not None
    trace, blob = raw[:trace_size], raw[trace_size:]
    if item in ("RFC822.HEADER", "RFC822.TEXT"):
        section = imap_mime.Section(text="HEADER" if item == "RFC822.HEADER" else "TEXT")
        found = imap_mime.section_bytes(structure, section, blob, trace)
        if seven_bit and item == "RFC822.HEADER":
            found = _downgrade.header(found)
        return item.encode() + b" " + literal(found)
    head, _, rest = item.partition("[")
    spec, _, partial = rest.partition("]")
    origin: int | None = None
    count: int | None = None
    if (window := _partial(partial)) is not None:
        origin, count = window
    if head.startswith("BINARY"):
        numbers = spec.split(".") if spec else []
        if not all(n.isascii() and n.isdigit() and len(n) < 10 for n in numbers):
            raise ParseError("BINARY takes part numbers only")
        try:
            data = imap_mime.binary_bytes(structure, [int(n) for n in numbers], blob, trace)
        except imap_mime.UnknownTransferEncoding:
            raise No("[UNKNOWN-CTE] the part's transfer encoding is unknown") from None
        if head == "BINARY.SIZE":
            return f"BINARY.SIZE[{spec}] {len(data)}".encode()
        name = "BINARY"
    else:
        parsed = imap_mime.parse_section(spec)
        if parsed is None:
            raise ParseError("invalid section")
        data = imap_mime.section_bytes(structure, parsed, blob, trace)
        if seven_bit and parsed.text in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "MIME"):
            data = _downgrade.header(data)
        name = "BODY"
    label = f"{name}[{spec}]"
    if origin is not None and count is not None:
        data = data[origin : origin + count]
        label += f"<{origin}>"
    if name == "BINARY" and b"\x00" in data:
        return label.encode() + b" ~" + literal(data)
    return label.encode() + b" " + literal(data)


def _canonical_flag(flag: str) -> str:
    known = {f.upper(): f for f in ("\\Seen", "\\Flagged", "\\Draft", "\\Deleted", "\\Answered", "\\Recent")}
    if flag.startswith("\\"):
        canonical = known.get(flag.upper())
        if canonical is None:
            raise ParseError("unknown system flag")
        return canonical
    return flag


def sent_date(fields: Headers) -> datetime | None:
    value = fields.get("date")
    if not value:
        return None
    with contextlib.suppress(TypeError, ValueError, IndexError):
        parsed = parsedate_to_datetime(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


__all__ = ["Commands", "No", "nstring", "qstring"]
