"""rspamd's verdict on arriving mail: ask ``/checkv2``, record it as headers, apply its policy.

Off unless ``rspamd_url`` names rspamd's normal worker (``http://127.0.0.1:11333``). Then, for
mail the SMTP and LMTP listeners take from a host not in ``spam_trusted_hosts``:

1. headers a sender could forge are removed (``Authentication-Results``, ``X-Spam-*``,
   ``X-Spamd-*``, ``X-Rspamd-*``): only our own verdict may decide;
2. rspamd is asked (``POST /checkv2`` with the message, and ``IP``, ``Hostname`` (the
   client's verified reverse name, when a trusted proxy's XCLIENT ``NAME`` gave one),
   ``Helo``, ``From``, ``Rcpt``, ``MTA-Name`` headers so SPF and DMARC see the real envelope);
3. its verdict becomes headers in front of the message: ``Authentication-Results`` (RFC 8601:
   SPF, DKIM and DMARC from rspamd's symbols, authserv-id our host name), ``X-Spam-Score``,
   ``X-Spam-Flag``, ``X-Spam-Action``, ``X-Spam-Status`` and ``X-Spam-Symbols``. Ingest then
   files the message by the mailbox's own ``spam_threshold`` against ``X-Spam-Score``
   (delivery/spam.py), exactly as for any filter's headers;
4. policy: DMARC ``p=reject`` failed → ``550 5.7.1`` at DATA; rspamd's ``reject`` action →
   ``554 5.7.1``; ``soft reject`` → ``451 4.7.1``; DMARC ``p=quarantine`` failed → spam
   whatever the score (``X-Spam-Flag: YES`` and no score, so the threshold cannot undo it).

When rspamd cannot be asked (down, timeout, an error answer), ``rspamd_failure`` decides:
``tempfail`` (default) answers ``451 4.7.1`` so the sender retries later; ``accept`` stores
the mail with ``X-Spam-Status: unscanned``.

Hosts in ``spam_trusted_hosts`` (Postfix running rspamd as its milter) keep their headers and
are not scanned again. With ``rspamd_url`` unset and no trusted hosts, none of this runs:
headers are taken as they come (the MTA in front is responsible for them).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from mailroom.delivery.trace import header_block
from mailroom.settings import Settings

log = logging.getLogger("mailroom.rspamd")

#: Headers only our filter may set: removed from mail of untrusted hosts.
_FILTER_HEADER = re.compile(
    rb"^(?:authentication-results|x-spam-[a-z0-9-]*|x-spamd-[a-z0-9-]*|x-rspamd-[a-z0-9-]*)[ \t]*:"
    rb".*(?:\r?\n[ \t].*)*(?:\r?\n|\Z)",
    re.IGNORECASE | re.MULTILINE,
)

_SPF = {
    "R_SPF_ALLOW": "pass",
    "R_SPF_FAIL": "fail",
    "R_SPF_SOFTFAIL": "softfail",
    "R_SPF_NEUTRAL": "neutral",
    "R_SPF_DNSFAIL": "temperror",
    "R_SPF_PERMFAIL": "permerror",
    "R_SPF_NA": "none",
}
_DKIM = {
    "R_DKIM_ALLOW": "pass",
    "R_DKIM_REJECT": "fail",
    "R_DKIM_TEMPFAIL": "temperror",
    "R_DKIM_PERMFAIL": "permerror",
    "R_DKIM_NA": "none",
}
_DMARC = {
    "DMARC_POLICY_ALLOW": ("pass", None),
    "DMARC_POLICY_ALLOW_WITH_FAILURES": ("pass", None),
    "DMARC_POLICY_REJECT": ("fail", "reject"),
    "DMARC_POLICY_QUARANTINE": ("fail", "quarantine"),
    "DMARC_POLICY_SOFTFAIL": ("fail", "none"),
    "DMARC_BAD_POLICY": ("permerror", None),
    "DMARC_DNSFAIL": ("temperror", None),
    "DMARC_NA": ("none", None),
}
_SAFE = re.compile(r"[^A-Za-z0-9@._+=:/-]")


class RspamdUnavailable(Exception):
    """rspamd could not be asked or did not answer a verdict."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What rspamd said of one message."""

    score: float
    required_score: float
    action: str
    symbols: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Verdict:
        symbols: dict[str, float] = {}
        options: dict[str, tuple[str, ...]] = {}
        for name, value in (body.get("symbols") or {}).items():
            if isinstance(value, Mapping):
                symbols[str(name)] = float(value.get("score") or 0.0)
                options[str(name)] = tuple(str(o) for o in value.get("options") or ())
        return cls(
            score=float(body.get("score") or 0.0),
            required_score=float(body.get("required_score") or 0.0),
            action=str(body.get("action") or "no action"),
            symbols=symbols,
            options=options,
        )

    def _first(self, table: Mapping[str, Any]) -> str | None:
        return next((name for name in table if name in self.symbols), None)

    @property
    def spf(self) -> str:
        name = self._first(_SPF)
        return _SPF[name] if name else "none"

    @property
    def dkim(self) -> tuple[str, str | None]:
        """The DKIM result and the signing domain it is about."""
        name = self._first(_DKIM)
        if name is None:
            return "none", None
        domain = next(iter(self.options.get(name, ())), "").partition(":")[0] or None
        return _DKIM[name], domain

    @property
    def dmarc(self) -> tuple[str, str | None, str | None]:
        """The DMARC result, the failed policy (``reject``, ``quarantine``, ``none``) and the
        From domain."""
        name = self._first(_DMARC)
        if name is None:
            return "none", None, None
        result, policy = _DMARC[name]
        domain = next(iter(self.options.get(name, ())), "").partition(" ")[0] or None
        return result, policy, domain

    @property
    def spam(self) -> bool:
        return self.action in ("add header", "rewrite subject", "reject")


@dataclass(frozen=True, slots=True)
class Screened:
    """The message to store (the verdict's headers in front) or the reply refusing it."""

    raw: bytes
    refusal: str | None = None


def strip_filter_headers(raw: bytes) -> bytes:
    """``raw`` without the headers only our filter may set (from its header block only)."""
    end = len(header_block(raw))
    end += 2 if raw[end : end + 2] == b"\r\n" else 1 if raw[end : end + 1] == b"\n" else 0
    head = raw[:end]  # with the last header's line end
    if not _FILTER_HEADER.search(head):
        return raw
    return _FILTER_HEADER.sub(b"", head) + raw[end:]


def _clean(value: str | None, limit: int = 255) -> str:
    return _SAFE.sub("", value or "")[:limit]


def authentication_results(verdict: Verdict, *, authserv_id: str, mail_from: str) -> str:
    """The RFC 8601 header value: ``host; spf=...; dkim=...; dmarc=...``."""
    parts = [_clean(authserv_id)]
    spf = f"spf={verdict.spf}"
    if mail_from:
        spf += f" smtp.mailfrom={_clean(mail_from, 320)}"
    dkim, signer = verdict.dkim
    parts.append(f"dkim={dkim}" + (f" header.d={_clean(signer)}" if signer else ""))
    parts.append(spf)
    dmarc, policy, domain = verdict.dmarc
    parts.append(
        f"dmarc={dmarc}"
        + (f" (p={policy})" if policy else "")
        + (f" header.from={_clean(domain)}" if domain else "")
    )
    return ";\r\n\t".join(parts)


def verdict_headers(verdict: Verdict, *, authserv_id: str, mail_from: str, eol: str) -> str:
    """The headers that record ``verdict`` (see the module docstring), ``eol``-terminated."""
    quarantine = verdict.dmarc[1] == "quarantine"
    flag = "YES" if verdict.spam or quarantine else "NO"
    names = [f"{_clean(name, 64)}({score:.2f})" for name, score in sorted(verdict.symbols.items())]
    folded = ",\r\n\t".join(", ".join(names[i : i + 5]) for i in range(0, len(names), 5))
    results = authentication_results(verdict, authserv_id=authserv_id, mail_from=mail_from)
    lines = [
        f"Authentication-Results: {results}",
        f"X-Spam-Action: {_clean(verdict.action.replace(' ', '_'), 32).replace('_', ' ')}",
    ]
    if not quarantine:  # DMARC quarantine files as spam whatever the mailbox's threshold
        lines.append(f"X-Spam-Score: {verdict.score:.2f}")
    lines.append(f"X-Spam-Flag: {flag}")
    reason = " quarantine=dmarc" if quarantine else ""
    lines.append(
        f"X-Spam-Status: {'Yes' if flag == 'YES' else 'No'}, score={verdict.score:.2f} "
        f"required={verdict.required_score:.2f}{reason}"
    )
    if folded:
        lines.append(f"X-Spam-Symbols: {folded}")
    return "".join(line.replace("\r\n", eol) + eol for line in lines)


def refusal(verdict: Verdict) -> str | None:
    """The SMTP reply that refuses the message at DATA, or None to take it."""
    if verdict.dmarc[1] == "reject":
        return "550 5.7.1 Message refused: DMARC policy of the sender's domain (p=reject)"
    if verdict.action == "reject":
        return "554 5.7.1 Message refused as spam"
    if verdict.action == "soft reject":
        return "451 4.7.1 Message deferred by the spam filter, try again later"
    return None


@dataclass(frozen=True, slots=True)
class Rspamd:
    """A client of rspamd's normal worker (``/checkv2``)."""

    url: str
    timeout: float
    password: str | None = None

    async def check(
        self,
        raw: bytes,
        *,
        ip: str | None,
        helo: str | None,
        mail_from: str,
        recipients: Sequence[str],
        queue_id: str | None = None,
        hostname: str = "",
        client_name: str | None = None,
    ) -> Verdict:
        headers: list[tuple[str, str]] = [("From", mail_from or "<>")]
        headers += [("Rcpt", r) for r in recipients]
        if ip:
            headers.append(("IP", ip))
        if client_name:
            headers.append(("Hostname", client_name))  # the client's verified reverse name
        if helo:
            headers.append(("Helo", helo))
        if queue_id:
            headers.append(("Queue-Id", queue_id))
        if hostname:
            headers.append(("MTA-Name", hostname))
        if self.password:
            headers.append(("Password", self.password))
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(f"{self.url.rstrip('/')}/checkv2", content=raw, headers=headers)
        except httpx.HTTPError as error:
            raise RspamdUnavailable(f"rspamd not reachable: {type(error).__name__}") from error
        if response.status_code != 200:
            raise RspamdUnavailable(f"rspamd answered HTTP {response.status_code}")
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError) as error:
            raise RspamdUnavailable("rspamd answered no JSON") from error
        if not isinstance(body, dict) or "action" not in body:  # (GTUBE: "is_skipped" with an action)
            raise RspamdUnavailable("rspamd answered no verdict")
        return Verdict.from_json(body)


def trusted_host(ip: str | None, networks: Sequence[str]) -> bool:
    """Whether ``ip`` is in one of ``networks`` (CIDR strings)."""
    if not ip or not networks:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


async def screen(
    settings: Settings,
    raw: bytes,
    *,
    mail_from: str,
    recipients: Sequence[str],
    peer_ip: str | None,
    helo: str | None,
    peer_name: str | None = None,
    queue_id: str | None = None,
) -> Screened:
    """The message as ingest should store it, or the reply refusing it (module docstring).

    Call only when ``rspamd_url`` or ``spam_trusted_hosts`` is set.
    """
    if trusted_host(peer_ip, settings.spam_trusted_hosts):
        return Screened(raw)
    raw = strip_filter_headers(raw)
    if not settings.rspamd_url:
        return Screened(raw)
    eol = "\r\n" if b"\r\n" in raw[:4096] or b"\n" not in raw[:4096] else "\n"
    client = Rspamd(
        settings.rspamd_url,
        settings.rspamd_timeout,
        settings.rspamd_password.get_secret_value() if settings.rspamd_password else None,
    )
    try:
        verdict = await client.check(
            raw,
            ip=peer_ip,
            helo=helo,
            mail_from=mail_from,
            recipients=recipients,
            queue_id=queue_id,
            hostname=settings.hostname,
            client_name=peer_name,
        )
    except RspamdUnavailable as error:
        log.warning("%s; policy %s", error, settings.rspamd_failure)
        if settings.rspamd_failure == "accept":
            return Screened(f"X-Spam-Status: unscanned (spam filter unavailable){eol}".encode() + raw)
        return Screened(raw, "451 4.7.1 Spam filter unavailable, try again later")
    head = verdict_headers(verdict, authserv_id=settings.hostname, mail_from=mail_from, eol=eol)
    return Screened(head.encode("utf-8") + raw, refusal(verdict))
