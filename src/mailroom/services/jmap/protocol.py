"""What the JMAP front-end needs of the services: the declared methods, the per-request
state and the method error. Nothing here reaches the store (front-ends never do)."""

from mailroom.services.jmap._api import CORE, MAIL, METHODS, SUBMISSION, VACATION, WEBSOCKET, JmapMethod
from mailroom.services.jmap._errors import MethodError
from mailroom.services.jmap._ids import account_id
from mailroom.services.jmap._request import EXTRA_KEY, JmapRequest

__all__ = [
    "CORE",
    "EXTRA_KEY",
    "MAIL",
    "METHODS",
    "SUBMISSION",
    "VACATION",
    "WEBSOCKET",
    "JmapMethod",
    "JmapRequest",
    "MethodError",
    "account_id",
]
