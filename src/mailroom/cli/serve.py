"""``mailroom serve``: bind every listener, migrate, make the first admin key once, then run
the workers.

The listeners (HTTP, SMTP, LMTP, submission: :mod:`mailroom.frontends.listeners`) are bound
here first, before anything is created, so a second server on the same ports stops with
"port N is in use" and leaves its data folder untouched. The bound sockets go to the
workers: uvicorn serves HTTP on its socket, the app (:func:`mailroom.asgi.create_app`) the
mail listeners on theirs. With one worker it runs in this process; with more, uvicorn's
supervisor starts each as a fresh interpreter that inherits the sockets and builds its
settings with ``load_settings()``. A worker inherits this process's environment and reads
the same TOML file, so exporting the options given on this command line as ``MAILROOM_*``
variables gives every worker exactly the settings this process has; :func:`serve` checks
that before starting them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailroom.auth.principal import SYSTEM
from mailroom.cli._output import err_console, fail
from mailroom.cli._state import state
from mailroom.domain.clientconfig import startup_warnings
from mailroom.frontends.listeners import BoundListeners, InheritingApp, ListenError, bind_all
from mailroom.settings import Settings, load_settings

if TYPE_CHECKING:  # imported when serving, not for --help
    import uvicorn

    from mailroom.bootstrap import Mailroom

INITIAL_KEY_NAME = "initial-admin"
#: How long the supervisor waits for a worker's answer before it kills it as hung. uvicorn's
#: 5 s kills workers that are only slow to start on a busy machine (a new worker imports
#: everything before it can answer), and every kill drops that worker's connections.
WORKER_HEALTHCHECK_SECONDS = 30


async def ensure_admin_key(app: Mailroom) -> str | None:
    """Create an admin API key when none exists, and return its secret; otherwise None.

    The key is made through the registry like any other (``admin.apikeys.create``); only the
    secret's single display is special, so it is never shown again on a later start.
    """
    from mailroom.store import apikeys

    async with app.runtime.db.read() as tx:
        if await apikeys.count_admin_keys(tx):
            return None
    created = await app.registry.call(
        "admin.apikeys.create",
        {"key": {"name": INITIAL_KEY_NAME, "admin": True}},
        principal=SYSTEM,
        protocol="cli",
    )
    secret: str = created["key"]
    return secret


def worker_environment(given: Mapping[str, Any]) -> dict[str, str]:
    """``MAILROOM_*`` variables for the settings given as options."""
    return {f"MAILROOM_{name.upper()}": str(value) for name, value in given.items() if value is not None}


#: ``log_level`` names to logging levels (uvicorn's "trace" is 5).
LOG_LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}


def log_config(level: str = "warning") -> dict[str, Any]:
    """uvicorn's logging, all of it on stderr: standard output carries only the first key.

    Every handler scrubs credentials (``mailroom.redaction``); the root logger (mailroom's
    own loggers, aiosmtpd's ``mail.log``, websockets) logs at ``level``, with the logger's
    name; uvicorn's loggers stay at info unless ``level`` is more verbose.
    """
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": "mailroom.redaction.RedactSecrets"}
    for handler in config["handlers"].values():
        handler["stream"] = "ext://sys.stderr"
        handler["filters"] = [*handler.get("filters", []), "redact"]
    config["formatters"]["named"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s %(name)s: %(message)s",
    }
    config["handlers"]["named"] = {
        "formatter": "named",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "filters": ["redact"],
    }
    numeric = LOG_LEVELS[level]
    config["root"] = {"handlers": ["named"], "level": numeric}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        if name in config["loggers"]:
            config["loggers"][name]["level"] = min(numeric, LOG_LEVELS["info"])
    return config


def bind_listeners(settings: Settings) -> BoundListeners:
    """Every listener the settings switch on, bound; exit 1 naming the port when one is taken."""
    try:
        return bind_all(settings)
    except ListenError as exc:
        fail(str(exc))


def uvicorn_config(settings: Settings, bound: BoundListeners) -> uvicorn.Config:
    """uvicorn's configuration: the app gets the mail listeners' sockets, uvicorn the HTTP one."""
    import uvicorn

    host, port = bound.address("http")
    return uvicorn.Config(
        InheritingApp("mailroom.asgi:create_app", bound.without("http")),
        factory=True,
        host=host,
        port=port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_config=log_config(settings.log_level),
        access_log=settings.access_log,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


def run_workers(config: uvicorn.Config, bound: BoundListeners) -> None:
    """Serve until stopped: in this process with one worker, under uvicorn's supervisor with more.

    Every worker gets the same sockets (the supervisor passes them to each process it
    starts, also when it replaces one that died). Exit 3 (uvicorn's) when serving could
    not start.
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    sockets = [bound.sockets["http"]]
    if config.workers > 1:
        supervisor = Multiprocess(config, sockets=sockets)
        supervisor.run()
        failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    else:
        server = uvicorn.Server(config)
        server.run(sockets=sockets)
        failed = not server.started
    if failed:
        raise typer.Exit(STARTUP_FAILURE)


def announce_key(secret: str) -> None:
    err = err_console()
    err.print("[bold yellow]No admin API key existed, so one was created:[/] [bold]initial-admin[/].")
    err.print("[bold yellow]It is shown this once and cannot be shown again: store it now.[/]")
    err.print("Use it as 'Authorization: Bearer <key>'.")
    typer.echo(secret)


def announce_warnings(settings: Settings) -> None:
    """The start-up warnings (a placeholder mail host name, ...), one banner line each."""
    from rich.markup import escape

    for warning in startup_warnings(settings):
        err_console().print(f"[bold yellow]Warning:[/] {escape(warning)}")


def _help(text: str, setting: str) -> str:
    """An option's help with the setting it overrides and that setting's real default (the
    option's own default is None: unset, the setting applies)."""
    return f"{text} (setting {setting}; default {Settings.model_fields[setting].default})."


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help=_help("Address the HTTP server listens on", "host"))
    ] = None,
    port: Annotated[int | None, typer.Option(help=_help("HTTP port", "port"))] = None,
    workers: Annotated[int | None, typer.Option(help=_help("Worker processes", "workers"))] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help=_help("Data folder, overrides the global --data-dir", "data_dir"),
        ),
    ] = None,
    smtp_port: Annotated[
        int | None,
        typer.Option(help=_help("Inbound SMTP port, 0 switches it off", "smtp_port")),
    ] = None,
    lmtp_port: Annotated[
        int | None, typer.Option(help=_help("LMTP port, 0 switches it off", "lmtp_port"))
    ] = None,
    submission_port: Annotated[
        int | None,
        typer.Option(
            help=_help("Submission port, 0 switches it off", "submission_port"),
        ),
    ] = None,
    imap_port: Annotated[
        int | None, typer.Option(help=_help("IMAP port (STARTTLS), 0 switches it off", "imap_port"))
    ] = None,
    imaps_port: Annotated[
        int | None, typer.Option(help=_help("IMAP port (implicit TLS), 0 switches it off", "imaps_port"))
    ] = None,
    pop3_port: Annotated[
        int | None, typer.Option(help=_help("POP3 port (STLS), 0 switches it off", "pop3_port"))
    ] = None,
    pop3s_port: Annotated[
        int | None, typer.Option(help=_help("POP3 port (implicit TLS), 0 switches it off", "pop3s_port"))
    ] = None,
) -> None:
    """Run the server: bind its ports, migrate the database, create the first admin key, serve
    HTTP and mail.

    A port already in use stops it before anything is created. The first start prints an
    admin API key once (on standard output, nothing else goes there); later starts never
    show it again. Serving uses uvloop and httptools.
    """
    st = state(ctx)
    given = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "workers": workers,
            "data_dir": data_dir,
            "smtp_port": smtp_port,
            "lmtp_port": lmtp_port,
            "submission_port": submission_port,
            "imap_port": imap_port,
            "imaps_port": imaps_port,
            "pop3_port": pop3_port,
            "pop3s_port": pop3s_port,
        }.items()
        if v is not None
    }
    settings = st.settings(**given)
    # Ports first: a second server on the same host stops here, before it creates a data
    # folder, a database, a secret or an admin key.
    bound = bind_listeners(settings)
    try:
        secret = st.run(ensure_admin_key)
        if secret is not None:
            announce_key(secret)
        os.environ.update(worker_environment(st.given(**given)))
        if load_settings() != settings:
            fail(
                "the worker processes would not get these settings from the environment; "
                "set them in the TOML file instead"
            )
        err = err_console()
        err.print(f"mailroom serving with {settings.workers} worker(s):", highlight=False)
        for line in bound.banner():
            err.print(f"  {line}", highlight=False, markup=False)
        announce_warnings(settings)
        run_workers(uvicorn_config(settings, bound), bound)
    finally:
        bound.close()
