"""ASGI entry point for uvicorn (``mailroom.asgi:create_app``, factory): one per worker."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from mailroom import bootstrap, redaction
from mailroom.background import Periodic
from mailroom.delivery.queue import OutboundQueue
from mailroom.domain.clientconfig import startup_warnings
from mailroom.frontends.imap import start_imap_listeners
from mailroom.frontends.mta import start_mta_listeners
from mailroom.frontends.pop3 import start_pop3
from mailroom.frontends.smtp import start_listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.services.housekeeping import Housekeeping
from mailroom.services.mail._actions import PostponedWakeUp
from mailroom.services.mail.uploads import UploadExpiry
from mailroom.settings import Settings, load_settings
from mailroom.web import App, build_app

log = logging.getLogger("mailroom")


class LazyApp:
    """Starts mailroom in the worker's own event loop (lifespan), then serves the REST app.

    ``sockets``: the mail listeners' sockets, bound once by ``mailroom serve`` and inherited
    by each worker (:mod:`mailroom.frontends.listeners`); every worker serves them all. None
    (``uvicorn mailroom.asgi:create_app`` run directly, tests): the worker binds the ports
    of its settings itself, which only one process on a host can do.
    """

    def __init__(self, settings: Settings, sockets: Mapping[str, socket.socket] | None = None) -> None:
        self.settings = settings
        self.sockets = sockets
        self.app: App | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        assert self.app is not None, "lifespan did not run"
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            mailroom = await bootstrap.start(self.settings)
            for warning in startup_warnings(self.settings):
                log.warning("%s", warning)
            self.app = build_app(mailroom)
            # SMTP, LMTP and submission in every worker, on the sockets the parent bound:
            # each worker is identical, the kernel hands each connection to one of them.
            listeners = await start_listeners(mailroom, sockets=self.sockets)
            # The outbound queue worker runs in every worker process too: the queue is shared
            # through the database (claims).
            submission = await start_submission(mailroom, sockets=self.sockets)
            # Postfix's socketmap and Dovecot's dict proxy, where the settings ask for them.
            mta = await start_mta_listeners(mailroom, self.sockets)
            # POP3 and POP3S (frontends/pop3), where the settings ask for them.
            pop3 = await start_pop3(mailroom, self.sockets)
            # IMAP and IMAPS (docs/imap.md).
            mta += await start_imap_listeners(mailroom, self.sockets)
            rt = mailroom.runtime
            # Loops beside serving, in every worker: the queue (shared through claims),
            # unused uploads' expiry, postponed threads' return, housekeeping (temporary
            # files, blobs, sessions, invites).
            queue, housekeeping = OutboundQueue(rt), Housekeeping(rt)
            rt.outbound_queue, rt.housekeeping = queue, housekeeping
            tasks: list[Periodic] = [queue, UploadExpiry(rt), PostponedWakeUp(rt), housekeeping]
            for task in tasks:
                task.start()
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
        async with _app_lifespan(self.app.starlette):
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await listeners.close()
        await submission.close()
        for server in mta:
            server.close()
        await pop3.close()
        for task in tasks:
            await task.stop()
        await mailroom.close()
        await send({"type": "lifespan.shutdown.complete"})


@asynccontextmanager
async def _app_lifespan(app: Starlette) -> Any:
    async with app.router.lifespan_context(app):
        yield


def create_app(sockets: Mapping[str, socket.socket] | None = None) -> LazyApp:
    """Settings from the environment and config file (the CLI passes its flags via env).

    ``mailroom serve`` passes the mail listeners' sockets it bound (see :class:`LazyApp`).
    """
    redaction.install()  # a worker scrubs credentials from its log records from the start
    return LazyApp(load_settings(), sockets)
