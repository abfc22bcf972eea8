"""Full-text search through ingest, on SQLite (FTS5) and PostgreSQL (tsvector), one interface."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import text
from tests.mailhelpers import create_user, message

from mailroom.bootstrap import Mailroom
from mailroom.delivery.ingest import ingest
from mailroom.delivery.resolve import LocalTarget, Resolution
from mailroom.store import emails as email_store
from mailroom.store import fulltext

pytestmark = pytest.mark.anyio


def with_attachment() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Dana Scully <dana@fbi.example>"
    msg["To"] = "alice@example.org"
    msg["Subject"] = "Case file"
    msg["Message-ID"] = "<case@fbi.example>"
    msg.set_content("See the attached report about the café incident.")
    msg.add_attachment(
        b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="autopsy-findings.pdf"
    )
    return msg.as_bytes()


async def store(mailroom: Mailroom, user_id: int, email: str, raw: bytes) -> int:
    target = Resolution(email, "accepted", [LocalTarget(user_id, email)])
    [r] = await ingest(mailroom.runtime, raw, mail_from="x@example.net", recipients=[target], source="lmtp")
    return r.email_ids[0]


async def search(
    mailroom: Mailroom, user_id: int, *terms: str, columns: list[str] | None = None
) -> list[int]:
    async with mailroom.runtime.db.read() as tx:
        return await fulltext.search(tx, user_id, list(terms), columns=columns)


@pytest.fixture
async def corpus(mailroom: Mailroom) -> dict[str, int]:
    alice = await create_user(mailroom, "alice@example.org")
    bob = await create_user(mailroom, "bob@example.org")
    ids = {
        "alice": alice,
        "bob": bob,
        "report": await store(
            mailroom,
            alice,
            "alice@example.org",
            message(subject="Quarterly report", body="Revenue grew in the northern region.\r\n"),
        ),
        "case": await store(mailroom, alice, "alice@example.org", with_attachment()),
        "lunch": await store(
            mailroom,
            alice,
            "alice@example.org",
            message(
                message_id="<l@x>", subject="Lunch", sender="Fox Mulder <fox@fbi.example>", body="Pizza?\r\n"
            ),
        ),
        "bob_report": await store(
            mailroom, bob, "bob@example.org", message(message_id="<b@x>", subject="Quarterly report for Bob")
        ),
    }
    return ids


async def test_subject_body_addresses_and_attachment_names_are_found(
    mailroom: Mailroom, corpus: dict[str, int]
) -> None:
    alice = corpus["alice"]
    assert await search(mailroom, alice, "quarterly") == [corpus["report"]]
    assert await search(mailroom, alice, "northern") == [corpus["report"]]
    assert await search(mailroom, alice, "mulder") == [corpus["lunch"]]
    assert await search(mailroom, alice, "fox@fbi.example") == [corpus["lunch"]]
    assert await search(mailroom, alice, "autopsy") == [corpus["case"]]
    assert await search(mailroom, alice, "findings.pdf") == [corpus["case"]]


async def test_results_are_newest_first_and_every_term_must_match(
    mailroom: Mailroom, corpus: dict[str, int]
) -> None:
    alice = corpus["alice"]
    assert await search(mailroom, alice, "fbi") == [corpus["lunch"], corpus["case"]]
    assert await search(mailroom, alice, "fbi", "pizza") == [corpus["lunch"]]
    assert await search(mailroom, alice, "fbi", "nothing-like-this") == []


async def test_prefixes_phrases_and_accents(mailroom: Mailroom, corpus: dict[str, int]) -> None:
    alice = corpus["alice"]
    assert await search(mailroom, alice, "quart*") == [corpus["report"]]
    assert await search(mailroom, alice, "northern region") == [corpus["report"]]
    assert await search(mailroom, alice, "region northern") == []
    assert await search(mailroom, alice, "cafe") == [corpus["case"]]
    assert await search(mailroom, alice, "CAFÉ") == [corpus["case"]]


async def test_query_syntax_in_terms_is_literal(mailroom: Mailroom, corpus: dict[str, int]) -> None:
    alice = corpus["alice"]
    for hostile in ('"', "OR", "NEAR(a b)", "mailbox:u2", "*", "-", "a & b | !c", "(", "subject:"):
        assert isinstance(await search(mailroom, alice, hostile), list)
    assert await search(mailroom, alice, "") == []
    # Naming another mailbox's token as a term does not reach into it.
    assert await search(mailroom, alice, f"u{corpus['bob']}", "quarterly") == []


async def test_search_is_scoped_to_the_mailbox(mailroom: Mailroom, corpus: dict[str, int]) -> None:
    assert await search(mailroom, corpus["bob"], "quarterly") == [corpus["bob_report"]]
    assert await search(mailroom, corpus["bob"], "northern") == []


async def test_columns_limit_where_terms_match(mailroom: Mailroom, corpus: dict[str, int]) -> None:
    alice = corpus["alice"]
    assert await search(mailroom, alice, "report", columns=["subject"]) == [corpus["report"]]
    assert sorted(await search(mailroom, alice, "report")) == sorted([corpus["report"], corpus["case"]])
    assert await search(mailroom, alice, "scully", columns=["subject"]) == []
    with pytest.raises(ValueError, match="unknown full-text columns"):
        await search(mailroom, alice, "x", columns=["headers"])


async def test_deleted_emails_leave_the_index(mailroom: Mailroom, corpus: dict[str, int]) -> None:
    alice = corpus["alice"]
    async with mailroom.runtime.db.write() as tx:
        await email_store.delete_emails(tx, alice, [corpus["report"]])
    assert await search(mailroom, alice, "quarterly") == []
    # Deleting the user cascades to their emails, and the index follows.
    await mailroom.registry.call("admin.users.delete", {"email": "bob@example.org"})
    async with mailroom.runtime.db.read() as tx:
        rows = await tx.scalar(text(f"SELECT count(*) FROM {fulltext.TABLE}"))
    assert rows == 2


async def test_the_query_plan_uses_the_full_text_index(mailroom: Mailroom, corpus: dict[str, int]) -> None:
    alice = corpus["alice"]
    async with mailroom.runtime.db.read() as tx:
        if tx.dialect == "postgresql":
            await tx.execute(text("SET LOCAL enable_seqscan = off"))
            plan = await tx.scalars(
                text(
                    "EXPLAIN SELECT email_id FROM email_fts WHERE document @@ to_tsquery('simple', :q) "
                    "AND user_id = :u ORDER BY email_id DESC LIMIT 50"
                ),
                {"q": f"u{alice} & quarterly", "u": alice},
            )
            assert any("ix_email_fts_document" in line for line in plan), plan
        else:
            query = fulltext.fts5_query(alice, ["quarterly"])
            assert query == f'mailbox : "u{alice}" AND ("quarterly")'
            plan = await tx.all(
                text(
                    "EXPLAIN QUERY PLAN SELECT rowid FROM email_fts "
                    "WHERE email_fts MATCH :q ORDER BY rowid DESC"
                ),
                {"q": query},
            )
            details = " ".join(str(r["detail"]) for r in plan)
            assert "VIRTUAL TABLE INDEX" in details, details
