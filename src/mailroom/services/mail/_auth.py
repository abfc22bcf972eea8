"""The authenticator the runtime carries, for the methods that check credentials themselves
(login, second factors, proxied logins)."""

from __future__ import annotations

from mailroom.auth.authenticate import Authenticator
from mailroom.registry import Context


def authenticator_of(ctx: Context) -> Authenticator:
    authenticator = ctx.rt.authenticator
    assert authenticator is not None, "bootstrap.start sets the authenticator"
    return authenticator
