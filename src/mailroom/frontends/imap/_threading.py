"""THREAD=REFERENCES: RFC 5256 §2.2's algorithm over the matched messages.

Each message is a node keyed by its Message-ID; References (or, without it, the first
In-Reply-To id) link the ids in order, a message's parent is its last reference; empty
(dummy) nodes are pruned; roots with the same base subject are gathered; siblings are in
sent-date order. The answer is the tree as the RFC writes it: ``(3 6 (4 23)(44 7 96))``,
``((3)(5))`` for two replies to a message not in the set.

This answers the RFC's tree, which may differ from mailroom's own threads (the web client's
conversations, THREADID): those also join replies by subject within a window (docs/mail.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Threadable:
    """What the algorithm reads of one message. ``key`` is its number in the answer (UID or
    sequence number), and also the tie-break of equal dates (mailbox order)."""

    key: int
    message_id: str | None
    in_reply_to: Sequence[str]
    references: Sequence[str]
    sent: float
    base_subject: str
    is_reply: bool


@dataclass(eq=False, slots=True)
class _Node:
    message: Threadable | None = None
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)

    def descends_from(self, other: _Node) -> bool:
        node: _Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def unlink(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def attach(self, child: _Node) -> None:
        child.unlink()
        child.parent = self
        self.children.append(child)


def _date_key(node: _Node) -> tuple[float, int]:
    """A message's sent date; a dummy's is its first child's (children sorted first)."""
    while node.message is None and node.children:
        node = node.children[0]
    assert node.message is not None
    return (node.message.sent, node.message.key)


def _sort(nodes: list[_Node]) -> None:
    for node in nodes:
        _sort(node.children)
    nodes.sort(key=_date_key)


def _prune(nodes: list[_Node], *, root: bool) -> list[_Node]:
    """RFC 5256 §2.2 step 3: drop empty dummies, promote a dummy's children to its level
    (not to the root level when it has several: that dummy stays, grouping them)."""
    out: list[_Node] = []
    for node in nodes:
        node.children = _prune(node.children, root=False)
        for child in node.children:
            child.parent = node
        if node.message is not None:
            out.append(node)
        elif not node.children:
            continue
        elif root and len(node.children) > 1:
            out.append(node)
        else:
            out.extend(node.children)
    return out


def _subject(node: _Node) -> Threadable | None:
    return node.message if node.message is not None else (node.children[0].message if node.children else None)


def _gather_by_subject(roots: list[_Node]) -> list[_Node]:
    """RFC 5256 §2.2 step 5: roots whose base subjects match go together."""
    table: dict[str, _Node] = {}
    for node in roots:
        found = _subject(node)
        if found is None or not found.base_subject:
            continue
        old = table.get(found.base_subject)
        if old is None:
            table[found.base_subject] = node
            continue
        old_found = _subject(old)
        assert old_found is not None
        if (node.message is None and old.message is not None) or (old_found.is_reply and not found.is_reply):
            table[found.base_subject] = node
    out: list[_Node] = []
    replaced: dict[int, _Node] = {}  # id of a table node → the dummy that took its place
    for node in roots:
        found = _subject(node)
        if found is None or not found.base_subject:
            out.append(node)
            continue
        target = table[found.base_subject]
        target = replaced.get(id(target), target)
        if target is node:
            out.append(node)
            continue
        target_found = _subject(target)
        assert target_found is not None
        if target.message is None and node.message is None:
            for child in list(node.children):
                target.attach(child)
        elif target.message is None:
            target.attach(node)
        elif node.message is None:
            # The table's message goes under this dummy, which takes its place.
            index = out.index(target) if target in out else -1
            node.attach(target)
            replaced[id(table[found.base_subject])] = node
            if index >= 0:
                out[index] = node
            else:
                out.append(node)
        elif not target_found.is_reply and found.is_reply:
            target.attach(node)
        else:
            dummy = _Node()
            index = out.index(target) if target in out else -1
            dummy.attach(target)
            dummy.attach(node)
            replaced[id(table[found.base_subject])] = dummy
            if index >= 0:
                out[index] = dummy
            else:
                out.append(dummy)
    return out


def thread(messages: Sequence[Threadable]) -> list[_Node]:
    """The RFC 5256 REFERENCES threads of ``messages``, in order."""
    by_id: dict[str, _Node] = {}
    nodes: list[_Node] = []
    for message in messages:
        node: _Node | None = None
        if message.message_id:
            node = by_id.get(message.message_id)
            if node is not None and node.message is not None:
                node = None  # a duplicate Message-ID: this one gets a node of its own
        if node is None:
            node = _Node()
            if message.message_id and message.message_id not in by_id:
                by_id[message.message_id] = node
        node.message = message
        nodes.append(node)
        refs = list(message.references) or list(message.in_reply_to[:1])
        chain = []
        for ref in refs:
            found = by_id.get(ref)
            if found is None:
                found = by_id[ref] = _Node()
            chain.append(found)
        # Link the references in order, keeping links made before and never making a loop.
        for parent, child in itertools.pairwise(chain):
            if child.parent is None and parent is not child and not parent.descends_from(child):
                parent.attach(child)
        # The message's parent is its last reference (more authoritative than older links).
        node.unlink()
        if chain and chain[-1] is not node and not chain[-1].descends_from(node):
            chain[-1].attach(node)
    seen: set[int] = set()
    roots: list[_Node] = []
    for node in [*nodes, *by_id.values()]:
        if node.parent is None and id(node) not in seen:
            seen.add(id(node))
            roots.append(node)
    roots = _prune(roots, root=True)
    for node in roots:
        node.parent = None
    _sort(roots)
    roots = _gather_by_subject(roots)
    for root in roots:  # step 6: siblings by date; the roots keep step 4's order
        _sort(root.children)
    return roots


def render(roots: list[_Node], number: Callable[[int], int] = lambda key: key) -> str:
    """The THREAD response's data: ``(1 2 (3)(4))(5)``."""

    def subtree(node: _Node) -> str:
        parts: list[str] = []
        while True:
            if node.message is not None:
                parts.append(str(number(node.message.key)))
            if len(node.children) == 1:
                node = node.children[0]
                continue
            if node.children:
                parts.append("".join("(" + subtree(c) + ")" for c in node.children))
            return " ".join(parts)

    return "".join("(" + subtree(root) + ")" for root in roots)


__all__ = ["Threadable", "render", "thread"]
