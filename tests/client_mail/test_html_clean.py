"""The HTML part a user composes is reduced to an allowlist before it is stored or sent.

Unit cases of :func:`mailroom.domain.html_clean.clean_html`, then the same through
``POST /emails`` (sent and read by the recipient) and a draft's ``PATCH``.
"""

from __future__ import annotations

import httpx
import pytest

from mailroom.domain.html_clean import clean_html
from tests.conftest import Actor

HOSTILE = (
    '<p onclick="steal()" style="color:red">Hi <b>Bob</b>, <a href="javascript:alert(1)">x</a>'
    ' <a href="https://example.net/a?b=1&amp;c=2" target="_top">link</a></p>'
    "<script>alert(1)</script><style>p{}</style><iframe src='https://evil.example'></iframe>"
    '<img src="https://example.net/i.png" onerror="x()"><img src="http://plain.example/t.gif">'
    '<a href="  java\tscript:alert(2)">y</a><form action="/steal"><input name="p">typed</form>'
    "<svg><script>alert(3)</script></svg><custom-tag>kept text</custom-tag><ul><li>one<li>two</ul>"
)


def test_clean_html_keeps_formatting_and_drops_code() -> None:
    out = clean_html(HOSTILE)
    assert out.startswith("<p>Hi <b>Bob</b>, <a>x</a> <a href=")
    assert '<a href="https://example.net/a?b=1&amp;c=2">link</a>' in out
    assert '<img src="https://example.net/i.png">' in out
    assert "<img>" in out  # plain http image: the element stays, its source does not
    for bad in (
        "script",
        "onclick",
        "onerror",
        "style",
        "iframe",
        "javascript",
        "form",
        "input",
        "svg",
        "alert",
        "typed",
        "target=",
    ):
        assert bad not in out, (bad, out)
    assert "kept text" in out
    assert out.endswith("<ul><li>one<li>two</li></li></ul>")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", ""),
        ("plain &lt;text&gt; & more", "plain &lt;text&gt; &amp; more"),
        ("<b>unclosed", "<b>unclosed</b>"),
        ("</p>stray end", "stray end"),
        ('<img src="data:image/png;base64,AAAA">', '<img src="data:image/png;base64,AAAA">'),
        ('<img src="data:text/html,<script>">', "<img>"),
        ("<script><b>no</b></script>after", "after"),
        (
            '<a href="mailto:bob@example.org" title="a &quot;q&quot;">m</a>',
            '<a href="mailto:bob@example.org" title="a &quot;q&quot;">m</a>',
        ),
        # The quote markers the reader folds on, and nothing else of class or id.
        (
            '<div class="x gmail_quote gmail_quote_container" id="main">'
            '<div class="gmail_attr">On</div></div>',
            '<div class="gmail_quote"><div class="gmail_attr">On</div></div>',
        ),
        (
            '<div class="moz-cite-prefix other">a</div><p class="evil">b</p>',
            '<div class="moz-cite-prefix">a</div><p>b</p>',
        ),
        (
            '<div id="divRplyFwdMsg" dir="ltr">From</div><div id="x">y</div>',
            '<div id="divRplyFwdMsg" dir="ltr">From</div><div>y</div>',
        ),
    ],
)
def test_clean_html_cases(source: str, expected: str) -> None:
    assert clean_html(source) == expected


@pytest.mark.anyio
async def test_sent_and_drafted_html_is_clean(client: httpx.AsyncClient, alice: Actor, bob: Actor) -> None:
    r = await client.post(
        "/api/v1/emails",
        json={"to": ["bob@example.org"], "subject": "Rich", "body": "Hi Bob", "html_body": HOSTILE},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    threads = (await client.get("/api/v1/threads", headers=bob.headers)).json()["threads"]
    thread = (await client.get(f"/api/v1/threads/{threads[0]['thread_id']}", headers=bob.headers)).json()
    email_id = thread["emails"][-1]["email_id"]
    html = (await client.get(f"/api/v1/emails/{email_id}", headers=bob.headers)).json()["html_body"]
    assert "<b>Bob</b>" in html
    assert "script" not in html
    assert "onclick" not in html
    r = await client.post(
        "/api/v1/emails",
        json={"to": ["bob@example.org"], "subject": "D", "body": "d", "draft": True},
        headers=alice.headers,
    )
    draft_id = r.json()["email_id"]
    r = await client.patch(
        f"/api/v1/emails/{draft_id}", json={"html_body": '<i onmouseover="x()">it</i>'}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    assert "<i>it</i>" in r.json()["html_body"]
    assert "onmouseover" not in r.json()["html_body"]
