"""The app's page and its hashed assets, read from ``static/`` (Vite's output) on first use.

``/`` and ``/admin`` answer the same ``index.html`` (the app looks at the path); files under
``/assets/`` carry a content hash in their names, so they are cached for a year. Only files
that the build wrote are served. The page's Content-Security-Policy allows nothing but this
origin: no inline script or style, no frames of this page elsewhere; images may also come
over https, because a reader may choose to load a message's remote images (the app blocks
them until then).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from mailroom.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = STATIC_DIR / "assets"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: https:",
        "connect-src 'self'",
        "font-src 'self'",
        "frame-src 'self' blob:",  # an attachment's PDF preview (a blob typed application/pdf)
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: Headers of every page and asset of the app.
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
IMMUTABLE = "public, max-age=31536000, immutable"

NOT_BUILT = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mailroom</title></head>
<body><h1>The web app is not built</h1>
<p>Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>.
The API is at <a href="/api/docs">/api/docs</a>.</p></body></html>
"""


@dataclass(frozen=True)
class Asset:
    """One built file, read once, with a gzip copy when that is smaller."""

    content: bytes
    media_type: str
    gzipped: bytes | None

    @classmethod
    def load(cls, path: Path) -> Asset:
        content = path.read_bytes()
        packed = gzip.compress(content, compresslevel=9, mtime=0)
        media = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
        return cls(content, media, packed if len(packed) < len(content) else None)

    def response(self, request: Request) -> Response:
        headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding", **SECURITY_HEADERS}
        body = self.content
        if self.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = self.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=self.media_type, headers=headers)


def load_assets(directory: Path = ASSETS_DIR) -> dict[str, Asset]:
    if not directory.is_dir():
        return {}
    return {p.name: Asset.load(p) for p in sorted(directory.iterdir()) if p.is_file()}


def page_routes(static_dir: Path = STATIC_DIR) -> list[BaseRoute]:
    """``GET /`` and ``/admin`` (the app) and ``/assets/{name}``; files are read on first use."""
    loaded: dict[str, Asset] = {}
    page: list[bytes] = []

    def index() -> bytes:
        if not page:
            path = static_dir / "index.html"
            page.append(path.read_bytes() if path.is_file() else NOT_BUILT)
        return page[0]

    async def app_page(request: Request) -> Response:
        return HTMLResponse(index(), headers={"Cache-Control": "no-cache", **SECURITY_HEADERS})

    async def asset(request: Request) -> Response:
        if not loaded:
            loaded.update(load_assets(static_dir / "assets"))
        found = loaded.get(request.path_params["name"])
        if found is None:
            raise NotFound.of("file", request.path_params["name"])
        return found.response(request)

    return [
        Route("/", app_page, methods=["GET", "HEAD"]),
        Route("/admin", app_page, methods=["GET", "HEAD"]),
        Route("/admin/", app_page, methods=["GET", "HEAD"]),
        Route("/assets/{name}", asset, methods=["GET", "HEAD"]),
    ]
