"""The HTML part of a message a user composes, reduced to an allowlist before it is stored or sent.

The web app's editor already sends clean markup, but the API takes ``html_body`` from any
client, and what we sign and send in a user's name should not carry script, event handlers,
forms, frames or ``javascript:`` links to its readers. This keeps formatting elements and a
few harmless attributes (links only ``http(s):``, ``mailto:`` and ``#``; images only
``https:``, ``cid:`` and ``data:image/``), drops the elements that hold code or foreign
documents with everything inside them, and keeps the text of anything else. The same lists
as the app's reader (web/src/sanitize.ts). Built on the standard library's tokenizer, which
never builds a DOM and is linear in the input.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "address",
        "b",
        "bdi",
        "bdo",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "font",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
        "wbr",
    ]
)
DROPPED_WITH_CONTENT = frozenset(
    [
        "script",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "noscript",
        "template",
        "svg",
        "math",
        "form",
        "input",
        "button",
        "select",
        "textarea",
        "link",
        "meta",
        "base",
        "title",
        "head",
        "audio",
        "video",
        "source",
        "track",
        "canvas",
        "portal",
    ]
)
ALLOWED_ATTRS = frozenset(
    [
        "href",
        "src",
        "alt",
        "title",
        "width",
        "height",
        "colspan",
        "rowspan",
        "align",
        "valign",
        "dir",
        "lang",
        "cite",
        "datetime",
        "start",
        "type",
        "reversed",
        "open",
        "headers",
        "scope",
        "span",
    ]
)
# Kept so that the reader can fold the mail programs' quotes (foldQuotedHtml in web/src/lib.ts):
# these class names and this id, nothing else of either attribute.
QUOTE_CLASSES = frozenset(["gmail_quote", "gmail_attr", "yahoo_quoted", "moz-cite-prefix"])
QUOTE_IDS = frozenset(["divRplyFwdMsg"])
VOID = frozenset(["br", "col", "hr", "img", "wbr"])
_NO_END_TAG = frozenset(["link", "meta", "base", "input", "source", "track"])
_SAFE_LINK = re.compile(r"^(https?:|mailto:|#)", re.IGNORECASE)
_SAFE_IMAGE = re.compile(r"^(https:|cid:|data:image/(png|gif|jpe?g|webp);)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20]+")


def _kept(tag: str, name: str, value: str) -> str | None:
    """The value ``name`` keeps on ``tag``, or None to drop the attribute."""
    if name == "class":
        return " ".join(c for c in value.split() if c in QUOTE_CLASSES) or None
    if name == "id":
        return value if value in QUOTE_IDS else None
    return value if _attr_ok(tag, name, value) else None


def _attr_ok(tag: str, name: str, value: str) -> bool:
    if name not in ALLOWED_ATTRS:
        return False
    plain = _CONTROL.sub("", value)  # "java\nscript:" is javascript: to a browser
    if name == "href":
        return _SAFE_LINK.match(plain) is not None
    if name == "src":
        return tag == "img" and _SAFE_IMAGE.match(plain) is not None
    if name == "cite":
        return _SAFE_LINK.match(plain) is not None
    return True


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropping: list[str] = []  # open elements dropped with their content
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT or self.dropping:
            if tag in DROPPED_WITH_CONTENT and tag not in _NO_END_TAG:
                self.dropping.append(tag)
            return
        if tag not in ALLOWED_TAGS:
            return
        values = ((n, _kept(tag, n, v or "")) for n, v in attrs)
        kept = "".join(f' {n}="{escape(v, quote=True)}"' for n, v in values if v is not None)
        self.out.append(f"<{tag}{kept}>")
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.open and self.open[-1] == tag:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag == self.dropping[-1]:
                self.dropping.pop()
            return
        if tag in self.open:
            while self.open:  # close what was left open inside it
                top = self.open.pop()
                self.out.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(escape(data, quote=False))


def clean_html(source: str) -> str:
    """``source`` with only the allowlisted elements and attributes, every element closed."""
    cleaner = _Cleaner()
    cleaner.feed(source)
    cleaner.close()
    return "".join(cleaner.out) + "".join(f"</{t}>" for t in reversed(cleaner.open))
