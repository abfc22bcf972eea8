"""Search: the query language (domain/search.py) and ``q`` on mail.threads.list."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy.dialects import sqlite

from mailroom.bootstrap import Mailroom
from mailroom.domain.search import DateTerm, FlagTerm, LabelTerm, SizeTerm, TextTerm, parse_query
from mailroom.errors import BadRequest
from mailroom.store import mailbox_search
from mailroom.store.engine import SQLiteDatabase
from mailroom.store.mailbox_search import fts5_expression, pg_expression, search_statement
from tests.client_mail.conftest import Deliver, at, message, problem
from tests.conftest import Actor

pytestmark = pytest.mark.anyio
A = "alice@example.org"


# -- the language ------------------------------------------------------------------------


def test_parse_words_phrases_operators_and_negation() -> None:
    q = parse_query(
        'budget "project plan" -draft from:bob to:"Alice Smith" cc:carol subject:report label:Work '
        "has:attachment is:unread -is:starred before:2026-03-01 after:2026-01-15 larger:2m -smaller:10k"
    )
    assert q.terms == (
        TextTerm("budget"),
        TextTerm("project plan", phrase=True),
        TextTerm("draft", negated=True),
        TextTerm("bob", "from"),
        TextTerm("Alice Smith", "to", phrase=True),
        TextTerm("carol", "cc"),
        TextTerm("report", "subject"),
        LabelTerm("Work"),
        FlagTerm("attachment"),
        FlagTerm("unread"),
        FlagTerm("starred", negated=True),
        DateTerm("before", datetime(2026, 3, 1, tzinfo=UTC)),
        DateTerm("after", datetime(2026, 1, 15, tzinfo=UTC)),
        SizeTerm("larger", 2 * 1024 * 1024),
        SizeTerm("smaller", 10 * 1024, negated=True),
    )
    assert parse_query("   ").terms == ()


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('"unterminated', "unterminated quote"),
        ("foo:bar", "unknown operator 'foo:'"),
        ("is:sleepy", "is:sleepy"),
        ("has:cake", "has:cake"),
        ("before:yesterday", "not a date"),
        ("larger:huge", "not a size"),
        ("from:", "needs a value"),
        ("- word", "negates nothing"),
        ('""', "empty quotes"),
        ("!!!", "no letters or digits"),
        ("a\x00b", "control characters"),
        ("x" * 1001, "longer than"),
    ],
)
def test_bad_queries_name_the_problem(query: str, says: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_query(query)
    assert says in caught.value.message


def test_index_expressions_keep_to_the_mailbox_and_quote_everything() -> None:
    q = parse_query('hello "a AND b" -spam subject:NEAR from:bob')
    fts = fts5_expression(7, list(q.text_terms))
    assert fts == (
        '(mailbox : "u7" AND ("hello") AND ("a AND b") AND (subject : ("NEAR")) AND (addresses : ("bob")))'
        ' NOT ("spam")'
    )
    assert pg_expression(7, list(q.text_terms)) == "u7 & hello & (a <-> and <-> b) & !spam & near:A & bob:B"


# -- on the thread list ------------------------------------------------------------------


async def subjects(client: httpx.AsyncClient, who: Actor, q: str, **params: str) -> list[str]:
    r = await client.get("/api/v1/threads", params={"q": q, **params}, headers=who.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n_threads"] == len(body["threads"])
    return [t["subject"] for t in body["threads"]]


def with_attachment() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Carol <carol@example.net>"
    msg["To"] = "alice@example.org"
    msg["Subject"] = "Scans"
    msg["Message-ID"] = "<scan@x>"
    msg.set_content("see attached\n")
    msg.add_attachment(b"x" * 3000, maintype="application", subtype="pdf", filename="scan.pdf")
    return msg.as_bytes()


@pytest.fixture
async def mailbox(alice: Actor, bob: Actor, deliver: Deliver) -> None:
    """Alice's mail (and one message of Bob's that must never show up for her)."""
    a = "alice@example.org"
    await deliver(
        message(
            subject="Budget 2026",
            message_id="<1@x>",
            body="The project plan is ready.\r\n",
            sender="Bob Builder <bob@builder.net>",
        ),
        a,
        received_at=at(1),
    )
    await deliver(
        message(
            subject="Lunch",
            message_id="<2@x>",
            body="Plan for lunch? project later\r\n",
            sender="Dora <dora@example.net>",
            headers={"Cc": "Bob Builder <bob@builder.net>"},
        ),
        a,
        received_at=at(5),
        is_read=True,
    )
    await deliver(with_attachment(), a, received_at=at(10), labels=("inbox", "Work"))
    await deliver(
        message(
            subject="Re: Budget 2026",
            message_id="<4@x>",
            in_reply_to="<1@x>",
            body="Approved budget.\r\n",
            sender="Eve <eve@example.net>",
        ),
        a,
        received_at=at(12),
        is_starred=True,
    )
    await deliver(
        message(subject="Budget secret of Bob", message_id="<b@x>", body="project plan\r\n"),
        "bob@example.org",
        received_at=at(3),
    )


@pytest.mark.usefixtures("mailbox")
async def test_words_phrases_and_negation(client: httpx.AsyncClient, alice: Actor) -> None:
    assert await subjects(client, alice, "budget") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "project") == ["Re: Budget 2026", "Lunch"]
    assert await subjects(client, alice, '"project plan"') == ["Re: Budget 2026"]
    assert await subjects(client, alice, "project -lunch") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "nothingmatches") == []
    assert await subjects(client, alice, "-project") == ["Re: Budget 2026", "Scans"]  # the reply has none
    assert await subjects(client, alice, "-project -budget") == ["Scans"]


@pytest.mark.usefixtures("mailbox")
async def test_address_and_subject_operators(client: httpx.AsyncClient, alice: Actor) -> None:
    assert await subjects(client, alice, "from:bob") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "cc:bob") == ["Lunch"]  # Bob in Cc, not From
    assert await subjects(client, alice, "from:builder.net") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "subject:lunch") == ["Lunch"]
    assert await subjects(client, alice, "plan -subject:lunch") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "-from:bob project") == ["Lunch"]


@pytest.mark.usefixtures("mailbox")
async def test_prefix_words(client: httpx.AsyncClient, alice: Actor) -> None:
    """``invoi*`` finds every word it starts, as docs/mail.md promises (issue 11 §6), on the
    engine the run uses (SQLite FTS5 or PostgreSQL): before the fix the "*" was dropped and
    only the whole word "invoi" (nothing) matched."""
    assert await subjects(client, alice, "budg") == []  # a word, not a prefix
    assert await subjects(client, alice, "budg*") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "BUDG*") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "proj* -lun*") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "subject:lun*") == ["Lunch"]
    assert await subjects(client, alice, "from:bui*") == ["Re: Budget 2026"]  # index and header
    assert await subjects(client, alice, "cc:bui*") == ["Lunch"]
    assert await subjects(client, alice, "appro*") == ["Re: Budget 2026"]
    assert await subjects(client, alice, '"budg*"') == []  # quoted: the "*" is text
    assert await subjects(client, alice, "-budg*") == ["Scans", "Lunch"]


@pytest.mark.usefixtures("mailbox")
async def test_invoice_prefix_as_the_issue_reproduced(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver
) -> None:
    await deliver(message(subject="Invoices for March", message_id="<inv@x>"), "alice@example.org")
    await deliver(message(subject="Re: your invoice", message_id="<inv2@x>"), "alice@example.org")
    assert sorted(await subjects(client, alice, "invoi*")) == ["Invoices for March", "Re: your invoice"]
    assert await subjects(client, alice, "invoi") == []


def test_prefix_expressions() -> None:
    q = parse_query('invoi* subject:lun* "a*" -spa*')
    assert fts5_expression(7, list(q.text_terms)) == (
        '(mailbox : "u7" AND ("invoi"*) AND (subject : ("lun"*)) AND ("a*")) NOT ("spa"*)'
    )
    assert pg_expression(7, list(q.text_terms)) == "u7 & invoi:* & lun:*A & a & !spa:*"


@pytest.mark.usefixtures("mailbox")
async def test_flags_labels_dates_and_sizes(client: httpx.AsyncClient, alice: Actor) -> None:
    assert await subjects(client, alice, "has:attachment") == ["Scans"]
    assert await subjects(client, alice, "is:read") == ["Lunch"]
    assert await subjects(client, alice, "is:starred") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "-is:unread") == ["Lunch"]
    assert await subjects(client, alice, "label:Work") == ["Scans"]
    assert await subjects(client, alice, "before:2026-01-05") == ["Re: Budget 2026"]
    assert await subjects(client, alice, "after:2026-01-05 before:2026-01-11") == ["Scans", "Lunch"]
    assert await subjects(client, alice, "larger:2k") == ["Scans"]
    assert await subjects(client, alice, "smaller:2k -is:encrypted") == ["Re: Budget 2026", "Lunch"]


@pytest.mark.usefixtures("mailbox")
async def test_search_combines_with_the_label_parameter(client: httpx.AsyncClient, alice: Actor) -> None:
    assert await subjects(client, alice, "see", label="Work") == ["Scans"]
    assert await subjects(client, alice, "budget", label="Work") == []
    assert await subjects(client, alice, "budget", label="inbox") == ["Re: Budget 2026"]


@pytest.mark.usefixtures("mailbox")
async def test_search_pages(client: httpx.AsyncClient, alice: Actor) -> None:
    r = await client.get(
        "/api/v1/threads", params={"q": "project", "limit": 1, "offset": 1}, headers=alice.headers
    )
    body = r.json()
    assert body["n_threads"] == 2
    assert [t["subject"] for t in body["threads"]] == ["Lunch"]


@pytest.mark.usefixtures("mailbox")
async def test_search_never_finds_other_users_mail(
    client: httpx.AsyncClient, alice: Actor, bob: Actor
) -> None:
    assert await subjects(client, alice, "secret") == []
    assert await subjects(client, bob, "budget") == ["Budget secret of Bob"]
    assert await subjects(client, bob, "project -lunch") == ["Budget secret of Bob"]
    assert await subjects(client, bob, "is:unread") == ["Budget secret of Bob"]


@pytest.mark.usefixtures("mailbox")
async def test_bad_queries_are_400(client: httpx.AsyncClient, alice: Actor) -> None:
    for q, says in (("is:sleepy", "is:sleepy"), ('"open', "unterminated"), ("label:Nope", "no label 'Nope'")):
        r = await client.get("/api/v1/threads", params={"q": q}, headers=alice.headers)
        body = problem(r, 400, "bad_request")
        assert says in body["detail"]


async def test_text_search_looks_at_the_newest_matches_only(
    client: httpx.AsyncClient, alice: Actor, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in range(1, 5):
        await deliver(message(subject=f"Report {day}", message_id=f"<r{day}@x>"), A, received_at=at(day))
    monkeypatch.setattr(mailbox_search, "MAX_MATCHES", 2)
    assert await subjects(client, alice, "report") == ["Report 4", "Report 3"]


async def test_text_search_is_driven_by_the_index(mailroom: Mailroom) -> None:
    """The index's matches drive: emails and threads by primary key, never the mailbox walked."""
    db = mailroom.runtime.db
    if not isinstance(db, SQLiteDatabase):
        pytest.skip("SQLite query plan")
    for label_id in (None, 3):
        stmt = search_statement("sqlite", 1, parse_query("budget -lunch from:bob"), {}, label_id=label_id)
        sql = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}).string
        with db.sync_connection() as conn:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
        joined = " | ".join(plan)
        assert "SCAN email_fts VIRTUAL TABLE" in joined, joined
        assert "SEARCH emails USING INTEGER PRIMARY KEY" in joined, joined
        assert "SEARCH threads USING INTEGER PRIMARY KEY" in joined, joined
        assert not any(p.startswith(("SCAN emails", "SCAN threads")) for p in plan), joined
        assert "(user_id=?)" not in joined, joined
