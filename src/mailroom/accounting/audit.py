"""The audit log: every change made through the admin API (and so the CLI) is recorded.

A filter around mutating ``admin.*`` methods records, after a successful call: who (principal,
key, protocol, client address), when, which method, the target, the mail domain it belongs
to (so managers can read their domains' entries), the parameters and a before/after diff.

*Before* and *after* come from the object's reader, called in-process as the system (no
filters, no accounting): ``admin.<objects>.get`` for ``admin.<objects>.<verb>`` and
``admin.<objects>.get_<x>`` for ``admin.<objects>.set_<x>``, with the same key parameters.
Without a reader, a created object is the call's result and a change shows only in its
parameters. The reads are not in the method's transaction: under concurrent changes to one
object a diff may include a neighbour's change.

Secrets never reach the log: values of fields named ``password``, ``password_hash``,
``dkim_private_key``, ``private_key``, anything containing ``secret``, ``password`` or
``token``, and a text field named ``key`` (an API key's secret) become ``[redacted]``; a diff
still says that such a field changed.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from pydantic import ValidationError

from mailroom.auth.principal import SYSTEM
from mailroom.clock import Clock
from mailroom.errors import InternalError, MailroomError
from mailroom.registry import Call, CallInfo, Context, Download, MethodSpec, Proceed, Registry
from mailroom.runtime import Runtime
from mailroom.store import audit as store
from mailroom.store.engine import Database

log = logging.getLogger("mailroom.audit")

REDACTED = "[redacted]"
_SECRET_NAMES = frozenset({"password", "password_hash", "dkim_private_key", "private_key"})
_SECRET_PARTS = ("secret", "password", "token")
_IDENTITY_FIELDS = ("email", "address", "name", "id")


@functools.lru_cache(maxsize=2048)
def _secret_name(name: str) -> bool | None:
    """True: always secret; None: secret when its value is text (``key``); False: never."""
    lowered = name.lower()
    if lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS):
        return True
    return None if lowered == "key" else False


def _hides(rule: bool | None, value: Any) -> bool:
    """Whether a field whose name gives ``rule`` (:func:`_secret_name`) hides ``value``."""
    return isinstance(value, str) if rule is None else rule


#: Values that are their own redaction (most leaves of an admin object).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret replaced by ``[redacted]``."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if v is None:
                out[k] = None
                continue
            if _hides(_secret_name(k if type(k) is str else str(k)), v):
                out[k] = REDACTED
            else:
                out[k] = v if type(v) in _PLAIN else redact(v)
        return out
    if isinstance(value, list | tuple):
        return [v if type(v) in _PLAIN else redact(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves by dotted path (``{"a": {"b": 1}}`` → ``{"a.b": 1}``); a scalar is ``value``."""
    if not isinstance(value, dict):
        return {prefix or "value": value}
    out: dict[str, Any] = {}
    _flatten_into(value, prefix, out)
    return out


def _flatten_into(value: dict[Any, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in value.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            _flatten_into(v, path, out)
        else:
            out[path or "value"] = v


@functools.lru_cache(maxsize=2048)
def _path_rule(path: str) -> tuple[bool | None, bool]:
    """For a dotted path: its leaf's rule (as :func:`_secret_name`), and whether a field it
    lies inside makes it secret whatever its value (``key.name`` is, under ``key``)."""
    *parents, leaf = path.split(".")
    return _secret_name(leaf), any(_secret_name(p) is not False for p in parents)


def diff(before: Any, after: Any) -> dict[str, dict[str, Any]]:
    """``{path: {"before": old, "after": new}}`` for every field that differs; secrets redacted."""
    old = _flatten(before) if before is not None else {}
    new = _flatten(after) if after is not None else {}
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(old.keys() | new.keys()) if old else sorted(new):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        leaf, inside_secret = _path_rule(path)
        if inside_secret or _hides(leaf, a if a is not None else b):
            a = REDACTED if a is not None else None
            b = REDACTED if b is not None else None
        out[path] = {
            "before": a if type(a) in _PLAIN else redact(a),
            "after": b if type(b) in _PLAIN else redact(b),
        }
    return out


class AuditLog:
    """The filter, and the in-process reads it makes for before/after."""

    def __init__(self, runtime: Runtime, registry: Registry, db: Database, clock: Clock) -> None:
        self.runtime = runtime
        self.registry = registry
        self.db = db
        self.clock = clock

    @staticmethod
    def applies(spec: MethodSpec) -> bool:
        return spec.api == "admin" and spec.mutating

    def reader(self, spec: MethodSpec) -> MethodSpec | None:
        api, _, rest = spec.name.partition(".")
        objects, _, verb = rest.partition(".")
        name = f"{api}.{objects}.get_{verb[4:]}" if verb.startswith("set_") else f"{api}.{objects}.get"
        reader = self.registry.get(name)
        return reader if reader is not None and reader is not spec else None

    @staticmethod
    def _reader_params(reader: MethodSpec, call: Call) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        for name in reader.required:
            if name not in call.spec.param_names:
                return None
            params[name] = getattr(call.params, name)
        return params

    async def read(self, reader: MethodSpec, params: dict[str, Any]) -> Any:
        """The object as its reader returns it, or None when it does not exist."""
        try:
            model = reader.params_model.model_validate(params)
            ctx = Context(
                principal=SYSTEM, rt=self.runtime, call=CallInfo(protocol="inprocess"), registry=self.registry
            )
            result = await reader.func(ctx, **{n: getattr(model, n) for n in reader.param_names})
        except (MailroomError, ValidationError):
            return None
        if result is None or isinstance(result, Download):
            return None
        return reader.return_adapter.dump_python(result, mode="json", by_alias=True)

    async def filter(self, call: Call, proceed: Proceed) -> Any:
        if not self.applies(call.spec):
            return await proceed(call)
        reader = self.reader(call.spec)
        key_params = self._reader_params(reader, call) if reader is not None else None
        # One unit of work: the method's writes and the audit entry commit together (one
        # fsync), and an entry that cannot be written takes the change back with it.
        async with self.db.unit_of_work():
            before = (
                await self.read(reader, key_params) if reader is not None and key_params is not None else None
            )
            result = await proceed(call)
            try:
                await self._record(call, reader, key_params, before, result)
            except MailroomError:
                raise
            except Exception:
                log.exception("could not write the audit entry for %s; the change is undone", call.name)
                raise InternalError() from None
        return result

    async def _record(
        self,
        call: Call,
        reader: MethodSpec | None,
        key_params: dict[str, Any] | None,
        before: Any,
        result: Any,
    ) -> None:
        verb = call.spec.name.rsplit(".", 1)[-1]
        if verb == "delete":
            after = None
        elif reader is not None and key_params is not None:
            after = await self.read(reader, key_params)
        else:
            after = result if isinstance(result, dict) else None
        changes = None if before is None and after is None else diff(before, after)
        target = self._target(call, key_params, result)
        p = call.principal
        entry: store.AuditEntry = {
            "at": self.clock.now(),
            "principal": p.label[:320],
            "user_id": p.user_id,
            "key_id": p.key_id,
            "protocol": call.info.protocol[:32],
            "client_ip": (call.info.client_ip or p.client_ip or None),
            "request_id": (call.info.request_id or None),
            "method": call.spec.name,
            "object": call.spec.name.split(".")[1] if call.spec.name.count(".") >= 2 else call.spec.name,
            "target": target[:400] if target else None,
            "domain": self._domain(call, target, result),
            "params": redact(call.params.model_dump(mode="json", by_alias=True)),
            "changes": changes,
        }
        async with self.db.write() as tx:
            await store.add(tx, entry)

    @staticmethod
    def _target(call: Call, key_params: dict[str, Any] | None, result: Any) -> str | None:
        verb = call.spec.name.rsplit(".", 1)[-1]
        identity = None
        if isinstance(result, dict):
            identity = next((str(result[f]) for f in _IDENTITY_FIELDS if result.get(f)), None)
        path = [str(getattr(call.params, n)) for n in (call.spec.http.path_params if call.spec.http else ())]
        if verb == "create" and identity is not None:
            return "/".join([*path, identity]) if path else identity
        if path:
            return "/".join(path)
        if key_params:
            return "/".join(str(v) for v in key_params.values())
        return identity

    @staticmethod
    def _domain(call: Call, target: str | None, result: Any) -> str | None:
        params = call.params
        # Only a parameter can be one (the model forbids extras); asking the model for an
        # attribute it lacks costs pydantic an exception.
        domain = getattr(params, "domain", None) if "domain" in call.spec.param_names else None
        if isinstance(domain, str):
            return domain.lower()
        if call.spec.name.startswith("admin.domains."):
            name = getattr(params, "name", None) or (result.get("name") if isinstance(result, dict) else None)
            return str(name).lower() if name else None
        if target and "@" in target:
            return target.split("/")[-1].rpartition("@")[2].lower()
        if isinstance(result, dict) and isinstance(result.get("domain"), str):
            return str(result["domain"]).lower()
        return None
