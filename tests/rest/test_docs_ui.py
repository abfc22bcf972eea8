"""The docs page at /api/docs: everything it loads comes from this server, with the right types."""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import socket
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mailroom.bootstrap import Mailroom
from mailroom.frontends.rest import docs
from mailroom.web import build_app

pytestmark = pytest.mark.anyio

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


class Links(HTMLParser):
    """Every URL-valued attribute of the page, by tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, url)
        self.stylesheets: list[str] = []
        self.scripts: list[str] = []
        self.data: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if name in values:
                self.urls.append((tag, name, values[name]))
        if tag == "script" and "src" in values:
            self.scripts.append(values["src"])
        if tag == "link" and values.get("rel") == "stylesheet":
            self.stylesheets.append(values["href"])
        for name, value in values.items():
            if name.startswith("data-"):
                self.data[name] = value


async def page(client: httpx.AsyncClient) -> tuple[httpx.Response, Links]:
    r = await client.get("/api/docs")
    links = Links()
    links.feed(r.text)
    return r, links


async def test_page_refers_only_to_local_paths(client: httpx.AsyncClient) -> None:
    r, links = await page(client)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", r.text), "no URL to another host anywhere in the page"
    assert links.scripts
    assert links.stylesheets
    for tag, attribute, url in links.urls:
        parts = urlsplit(url)
        assert not parts.scheme, (tag, attribute, url)
        assert not parts.netloc, (tag, attribute, url)
        assert url.startswith("/"), (tag, attribute, url)
    assert links.data["data-spec-url"] == "/api/v1/openapi.json"


async def test_every_asset_is_served_with_its_type(client: httpx.AsyncClient) -> None:
    _, links = await page(client)
    expected = [(u, "text/javascript") for u in links.scripts] + [(u, "text/css") for u in links.stylesheets]
    for url, media in expected:
        r = await client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].split(";")[0] == media, url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in r.headers["cache-control"], url
        assert len(r.content) > 100
    for tag, _, url in links.urls:
        if tag == "a":
            assert (await client.get(url)).status_code == 200, url
    spec = await client.get(links.data["data-spec-url"])
    assert spec.json()["openapi"].startswith("3.1")


async def test_page_forbids_other_origins(client: httpx.AsyncClient) -> None:
    r, _ = await page(client)
    policy = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"


async def test_assets_cache_and_compress(client: httpx.AsyncClient) -> None:
    _, links = await page(client)
    bundle = next(u for u in links.scripts if "swagger-ui-bundle.js" in u)
    r = await client.get(bundle, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["vary"] == "Accept-Encoding"
    raw = (Path(docs.STATIC_DIR) / "swagger-ui-bundle.js").read_bytes()
    assert r.content == raw  # httpx decoded it
    plain = await client.get(bundle, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == raw
    assert gzip.decompress(gzip.compress(raw)) == raw

    etag = r.headers["etag"]
    again = await client.get(bundle, headers={"If-None-Match": etag})
    assert again.status_code == 304
    # Without the current hash in the URL the browser must check back.
    unversioned = await client.get(bundle.split("?")[0])
    assert unversioned.status_code == 200
    assert "immutable" not in unversioned.headers["cache-control"]


@pytest.mark.parametrize("name", ["README.md", "swagger-ui.LICENSE", "nope.js", "docs.py"])
async def test_only_listed_assets_are_served(client: httpx.AsyncClient, name: str) -> None:
    r = await client.get(f"/api/docs/static/{name}")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["../openapi.py", "..%2Fdocs.py", "%2E%2E%2Fopenapi.py", "sub/docs.js"])
async def test_no_way_out_of_the_static_folder(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(f"/api/docs/static/{path}")
    assert r.status_code == 404
    assert b"import" not in r.content


def test_vendored_swagger_ui_renders_openapi_3_1_and_keeps_its_licence() -> None:
    static = Path(docs.STATIC_DIR)
    for name in docs.ASSETS:
        assert (static / name).is_file(), name
    assert "Apache License" in (static / "swagger-ui.LICENSE").read_text()
    # Swagger UI renders OpenAPI 3.1 from version 5 on.
    match = re.search(r"swagger-ui-dist@(\d+)\.(\d+)\.(\d+)", (static / "README.md").read_text())
    assert match is not None
    assert int(match.group(1)) >= 5


# -- in a real browser, when there is one ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
async def test_swagger_ui_renders_the_document_in_chromium(mailroom: Mailroom, tmp_path: Path) -> None:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(mailroom), lifespan="off", log_level="warning", http="h11", ws="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        assert CHROMIUM is not None
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            # Any host but this one fails to resolve: the page must not need one.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            # Tags start folded; a deep link opens one (its operations rendered).
            f"http://127.0.0.1:{port}/api/docs#/admin.domains",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(browser.communicate(), timeout=120)
    finally:
        server.should_exit = True
        await serving
    dom = out.decode()
    assert browser.returncode == 0, err.decode()[-2000:]
    assert "Unable to render" not in dom
    assert "admin.domains.create" in dom  # displayOperationId
    assert "/domains/{name}" in dom
    # One tag per operation in the UI: the object tags, not the API-wide ones.
    assert 'id="operations-tag-admin\\.domains"' in dom
    assert 'id="operations-tag-admin"' not in dom
    # Every object's section is there, the last ones too (Swagger UI once stopped after two).
    for tag in ("mail\\.keys", "mail\\.uploads", "system\\.health"):
        assert f'id="operations-tag-{tag}"' in dom, tag
