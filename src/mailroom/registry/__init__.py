"""Method registry and runner: declare a method once, serve it over every protocol."""

from mailroom.registry._access import (
    Access,
    Admin,
    Authenticated,
    Internal,
    Manager,
    Owner,
    Public,
    UserSelf,
)
from mailroom.registry._context import CallInfo, Context
from mailroom.registry._registry import Api, ApiInfo, Registry
from mailroom.registry._runner import Call, Filter, Proceed, RejectionObserver, Runner, validation_errors
from mailroom.registry._spec import (
    DELETE,
    GET,
    PATCH,
    POST,
    PUT,
    Download,
    HttpBinding,
    MethodSpec,
    Upload,
)

__all__ = [
    "DELETE",
    "GET",
    "PATCH",
    "POST",
    "PUT",
    "Access",
    "Admin",
    "Api",
    "ApiInfo",
    "Authenticated",
    "Call",
    "CallInfo",
    "Context",
    "Download",
    "Filter",
    "HttpBinding",
    "Internal",
    "Manager",
    "MethodSpec",
    "Owner",
    "Proceed",
    "Public",
    "Registry",
    "RejectionObserver",
    "Runner",
    "Upload",
    "UserSelf",
    "validation_errors",
]
