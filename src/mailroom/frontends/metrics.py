"""``GET /metrics``: Prometheus exposition, for loopback (or the configured networks) or a token.

``metrics_networks`` (default: loopback) may read without credentials; anyone else needs
``Authorization: Bearer <metrics_token>`` when a token is configured. Everything else gets 403;
with ``metrics_enabled = false`` there is no route at all.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailroom.accounting.metrics import metrics_of
from mailroom.errors import Forbidden
from mailroom.frontends.http_auth import client_ip
from mailroom.frontends.rest.problems import problem_response

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom


def metrics_routes(mailroom: Mailroom) -> list[BaseRoute]:
    settings = mailroom.settings
    metrics = metrics_of(mailroom.runtime)
    if not settings.metrics_enabled or metrics is None:
        return []
    networks = [ipaddress.ip_network(n) for n in settings.metrics_networks]
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    def allowed(request: Request) -> bool:
        ip = client_ip(request)
        if ip is not None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                addr = None
            if addr is not None and any(addr in net for net in networks):
                return True
        if token:
            scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
        return False

    async def endpoint(request: Request) -> Response:
        if not allowed(request):
            return problem_response(Forbidden("metrics are not served to this client"), instance="/metrics")
        body, content_type = metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    return [Route("/metrics", endpoint, methods=["GET"], name="metrics")]
