"""Keys fetched from another key server (``keyserver_upstream``) for external addresses.

When a signed-in user looks up an external address the directory knows no key for
(mail.keys.lookup), the upstream key server is asked over HKP
(``GET <upstream>/pks/lookup?op=get&options=mr&search=<address>``). Every key it returns
that names the address in a user id (and has not expired) is listed for it as ``fetched``,
with the user ids naming our own addresses taken out (only their owners speak for those).
The answer is bounded (:data:`MAX_ANSWER_BYTES`, :data:`TIMEOUT_SECONDS`); a key server that
fails or answers garbage only means nothing is fetched. Only signed-in lookups fetch, so the
anonymous HKP face cannot be used to make this server query another one.
"""

from __future__ import annotations

import logging
import re

import httpx

from mailroom.domain.pgp import parse_public_key
from mailroom.registry import Context
from mailroom.store import pubkeys as store

log = logging.getLogger("mailroom.keyserver")

TIMEOUT_SECONDS = 5.0
MAX_ANSWER_BYTES = 1_000_000
MAX_KEYS = 10
_BLOCK = re.compile(r"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----", re.DOTALL)


async def _ask(base: str, email: str) -> str | None:
    url = base.rstrip("/") + "/pks/lookup"
    params = {"op": "get", "options": "mr", "search": email}
    try:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", url, params=params) as response,
        ):
            if response.status_code != 200:
                return None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    log.warning("the upstream key server's answer for an address was too large")
                    return None
            return body.decode("ascii", errors="replace")
    except httpx.HTTPError as error:
        log.warning("the upstream key server could not be asked: %s", type(error).__name__)
        return None


async def fetch_for(ctx: Context, email: str) -> int:
    """Ask the upstream key server for ``email``'s keys and list those naming it as
    ``fetched``; how many were listed."""
    from mailroom.services.mail.keys import owner_addresses, publishable, store_key

    base = ctx.rt.settings.keyserver_upstream
    if not base:
        return 0
    text = await _ask(base, email)
    if text is None:
        return 0
    now = ctx.rt.clock.now()
    listed = 0
    for block in _BLOCK.findall(text)[:MAX_KEYS]:
        try:
            key = parse_public_key(block)
        except ValueError:
            continue
        if email not in key.emails or key.expired(now):
            continue
        async with ctx.rt.db.write() as tx:
            stored = await store.key(tx, key.fingerprint)
            text_key = await publishable(tx, key, owner_addresses(stored))
            await store_key(tx, stored, text_key, email=email, user_id=None, now=now)
            if await store.list_key(tx, key.fingerprint, email, "fetched", None, now):
                listed += 1
    return listed
