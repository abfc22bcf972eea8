"""The login page's "Sign in with <provider>" button in Debian's Chromium (web/e2e/oidc.mjs):
the webmail and the admin console signed in through the test provider, end to end.

Skipped only outside CI when Chromium or Node.js is missing; in CI (CI=true) it must run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any

import pytest

from tests.oidc.provider import Provider
from tests.web.test_browser import CHROMIUM, WEB, _need, _node_modules

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
HAVE_CHROMIUM = os.path.isfile(CHROMIUM)


@pytest.mark.parametrize("oidc_settings", [{"oidc_admin_group": "mail-admins"}])
async def test_sign_in_with_the_provider_in_chromium(provider: Provider, server: str, make_user: Any) -> None:
    _need(f"Chromium ({CHROMIUM})", HAVE_CHROMIUM)
    node = shutil.which("node")
    _need("Node.js", node is not None)
    assert node is not None
    _node_modules()
    await make_user("alice@example.org")
    await make_user("root@example.org")
    provider.add_user("alice", "provider-password", "alice@example.org")
    provider.add_user("root", "provider-password", "root@example.org", groups=["mail-admins"])
    env = {**os.environ, "MAILROOM_URL": server, "PROVIDER_URL": provider.issuer, "CHROMIUM": CHROMIUM}
    # The servers run on this event loop: the browser must not block it.
    proc = await asyncio.create_subprocess_exec(
        node, "e2e/oidc.mjs", cwd=WEB, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    print(out.decode())
    assert proc.returncode == 0, f"browser test failed:\n{out.decode()}\n{err.decode()}"
    assert "ok no console errors or other-origin requests" in out.decode()
