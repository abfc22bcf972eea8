"""admin.domains.{get,set}_attachment_policy: may a domain's users upload plain attachments?"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mailroom.domain.names import DomainName
from mailroom.errors import NotFound
from mailroom.registry import GET, PUT, Context, Manager
from mailroom.services.admin._api import api
from mailroom.store import domains as domain_store
from mailroom.store import uploads as store


class AttachmentPolicy(BaseModel):
    """A domain's attachment policy."""

    domain: str
    require_encrypted: bool = Field(
        description="Uploads of this domain's users must be OpenPGP-encrypted (detected by content)."
    )


class AttachmentPolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    require_encrypted: bool


@api.method(
    "admin.domains.get_attachment_policy",
    http=GET("/domains/{name}/attachment-policy"),
    access=Manager("name"),
)
async def get_attachment_policy(ctx: Context, name: DomainName) -> AttachmentPolicy:
    """Show whether a domain's users may only upload OpenPGP-encrypted attachments."""
    async with ctx.rt.db.read() as tx:
        if await domain_store.get(tx, name) is None:
            raise NotFound.of("domain", name)
        required = await store.requires_encryption(tx, name)
    return AttachmentPolicy(domain=name, require_encrypted=required)


@api.method(
    "admin.domains.set_attachment_policy",
    http=PUT("/domains/{name}/attachment-policy"),
    access=Manager("name"),
)
async def set_attachment_policy(
    ctx: Context, name: DomainName, policy: AttachmentPolicyUpdate
) -> AttachmentPolicy:
    """Require (or stop requiring) OpenPGP-encrypted attachments for a domain's uploads.

    With ``require_encrypted``, ``POST /uploads`` refuses a file that is not an OpenPGP
    encrypted message (armoured or binary) with 422 ``encryption_required``. Uploads made
    before are not checked again.
    """
    async with ctx.rt.db.write() as tx:
        if await domain_store.lock(tx, name) is None:
            raise NotFound.of("domain", name)
        await store.set_policy(tx, name, require_encrypted=policy.require_encrypted, now=ctx.rt.clock.now())
    return AttachmentPolicy(domain=name, require_encrypted=policy.require_encrypted)
