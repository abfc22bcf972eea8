"""The web app's pages and assets: served at / and /admin from package data, strict CSP."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from mailroom.frontends.web.pages import CSP, STATIC_DIR, page_routes

pytestmark = pytest.mark.anyio

STRICT = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}


def _directives(csp: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in csp.split(";"))


async def test_pages_carry_strict_headers(client: httpx.AsyncClient) -> None:
    for path in ("/", "/admin", "/admin/"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        directives = _directives(r.headers["content-security-policy"])
        for name, value in STRICT.items():
            assert directives[name] == value, (name, directives)
        assert "unsafe" not in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-cache"


async def test_page_loads_only_its_own_hashed_assets(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    assert "<script>" not in html
    assert "style=" not in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls
    assert all(u.startswith("/assets/") for u in urls), urls
    for url in urls:
        r = await client.get(url, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["x-content-type-options"] == "nosniff"
        if url.endswith(".js"):
            assert r.headers["content-type"].startswith("text/javascript")
            assert r.headers["content-encoding"] == "gzip"


async def test_unknown_asset_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/assets/nope.js", "/assets/..%2Findex.html", "/assets/%2E%2E"):
        assert (await client.get(path)).status_code == 404


def test_built_assets_are_package_data() -> None:
    index = STATIC_DIR / "index.html"
    assert index.is_file(), "run npm run build in web/"
    names = {p.name for p in (STATIC_DIR / "assets").iterdir()}
    for ref in re.findall(r'/assets/([^"]+)"', index.read_text()):
        assert ref in names


async def test_without_a_build_the_page_says_how_to_build(tmp_path: Path) -> None:
    from starlette.applications import Starlette

    app = Starlette(routes=page_routes(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/")
    assert r.status_code == 200
    assert "npm run build" in r.text
    assert r.headers["content-security-policy"] == CSP
