"""one change log per account: modseq, tombstones, IMAP UIDs (hand-written: triggers)

Revision ID: 0005_changelog
Revises: 0004_send_as

Every change to an account's mail state takes the account's next modification sequence
(``mail_states.modseq``) and leaves a row in ``mail_changes``, written by triggers in the
transaction of the change, so no code path (ingest, batch actions, compose, imports, purges,
another process, a hand-made UPDATE) can forget it — the way 0003 keeps ``row_version``.
An email entering a label takes the label's ``uidnext`` as its UID there. See
store/changelog.py for what the rows mean and docs/architecture.md for why.

The counter row is updated before anything is logged, so on PostgreSQL it is locked for the
rest of the transaction: an account's changes commit in modseq order (a reader never sees
modseq 6 committed while 5 is still to come), and every trigger takes that lock before the
label or email row it changes (BEFORE triggers), so two writers of one account do not
deadlock on the rows behind it.

Existing data: every user gets a state; emails get UIDs per label in arrival (id) order and
a modseq each (their MODSEQ in each label); labels a UIDVALIDITY; the account's state counts
them, and its ``floor`` is that state (there is no log of the changes before it).
"""

# ruff: noqa: S608  (trigger bodies built from constants of this file, no input)
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_changelog"
down_revision = "0004_send_as"
branch_labels = None
depends_on = None

EMAIL, THREAD, LABEL, VACATION = 1, 2, 3, 4
CREATED, UPDATED, DESTROYED, ADDED, REMOVED = 1, 2, 3, 4, 5

_SQLITE_NOW = "CAST(strftime('%s', 'now') AS INTEGER)"


def _log(user: str, kind: int, obj: str, op_: int, label: str = "NULL", uid: str = "NULL") -> str:
    """SQLite: take ``user``'s next modseq and log one change with it."""
    return (
        f"UPDATE mail_states SET modseq = modseq + 1 WHERE user_id = {user}; "
        "INSERT INTO mail_changes (user_id, kind, modseq, object_id, op, label_id, uid, changed_at) "
        f"SELECT user_id, {kind}, modseq, {obj}, {op_}, {label}, {uid}, {_SQLITE_NOW} "
        f"FROM mail_states WHERE user_id = {user}; "
    )


def _labels_modseq(user: str, email_id: str) -> str:
    """SQLite: the email's MODSEQ in each of its labels becomes ``user``'s current modseq."""
    return (
        f"UPDATE email_labels SET modseq = (SELECT modseq FROM mail_states WHERE user_id = {user}) "
        f"WHERE email_id = {email_id}; "
    )


_LABEL_USER = "(SELECT user_id FROM labels WHERE id = {0}.label_id)"
_LINK_USER = (
    "COALESCE((SELECT user_id FROM emails WHERE id = OLD.email_id), "
    "(SELECT user_id FROM labels WHERE id = OLD.label_id))"
)
_EMAIL_CHANGED = (
    "OLD.is_read IS NOT NEW.is_read OR OLD.is_starred IS NOT NEW.is_starred "
    "OR OLD.is_draft IS NOT NEW.is_draft OR OLD.thread_id IS NOT NEW.thread_id"
)
_REPLY_CHANGED = (
    "OLD.reply_enabled IS NOT NEW.reply_enabled OR OLD.reply_subject IS NOT NEW.reply_subject "
    "OR OLD.reply_body IS NOT NEW.reply_body OR OLD.reply_start IS NOT NEW.reply_start "
    "OR OLD.reply_end IS NOT NEW.reply_end"
)
_LABEL_CHANGED = (
    "OLD.name IS NOT NEW.name OR OLD.threads_total IS NOT NEW.threads_total "
    "OR OLD.threads_unread IS NOT NEW.threads_unread OR OLD.emails_total IS NOT NEW.emails_total "
    "OR OLD.emails_unread IS NOT NEW.emails_unread"
)

SQLITE_TRIGGERS = {
    "mail_users_insert": "AFTER INSERT ON users BEGIN "
    "DELETE FROM mail_changes WHERE user_id = NEW.id; "
    "INSERT OR IGNORE INTO mail_states (user_id, modseq, floor) VALUES (NEW.id, 0, 0); END",
    # Before the user's rows go: with no state left, the cascade's deletions log nothing.
    "mail_users_delete": "BEFORE DELETE ON users BEGIN DELETE FROM mail_states WHERE user_id = OLD.id; "
    "DELETE FROM mail_changes WHERE user_id = OLD.id; END",
    # The auto-reply is JMAP's VacationResponse (one per account, its id the user's).
    "mail_users_reply": "AFTER UPDATE OF reply_enabled, reply_subject, reply_body, reply_start, reply_end "
    f"ON users WHEN {_REPLY_CHANGED} BEGIN " + _log("NEW.id", VACATION, "NEW.id", UPDATED) + "END",
    "mail_emails_insert": "AFTER INSERT ON emails BEGIN "
    + _log("NEW.user_id", EMAIL, "NEW.id", CREATED)
    + _log("NEW.user_id", THREAD, "NEW.thread_id", UPDATED)
    + "END",
    "mail_emails_update": "AFTER UPDATE OF is_read, is_starred, is_draft, thread_id ON emails "
    f"WHEN {_EMAIL_CHANGED} BEGIN "
    + _log("NEW.user_id", EMAIL, "NEW.id", UPDATED)
    + _labels_modseq("NEW.user_id", "NEW.id")
    + "END",
    "mail_emails_thread": "AFTER UPDATE OF thread_id ON emails WHEN OLD.thread_id IS NOT NEW.thread_id BEGIN "
    + _log("NEW.user_id", THREAD, "OLD.thread_id", UPDATED)
    + _log("NEW.user_id", THREAD, "NEW.thread_id", UPDATED)
    + "END",
    "mail_emails_delete": "AFTER DELETE ON emails BEGIN "
    + _log("OLD.user_id", EMAIL, "OLD.id", DESTROYED)
    + _log("OLD.user_id", THREAD, "OLD.thread_id", UPDATED)
    + "END",
    "mail_email_labels_insert": "AFTER INSERT ON email_labels BEGIN "
    "UPDATE labels SET uidnext = uidnext + 1 WHERE id = NEW.label_id; "
    + _log(
        _LABEL_USER.format("NEW"),
        EMAIL,
        "NEW.email_id",
        ADDED,
        "NEW.label_id",
        "(SELECT uidnext - 1 FROM labels WHERE id = NEW.label_id)",
    )
    + "UPDATE email_labels SET uid = (SELECT uidnext - 1 FROM labels WHERE id = NEW.label_id), "
    f"modseq = (SELECT modseq FROM mail_states WHERE user_id = {_LABEL_USER.format('NEW')}) "
    "WHERE email_id = NEW.email_id AND label_id = NEW.label_id; " + "END",
    "mail_email_labels_delete": "AFTER DELETE ON email_labels BEGIN "
    + _log(_LINK_USER, EMAIL, "OLD.email_id", REMOVED, "OLD.label_id", "OLD.uid")
    + "END",
    "mail_labels_insert": "AFTER INSERT ON labels BEGIN "
    + _log("NEW.user_id", LABEL, "NEW.id", CREATED)
    + "UPDATE labels SET uidvalidity = COALESCE((SELECT modseq FROM mail_states "
    "WHERE user_id = NEW.user_id), 1) WHERE id = NEW.id; END",
    "mail_labels_update": "AFTER UPDATE OF name, threads_total, threads_unread, emails_total, emails_unread "
    f"ON labels WHEN {_LABEL_CHANGED} BEGIN " + _log("NEW.user_id", LABEL, "NEW.id", UPDATED) + "END",
    "mail_labels_delete": "AFTER DELETE ON labels BEGIN "
    + _log("OLD.user_id", LABEL, "OLD.id", DESTROYED)
    + "END",
    "mail_threads_insert": "AFTER INSERT ON threads BEGIN "
    + _log("NEW.user_id", THREAD, "NEW.id", CREATED)
    + "END",
    "mail_threads_delete": "AFTER DELETE ON threads BEGIN "
    + _log("OLD.user_id", THREAD, "OLD.id", DESTROYED)
    + "END",
}

_PG_FUNCTIONS = {
    # Takes the account's next modseq (locking its state row to the end of the transaction)
    # and logs one change; NULL when the account has no state (its user is being deleted).
    "mail_change(p_user integer, p_kind integer, p_object integer, p_op integer, p_label integer,"
    " p_uid bigint) RETURNS bigint": """
DECLARE m bigint;
BEGIN
  UPDATE mail_states SET modseq = modseq + 1 WHERE user_id = p_user RETURNING modseq INTO m;
  IF m IS NOT NULL THEN
    INSERT INTO mail_changes (user_id, kind, modseq, object_id, op, label_id, uid, changed_at)
    VALUES (p_user, p_kind, m, p_object, p_op, p_label, p_uid, extract(epoch FROM now())::bigint);
  END IF;
  RETURN m;
END""",
    "mail_users_insert() RETURNS trigger": """
BEGIN
  DELETE FROM mail_changes WHERE user_id = NEW.id;
  INSERT INTO mail_states (user_id, modseq, floor) VALUES (NEW.id, 0, 0) ON CONFLICT DO NOTHING;
  RETURN NULL;
END""",
    "mail_users_delete() RETURNS trigger": """
BEGIN
  DELETE FROM mail_states WHERE user_id = OLD.id;
  DELETE FROM mail_changes WHERE user_id = OLD.id;
  RETURN OLD;
END""",
    "mail_users_reply() RETURNS trigger": f"""
BEGIN
  PERFORM mail_change(NEW.id, {VACATION}, NEW.id, {UPDATED}, NULL, NULL);
  RETURN NEW;
END""",
    "mail_emails_insert() RETURNS trigger": f"""
BEGIN
  PERFORM mail_change(NEW.user_id, {EMAIL}, NEW.id, {CREATED}, NULL, NULL);
  PERFORM mail_change(NEW.user_id, {THREAD}, NEW.thread_id, {UPDATED}, NULL, NULL);
  RETURN NEW;
END""",
    "mail_emails_update() RETURNS trigger": f"""
DECLARE m bigint;
BEGIN
  IF OLD.thread_id IS DISTINCT FROM NEW.thread_id THEN
    PERFORM mail_change(NEW.user_id, {THREAD}, OLD.thread_id, {UPDATED}, NULL, NULL);
    PERFORM mail_change(NEW.user_id, {THREAD}, NEW.thread_id, {UPDATED}, NULL, NULL);
  END IF;
  m := mail_change(NEW.user_id, {EMAIL}, NEW.id, {UPDATED}, NULL, NULL);
  IF m IS NOT NULL THEN
    UPDATE email_labels SET modseq = m WHERE email_id = NEW.id;
  END IF;
  RETURN NEW;
END""",
    "mail_emails_delete() RETURNS trigger": f"""
BEGIN
  PERFORM mail_change(OLD.user_id, {EMAIL}, OLD.id, {DESTROYED}, NULL, NULL);
  PERFORM mail_change(OLD.user_id, {THREAD}, OLD.thread_id, {UPDATED}, NULL, NULL);
  RETURN OLD;
END""",
    "mail_email_labels_insert() RETURNS trigger": f"""
DECLARE u integer; m bigint;
BEGIN
  SELECT user_id INTO u FROM labels WHERE id = NEW.label_id;
  -- The account's state first (see the migration's docstring), then the label's uidnext.
  UPDATE mail_states SET modseq = modseq + 1 WHERE user_id = u RETURNING modseq INTO m;
  UPDATE labels SET uidnext = uidnext + 1 WHERE id = NEW.label_id RETURNING uidnext - 1 INTO NEW.uid;
  IF m IS NOT NULL THEN
    INSERT INTO mail_changes (user_id, kind, modseq, object_id, op, label_id, uid, changed_at)
    VALUES (u, {EMAIL}, m, NEW.email_id, {ADDED}, NEW.label_id, NEW.uid, extract(epoch FROM now())::bigint);
    NEW.modseq := m;
  END IF;
  RETURN NEW;
END""",
    "mail_email_labels_delete() RETURNS trigger": f"""
DECLARE u integer;
BEGIN
  SELECT user_id INTO u FROM emails WHERE id = OLD.email_id;
  IF u IS NULL THEN
    SELECT user_id INTO u FROM labels WHERE id = OLD.label_id;
  END IF;
  PERFORM mail_change(u, {EMAIL}, OLD.email_id, {REMOVED}, OLD.label_id, OLD.uid);
  RETURN OLD;
END""",
    "mail_labels_insert() RETURNS trigger": f"""
BEGIN
  NEW.uidvalidity := COALESCE(mail_change(NEW.user_id, {LABEL}, NEW.id, {CREATED}, NULL, NULL), 1);
  RETURN NEW;
END""",
    "mail_labels_update() RETURNS trigger": f"""
BEGIN
  PERFORM mail_change(NEW.user_id, {LABEL}, NEW.id, {UPDATED}, NULL, NULL);
  RETURN NEW;
END""",
    "mail_labels_delete() RETURNS trigger": f"""
BEGIN
  PERFORM mail_change(OLD.user_id, {LABEL}, OLD.id, {DESTROYED}, NULL, NULL);
  RETURN OLD;
END""",
    "mail_threads_insert() RETURNS trigger": f"""
BEGIN
  PERFORM mail_change(NEW.user_id, {THREAD}, NEW.id, {CREATED}, NULL, NULL);
  RETURN NULL;
END""",
    "mail_threads_delete() RETURNS trigger": f"""
BEGIN
  PERFORM mail_change(OLD.user_id, {THREAD}, OLD.id, {DESTROYED}, NULL, NULL);
  RETURN OLD;
END""",
}

_PG_EMAIL_CHANGED = _EMAIL_CHANGED.replace("IS NOT", "IS DISTINCT FROM")
_PG_LABEL_CHANGED = _LABEL_CHANGED.replace("IS NOT", "IS DISTINCT FROM")
_PG_REPLY_CHANGED = _REPLY_CHANGED.replace("IS NOT", "IS DISTINCT FROM")

#: name: (when, table, condition). Every trigger that changes or removes an existing row runs
#: BEFORE it: PostgreSQL locks the row only after BEFORE triggers, so the account's state row
#: is always locked first (inserts make new rows nobody else can hold).
_PG_TRIGGERS = {
    "mail_users_insert": ("AFTER INSERT", "users", None),
    "mail_users_delete": ("BEFORE DELETE", "users", None),
    "mail_users_reply": ("BEFORE UPDATE", "users", _PG_REPLY_CHANGED),
    "mail_emails_insert": ("BEFORE INSERT", "emails", None),
    "mail_emails_update": ("BEFORE UPDATE", "emails", _PG_EMAIL_CHANGED),
    "mail_emails_delete": ("BEFORE DELETE", "emails", None),
    "mail_email_labels_insert": ("BEFORE INSERT", "email_labels", None),
    "mail_email_labels_delete": ("BEFORE DELETE", "email_labels", None),
    "mail_labels_insert": ("BEFORE INSERT", "labels", None),
    "mail_labels_update": ("BEFORE UPDATE", "labels", _PG_LABEL_CHANGED),
    "mail_labels_delete": ("BEFORE DELETE", "labels", None),
    "mail_threads_insert": ("AFTER INSERT", "threads", None),
    "mail_threads_delete": ("BEFORE DELETE", "threads", None),
}


def _tables_exist() -> bool:
    # 0001_initial is regenerated from the models until the first release: once it is, it
    # creates the tables and columns itself and only the triggers and the backfill are left.
    return "mail_states" in sa.inspect(op.get_bind()).get_table_names()


def _schema() -> None:
    op.add_column("labels", sa.Column("uidvalidity", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("labels", sa.Column("uidnext", sa.BigInteger(), nullable=False, server_default="1"))
    op.add_column("email_labels", sa.Column("uid", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("email_labels", sa.Column("modseq", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "mail_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("floor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mail_states_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_mail_states")),
    )
    op.create_table(
        "mail_changes",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("modseq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("op", sa.SmallInteger(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind", "modseq", name=op.f("pk_mail_changes")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_mail_changes_changed_at", "mail_changes", ["changed_at"])


def _backfill() -> None:
    """UIDs in arrival order, a modseq per email, a UIDVALIDITY per label, a state per user."""
    op.execute("INSERT INTO mail_states (user_id, modseq, floor) SELECT id, 0, 0 FROM users")
    op.execute(
        "UPDATE email_labels SET uid = r.n FROM (SELECT email_id, label_id, "
        "ROW_NUMBER() OVER (PARTITION BY label_id ORDER BY email_id) AS n FROM email_labels) AS r "
        "WHERE r.email_id = email_labels.email_id AND r.label_id = email_labels.label_id"
    )
    op.execute(
        "UPDATE labels SET uidnext = COALESCE((SELECT MAX(uid) FROM email_labels "
        "WHERE email_labels.label_id = labels.id), 0) + 1"
    )
    # Each email's MODSEQ (in every label it is in): its rank among the account's emails.
    op.execute(
        "UPDATE email_labels SET modseq = r.n FROM (SELECT id, "
        "ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id) AS n FROM emails) AS r "
        "WHERE r.id = email_labels.email_id"
    )
    op.execute(
        "UPDATE labels SET uidvalidity = r.n FROM (SELECT l.id, "
        "ROW_NUMBER() OVER (PARTITION BY l.user_id ORDER BY l.id) "
        "+ (SELECT COUNT(*) FROM emails e WHERE e.user_id = l.user_id) AS n FROM labels l) AS r "
        "WHERE r.id = labels.id"
    )
    op.execute(
        "UPDATE mail_states SET modseq = "
        "(SELECT COUNT(*) FROM emails WHERE emails.user_id = mail_states.user_id) "
        "+ (SELECT COUNT(*) FROM labels WHERE labels.user_id = mail_states.user_id)"
    )
    op.execute("UPDATE mail_states SET floor = modseq")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if not _tables_exist():
        _schema()
        _backfill()
        # After the backfill: until then every row's uid is 0.
        op.drop_index("ix_email_labels_label_id", table_name="email_labels")
        op.create_index("ix_email_labels_label_id_uid", "email_labels", ["label_id", "uid"], unique=True)
    if postgresql:
        for signature, body in _PG_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {signature} LANGUAGE plpgsql AS $$ {body} $$")
        for name, (when, table, condition) in _PG_TRIGGERS.items():
            where = f" WHEN ({condition})" if condition else ""
            op.execute(
                f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW{where} EXECUTE FUNCTION {name}()"
            )
        return
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, (_, table, _) in _PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        op.execute("DROP FUNCTION IF EXISTS mail_change(integer, integer, integer, integer, integer, bigint)")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_email_labels_label_id_uid", table_name="email_labels")
    op.create_index("ix_email_labels_label_id", "email_labels", ["label_id"])
    op.drop_index("ix_mail_changes_changed_at", table_name="mail_changes")
    op.drop_table("mail_changes")
    op.drop_table("mail_states")
    op.drop_column("email_labels", "modseq")
    op.drop_column("email_labels", "uid")
    op.drop_column("labels", "uidnext")
    op.drop_column("labels", "uidvalidity")
