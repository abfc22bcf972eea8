"""XML-RPC values ↔ Python values, with a hardened parser.

Reading: defusedxml's expat parser with DTDs forbidden (so no entity expansion and no
external entities, ever), a cap on element depth enforced while parsing (a deep document is
refused at the first element too many, not after building it), and a strict walk of the
``methodCall`` shape. Every problem is a :class:`ProtocolError`: -32700 for XML that does
not parse, -32600 for XML that is not an XML-RPC call.

Writing: results arrive from the runner as JSON-compatible data, so a datetime is an ISO
string and bytes are base64 text by then. The method's result schema says which strings
are really ``dateTime.iso8601`` (``format: date-time``) or ``base64``
(``contentEncoding: base64``); the encoder follows it, so XML-RPC clients get native types.

Types: int/i4 (32-bit), i8 (64-bit, extension), boolean, string (also a bare ``<value>``),
double, dateTime.iso8601 (without a zone it is UTC; sent as UTC with whole seconds, the
format every client reads), base64, struct, array, nil (extension, when allowed). Element
names may carry a namespace (``ex:nil``, ``ex:i8``); it is ignored.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.sax.saxutils import escape

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from mailroom.frontends.rpc.errors import INVALID_REQUEST, PARSE_ERROR, ProtocolError

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_INT = re.compile(r"^[+-]?[0-9]+$")
_DOUBLE = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_DATETIME = re.compile(
    r"^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:[.,](\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
#: Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ENTITIES = {"\r": "&#13;"}

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


class EncodeError(Exception):
    """A result XML-RPC cannot carry (nil when not allowed, an integer beyond i8, ...)."""


@dataclass(frozen=True, slots=True)
class MethodCall:
    name: str
    params: list[Any]


class _TooDeep(Exception):
    pass


class _DepthLimitedBuilder(TreeBuilder):
    """Builds the tree but stops at the first element nested deeper than ``max_depth``."""

    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self._depth = 0
        self._max = max_depth

    def start(self, tag: str, attrs: dict[str, str], /) -> Element:
        self._depth += 1
        if self._depth > self._max:
            raise _TooDeep
        return super().start(tag, attrs)

    def end(self, tag: str, /) -> Element:
        self._depth -= 1
        return super().end(tag)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(INVALID_REQUEST, message)


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _children(elem: Element, where: str) -> list[Element]:
    """Child elements, refusing stray text between them."""
    children = list(elem)
    if not _blank(elem.text) or any(not _blank(c.tail) for c in children):
        raise _invalid(f"unexpected text in <{where}>")
    return children


def parse_xml(body: bytes, max_depth: int) -> Element:
    """Parse untrusted XML: no DTD, no entities, bounded depth."""
    # methodCall/params/param/value, then three elements per array or struct level.
    parser = DefusedXMLParser(
        target=_DepthLimitedBuilder(4 + 3 * max_depth + 2),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(body)
        root: Element = parser.close()
    except _TooDeep:
        raise _invalid(f"values are nested deeper than {max_depth} levels") from None
    except DefusedXmlException:
        raise ProtocolError(PARSE_ERROR, "document type declarations and entities are not accepted") from None
    except ParseError as exc:
        raise ProtocolError(PARSE_ERROR, f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # unknown encodings and the like
        raise ProtocolError(PARSE_ERROR, f"unreadable XML: {exc}") from None
    return root


class Decoder:
    """Turns ``<value>`` elements into Python values."""

    def __init__(self, *, allow_none: bool, max_depth: int) -> None:
        self.allow_none = allow_none
        self.max_depth = max_depth

    def call(self, root: Element) -> MethodCall:
        if _local(root.tag) != "methodCall":
            raise _invalid(f"expected <methodCall>, found <{_local(root.tag)}>")
        name: str | None = None
        params: list[Any] = []
        seen_params = False
        for child in _children(root, "methodCall"):
            tag = _local(child.tag)
            if tag == "methodName" and name is None:
                if len(child):
                    raise _invalid("<methodName> holds text only")
                name = (child.text or "").strip()
            elif tag == "params" and not seen_params:
                seen_params = True
                for param in _children(child, "params"):
                    if _local(param.tag) != "param":
                        raise _invalid(f"unexpected <{_local(param.tag)}> in <params>")
                    values = _children(param, "param")
                    if len(values) != 1 or _local(values[0].tag) != "value":
                        raise _invalid("a <param> holds exactly one <value>")
                    params.append(self.value(values[0], 1))
            else:
                raise _invalid(f"unexpected <{tag}> in <methodCall>")
        if not name:
            raise _invalid("<methodName> is missing or empty")
        return MethodCall(name, params)

    def value(self, elem: Element, depth: int) -> Any:
        if depth > self.max_depth:
            raise _invalid(f"values are nested deeper than {self.max_depth} levels")
        children = list(elem)
        if not children:
            return elem.text or ""  # a bare <value> is a string
        if len(children) > 1 or not _blank(elem.text) or not _blank(children[0].tail):
            raise _invalid("a <value> holds one typed element")
        typed = children[0]
        kind = _local(typed.tag)
        if kind == "struct":
            return self._struct(typed, depth)
        if kind == "array":
            return self._array(typed, depth)
        if len(typed):
            raise _invalid(f"<{kind}> holds text only")
        return self.scalar(kind, typed.text or "")

    def scalar(self, kind: str, text: str) -> Any:
        if kind in ("int", "i4", "i8"):
            stripped = text.strip()
            if not _INT.match(stripped):
                raise _invalid(f"<{kind}> {stripped!r} is not an integer")
            number = int(stripped)
            low, high = INT64 if kind == "i8" else INT32
            if not low <= number <= high:
                raise _invalid(f"<{kind}> {number} is out of range")
            return number
        if kind == "boolean":
            stripped = text.strip()
            if stripped not in ("0", "1"):
                raise _invalid(f"<boolean> is 0 or 1, not {stripped!r}")
            return stripped == "1"
        if kind == "string":
            return text
        if kind == "double":
            stripped = text.strip()
            if not _DOUBLE.match(stripped):
                raise _invalid(f"<double> {stripped!r} is not a number")
            real = float(stripped)
            if not math.isfinite(real):
                raise _invalid("<double> is out of range")
            return real
        if kind == "dateTime.iso8601":
            return parse_datetime(text.strip())
        if kind == "base64":
            try:
                return base64.b64decode("".join(text.split()), validate=True)
            except (binascii.Error, ValueError):
                raise _invalid("<base64> is not valid base64") from None
        if kind == "nil":
            if not self.allow_none:
                raise _invalid("<nil/> is not enabled on this server")
            if not _blank(text):
                raise _invalid("<nil/> is empty")
            return None
        raise _invalid(f"unknown value type <{kind}>")

    def _struct(self, elem: Element, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for member in _children(elem, "struct"):
            if _local(member.tag) != "member":
                raise _invalid(f"unexpected <{_local(member.tag)}> in <struct>")
            parts = {_local(p.tag): p for p in _children(member, "member")}
            if len(member) != 2 or set(parts) != {"name", "value"}:
                raise _invalid("a <member> holds one <name> and one <value>")
            name_elem = parts["name"]
            if len(name_elem):
                raise _invalid("<name> holds text only")
            key = name_elem.text or ""
            if key in out:
                raise _invalid(f"member {key!r} appears twice in a <struct>")
            out[key] = self.value(parts["value"], depth + 1)
        return out

    def _array(self, elem: Element, depth: int) -> list[Any]:
        data = _children(elem, "array")
        if len(data) != 1 or _local(data[0].tag) != "data":
            raise _invalid("an <array> holds one <data>")
        out: list[Any] = []
        for item in _children(data[0], "data"):
            if _local(item.tag) != "value":
                raise _invalid(f"unexpected <{_local(item.tag)}> in <data>")
            out.append(self.value(item, depth + 1))
        return out


def parse_datetime(text: str) -> datetime:
    """``19980717T14:08:55``, ``1998-07-17T14:08:55Z``, ...; no zone means UTC."""
    m = _DATETIME.match(text)
    if not m:
        raise _invalid(f"<dateTime.iso8601> {text!r} is not an ISO 8601 date and time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7), m.group(8)
    micro = int((fraction or "0").ljust(6, "0")[:6])
    tz: timezone = UTC
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise _invalid(f"<dateTime.iso8601> {text!r}: {exc}") from None


def format_datetime(value: datetime) -> str:
    """UTC, whole seconds, ``YYYYMMDDTHH:MM:SS``: the one format every XML-RPC client reads."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}{value.month:02d}{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )


# -- schemas --------------------------------------------------------------------------------


class Schema:
    """A JSON schema with its ``$defs``, navigated alongside a value."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.defs: Mapping[str, Any] = root.get("$defs", {})
        self.root = root

    def resolve(self, node: Mapping[str, Any] | None) -> Mapping[str, Any]:
        seen = 0
        while node is not None and "$ref" in node and seen < 32:
            name = str(node["$ref"]).rpartition("/")[2]
            node = self.defs.get(name, {})
            seen += 1
        return node or {}

    def alternatives(self, node: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
        """The plain schemas a value may match (``anyOf``/``oneOf`` flattened, refs resolved)."""
        node = self.resolve(node)
        branches = node.get("anyOf") or node.get("oneOf")
        if not branches:
            return [node]
        out: list[Mapping[str, Any]] = []
        for branch in branches:
            out.extend(self.alternatives(branch))
        return out

    def string_kind(self, node: Mapping[str, Any] | None) -> str:
        """``dateTime.iso8601``, ``base64``, ``base64url`` or ``string`` for a string value."""
        kinds = {_string_kind(a) for a in self.alternatives(node) if a.get("type") in ("string", None)}
        kinds.discard("")
        return kinds.pop() if len(kinds) == 1 else "string"

    def branch(self, node: Mapping[str, Any] | None, json_type: str) -> Mapping[str, Any]:
        for alt in self.alternatives(node):
            if alt.get("type") == json_type:
                return alt
        return {}

    def type_name(self, node: Mapping[str, Any] | None) -> str:
        """The XML-RPC type name of a schema (introspection signatures)."""
        alts = self.alternatives(node)
        non_null = [a for a in alts if a.get("type") != "null"]
        if not non_null:
            return "nil" if alts and alts[0].get("type") == "null" else "mixed"
        names = {_type_name(a) for a in non_null}
        return names.pop() if len(names) == 1 else "mixed"


def _string_kind(node: Mapping[str, Any]) -> str:
    if node.get("type") != "string":
        return ""
    if node.get("format") == "date-time":
        return "dateTime.iso8601"
    if node.get("contentEncoding") == "base64" or node.get("format") in ("base64", "byte"):
        return "base64"
    if node.get("format") == "base64url":
        return "base64url"
    return "string"


def _type_name(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if kind == "string":
        return "base64" if _string_kind(node).startswith("base64") else _string_kind(node)
    return {
        "integer": "int",
        "boolean": "boolean",
        "number": "double",
        "object": "struct",
        "array": "array",
    }.get(str(kind), "mixed")


# -- writing --------------------------------------------------------------------------------


def _text(value: str) -> str:
    if _NOT_XML.search(value):
        raise EncodeError("a string in the result holds control characters XML 1.0 cannot carry")
    return escape(value, _ENTITIES)


class Encoder:
    """Writes Python/JSON values as ``<value>`` elements, guided by a result schema."""

    def __init__(self, *, allow_none: bool) -> None:
        self.allow_none = allow_none

    def value(self, value: Any, schema: Schema | None = None, node: Mapping[str, Any] | None = None) -> str:
        out: list[str] = []
        self._write(value, schema, node if node is not None else (schema.root if schema else None), out)
        return "".join(out)

    def _write(
        self, value: Any, schema: Schema | None, node: Mapping[str, Any] | None, out: list[str]
    ) -> None:
        if value is None:
            if not self.allow_none:
                raise EncodeError("the result holds a null (nil), which this server's XML-RPC does not send")
            out.append("<value><nil/></value>")
        elif isinstance(value, bool):
            out.append(f"<value><boolean>{int(value)}</boolean></value>")
        elif isinstance(value, int):
            if INT32[0] <= value <= INT32[1]:
                out.append(f"<value><int>{value}</int></value>")
            elif INT64[0] <= value <= INT64[1]:
                out.append(f"<value><i8>{value}</i8></value>")
            else:
                raise EncodeError("the result holds an integer beyond 64 bits")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise EncodeError("the result holds a number XML-RPC cannot carry (NaN or infinity)")
            out.append(f"<value><double>{value!r}</double></value>")
        elif isinstance(value, str):
            self._string(value, schema.string_kind(node) if schema else "string", out)
        elif isinstance(value, (bytes, bytearray)):
            out.append(f"<value><base64>{base64.b64encode(value).decode('ascii')}</base64></value>")
        elif isinstance(value, datetime):
            out.append(f"<value><dateTime.iso8601>{format_datetime(value)}</dateTime.iso8601></value>")
        elif isinstance(value, Mapping):
            self._struct(value, schema, node, out)
        elif isinstance(value, (list, tuple)):
            self._array(value, schema, node, out)
        else:
            raise EncodeError(f"the result holds a {type(value).__name__}, which XML-RPC cannot carry")

    def _string(self, value: str, kind: str, out: list[str]) -> None:
        if kind == "dateTime.iso8601":
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                out.append(f"<value><dateTime.iso8601>{format_datetime(when)}</dateTime.iso8601></value>")
                return
        elif kind in ("base64", "base64url"):
            try:
                raw = base64.b64decode(value, altchars=b"-_" if kind == "base64url" else None, validate=True)
            except (binascii.Error, ValueError):
                pass
            else:
                out.append(f"<value><base64>{base64.b64encode(raw).decode('ascii')}</base64></value>")
                return
        out.append(f"<value><string>{_text(value)}</string></value>")

    def _struct(
        self, value: Mapping[Any, Any], schema: Schema | None, node: Mapping[str, Any] | None, out: list[str]
    ) -> None:
        obj = schema.branch(node, "object") if schema else {}
        properties: Mapping[str, Any] = obj.get("properties", {})
        extra = obj.get("additionalProperties")
        extra_node = extra if isinstance(extra, Mapping) else None
        out.append("<value><struct>")
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodeError("struct member names are strings")
            if item is None and not self.allow_none:
                continue  # an absent member is how XML-RPC without nil says "no value"
            out.append(f"<member><name>{_text(key)}</name>")
            self._write(item, schema, properties.get(key, extra_node), out)
            out.append("</member>")
        out.append("</struct></value>")

    def _array(
        self,
        value: list[Any] | tuple[Any, ...],
        schema: Schema | None,
        node: Mapping[str, Any] | None,
        out: list[str],
    ) -> None:
        arr = schema.branch(node, "array") if schema else {}
        prefix: list[Any] = arr.get("prefixItems", [])
        items = arr.get("items")
        items_node = items if isinstance(items, Mapping) else None
        out.append("<value><array><data>")
        for index, item in enumerate(value):
            self._write(item, schema, prefix[index] if index < len(prefix) else items_node, out)
        out.append("</data></array></value>")


def response(value_xml: str) -> bytes:
    return (
        f"{XML_DECLARATION}<methodResponse><params><param>{value_xml}</param></params></methodResponse>\n"
    ).encode()


def fault_value(code: int, message: str) -> str:
    return (
        "<value><struct>"
        f"<member><name>faultCode</name><value><int>{code}</int></value></member>"
        f"<member><name>faultString</name><value><string>{_safe_text(message)}</string></value></member>"
        "</struct></value>"
    )


def fault(code: int, message: str) -> bytes:
    body = f"<methodResponse><fault>{fault_value(code, message)}</fault></methodResponse>\n"
    return (XML_DECLARATION + body).encode()


def _safe_text(value: str) -> str:
    """Fault strings may quote client input: replace what XML cannot carry instead of failing."""
    return escape(_NOT_XML.sub("\ufffd", value), _ENTITIES)
