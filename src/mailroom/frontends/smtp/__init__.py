"""The SMTP front-ends: inbound SMTP and LMTP listeners (aiosmtpd) over the registry.

The wire state machine is aiosmtpd's; the policy is the registry's ``mail.delivery.*``
methods. The listeners run in every uvicorn worker, on the sockets ``mailroom serve`` bound
once (:mod:`mailroom.frontends.listeners`: the kernel spreads connections over the workers,
each of which is identical and stateless), and stand alone in tests (:func:`start_listeners`
on port 0).
"""

from mailroom.frontends.smtp._handler import DeliveryHandler
from mailroom.frontends.smtp._server import Listeners, start_listeners

__all__ = ["DeliveryHandler", "Listeners", "start_listeners"]
