"""The submission listener (RFC 6409): authenticated users send mail through it.

- STARTTLS with the configured certificate (certificate.py: self-signed on first run); every
  command but EHLO/HELO/STARTTLS/NOOP/RSET/QUIT is refused with ``530`` before it, unless
  ``submission_allow_plaintext_loopback`` is set and the client is on loopback.
- AUTH PLAIN and LOGIN: a user's address and password (not once they turned a second factor
  on), or address and one of their API keys or ``smtp`` app passwords, checked by the
  :class:`~mailroom.auth.authenticate.Authenticator` (so the brute-force guard counts
  failures: locked out → ``454 4.7.0``; wrong → ``535 5.7.8``).
  Nothing is accepted before AUTH (``530 5.7.0``).
- MAIL FROM: an address the user may send as (delivery/senders.py: their own, an alias of
  theirs, a send-as identity; anything with ``allow_spoofing``), checked by
  ``mail.submission.check_sender`` (else ``553 5.7.1``); at most
  ``submission_rate_limit`` messages per user per window (``451 4.7.1`` above; counted in
  the accounting's shared counters, so with Redis across every worker: accounting/sending.py).
- RCPT TO: any remote address; local ones must exist (``mail.delivery.check``).
- DATA: ``mail.submission.submit`` (delivery/outbound.py): the header ``From`` and ``Sender``
  must name addresses the user may send as too (``553 5.7.1``); ``250`` with the queue id
  once local copies are stored and remote ones queued durably.

Domain errors become replies in one place (replies.py ``error_reply``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, TLSSetupException

from mailroom.accounting.sending import SendingLimit
from mailroom.auth.principal import INTERNAL
from mailroom.errors import MailroomError, RateLimited, Unauthenticated, Unavailable
from mailroom.frontends.listeners import bind as bind_listener
from mailroom.frontends.smtp._handler import INTERNAL_ERROR, envelope_sender, is_utf8
from mailroom.frontends.smtp._server import IDLE_TIMEOUT_SECONDS, Listeners
from mailroom.frontends.smtp.certificate import server_context
from mailroom.frontends.smtp.replies import error_reply
from mailroom.frontends.smtp.xclient import XClientServer, networks
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom
    from mailroom.events import OpenSession

log = logging.getLogger("mailroom.submission")


@dataclass(frozen=True, slots=True)
class SubmissionUser:
    """Who authenticated on a submission session."""

    user_id: int
    email: str
    #: What the login used (``password``, ``app:<id>``, ``key:<id>``, ``proxy``; no secret).
    credential: str = "other"


def _peer_ip(session: Any) -> str | None:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _is_loopback(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class SubmissionHandler:
    """aiosmtpd handler: credentials through the authenticator, policy through the registry."""

    def __init__(self, mailroom: Mailroom) -> None:
        self.mailroom = mailroom
        self.max_recipients = mailroom.settings.max_recipients
        self.limit = SendingLimit.for_runtime(mailroom.runtime)

    async def _invoke(self, name: str, params: dict[str, Any], session: Any) -> Any:
        info = CallInfo(protocol="submission", client_ip=_peer_ip(session))
        return await self.mailroom.runner.invoke(name, params, INTERNAL, info)

    async def login(self, session: Any, username: str, secret: str) -> AuthResult:
        """Check AUTH credentials: a password or an API key of that user."""
        try:
            principal = await self.mailroom.authenticator.basic(username, secret, _peer_ip(session), "smtp")
        except RateLimited:
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Too many failed logins, try later"
            )
        except Unauthenticated:
            return AuthResult(success=False, handled=False)
        except Unavailable:  # the user directory (LDAP) did not answer: not a wrong password
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Temporary authentication failure"
            )
        except Exception:
            log.exception("AUTH failed unexpectedly")
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Temporary authentication failure"
            )
        if principal.user_id is None or principal.email is None:
            return AuthResult(success=False, handled=False)  # keys of no user cannot send
        return AuthResult(
            success=True,
            handled=False,
            auth_data=SubmissionUser(principal.user_id, principal.email, principal.credential),
        )

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return server.ehlo_lines(responses)  # type: ignore[no-any-return]

    async def proxied_login(self, session: Any, login: str) -> SubmissionUser | None:
        """The user a trusted proxy's ``XCLIENT LOGIN`` names (nginx checked the password)."""
        result = await self._invoke("mail.proxy.xclient_login", {"user": login}, session)
        if not result["ok"]:
            return None
        return SubmissionUser(int(result["user_id"]), str(result["email"]), "proxy")

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        user = session.auth_data
        if not isinstance(user, SubmissionUser):
            return "530 5.7.0 Authentication required"
        if not await self.limit.allowed(user.user_id):
            return "451 4.7.1 Sending rate limit exceeded, try again later"
        sender = envelope_sender(address)
        try:
            await self._invoke(
                "mail.submission.check_sender", {"user_id": user.user_id, "mail_from": sender}, session
            )
        except MailroomError as exc:
            return error_reply(exc)
        except Exception:
            log.exception("sender check failed for %s", sender)
            return INTERNAL_ERROR
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        if not is_utf8(address):
            return "553 5.1.3 The recipient address is not UTF-8"
        try:
            result = await self._invoke("mail.delivery.check", {"address": address}, session)
        except Exception:
            log.exception("recipient check failed for %s", address)
            return INTERNAL_ERROR
        reply = str(result["reply"])
        # Ours and deliverable, or not ours at all (relayed for an authenticated user): take it.
        if result["accepted"] or reply.startswith("554 5.7.1"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            return "250 2.1.5 Recipient ok"
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        user = session.auth_data
        assert isinstance(user, SubmissionUser)
        helo = str(getattr(session, "host_name", None) or "")[:255]
        params = {
            "raw": bytes(envelope.original_content or b""),
            "mail_from": envelope_sender(envelope.mail_from),
            "recipients": [envelope_sender(r) for r in envelope.rcpt_tos],
            "user_id": user.user_id,
            "helo": helo if helo and is_utf8(helo) else None,
        }
        try:
            result = await self._invoke("mail.submission.submit", params, session)
        except MailroomError as exc:  # a refused sender; the runner logged failures of ours
            return error_reply(exc)
        except Exception:
            log.exception("submission failed; answering a temporary failure")
            return INTERNAL_ERROR
        await self.limit.record(user.user_id)
        taken = [r for r in result["recipients"] if r["status"] != "error"]
        if not taken:
            errors = [str(r["reason"] or "") for r in result["recipients"]]
            temporary = [e for e in errors if e.startswith("4")]
            return (temporary or errors or ["554 5.5.1 No valid recipients"])[0]
        return f"250 2.0.0 Ok: queued as {result['queue_id']}"

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # the client's handshake failed: not ours
            log.info("submission: TLS handshake failed: %r", error.__cause__ or error)
            return INTERNAL_ERROR
        log.error("submission session error: %r", error)
        return INTERNAL_ERROR


class _SubmissionServer(XClientServer, SMTP):
    """aiosmtpd's SMTP with the credential check made asynchronous, plaintext on loopback, and
    XCLIENT from trusted proxies (which speak to us without STARTTLS: nginx's mail proxy
    does not offer it towards its back-ends)."""

    def __init__(self, handler: SubmissionHandler, *, allow_plaintext_loopback: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._submission = handler
        self._allow_plaintext_loopback = allow_plaintext_loopback
        self._registered: OpenSession | None = None

    def _register(self, user: SubmissionUser | None) -> None:
        """Register the authenticated session, so that the end of the user's access cuts it
        (mailroom.events.OpenSessions): every later command answers ``421`` and closes."""
        sessions = self._submission.mailroom.runtime.events.sessions
        sessions.end(self._registered)
        self._registered = None
        if user is not None:
            self._registered = sessions.open(user.user_id, user.email, "smtp", user.credential, self._kick)

    def _kick(self, reason: str) -> None:
        text = reason.replace("\r", " ").replace("\n", " ")[:200]

        async def refuse(_: str) -> None:
            await self.push(f"421 4.7.0 {text}")
            if self.transport is not None:
                self.transport.close()

        self._smtp_methods = dict.fromkeys(self._smtp_methods, refuse)

    def connection_lost(self, error: Exception | None) -> None:
        self._submission.mailroom.runtime.events.sessions.end(self._registered)
        self._registered = None
        super().connection_lost(error)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self._allow_plaintext_loopback and _is_loopback(_peer_ip(self.session)):
            self.require_starttls = False
            self._auth_require_tls = False
        self.xclient_connected(self.session.peer)
        if self.xclient_allowed:
            # XCLIENT must come through; AUTH itself still wants TLS, nothing else is allowed
            # before a LOGIN (auth_required).
            self.require_starttls = False

    async def xclient_login(self, login: str | None) -> str | None:
        if login is None:
            return None
        user: SubmissionUser | None = None
        if login:
            try:
                user = await self._submission.proxied_login(self.session, login)
            except Exception:
                log.exception("XCLIENT LOGIN lookup failed")
                return "454 4.7.0 Temporary authentication failure"
            if user is None:
                log.info("XCLIENT LOGIN refused for %r", login)
                return "535 5.7.8 Error: XCLIENT LOGIN is not a user who may send"
        self.session.auth_data = user
        self.session.authenticated = user is not None
        self._register(user)
        return None

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        # aiosmtpd calls this synchronously; hand the credentials back for the async check.
        return AuthResult(success=False, handled=False, auth_data=auth_data)

    async def _check(self, result: AuthResult) -> AuthResult:
        data = result.auth_data
        if result.success or not isinstance(data, LoginPassword):
            return result  # a parse error aiosmtpd already answered
        try:
            username, secret = data.login.decode("utf-8"), data.password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False)
        checked = await self._submission.login(self.session, username, secret)
        if checked.success and isinstance(checked.auth_data, SubmissionUser):
            self._register(checked.auth_data)
        return checked

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._check(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._check(await super().auth_LOGIN(_, args))


async def start_submission(
    mailroom: Mailroom,
    *,
    bind: tuple[str, int] | None = None,
    sockets: Mapping[str, socket.socket] | None = None,
) -> Listeners:
    """Start the submission listener (``bind`` overrides the settings; port 0 = any free port).

    ``sockets``: the listening sockets ``mailroom serve`` bound, by listener name; the
    ``submission`` one is served, or nothing when it is absent. With ``submission_port`` 0
    in the settings and neither ``bind`` nor ``sockets``, nothing is started.
    """
    settings = mailroom.settings
    listeners = Listeners()
    if sockets is not None:
        if "submission" not in sockets:
            return listeners
        given: socket.socket | None = sockets["submission"]
    elif bind is None and not settings.submission_port:
        return listeners
    else:
        given = None
    loop = asyncio.get_running_loop()
    context = await asyncio.to_thread(server_context, settings)
    handler = SubmissionHandler(mailroom)
    proxies = networks(settings.smtp_trusted_proxies)

    def factory() -> _SubmissionServer:
        server = _SubmissionServer(
            handler,
            allow_plaintext_loopback=settings.submission_allow_plaintext_loopback,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.hostname,
            ident="mailroom ESMTP submission",
            timeout=IDLE_TIMEOUT_SECONDS,
            loop=loop,
        )
        server.trusted_proxies = proxies
        return server

    where = bind or (settings.submission_host, settings.submission_port)
    sock = given if given is not None else bind_listener("submission", *where)
    server = await loop.create_server(factory, sock=sock)
    listeners.servers["submission"] = server
    log.info("submission listening on %s:%s", *sock.getsockname()[:2])
    return listeners
