"""The web app (webmail at ``/``, admin console at ``/admin``): its built files and its login.

The app itself is a single-page application in ``web/`` at the repository root (TypeScript,
Preact, built with Vite into ``static/`` here, which is package data). The server only serves
those files, with a strict Content-Security-Policy, and turns the mail client login into an
HttpOnly session cookie (:mod:`.session`); everything else the app does goes through the
public API under ``/api/v1``, as any other client's calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from mailroom.frontends.web.oidc import oidc_routes
from mailroom.frontends.web.pages import page_routes
from mailroom.frontends.web.session import session_routes

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

__all__ = ["web_routes"]


def web_routes(mailroom: Mailroom) -> list[BaseRoute]:
    """``/``, ``/admin``, ``/assets/*``, ``/web/session`` and ``/web/oidc/*``."""
    return [*page_routes(), *session_routes(mailroom), *oidc_routes(mailroom)]
