"""Mailbox/get|changes|query|queryChanges|set: labels as JMAP Mailboxes (RFC 8621 §2)."""

from mailroom.services.jmap.mailbox import changes, get, query, set

__all__ = ["changes", "get", "query", "set"]
