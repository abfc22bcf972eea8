"""The human API docs at ``/api/docs``: Swagger UI served from this package, nothing from elsewhere.

The page names its assets with a content hash (``?v=``), so browsers may keep them for a year;
an asset asked for without the current hash is revalidated instead. A strict
Content-Security-Policy keeps the page to this origin: no inline script, no other host.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from mailroom.errors import NotFound

DOCS_PATH = "/api/docs"
STATIC_PATH = DOCS_PATH + "/static"
STATIC_DIR = Path(__file__).parent / "static"

#: The files the page may load, with their media types; nothing else in static/ is served.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=0, must-revalidate"
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Swagger UI sets style attributes
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@dataclass
class Asset:
    """One static file, read once, with its hash and (when it pays) a gzip copy."""

    name: str
    media_type: str
    content: bytes = b""
    digest: str = ""
    gzipped: bytes | None = field(default=None, repr=False)

    @classmethod
    def load(cls, name: str, media_type: str) -> Asset:
        content = (STATIC_DIR / name).read_bytes()
        packed = gzip.compress(content, compresslevel=9, mtime=0)
        return cls(
            name=name,
            media_type=media_type,
            content=content,
            digest=hashlib.sha256(content).hexdigest()[:16],
            gzipped=packed if len(packed) < len(content) else None,
        )

    @property
    def url(self) -> str:
        return f"{STATIC_PATH}/{self.name}?v={self.digest}"

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    def response(self, request: Request) -> Response:
        headers = {
            "ETag": self.etag,
            "Cache-Control": IMMUTABLE if request.query_params.get("v") == self.digest else REVALIDATE,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.content
        if self.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = self.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=self.media_type, headers=headers)


def render_page(assets: dict[str, Asset], spec_url: str) -> str:
    """The docs page: local stylesheets and scripts only."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailroom API</title>
<link rel="stylesheet" href="{escape(assets["swagger-ui.css"].url)}">
</head>
<body>
<noscript>
<p>This page needs JavaScript. The API description is at
<a href="{escape(spec_url)}">{escape(spec_url)}</a> (OpenAPI 3.1).</p>
</noscript>
<div id="swagger-ui" data-spec-url="{escape(spec_url)}"></div>
<script src="{escape(assets["swagger-ui-bundle.js"].url)}"></script>
<script src="{escape(assets["docs.js"].url)}"></script>
</body>
</html>
"""


def docs_routes(spec_url: str) -> list[BaseRoute]:
    """``GET /api/docs`` and its assets under ``/api/docs/static/``; files are read on first use."""
    loaded: dict[str, Asset] = {}
    page: list[bytes] = []

    def assets() -> dict[str, Asset]:
        if not loaded:
            loaded.update({name: Asset.load(name, media) for name, media in ASSETS.items()})
        return loaded

    async def docs_page(request: Request) -> Response:
        if not page:
            page.append(render_page(assets(), spec_url).encode())
        return HTMLResponse(
            page[0],
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def static_file(request: Request) -> Response:
        asset = assets().get(request.path_params["name"])
        if asset is None:
            raise NotFound.of("file", request.path_params["name"])
        return asset.response(request)

    return [
        Route(DOCS_PATH, docs_page, methods=["GET"]),
        Route(STATIC_PATH + "/{name}", static_file, methods=["GET"]),
    ]
