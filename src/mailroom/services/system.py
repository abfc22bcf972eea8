"""system.*: health and introspection of the registry, callable like any method."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mailroom.errors import MethodNotFound, Unavailable
from mailroom.registry import GET, Api, Authenticated, Context, Public

api = Api("system", title="System", description="Health and introspection of the method registry.")


class Health(BaseModel):
    status: str
    database: str
    version: str


class ApiSummary(BaseModel):
    name: str
    title: str
    description: str
    methods: list[str]


@api.method("system.health.get", http=GET("/health"), access=Public())
async def health(ctx: Context) -> Health:
    """Whether the server and its database answer (503 when the database does not)."""
    from mailroom import __version__

    if not await ctx.rt.db.ping():
        raise Unavailable("the database does not answer")
    return Health(status="ok", database=ctx.rt.db.dialect, version=__version__)


@api.method("system.apis.list", http=GET("/system/apis"), access=Authenticated())
async def list_apis(ctx: Context) -> list[ApiSummary]:
    """The named APIs and the methods of each that this caller's protocol can reach."""
    visible = ctx.registry.visible(ctx.call.protocol)
    return [
        ApiSummary(
            name=a.name,
            title=a.title,
            description=a.description,
            methods=[s.name for s in visible if s.api == a.name],
        )
        for a in ctx.registry.apis()
    ]


@api.method("system.methods.describe", http=GET("/system/methods/{name}"), access=Authenticated())
async def describe_method(ctx: Context, name: str) -> dict[str, Any]:
    """A method's contract: parameters and result schemas, access policy, REST binding."""
    spec = ctx.registry.get(name)
    if spec is None or not ctx.registry.remote_allowed(spec, ctx.call.protocol):
        raise MethodNotFound(f"unknown method {name!r}", method=name)
    return ctx.registry.describe(name)
