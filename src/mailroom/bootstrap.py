"""Composition root: settings → runtime → registry → runner. The one place that wires it all."""

from __future__ import annotations

import importlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from mailroom import redaction
from mailroom.auth.authenticate import Authenticator
from mailroom.auth.passwords import PasswordHasher
from mailroom.auth.sessions import install as install_sessions
from mailroom.auth.totp import SecretBox
from mailroom.clock import Clock, SystemClock
from mailroom.delivery.ingest import drain as drain_ingest
from mailroom.events import open_broker
from mailroom.registry import Api, Call, Filter, MethodSpec, Proceed, Registry, Runner
from mailroom.runtime import Runtime
from mailroom.settings import ProviderRoute, Settings
from mailroom.store import migrate
from mailroom.store.blobs import FileBlobStore
from mailroom.store.engine import open_database

log = logging.getLogger("mailroom")

#: Hooks other packages add to run at start-up (pipeline listeners, background tasks).


def builtin_apis(settings: Settings) -> list[Api]:
    """The APIs mailroom itself provides."""
    from mailroom.services import builtin

    return builtin.apis(settings)


def load_provider(route: ProviderRoute, settings: Settings) -> dict[str, Any]:
    """Resolve a provider name to ``{method name: implementation}``.

    ``module:attribute`` names an :class:`Api` (or a list of them) in a module; any other
    name is looked up among the ``mailroom.providers`` entry points; ``remote`` forwards to
    another mailroom's JSON-RPC endpoint.
    """
    if route.provider == "remote":
        from mailroom.providers.remote import remote_implementations

        remote: dict[str, Any] = remote_implementations(route, settings)
        return remote
    if ":" in route.provider:
        module_name, _, attr = route.provider.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
    else:
        matches = [ep for ep in entry_points(group="mailroom.providers") if ep.name == route.provider]
        if not matches:
            raise ValueError(f"no provider named {route.provider!r} (entry point group mailroom.providers)")
        target = matches[0].load()
    apis = [target] if isinstance(target, Api) else list(target)
    out: dict[str, Any] = {}
    for api in apis:
        out.update({name: spec.func for name, spec in api.specs.items()})
    return out


def build_registry(settings: Settings, apis: Iterable[Api] | None = None) -> Registry:
    registry = Registry()
    for api in apis if apis is not None else builtin_apis(settings):
        registry.include(api)
    for route in settings.providers:
        routed = registry.override(route.methods, load_provider(route, settings), route.provider)
        log.info("provider %s serves %s", route.provider, ", ".join(routed))
    registry.configure_remote_access(settings.disabled_protocols, settings.remote_disabled)
    return registry


@dataclass
class Mailroom:
    """A running mailroom: what front-ends, the CLI and tests hold."""

    settings: Settings
    runtime: Runtime
    registry: Registry
    runner: Runner
    authenticator: Authenticator
    closers: list[Callable[[], Any]] = field(default_factory=list)

    async def close(self) -> None:
        for closer in reversed(self.closers):
            result = closer()
            if hasattr(result, "__await__"):
                await result
        # The closers stopped the listeners; deliveries they accepted may still be
        # committing or announcing: they need the broker and the database open.
        await drain_ingest(self.runtime)
        await self.runtime.events.close()
        await self.runtime.db.close()


#: Objects whose changes cannot change what an API key stands for (its owner, their
#: domains, roles and state, the key itself): writing them keeps the key cache. Every other
#: change empties it — an object added to the registry invalidates until listed here.
KEY_CACHE_SAFE_OBJECTS = frozenset(
    {
        "admin.aliases",
        "admin.alternatives",
        "admin.dkim",
        "admin.identities",
        "admin.invites",
        "admin.queue",
        "admin.relays",
        "admin.waitlist",
        "jmap.Blob",
        "jmap.blob",
        "jmap.Email",
        "jmap.EmailSubmission",
        "jmap.Identity",
        "jmap.Mailbox",
        "jmap.PushSubscription",
        "jmap.VacationResponse",
        "mail.contacts",
        "mail.delivery",
        "mail.emails",
        "mail.imap",  # flags, copies, expunges, subscriptions, \Recent marks: mail only
        "mail.keys",
        "mail.keyserver",  # key uploads and their confirmations
        "mail.labels",
        "mail.messages",
        "mail.pop3",  # maildrop locks and QUIT's deletions
        "mail.settings",
        "mail.signup",
        "mail.submission",
        "mail.threads",
        "mail.uploads",
    }
)


def _forget_cached_keys(authenticator: Authenticator) -> Filter:
    """A change through the registry that may touch a key's principal empties this
    process's API-key cache (other processes see it within ``auth_cache_seconds``)."""

    async def forget(call: Call, proceed: Proceed) -> Any:
        try:
            return await proceed(call)
        finally:
            authenticator.invalidate()

    return forget


def _may_touch_keys(spec: MethodSpec) -> bool:
    """Whether a method's change may alter an API key's principal (see :func:`_forget_cached_keys`)."""
    return spec.mutating and spec.name.rpartition(".")[0] not in KEY_CACHE_SAFE_OBJECTS


def ensure_secret_key(settings: Settings) -> Settings:
    """An empty secret key is generated once into the data folder and reused after."""
    if settings.secret_key.get_secret_value():
        return settings
    path = settings.data_dir / "secret_key"
    if path.exists():
        value = path.read_text().strip()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value + "\n")
        path.chmod(0o600)
    return settings.model_copy(update={"secret_key": type(settings.secret_key)(value)})


async def start(
    settings: Settings,
    *,
    clock: Clock | None = None,
    apis: Iterable[Api] | None = None,
    run_migrations: bool = True,
) -> Mailroom:
    """Open the database (migrating it), build the registry and runner."""
    redaction.install()  # before anything can log a credential
    settings = ensure_secret_key(settings)
    db = open_database(
        settings.effective_database_url,
        durable_commits=settings.durable_commits,
        commit_flush_ms=settings.commit_flush_ms,
    )
    if run_migrations:
        await migrate.upgrade(db)
    clock = clock or SystemClock()
    passwords = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
        concurrency=settings.password_check_concurrency,
    )
    blobs = FileBlobStore(settings.effective_blob_dir)
    events = open_broker(settings, clock)
    await events.start()
    runtime = Runtime(settings=settings, db=db, clock=clock, passwords=passwords, blobs=blobs, events=events)
    registry = build_registry(settings, apis)
    from mailroom.services.mail._push import install as install_push

    install_push(runtime)  # thread summaries in email.received events
    from mailroom.services.jmap.push_subscription import install as install_jmap_push

    install_jmap_push(runtime)  # JMAP PushSubscriptions get StateChanges (after the state is added)
    runner = Runner(registry, runtime)
    registry.bind(runner)
    authenticator = Authenticator(db, passwords, clock)
    authenticator.cache_seconds = settings.auth_cache_seconds
    authenticator.totp_box = SecretBox(settings.secret_key.get_secret_value())  # TOTP secrets at rest
    runtime.authenticator = authenticator
    install_sessions(authenticator)  # ms_ bearer tokens of the mail client API
    if settings.oidc_issuer and settings.oidc_client_id:  # OpenID Connect (docs/auth.md)
        from mailroom.auth.oidc.client import OidcClient
        from mailroom.auth.oidc.users import install as install_oidc

        install_oidc(authenticator, OidcClient(settings, clock), settings)
    app = Mailroom(
        settings=settings, runtime=runtime, registry=registry, runner=runner, authenticator=authenticator
    )
    if settings.ldap_url is not None:  # passwords of directory users (docs/auth.md, "LDAP")
        from mailroom.auth.directory import Directory
        from mailroom.auth.provisioning import Provisioner, Provisioning

        authenticator.directory = Directory(settings)
        authenticator.provisioner = Provisioner(db, clock, Provisioning.from_settings(settings))
        app.closers.append(authenticator.directory.close)
    # Access and accounting first, in their fixed order (usage → rate limits → idempotency →
    # audit; see mailroom.accounting.setup).
    from mailroom.accounting.setup import install as install_accounting

    install_accounting(app)
    runner.add_filter(_forget_cached_keys(authenticator), when=_may_touch_keys)
    return app
