"""A second provider for tests: it overrides ``admin.domains.get`` and nothing else."""

from __future__ import annotations

from mailroom.domain.domains import Domain
from mailroom.domain.names import DomainName
from mailroom.registry import Api, Context, Manager

api = Api("admin", title="Alternative admin provider", provider="tests.alt")


@api.method("admin.domains.get", access=Manager("name"))
async def get_domain(ctx: Context, name: DomainName) -> Domain:
    """Serve every domain from a fixed table instead of the database."""
    now = ctx.rt.clock.now()
    return Domain(
        name=name,
        comment="served by the alternative provider",
        max_users=None,
        max_aliases=None,
        max_quota_bytes=None,
        signup_enabled=False,
        dkim_selector=None,
        created_at=now,
        updated_at=now,
    )
