"""Collecting what was wrong with a message as short, deduplicated strings."""

from __future__ import annotations

import re

# A fuzzed message can produce a defect per line; the list is a summary, not a log.
MAX_DEFECTS = 50

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class DefectLog:
    """An ordered, deduplicated, bounded list of defect descriptions."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self._seen: set[str] = set()
        self._full = False

    def add(self, description: str) -> None:
        """Record a defect once; later duplicates and anything past the cap are dropped."""
        if self._full or description in self._seen:
            return
        if len(self._items) == MAX_DEFECTS:
            self._items.append("more defects omitted")
            self._full = True
            return
        self._seen.add(description)
        self._items.append(description)

    def add_email_defect(self, defect: object, part_path: str | None) -> None:
        """Record a defect object from the `email` package, named in words."""
        name = type(defect).__name__.removesuffix("Defect")
        words = _CAMEL.sub(" ", name).lower()
        self.add(f"{words} (part {part_path})" if part_path else words)

    def to_list(self) -> list[str]:
        """Return the defects in the order they were found."""
        return list(self._items)
