"""The mail repositories' records have exactly the fields of the columns they are read from,
in their order: a thread list's rows become ``ThreadListing`` tuples by position, the others
by column name, so a column added to a query without its field (or the other way round)
fails here, not in a request."""

from __future__ import annotations

from dataclasses import fields

from mailroom.store import contacts, emails, mailbox_queries, outbound, threads, uploads


def test_thread_listing_follows_the_list_columns_in_order() -> None:
    assert list(mailbox_queries.ThreadListing._fields) == [c.key for c in mailbox_queries.LIST_COLUMNS]


def test_records_hold_the_columns_they_are_read_from() -> None:
    assert [f.name for f in fields(threads.ThreadRecord)] == [
        *(c.key for c in threads.SUMMARY_COLUMNS),
        "label_ids",
    ]
    assert [f.name for f in fields(emails.StoredEmail)] == [*(c.key for c in emails.EMAIL_COLUMNS), "labels"]
    assert [f.name for f in fields(mailbox_queries.LabelRecord)] == [
        c.key for c in mailbox_queries.LABEL_COLUMNS
    ]
    assert [f.name for f in fields(contacts.ContactRecord)] == [
        c.name for c in contacts.contacts.c if c.name not in ("user_id", "search_text")
    ]
    assert [f.name for f in fields(contacts.ContactAddress)] == [
        c.name for c in contacts.contact_emails.c if c.name != "user_id"
    ]
    assert {f.name for f in fields(uploads.UploadRecord)} == {c.name for c in uploads.uploads.c}
    assert [f.name for f in fields(outbound.QueuedMessage)] == [c.name for c in outbound.outbound_queue.c]
    recipient_columns = [c.name for c in outbound.outbound_recipients.c]
    assert [f.name for f in fields(outbound.QueuedRecipient)] == recipient_columns
    assert [f.name for f in fields(outbound.Intent)] == [c.name for c in outbound.outbound_intents.c]


def test_records_are_frozen() -> None:
    assert all(
        cls.__dataclass_params__.frozen and "__slots__" in vars(cls)  # type: ignore[attr-defined]
        for cls in (
            threads.ThreadRecord,
            emails.StoredEmail,
            emails.OwnedEmail,
            emails.Quota,
            mailbox_queries.LabelRecord,
            mailbox_queries.DueThread,
            contacts.ContactRecord,
            contacts.ContactAddress,
            contacts.ContactHolder,
            uploads.UploadRecord,
            uploads.ExpiredUpload,
            outbound.QueuedMessage,
            outbound.QueuedRecipient,
            outbound.RecipientStatus,
            outbound.Intent,
            outbound.SenderProfile,
        )
    )
