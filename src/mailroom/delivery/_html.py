"""HTML bodies to plain text, the way a text mail client would render them."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# Content of these elements is never shown to the reader.
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})
# Elements rendered on lines of their own, and those also set off by a blank line.
_LINE = frozenset(
    {
        "address",
        "article",
        "aside",
        "br",
        "center",
        "dd",
        "div",
        "dt",
        "footer",
        "header",
        "li",
        "section",
        "tr",
    }
)
_PARAGRAPH = frozenset(
    {"blockquote", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul"}
)
_CELL = frozenset({"td", "th"})
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_CHUNK = 16_384


class _TextRenderer(HTMLParser):
    """Collects visible text; `blockquote` content gets "> " prefixes like a quoted reply."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.chars = 0
        self._line: list[str] = []
        self._hidden: list[str] = []
        self._quote_depth = 0
        self._line_depth = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._hidden.clear()  # <body> implicitly closes an unterminated <head>
        if tag in _HIDDEN:
            self._hidden.append(tag)
        elif tag in _LINE or tag in _PARAGRAPH:
            self._break(tag in _PARAGRAPH)
            if tag == "blockquote":
                self._quote_depth += 1
            elif tag == "pre":
                self._pre += 1
        elif tag in _CELL:
            self._write(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _LINE or tag in _PARAGRAPH:
            self._break(tag in _PARAGRAPH)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if tag in self._hidden:
                del self._hidden[len(self._hidden) - 1 - self._hidden[::-1].index(tag) :]
        elif tag in _LINE or tag in _PARAGRAPH:
            self._break(tag in _PARAGRAPH)
            if tag == "blockquote" and self._quote_depth:
                self._quote_depth -= 1
            elif tag == "pre" and self._pre:
                self._pre -= 1

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._pre:
            first, *rest = data.split("\n")
            self._write(first)
            for line in rest:
                self._break(False)
                self._write(line)
        else:
            self._write(_SPACE.sub(" ", data))

    def _write(self, text: str) -> None:
        if text and not self._line:
            self._line_depth = self._quote_depth
        self._line.append(text)

    def _break(self, paragraph: bool) -> None:
        text = " ".join("".join(self._line).split())
        self._line = []
        if text:
            line = "> " * self._line_depth + text
            self.lines.append(line)
            self.chars += len(line) + 1
        if paragraph and self.lines and self.lines[-1]:
            self.lines.append("")

    def finish(self) -> str:
        self._break(False)
        return "\n".join(self.lines).strip("\n")


def html_to_text(markup: str, max_chars: int | None = None) -> str:
    """Render HTML as plain text: tags, scripts and styles removed, entities decoded.

    With `max_chars`, stops reading once that much text is collected (enough for a
    snippet) instead of rendering a possibly huge document. Never raises.
    """
    renderer = _TextRenderer()
    try:
        for start in range(0, len(markup), _CHUNK):
            renderer.feed(markup[start : start + _CHUNK])
            if max_chars is not None and renderer.chars >= max_chars:
                break
        else:
            renderer.close()
        return renderer.finish()
    except Exception:
        # html.parser is lenient but not guaranteed total; a crude strip is better than nothing.
        return "\n".join(" ".join(line.split()) for line in html.unescape(_TAG.sub(" ", markup)).splitlines())
