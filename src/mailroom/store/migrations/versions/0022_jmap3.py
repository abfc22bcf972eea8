"""JMAP: \\Deleted emails hidden from JMAP (logged as such); subscriptions kept by label id

Revision ID: 0022_jmap3
Revises: 0025_kick

- RFC 8621 §4.1.1: an email with the ``$deleted`` keyword (IMAP's ``\\Deleted``) is not
  visible over JMAP. The keyword triggers of 0011_imap log adding it as op 6 (hidden) and
  removing it as op 7 (shown) instead of 2 (updated), so ``Email/changes`` reports the email
  destroyed, then created again (store/changelog.py); they also log its thread (hidden or
  shown with it when no other email of the thread is visible, else updated: its
  ``emailIds`` change) and each of its labels as updated (the Mailbox counts JMAP shows).
  Every other keyword is logged as before. ``ix_email_keywords_keyword`` finds an account's
  hidden emails (for the Mailbox counts) without reading every keyword.
- ``label_subscriptions``: a user's subscription choice about a label (IMAP
  SUBSCRIBE/UNSUBSCRIBE, JMAP ``isSubscribed``), by label id, so a renamed label (and its
  children) keeps it. ``imap_subscriptions`` keeps only names with no label (RFC 9051
  §6.3.7); its rows naming an existing label move here.
- ``outbound_queue.hold_until``: a delayed send (RFC 8621 §7 ``sendAt``, RFC 4865
  FUTURERELEASE): the entry waits until then, local recipients too, and can be canceled.
"""

# ruff: noqa: S608  (trigger bodies built from constants of this file, no input)
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mailroom.store.types

revision = "0022_jmap3"
down_revision = "0025_kick"
branch_labels = None
depends_on = None

EMAIL, THREAD, LABEL = 1, 2, 3
UPDATED, HIDDEN, SHOWN = 2, 6, 7
DELETED = "'$deleted'"
_NOW = "CAST(strftime('%s', 'now') AS INTEGER)"


def _sqlite_email(row: str, op_: int) -> str:
    user = f"(SELECT user_id FROM emails WHERE id = {row}.email_id)"
    return (
        f"UPDATE mail_states SET modseq = modseq + 1 WHERE user_id = {user}; "
        "INSERT INTO mail_changes (user_id, kind, modseq, object_id, op, label_id, uid, changed_at) "
        f"SELECT user_id, {EMAIL}, modseq, {row}.email_id, {op_}, NULL, NULL, {_NOW} "
        f"FROM mail_states WHERE user_id = {user}; "
        f"UPDATE email_labels SET modseq = (SELECT modseq FROM mail_states WHERE user_id = {user}) "
        f"WHERE email_id = {row}.email_id; "
    )


def _others_visible(row: str) -> str:
    """SQLite: whether the email's thread has another email without ``$deleted``."""
    return (
        f"EXISTS (SELECT 1 FROM emails o WHERE o.thread_id = (SELECT thread_id FROM emails "
        f"WHERE id = {row}.email_id) AND o.id <> {row}.email_id AND NOT EXISTS (SELECT 1 FROM "
        f"email_keywords k WHERE k.email_id = o.id AND k.keyword = {DELETED}))"
    )


def _sqlite_hidden(row: str, op_: int) -> str:
    """The email (op 6 or 7), its thread (hidden or shown with it when it is the thread's
    last visible email, else updated), then each of its labels, a modseq each."""
    user = f"(SELECT user_id FROM emails WHERE id = {row}.email_id)"
    n_labels = f"(SELECT count(*) FROM email_labels WHERE email_id = {row}.email_id)"
    thread_op = f"CASE WHEN {_others_visible(row)} THEN {UPDATED} ELSE {op_} END"
    return (
        _sqlite_email(row, op_) + f"UPDATE mail_states SET modseq = modseq + 1 WHERE user_id = {user}; "
        "INSERT INTO mail_changes (user_id, kind, modseq, object_id, op, label_id, uid, changed_at) "
        f"SELECT user_id, {THREAD}, modseq, (SELECT thread_id FROM emails WHERE id = {row}.email_id), "
        f"{thread_op}, NULL, NULL, {_NOW} FROM mail_states WHERE user_id = {user}; "
        f"UPDATE mail_states SET modseq = modseq + {n_labels} WHERE user_id = {user}; "
        "INSERT INTO mail_changes (user_id, kind, modseq, object_id, op, label_id, uid, changed_at) "
        f"SELECT s.user_id, {LABEL}, s.modseq - (SELECT count(*) FROM email_labels x "
        f"WHERE x.email_id = {row}.email_id AND x.label_id > el.label_id), el.label_id, {UPDATED}, "
        f"NULL, NULL, {_NOW} FROM mail_states s, email_labels el "
        f"WHERE s.user_id = {user} AND el.email_id = {row}.email_id; "
    )


def _when(row: str, deleted: bool) -> str:
    # Not when the email itself is going (a cascade): its destruction is logged already.
    which = "=" if deleted else "<>"
    return f"WHEN {row}.keyword {which} {DELETED} AND EXISTS (SELECT 1 FROM emails WHERE id = {row}.email_id)"


SQLITE_TRIGGERS = {
    "mail_email_keywords_insert": f"AFTER INSERT ON email_keywords {_when('NEW', False)} "
    f"BEGIN {_sqlite_email('NEW', UPDATED)}END",
    "mail_email_keywords_delete": f"AFTER DELETE ON email_keywords {_when('OLD', False)} "
    f"BEGIN {_sqlite_email('OLD', UPDATED)}END",
    "mail_email_keywords_hide": f"AFTER INSERT ON email_keywords {_when('NEW', True)} "
    f"BEGIN {_sqlite_hidden('NEW', HIDDEN)}END",
    "mail_email_keywords_show": f"AFTER DELETE ON email_keywords {_when('OLD', True)} "
    f"BEGIN {_sqlite_hidden('OLD', SHOWN)}END",
}

# 0011_imap's, to go back to.
_OLD_SQLITE = {
    "mail_email_keywords_insert": "AFTER INSERT ON email_keywords "
    "WHEN EXISTS (SELECT 1 FROM emails WHERE id = NEW.email_id) "
    f"BEGIN {_sqlite_email('NEW', UPDATED)}END",
    "mail_email_keywords_delete": "AFTER DELETE ON email_keywords "
    "WHEN EXISTS (SELECT 1 FROM emails WHERE id = OLD.email_id) "
    f"BEGIN {_sqlite_email('OLD', UPDATED)}END",
}

_PG_FUNCTION = f"""
DECLARE u integer; e integer; t integer; k text; o smallint; m bigint; l integer;
BEGIN
  IF TG_OP = 'DELETE' THEN e := OLD.email_id; k := OLD.keyword;
  ELSE e := NEW.email_id; k := NEW.keyword; END IF;
  SELECT user_id, thread_id INTO u, t FROM emails WHERE id = e;
  IF u IS NOT NULL THEN
    o := {UPDATED};
    IF k = {DELETED} THEN
      IF TG_OP = 'DELETE' THEN o := {SHOWN}; ELSE o := {HIDDEN}; END IF;
    END IF;
    m := mail_change(u, {EMAIL}, e, o, NULL, NULL);
    IF m IS NOT NULL THEN
      UPDATE email_labels SET modseq = m WHERE email_id = e;
      IF o <> {UPDATED} THEN
        IF EXISTS (SELECT 1 FROM emails x WHERE x.thread_id = t AND x.id <> e AND NOT EXISTS (
            SELECT 1 FROM email_keywords y WHERE y.email_id = x.id AND y.keyword = {DELETED})) THEN
          PERFORM mail_change(u, {THREAD}, t, {UPDATED}, NULL, NULL);
        ELSE
          PERFORM mail_change(u, {THREAD}, t, o, NULL, NULL);
        END IF;
        FOR l IN SELECT label_id FROM email_labels WHERE email_id = e ORDER BY label_id LOOP
          PERFORM mail_change(u, {LABEL}, l, {UPDATED}, NULL, NULL);
        END LOOP;
      END IF;
    END IF;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END"""

_OLD_PG_FUNCTION = f"""
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


def _triggers(sqlite: dict[str, str], pg: str, drop: list[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE OR REPLACE FUNCTION mail_email_keywords() RETURNS trigger LANGUAGE plpgsql AS $$ {pg} $$"
        )
        return
    for name in drop:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for name, body in sqlite.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    op.add_column(
        "outbound_queue",
        sa.Column("hold_until", mailroom.store.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_email_keywords_keyword", "email_keywords", ["keyword", "email_id"])
    _triggers(SQLITE_TRIGGERS, _PG_FUNCTION, list(_OLD_SQLITE))
    op.create_table(
        "label_subscriptions",
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_label_subscriptions_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_label_subscriptions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("label_id", name=op.f("pk_label_subscriptions")),
    )
    op.create_index(op.f("ix_label_subscriptions_user_id"), "label_subscriptions", ["user_id"])
    op.execute(
        "INSERT INTO label_subscriptions (label_id, user_id, subscribed) "
        "SELECT l.id, l.user_id, s.subscribed "
        "FROM imap_subscriptions s JOIN labels l ON l.user_id = s.user_id AND l.name = s.name"
    )
    op.execute(
        "DELETE FROM imap_subscriptions WHERE EXISTS (SELECT 1 FROM labels l "
        "WHERE l.user_id = imap_subscriptions.user_id AND l.name = imap_subscriptions.name)"
    )


def downgrade() -> None:
    op.execute(
        "INSERT INTO imap_subscriptions (user_id, name, subscribed) SELECT l.user_id, l.name, u.subscribed "
        "FROM label_subscriptions u JOIN labels l ON l.id = u.label_id"
    )
    op.drop_index(op.f("ix_label_subscriptions_user_id"), table_name="label_subscriptions")
    op.drop_table("label_subscriptions")
    _triggers(_OLD_SQLITE, _OLD_PG_FUNCTION, list(SQLITE_TRIGGERS))
    op.drop_index("ix_email_keywords_keyword", table_name="email_keywords")
    with op.batch_alter_table("outbound_queue") as batch:
        batch.drop_column("hold_until")
