"""The mail API: delivery into the store and what mail clients read from it.

Every module in this package declares its methods on :data:`api`; importing the package
imports them all.
"""

import importlib
import pkgutil

from mailroom.services.mail._api import api

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["api"]
