"""The Dovecot dict-proxy listener: Dovecot's ``proxy:`` dict driver on a UNIX socket.

A line protocol (LF-terminated, at most 64 KiB a line, fields TAB-separated and
tab-escaped). What mailroom answers, through the internal registry methods of
services/mail/dovecot.py:

- ``H<major>\\t<minor>\\t<value type>\\t<user>\\t<dict name>``: hello; any dict name is
  accepted, major versions 2 and 3 (Dovecot 2.2 to 2.3; 2.4's 4 speaks the same). No reply.
- ``L<key>[\\t<user>]`` → ``O<value>``, ``N`` (not found) or ``F<error>``.
- ``I<flags>\\t<max rows>\\t<path>[\\t<user>]`` → ``O<key>\\t<value>`` per entry, then an
  empty line (``F`` on failure).
- ``B<id>[\\t<user>]``, ``S<id>\\t<key>\\t<value>``, ``U``, ``A``, ``P``, ``T``: a
  transaction's operations (no reply); ``C<id>`` → ``O<id>`` (or ``F<id>``, ``N<id>`` for an
  unknown transaction); ``R<id>`` drops it.

Replies go out in the order of the commands. A line over the limit, or a command the
protocol does not have, closes the connection (as Dovecot's own dict server does).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from mailroom.auth.principal import INTERNAL
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

log = logging.getLogger("mailroom.dovecot")

MAX_LINE = 65536
#: Transactions one connection may hold open, and operations in one.
MAX_TRANSACTIONS = 64
MAX_OPERATIONS = 100
#: Rows fetched from the registry per call while iterating.
ITERATE_PAGE = 500

_ESCAPES = {"\x01": "\x011", "\t": "\x01t", "\r": "\x01r", "\n": "\x01n"}
_UNESCAPES = {"1": "\x01", "t": "\t", "r": "\r", "n": "\n"}


def tabescape(value: str) -> str:
    """Dovecot's tab-escaping: ``\\x01``, TAB, CR and LF become ``\\x01`` + a letter."""
    if not any(c in value for c in _ESCAPES):
        return value
    return "".join(_ESCAPES.get(c, c) for c in value)


def tabunescape(value: str) -> str:
    if "\x01" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for c in chars:
        if c == "\x01":
            nxt = next(chars, "")
            out.append(_UNESCAPES.get(nxt, nxt))
        else:
            out.append(c)
    return "".join(out)


def _fields(line: str) -> list[str]:
    return [tabunescape(f) for f in line.split("\t")]


class ProtocolError(Exception):
    """The client broke the protocol: the connection is closed."""


@dataclass
class _Transaction:
    user: str
    changes: list[dict[str, str]] = field(default_factory=list)


class DictProtocol(asyncio.Protocol):
    """One Dovecot process's connection; commands are answered in order."""

    def __init__(self, mailroom: Mailroom) -> None:
        self.mailroom = mailroom
        self.buffer = bytearray()
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.worker: asyncio.Task[None] | None = None
        self.user = ""
        self.transactions: dict[str, _Transaction] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its interface.
        self.transport = cast(asyncio.Transport, transport)
        self.worker = asyncio.get_running_loop().create_task(self._run())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            self.lines.put_nowait(line.decode("utf-8", "replace"))
        if len(self.buffer) > MAX_LINE:
            log.warning("dict client sent a line over %d bytes; closing", MAX_LINE)
            self.lines.put_nowait(None)
            self.buffer.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lines.put_nowait(None)

    async def _run(self) -> None:
        assert self.transport is not None
        try:
            while (line := await self.lines.get()) is not None:
                reply = await self.command(line)
                if reply is not None and not self.transport.is_closing():
                    self.transport.write(reply.encode())
        except ProtocolError as error:
            log.warning("dict client broke the protocol (%s); closing", error)
        except Exception:
            log.exception("dict command failed; closing the connection")
        finally:
            self.transport.close()

    async def _invoke(self, name: str, params: dict[str, Any]) -> Any:
        info = CallInfo(protocol="dovecot_dict")
        return await self.mailroom.runner.invoke(name, params, INTERNAL, info)

    async def command(self, line: str) -> str | None:
        """The reply to one command line (None: the command has none)."""
        if not line:
            raise ProtocolError("empty command")
        cmd, rest = line[0], line[1:]
        if cmd == "H":
            args = _fields(rest)
            if not args[0].isdigit() or int(args[0]) not in (2, 3, 4):
                raise ProtocolError(f"unsupported protocol version {args[0][:10]!r}")
            self.user = args[3] if len(args) > 3 else ""
            return None
        if cmd == "L":
            key = _fields(rest)[0]
            try:
                found = await self._invoke("mail.dovecot.lookup", {"key": key})
            except Exception as error:
                log.exception("dict lookup failed")
                return f"F{tabescape(_reason(error))}\n"
            return f"O{tabescape(found['value'])}\n" if found["found"] else "N\n"
        if cmd == "I":
            return await self._iterate(_fields(rest))
        if cmd in "BSUAPT":
            self._transaction_op(cmd, _fields(rest))
            return None
        if cmd == "R":
            self.transactions.pop(_fields(rest)[0], None)
            return None
        if cmd == "C":
            return await self._commit(_fields(rest)[0])
        raise ProtocolError(f"unknown command {cmd!r}")

    async def _iterate(self, args: list[str]) -> str:
        if len(args) < 3 or not args[0].isdigit() or not args[1].isdigit():
            if len(args) == 2 and args[0].isdigit():  # protocol 2.0: <flags> <path>
                args = [args[0], "0", args[1]]
            else:
                raise ProtocolError("ITERATE: broken input")
        flags, max_rows, path = int(args[0]), int(args[1]), args[2]
        no_value = bool(flags & 0x08)
        out: list[str] = []
        after, sent = "", 0
        try:
            while max_rows == 0 or sent < max_rows:
                page = ITERATE_PAGE if max_rows == 0 else min(ITERATE_PAGE, max_rows - sent)
                rows = await self._invoke(
                    "mail.dovecot.iterate", {"path": path, "after": after, "limit": page}
                )
                for row in rows:
                    value = "" if no_value else tabescape(row["value"])
                    out.append(f"O{tabescape(row['key'])}\t{value}\n")
                sent += len(rows)
                if len(rows) < page:
                    break
                after = rows[-1]["key"]
        except Exception as error:
            log.exception("dict iteration failed")
            return "".join(out) + f"F{tabescape(_reason(error))}\n"
        return "".join(out) + "\n"

    def _transaction_op(self, cmd: str, args: list[str]) -> None:
        tid = args[0]
        if cmd == "B":
            if len(self.transactions) >= MAX_TRANSACTIONS or tid in self.transactions:
                raise ProtocolError("BEGIN: too many or duplicate transactions")
            self.transactions[tid] = _Transaction(args[1] if len(args) > 1 and args[1] else self.user)
            return
        transaction = self.transactions.get(tid)
        if transaction is None:
            raise ProtocolError(f"transaction {tid[:10]!r} does not exist")
        if cmd == "S" and len(args) == 3:
            if len(transaction.changes) >= MAX_OPERATIONS:
                raise ProtocolError("too many operations in one transaction")
            transaction.changes.append({"key": args[1], "value": args[2]})
        # UNSET, ATOMIC_INC, APPEND and TIMESTAMP change nothing mailroom keeps.

    async def _commit(self, tid: str) -> str:
        transaction = self.transactions.pop(tid, None)
        if transaction is None:
            return f"N{tabescape(tid)}\n"
        if not transaction.changes:
            return f"O{tabescape(tid)}\n"
        try:
            await self._invoke(
                "mail.dovecot.commit", {"user": transaction.user, "changes": transaction.changes}
            )
        except Exception as error:
            log.exception("dict commit failed")
            return f"F{tabescape(tid)}\t{tabescape(_reason(error))}\n"
        return f"O{tabescape(tid)}\n"


def _reason(error: Exception) -> str:
    """What a failed command tells Dovecot: the kind of failure, never its text (which may
    quote data)."""
    return f"temporary failure in mailroom ({type(error).__name__})"


async def start_dovecot_dict(
    mailroom: Mailroom, *, path: str | None = None, sock: Any = None
) -> asyncio.Server:
    """Serve the dict proxy on ``sock`` (a bound UNIX socket) or a new socket at ``path``."""
    loop = asyncio.get_running_loop()

    def factory() -> DictProtocol:
        return DictProtocol(mailroom)

    if sock is not None:
        return await loop.create_unix_server(factory, sock=sock)
    return await loop.create_unix_server(factory, path=path)
