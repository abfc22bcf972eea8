"""``Idempotency-Key``: a retried POST is answered with the first response, not run again.

Applies to calls that carry the header and change something: REST ``POST`` bindings, and
mutating methods over the other protocols that have headers (JSON-RPC, XML-RPC). Keys are
scoped per principal (their user, key, or network when anonymous), so two callers never
see each other's responses.

* The first request claims the key with a *running* marker and a fingerprint (SHA-256 of the
  method name and its parameters); on success its status and result are stored.
* The same key and the same request again: the stored status and body are replayed (with
  ``Idempotent-Replayed: true``); the method does not run.
* The same key with another request: 422 (``invalid_params`` on ``Idempotency-Key``).
* The same key while the first still runs: 409 (``conflict``); a marker older than
  ``idempotency_running_seconds`` is taken as a dead worker's and may be claimed again.
* A first request that fails releases the key, so the client may retry with it.
* Keys expire after ``idempotency_ttl_seconds`` (24 h), by the injected clock.

In a JSON-RPC batch the header belongs to the whole request: send batches that change
things without it, or one call per key.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import orjson

from mailroom.accounting.counters import client_network
from mailroom.clock import Clock
from mailroom.errors import Conflict, FieldError, InvalidParams
from mailroom.registry import Call, Download, MethodSpec, Proceed
from mailroom.settings import Settings
from mailroom.store import idempotency as store
from mailroom.store.engine import Database

log = logging.getLogger("mailroom.idempotency")

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255


def fingerprint(call: Call) -> str:
    """The method and its parameters, canonically: what makes two requests "the same"."""
    body = orjson.dumps(
        {"method": call.spec.name, "params": call.raw_params},
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        default=str,
    )
    return hashlib.sha256(body).hexdigest()


def _encode(result: Any) -> Any:
    if isinstance(result, Download):
        return {
            "__download__": base64.b64encode(result.content).decode("ascii"),
            "content_type": result.content_type,
            "filename": result.filename,
        }
    return result


def _decode(stored: Any) -> Any:
    if isinstance(stored, dict) and "__download__" in stored:
        return Download(base64.b64decode(stored["__download__"]), stored["content_type"], stored["filename"])
    return stored


class Idempotency:
    """The filter and its store."""

    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
        self.running = timedelta(seconds=settings.idempotency_running_seconds)

    @staticmethod
    def may_apply(spec: MethodSpec) -> bool:
        """Whether a call of this method can carry an Idempotency-Key that counts: a change,
        or anything bound to POST (REST decides by verb)."""
        return spec.mutating or (spec.http is not None and spec.http.verb == "POST")

    def applies(self, call: Call) -> bool:
        if HEADER not in call.info.headers:
            return False
        if call.info.protocol == "rest":
            return call.spec.http is not None and call.spec.http.verb == "POST"
        return call.spec.mutating

    def scope(self, call: Call) -> str:
        p = call.principal
        if p.user_id is not None:
            return f"user:{p.user_id}"
        if p.key_id is not None:
            return f"key:{p.key_id}"
        if p.session_id is not None:
            return f"session:{p.session_id}"
        if p.kind == "anonymous":
            network = client_network(
                call.info.client_ip or p.client_ip,
                self.settings.client_network_prefix_v4,
                self.settings.client_network_prefix_v6,
            )
            return f"net:{network}"
        return p.kind

    def _status(self, call: Call) -> int | None:
        if call.info.status is not None:
            return call.info.status
        return call.spec.http.status if call.spec.http is not None else None

    def filter(self, call: Call, proceed: Proceed) -> Awaitable[Any]:
        if not self.applies(call):
            return proceed(call)  # no key: no frame of its own
        return self._keyed(call, proceed)

    async def _keyed(self, call: Call, proceed: Proceed) -> Any:
        key = call.info.headers[HEADER].strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidParams(
                [FieldError("Idempotency-Key", f"1 to {MAX_KEY_LENGTH} printable characters", "invalid")]
            )
        scope = self.scope(call)
        digest = fingerprint(call)
        replay = await self._claim(scope, key, digest)
        if replay is not None:
            status, result = replay
            if status is not None:
                call.info.status = status
            call.info.response_headers["Idempotent-Replayed"] = "true"
            return _decode(result)
        try:
            result = await proceed(call)
        except BaseException:
            await self._release(scope, key)
            raise
        try:
            async with self.db.write() as tx:
                await store.finish(tx, scope, key, self._status(call), _encode(result))
        except Exception:
            log.exception("could not store the response for an Idempotency-Key; a retry will run again")
            await self._release(scope, key)
        return result

    async def _claim(self, scope: str, key: str, digest: str) -> tuple[int | None, Any] | None:
        """Claim the key (None: go ahead), or the stored (status, result) to replay."""
        now = self.clock.now()
        for _ in range(3):
            try:
                async with self.db.write() as tx:
                    row = await store.get(tx, scope, key)
                    stale = row is not None and (
                        row.expires_at <= now
                        or (row.state == "running" and row.created_at + self.running <= now)
                    )
                    if row is None or stale:
                        if stale:
                            await store.release(tx, scope, key)
                        await store.start(tx, scope, key, digest, now, now + self.ttl)
                        return None
            except Conflict:
                continue  # another worker claimed it between our read and insert: look again
            assert row is not None
            if row.fingerprint != digest:
                raise InvalidParams(
                    [
                        FieldError(
                            "Idempotency-Key",
                            "this key was used with a different request; use a new key",
                            "idempotency_key_reused",
                        )
                    ]
                )
            if row.state == "running":
                raise Conflict("a request with this Idempotency-Key is still running; retry later")
            return row.status, row.result
        raise Conflict("a request with this Idempotency-Key is still running; retry later")

    async def _release(self, scope: str, key: str) -> None:
        try:
            async with self.db.write() as tx:
                await store.release(tx, scope, key)
        except Exception:
            log.exception("could not release an Idempotency-Key")

    async def prune(self) -> int:
        async with self.db.write() as tx:
            return await store.prune(tx, self.clock.now())
