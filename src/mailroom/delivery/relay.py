"""Talking to the next hop: one SMTP transaction with aiosmtplib, one outcome per recipient.

The next hop of a recipient is the smarthost of its relayed domain (``relays`` table) or the
global smarthost (``relay_host`` ...). Delivery to a domain's MX hosts is not done here:
without a smarthost, remote mail is held or bounced (``relay_missing``, docs/outbound.md).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

from mailroom.settings import Settings

TlsMode = Literal["none", "starttls", "tls", "opportunistic"]


@dataclass(frozen=True, slots=True)
class Hop:
    """Where to hand mail over, and how."""

    host: str
    port: int
    tls: TlsMode
    verify: bool = True
    username: str | None = None
    password: str | None = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the hop said about one recipient (``code`` None: we never got that far)."""

    code: int | None
    reply: str

    @property
    def delivered(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code is not None and self.code >= 500


class NoRoute(Exception):
    """No smarthost is configured for this recipient (MX delivery is not supported)."""


def parse_smarthost(value: str, default_port: int = 25) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (as normalised by domain/relays.py)."""
    if value.startswith("["):
        inner, _, rest = value[1:].partition("]")
        return inner, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return value, default_port


def hop_for(relay: str | None, settings: Settings) -> Hop:
    """The hop for a recipient's ``relay`` (None: the global smarthost; '': the MX)."""
    if relay:
        host, port = parse_smarthost(relay)
        return Hop(host, port, "opportunistic", verify=settings.relay_verify_tls)
    if relay == "":
        raise NoRoute(
            "delivery to the relayed domain's MX hosts is not supported; give the relay a smarthost"
        )
    if not settings.relay_host:
        raise NoRoute("no smarthost configured (relay_host) for mail to other domains")
    password = settings.relay_password.get_secret_value() if settings.relay_password else None
    return Hop(
        settings.relay_host,
        settings.relay_port,
        settings.relay_tls,
        verify=settings.relay_verify_tls,
        username=settings.relay_username,
        password=password,
    )


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


async def send(
    hop: Hop,
    *,
    mail_from: str,
    recipients: Sequence[str],
    raw: bytes,
    local_hostname: str,
    smtp_timeout: float,
) -> dict[str, Outcome]:
    """Send ``raw`` to ``recipients`` through ``hop``; one outcome per recipient.

    A connection that fails or drops gives every recipient ``code`` None (temporary).
    """
    context = None
    if hop.tls != "none" and not hop.verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    client = aiosmtplib.SMTP(
        hostname=hop.host,
        port=hop.port,
        local_hostname=local_hostname,
        timeout=smtp_timeout,
        use_tls=hop.tls == "tls",
        start_tls={"none": False, "starttls": True, "tls": False, "opportunistic": None}[hop.tls],
        validate_certs=hop.verify,
        tls_context=context,
    )
    try:
        await client.connect()
        if hop.username and hop.password is not None:
            await client.login(hop.username, hop.password)
        refused, response = await client.sendmail(mail_from, list(recipients), raw)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        out = {r.recipient: Outcome(r.code, _reply(r.code, r.message)) for r in exc.recipients}
        return {a: out.get(a, Outcome(None, "recipient refused")) for a in recipients}
    except aiosmtplib.SMTPAuthenticationError as exc:
        # Our credentials, not the recipients, are wrong: hold the mail until they are fixed
        # (like Postfix's smtp_sasl_auth_soft_bounce) instead of bouncing everything.
        reply = f"451 4.7.0 authentication at {hop.name} failed: {_reply(exc.code, exc.message)}"
        return {a: Outcome(451, reply) for a in recipients}
    except aiosmtplib.SMTPResponseException as exc:
        # MAIL FROM or DATA refused, AUTH failed, ...: the same answer for everyone.
        return {a: Outcome(exc.code, _reply(exc.code, exc.message)) for a in recipients}
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return {a: Outcome(None, f"connection to {hop.name} failed: {exc}") for a in recipients}
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
    outcomes: dict[str, Outcome] = {}
    for address in recipients:
        bad = refused.get(address)
        outcomes[address] = (
            Outcome(bad.code, _reply(bad.code, bad.message))
            if bad
            else Outcome(250, _reply(250, response or "accepted"))
        )
    return outcomes
