"""``SearchSnippet/get`` (RFC 8621 §5): the subject and a piece of the body with the
words of a query's text conditions marked (``<mark>``), as HTML-escaped text."""

from __future__ import annotations

import asyncio
import html
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mailroom.delivery import mime as mime_store
from mailroom.domain.mime import jmap as mime_jmap
from mailroom.registry import Context
from mailroom.services.jmap._accounts import EMAIL_PREFIX, account_of, decode
from mailroom.services.jmap._api import MAIL, method
from mailroom.services.jmap._types import IdOrRef, JmapId
from mailroom.services.jmap.email.query import (
    EmailFilter,
    EmailFilterCondition,
    EmailFilterOperator,
    check_filter,
)
from mailroom.store import jmap_emails
from mailroom.store.blobs import BlobNotFound

PREVIEW_CHARS = 255
_WORD = re.compile(r"\w+", re.UNICODE)


class SnippetResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    accountId: str
    items: list[dict[str, Any]] = Field(alias="list")
    notFound: list[str] | None = None


def words_of(f: EmailFilter | None, negated: bool = False) -> list[str]:
    """The words of the text, subject and body conditions a match is made of (not under NOT)."""
    if f is None:
        return []
    if isinstance(f, EmailFilterOperator):
        inner = negated or f.operator == "NOT"
        return [w for c in f.conditions for w in words_of(c, inner)]
    if negated:
        return []
    assert isinstance(f, EmailFilterCondition)
    texts = [t for t in (f.text, f.subject, f.body) if t]
    return [w.lower() for t in texts for w in _WORD.findall(t)]


def highlight(text: str, words: list[str]) -> str | None:
    """``text`` HTML-escaped with every word starting with one of ``words`` marked; None when
    none occurs."""
    if not words:
        return None
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)) + r")\w*",
        re.IGNORECASE | re.UNICODE,
    )
    out: list[str] = []
    last = 0
    found = False
    for m in pattern.finditer(text):
        found = True
        out.append(html.escape(text[last : m.start()], quote=False))
        out.append("<mark>" + html.escape(m.group(0), quote=False) + "</mark>")
        last = m.end()
    if not found:
        return None
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def _window(text: str, words: list[str]) -> str:
    """About PREVIEW_CHARS characters of ``text`` around its first matching word."""
    flat = " ".join(text.split())
    lower = flat.lower()
    hits = [i for i in (lower.find(w) for w in words) if i >= 0]
    start = max(0, min(hits) - 40) if hits else 0
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    return flat[start : start + PREVIEW_CHARS]


async def _body_text(ctx: Context, sha: str) -> str:
    try:
        blob = await ctx.rt.blobs.get(sha)
    except BlobNotFound:
        return ""
    structure = (await mime_store.structures(ctx.rt, [sha])).get(sha)
    if structure is None:
        return ""
    text, html_parts, _ = mime_jmap.body_lists(structure)
    for part in text:
        if part.media_type == "text/plain":
            return str(mime_jmap.body_value(part, blob, 65536)["value"])
    for part in html_parts:
        if part.media_type == "text/html":
            value = str(mime_jmap.body_value(part, blob, 262144)["value"])
            return (
                mime_jmap.preview(value, html=True) if len(value) < 4096 else re.sub(r"<[^>]*>", " ", value)
            )
    return ""


@method("SearchSnippet/get", capability=MAIL)
async def snippet_get(
    ctx: Context,
    accountId: JmapId,
    emailIds: Annotated[list[IdOrRef], Field(max_length=1000)],
    filter: EmailFilter | None = None,
) -> SnippetResponse:
    """Highlighted subject and preview of each email for the query ``filter``."""
    user_id = account_of(ctx, accountId)
    if filter is not None:
        check_filter(filter)  # the same checks (unsupportedFilter) as Email/query
    words = words_of(filter)
    numbers = {value: decode(EMAIL_PREFIX, value) for value in dict.fromkeys(emailIds)}
    async with ctx.rt.db.read() as tx:
        found = await jmap_emails.records(tx, user_id, [n for n in numbers.values() if n is not None])
    by_id = {r.id: r for r in found}
    wanted = [(v, by_id[n]) for v, n in numbers.items() if n is not None and n in by_id]
    bodies = await asyncio.gather(*(_body_text(ctx, r.blob_sha) for _, r in wanted)) if words else []
    items = []
    for index, (value, record) in enumerate(wanted):
        preview = None
        if words:
            body = bodies[index]
            preview = highlight(_window(body, words), words) if body else None
        items.append({"emailId": value, "subject": highlight(record.subject, words), "preview": preview})
    missing = [v for v, n in numbers.items() if n is None or n not in by_id]
    return SnippetResponse(accountId=accountId, items=items, notFound=missing or None)
