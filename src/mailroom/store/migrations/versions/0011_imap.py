"""IMAP keywords: email_keywords, logged in the change log like the other flags (triggers)

Revision ID: 0011_imap
Revises: 0010_mime

``\\Seen``, ``\\Flagged`` and ``\\Draft`` are the ``emails`` columns ``is_read``,
``is_starred`` and ``is_draft``; every other IMAP flag and keyword (``\\Answered``,
``\\Deleted``, ``$Forwarded``, ``$Junk``, ``$MDNSent``, a client's own) is a row here, in
JMAP's lower-case form (``$answered``, ``$deleted``, ...). Adding or removing one takes the
account's next modseq and moves the email's MODSEQ in each of its labels, as a change of
the flag columns does (migration 0005_changelog), so CONDSTORE, QRESYNC, IDLE and JMAP's
``Email/changes`` see it. Only a new table and its triggers: nothing existing is rewritten.
"""

# ruff: noqa: S608  (trigger bodies built from constants of this file, no input)
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_imap"
# Given as 0008_identity; this branch merged wave/mime (with wave/jmap: 0014_jmap, 0010_mime
# also follow 0008_identity), so this one follows 0010_mime to keep a single head.
down_revision = "0010_mime"
branch_labels = None
depends_on = None

EMAIL, UPDATED = 1, 2
_NOW = "CAST(strftime('%s', 'now') AS INTEGER)"


def _sqlite(row: str) -> str:
    user = f"(SELECT user_id FROM emails WHERE id = {row}.email_id)"
    return (
        f"UPDATE mail_states SET modseq = modseq + 1 WHERE user_id = {user}; "
        "INSERT INTO mail_changes (user_id, kind, modseq, object_id, op, label_id, uid, changed_at) "
        f"SELECT user_id, {EMAIL}, modseq, {row}.email_id, {UPDATED}, NULL, NULL, {_NOW} "
        f"FROM mail_states WHERE user_id = {user}; "
        f"UPDATE email_labels SET modseq = (SELECT modseq FROM mail_states WHERE user_id = {user}) "
        f"WHERE email_id = {row}.email_id; "
    )


def _when(row: str) -> str:
    # Not when the email itself is going (a cascade): its destruction is logged already, and
    # its email_labels rows, maybe not yet deleted, must not get a NULL modseq.
    return f"WHEN EXISTS (SELECT 1 FROM emails WHERE id = {row}.email_id)"


SQLITE_TRIGGERS = {
    "mail_email_keywords_insert": f"AFTER INSERT ON email_keywords {_when('NEW')} BEGIN {_sqlite('NEW')}END",
    "mail_email_keywords_delete": f"AFTER DELETE ON email_keywords {_when('OLD')} BEGIN {_sqlite('OLD')}END",
}

_PG_FUNCTION = f"""
DECLARE u integer; e integer; m bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN e := OLD.email_id; ELSE e := NEW.email_id; END IF;
  SELECT user_id INTO u FROM emails WHERE id = e;
  IF u IS NOT NULL THEN
    m := mail_change(u, {EMAIL}, e, {UPDATED}, NULL, NULL);
    IF m IS NOT NULL THEN
      UPDATE email_labels SET modseq = m WHERE email_id = e;
    END IF;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END"""


def upgrade() -> None:
    op.create_table(
        "email_keywords",
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"], ["emails.id"], name=op.f("fk_email_keywords_email_id_emails"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("email_id", "keyword", name=op.f("pk_email_keywords")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION mail_email_keywords() RETURNS trigger LANGUAGE plpgsql AS $$ {_PG_FUNCTION} $$"
        )
        op.execute(
            "CREATE TRIGGER mail_email_keywords BEFORE INSERT OR DELETE ON email_keywords "
            "FOR EACH ROW EXECUTE FUNCTION mail_email_keywords()"
        )
        return
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS mail_email_keywords ON email_keywords")
        op.execute("DROP FUNCTION IF EXISTS mail_email_keywords()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("email_keywords")
