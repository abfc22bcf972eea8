"""The admin API: everything the admin web page can do."""

from mailroom.services.admin import apikeys, domains  # noqa: F401  (declare methods on api)
from mailroom.services.admin._api import api

__all__ = ["api"]
