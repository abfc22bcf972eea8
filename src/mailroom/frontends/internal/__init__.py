"""What the mail daemons ask over HTTP (``/internal/*``): nginx auth_http and auth_request."""

from mailroom.frontends.internal.auth_http import internal_routes

__all__ = ["internal_routes"]
