"""Result references (RFC 8620 §3.7): ``#argument`` values taken from earlier responses.

Bounded: a path has at most :data:`MAX_TOKENS` tokens and :data:`MAX_PATH` characters, and
a value is taken only from responses already made, so references cannot form a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailroom.domain.jsonpointer import InvalidPointer, unescape

MAX_PATH = 1024
MAX_TOKENS = 32
#: The most values one ``*`` path may gather (an ids list a /get then refuses by its limit).
MAX_GATHERED = 1_000_000


class InvalidReference(Exception):
    """``invalidResultReference`` (or ``invalidArguments``, for ``x`` and ``#x`` together)."""

    def __init__(self, message: str, kind: str = "invalidResultReference") -> None:
        super().__init__(message)
        self.kind = kind


def _tokens(path: str) -> list[str]:
    if len(path) > MAX_PATH:
        raise InvalidReference(f"the path is longer than {MAX_PATH} characters")
    if path == "":
        return []
    if not path.startswith("/"):
        raise InvalidReference("a path is a JSON Pointer: empty or starting with /")
    tokens = path[1:].split("/")
    if len(tokens) > MAX_TOKENS:
        raise InvalidReference(f"the path has more than {MAX_TOKENS} parts")
    try:
        return [unescape(t) for t in tokens]
    except InvalidPointer as e:
        raise InvalidReference(str(e)) from None


def _index(token: str, size: int) -> int:
    if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise InvalidReference(f"{token!r} is not an array index")
    n = int(token)
    if n >= size:
        raise InvalidReference(f"index {n} is beyond the array's {size} items")
    return n


def evaluate(value: Any, tokens: Sequence[str]) -> Any:
    """The JSON Pointer with the ``*`` extension applied to ``value``."""
    for pos, token in enumerate(tokens):
        if isinstance(value, list):
            if token == "*":
                rest = tokens[pos + 1 :]
                out: list[Any] = []
                for item in value:
                    found = evaluate(item, rest)
                    if isinstance(found, list):
                        out.extend(found)
                    else:
                        out.append(found)
                    if len(out) > MAX_GATHERED:
                        raise InvalidReference(f"the path gathers more than {MAX_GATHERED} values")
                return out
            value = value[_index(token, len(value))]
        elif isinstance(value, dict):
            if token not in value:
                raise InvalidReference(f"no property {token!r} at this point of the path")
            value = value[token]
        else:
            raise InvalidReference(f"the path goes past a value at {token!r}")
    return value


def resolve(args: dict[str, Any], responses: Sequence[list[Any]]) -> dict[str, Any]:
    """``args`` with every ``#name`` replaced by ``name`` and the value it refers to."""
    if not any(key.startswith("#") for key in args):
        return args
    out: dict[str, Any] = {}
    for key, value in args.items():
        if not key.startswith("#"):
            out[key] = value
            continue
        name = key[1:]
        if name in args:
            raise InvalidReference(f"both {name} and #{name} are given", "invalidArguments")
        if (
            not isinstance(value, dict)
            or set(value) != {"resultOf", "name", "path"}
            or not all(isinstance(value[k], str) for k in ("resultOf", "name", "path"))
        ):
            raise InvalidReference(f"#{name} is not a ResultReference (resultOf, name, path)")
        source = next((r for r in responses if r[2] == value["resultOf"]), None)
        if source is None:
            raise InvalidReference(f"no earlier method call has the id {value['resultOf']!r}")
        if source[0] != value["name"]:
            raise InvalidReference(f"call {value['resultOf']!r} answered {source[0]}, not {value['name']}")
        out[name] = evaluate(source[1], _tokens(value["path"]))
    return out
