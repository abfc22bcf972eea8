"""What every command shares: the global flags, the settings built once from them, and a
way to run a coroutine against a started mailroom."""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import ValidationError

from mailroom.cli._output import fail_settings, fail_with
from mailroom.errors import MailroomError
from mailroom.settings import Settings, load_settings

if TYPE_CHECKING:
    # Imported when a command runs, not for --help: the registry imports every service and
    # the store (SQLAlchemy, Alembic), most of a command's start-up time.
    from mailroom.bootstrap import Mailroom
    from mailroom.registry import Registry

T = TypeVar("T")

#: The global options: the settings field each sets → the root command's parameter name.
GLOBAL_FLAGS = {"data_dir": "data_dir", "config": "config_file", "database_url": "database_url"}


@dataclass
class CliState:
    """The root command's flags; settings are built from them once, when first needed."""

    flags: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None
    _contracts: Registry | None = None

    def settings(self, **more: Any) -> Settings:
        """``load_settings(**flags)``: flags > environment > TOML > defaults.

        ``more`` are a command's own flags (``serve --port``); they count only on the first
        call, which is the one that builds the settings.
        """
        if self._settings is None:
            try:
                self._settings = load_settings(**self.given(**more))
            except (ValidationError, ValueError, OSError, tomllib.TOMLDecodeError) as exc:
                fail_settings(exc)
        return self._settings

    def given(self, **more: Any) -> dict[str, Any]:
        """The settings given as options (global and the command's own), paths made absolute."""
        merged = {k: v for k, v in (self.flags | more).items() if v is not None}
        return {k: v.resolve() if isinstance(v, Path) else v for k, v in merged.items()}

    def contracts(self) -> Registry:
        """The registry's methods as declared (no database needed): for help and listings."""
        if self._contracts is None:
            from mailroom import bootstrap

            try:
                self._contracts = bootstrap.build_registry(self.settings())
            except ValueError as exc:
                fail_settings(exc)
        return self._contracts

    def run(
        self,
        work: Callable[[Mailroom], Awaitable[T]],
        *,
        option_names: Mapping[str, str] | None = None,
        settings: Settings | None = None,
        **more: Any,
    ) -> T:
        """Start mailroom (migrating the database), run ``work``, close; domain errors exit 1.

        ``option_names`` maps parameter paths (``domain.max_users``) to the options that set
        them (``--max-users``), so that validation errors name what the user typed.
        ``settings`` replaces the command's own (a dry run on a scratch database).
        """
        settings = settings or self.settings(**more)

        from mailroom import bootstrap

        async def main() -> T:
            app = await bootstrap.start(settings)
            try:
                return await work(app)
            finally:
                await app.close()

        try:
            import asyncio

            return asyncio.run(main())
        except MailroomError as exc:
            fail_with(exc, option_names=option_names)


def state(ctx: typer.Context | Any) -> CliState:
    """The root context's state, made on first use (``--help`` runs before the root callback)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState({field: root.params.get(param) for field, param in GLOBAL_FLAGS.items()})
    return root.obj
