"""``If-Match`` on REST: the ETag a method gave back becomes its ``if_version`` parameter.

Methods with optimistic concurrency (editing a draft) take ``if_version``, the ``version``
they answered with; over REST they also answer an ``ETag: "<version>"`` header, and a client
may send it back as ``If-Match`` instead. ``W/"3"`` (what a compressing proxy or our own
compression makes of ``"3"``) counts as ``"3"``; ``*`` asks for no check.
"""

from __future__ import annotations

import re
from typing import Any

from mailroom.errors import BadRequest

PARAM = "if_version"
_TAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')


def if_match_version(header: str) -> int | None:
    """The version an ``If-Match`` header names; None for ``*``."""
    value = header.strip()
    if value == "*":
        return None
    match = _TAG.match(value)
    if match is None:
        raise BadRequest(f'If-Match must be one ETag this API gave, such as "3", not {value[:40]!r}')
    return int(match.group(1))


def apply_if_match(params: dict[str, Any], header: str | None) -> None:
    """Put the ``If-Match`` header's version into ``params`` (refusing a different one there)."""
    if header is None:
        return
    version = if_match_version(header)
    if version is None:
        return
    given = params.get(PARAM)
    if given is not None and str(given) != str(version):
        raise BadRequest(f"If-Match ({version}) and {PARAM} ({given}) disagree")
    params[PARAM] = version
