"""``mailroom serve``: migrate, make the first admin key once, then run uvicorn.

uvicorn starts each worker as a fresh interpreter that builds its settings with
``load_settings()`` (``mailroom.asgi:create_app``). The worker inherits this process's
environment and reads the same TOML file, so exporting the options given on this command
line as ``MAILROOM_*`` variables gives every worker exactly the settings this process has;
:func:`serve` checks that before starting them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from mailroom.auth.principal import SYSTEM
from mailroom.bootstrap import Mailroom
from mailroom.cli._output import err_console, fail
from mailroom.cli._state import state
from mailroom.domain.clientconfig import startup_warnings
from mailroom.settings import Settings, load_settings
from mailroom.store import apikeys

INITIAL_KEY_NAME = "initial-admin"


async def ensure_admin_key(app: Mailroom) -> str | None:
    """Create an admin API key when none exists, and return its secret; otherwise None.

    The key is made through the registry like any other (``admin.apikeys.create``); only the
    secret's single display is special, so it is never shown again on a later start.
    """
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


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [settings: host, 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port [settings: port, 8025].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [settings: workers, 1].")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data folder (overrides the global --data-dir).")
    ] = None,
    smtp_port: Annotated[
        int | None, typer.Option(help="Inbound SMTP port, 0 disables [settings: smtp_port, 2525].")
    ] = None,
    lmtp_port: Annotated[
        int | None, typer.Option(help="LMTP port, 0 disables [settings: lmtp_port, 2424].")
    ] = None,
    submission_port: Annotated[
        int | None,
        typer.Option(help="Authenticated submission port, 0 disables [settings: submission_port, 2587]."),
    ] = None,
) -> None:
    """Run the API server: migrate the database, create the first admin key, serve HTTP.

    The first start prints an admin API key once (on standard output, nothing else goes
    there); later starts never show it again. Serving uses uvloop and httptools.
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
        }.items()
        if v is not None
    }
    settings = st.settings(**given)
    secret = st.run(ensure_admin_key)
    if secret is not None:
        announce_key(secret)
    os.environ.update(worker_environment(st.given(**given)))
    if load_settings() != settings:
        fail(
            "the worker processes would not get these settings from the environment; "
            "set them in the TOML file instead"
        )
    err_console().print(
        f"mailroom serving http://{settings.host}:{settings.port} with {settings.workers} worker(s)"
    )
    announce_warnings(settings)
    uvicorn.run(
        "mailroom.asgi:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_config=log_config(settings.log_level),
        access_log=settings.access_log,
    )
