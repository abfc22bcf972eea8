"""Every port a server listens on, bound once by ``mailroom serve`` and inherited by its workers.

:data:`LISTENERS` is the one list of a server's listeners: a name and the two settings that
place it. ``mailroom serve`` binds them all with :func:`bind_all` before it touches the data
folder, so a second server on the same host stops at once with "port N is in use" instead
of sharing the port; then it hands the bound sockets to its worker processes (inherited
file descriptors, the way uvicorn hands its HTTP socket to its workers), and each worker
serves on them (:class:`mailroom.asgi.LazyApp`). The kernel spreads one socket's
connections over the workers of one server only: no socket has ``SO_REUSEPORT``.

A new listener (IMAP, POP3, socketmap, ...) is one more :class:`Listener` here, with its
``<name>_host`` / ``<name>_port`` settings, and a front-end whose start function takes the
inherited socket (``sockets[name]``), as :func:`mailroom.frontends.smtp.start_listeners`
does; the start-up banner and the "in use" check then cover it with no other change.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: How many connections the kernel queues for a listener before the workers accept them.
BACKLOG = 2048


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening port of the server and the settings that place it."""

    name: str
    host_setting: str
    port_setting: str
    #: Port 0 switches the listener off (the mail listeners); otherwise it means any free port.
    port_zero_disables: bool = True
    #: URL scheme shown in the banner (``http://127.0.0.1:8025``); None: plain ``host:port``.
    scheme: str | None = None


#: Every listener of ``mailroom serve``, in the order of the banner.
LISTENERS: tuple[Listener, ...] = (
    Listener("http", "host", "port", port_zero_disables=False, scheme="http"),
    Listener("smtp", "smtp_host", "smtp_port"),
    Listener("lmtp", "lmtp_host", "lmtp_port"),
    Listener("submission", "submission_host", "submission_port"),
    Listener("socketmap", "socketmap_host", "socketmap_port"),
    Listener("pop3", "pop3_host", "pop3_port"),
    Listener("pop3s", "pop3_host", "pop3s_port"),
    Listener("imap", "imap_host", "imap_port"),
    Listener("imaps", "imap_host", "imaps_port"),
)


@dataclass(frozen=True, slots=True)
class UnixListener:
    """A UNIX socket of the server (for daemons on the same host) and the setting of its path.

    The file is made with ``mode``; a stale one left by a server that died is replaced, one a
    running server answers on is "in use". The parent removes it when it stops.
    """

    name: str
    path_setting: str
    mode: int = 0o660


#: The UNIX sockets of ``mailroom serve`` (each off while its path setting is unset).
UNIX_LISTENERS: tuple[UnixListener, ...] = (
    UnixListener("socketmap-unix", "socketmap_path"),
    UnixListener("dovecot-dict", "dovecot_dict_path"),
)


class ListenError(Exception):
    """A listener could not be bound; the message names the port and the listener."""


def wanted(settings: Any, listeners: Iterable[Listener] = LISTENERS) -> list[tuple[Listener, str, int]]:
    """``(listener, host, port)`` of each listener the settings switch on."""
    out = []
    for listener in listeners:
        host, port = getattr(settings, listener.host_setting), getattr(settings, listener.port_setting)
        if port == 0 and listener.port_zero_disables:
            continue
        out.append((listener, str(host), int(port)))
    return out


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, for this server alone.

    ``SO_REUSEADDR`` only lets a restarted server bind while old connections linger in
    TIME_WAIT; on Linux it never lets a second socket listen on the port. There is no
    ``SO_REUSEPORT``, which would let another process share it. Listening at once (not only
    binding) is what makes the port taken for everybody else.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(name: str, host: str, port: int) -> socket.socket:
    """The socket of one listener of :data:`LISTENERS`, bound here rather than inherited (a
    worker started without ``mailroom serve``, tests); :class:`ListenError` names the port."""
    listener = next(listener for listener in LISTENERS if listener.name == name)
    try:
        return listening_socket(host, port)
    except OSError as exc:
        raise ListenError(_explain(exc, listener, host, port)) from exc


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class BoundListeners:
    """The bound sockets by listener name; the parent process keeps them open while it runs."""

    sockets: dict[str, socket.socket] = field(default_factory=dict)
    order: list[Listener | UnixListener] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)

    def address(self, name: str) -> tuple[str, int]:
        host, port = self.sockets[name].getsockname()[:2]
        return str(host), int(port)

    def banner(self) -> list[str]:
        """One line per listener: its name and where it listens (the real port, also for 0)."""
        width = max((len(listener.name) for listener in self.order), default=0)
        lines = []
        for listener in self.order:
            if isinstance(listener, UnixListener):
                where = f"unix:{self.paths[listener.name]}"
            else:
                where = _where(*self.address(listener.name))
                if listener.scheme:
                    where = f"{listener.scheme}://{where}"
            lines.append(f"{listener.name.ljust(width)}  {where}")
        return lines

    def without(self, *names: str) -> dict[str, socket.socket]:
        """The sockets but those named (the HTTP socket goes to uvicorn, the rest to the app)."""
        return {name: sock for name, sock in self.sockets.items() if name not in names}

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.paths.clear()


def unix_socket(path: str, mode: int) -> socket.socket:
    """A UNIX socket listening at ``path``: a stale file is replaced; a live server is
    :class:`OSError` ``EADDRINUSE``."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1)
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody answers: left by a server that died
        else:
            raise OSError(errno.EADDRINUSE, "in use")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_unix(
    settings: Any, bound: BoundListeners, listeners: Iterable[UnixListener] = UNIX_LISTENERS
) -> None:
    """Bind the UNIX sockets the settings ask for into ``bound`` (:class:`ListenError` if one
    is in use or cannot be made)."""
    for listener in listeners:
        value = getattr(settings, listener.path_setting)
        if not value:
            continue
        path = os.fspath(value)
        try:
            sock = unix_socket(path, listener.mode)
        except OSError as exc:
            reason = "in use (another server runs there)" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ListenError(
                f"cannot listen for {listener.name} on unix:{path}: {reason or exc} "
                f"(set {listener.path_setting} to another path, or unset it)"
            ) from exc
        bound.sockets[listener.name] = sock
        bound.paths[listener.name] = path
        bound.order.append(listener)


def bind_all(settings: Any, listeners: Iterable[Listener] = LISTENERS) -> BoundListeners:
    """Bind every listener the settings switch on, or raise :class:`ListenError` with none bound."""
    bound = BoundListeners()
    taken: dict[tuple[str, int], str] = {}
    try:
        for listener, host, port in wanted(settings, listeners):
            if port and (host, port) in taken:
                raise ListenError(
                    f"port {port} is set for both {taken[host, port]} and {listener.name} "
                    f"({listener.port_setting}); give each listener its own port"
                )
            taken[host, port] = listener.name
            try:
                sock = listening_socket(host, port)
            except OSError as exc:
                raise ListenError(_explain(exc, listener, host, port)) from exc
            bound.sockets[listener.name] = sock
            bound.order.append(listener)
        bind_unix(settings, bound)
    except BaseException:
        bound.close()
        raise
    return bound


def _explain(exc: OSError, listener: Listener, host: str, port: int) -> str:
    where = _where(host, port)
    if exc.errno == errno.EADDRINUSE:
        hint = f"set {listener.port_setting} to another port"
        if listener.port_zero_disables:
            hint += ", or 0 to switch it off"
        return (
            f"port {port} is in use: cannot listen for {listener.name} on {where} "
            f"(another server runs there; {hint})"
        )
    if exc.errno == errno.EACCES:
        return (
            f"cannot listen for {listener.name} on {where}: permission denied "
            "(ports below 1024 need privileges)"
        )
    return f"cannot listen for {listener.name} on {where}: {exc.strerror or exc}"


@dataclass(frozen=True)
class InheritingApp:
    """An app factory for uvicorn that hands a worker the inherited listener sockets.

    ``target`` (``module:function``) is imported only when called, inside the worker's
    server: unpickling this in a new worker process stays cheap, so the worker answers
    its supervisor's health checks while it imports the application.
    """

    target: str
    sockets: Mapping[str, socket.socket]

    def __call__(self) -> Any:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)(self.sockets)
