"""JMAP Email methods (RFC 8621 §4, §5): each module declares its methods on import."""

from mailroom.services.jmap.email import changes, get, parse, query, set, snippet

__all__ = ["changes", "get", "parse", "query", "set", "snippet"]
