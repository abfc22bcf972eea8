"""The admin API: everything the admin web page can do.

Every module in this package declares its methods on :data:`api`; importing the package
imports them all, so adding an object means adding a module, nothing else.
"""

import importlib
import pkgutil

from mailroom.services.admin._api import api

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["api"]
