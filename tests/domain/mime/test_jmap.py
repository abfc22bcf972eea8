"""JMAP views of the structure (RFC 8621 §4.1): header forms, body parts and lists, values."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.domain.mime import Part, jmap, scan


def _leaf(name: str, ctype: str, disposition: str | None = None) -> bytes:
    head = f"Content-Type: {ctype}\r\n"
    if disposition:
        head += f"Content-Disposition: {disposition}\r\n"
    return f"{head}X-Name: {name}\r\n\r\n{name}\r\n".encode()


def _multi(kind: str, boundary: str, *parts: bytes) -> bytes:
    b = boundary.encode()
    body = b"".join(b"--" + b + b"\r\n" + p for p in parts) + b"--" + b + b"--\r\n"
    return f"Content-Type: multipart/{kind}; boundary={boundary}\r\n\r\n".encode() + body


# The example structure of RFC 8621 §4.1.4, with its expected lists.
RFC_EXAMPLE = b"Subject: example\r\n" + _multi(
    "mixed",
    "b1",
    _leaf("A", "text/plain", "inline"),
    _multi(
        "mixed",
        "b2",
        _multi(
            "alternative",
            "b3",
            _multi(
                "mixed",
                "b4",
                _leaf("B", "text/plain", "inline"),
                _leaf("C", "image/jpeg", "inline"),
                _leaf("D", "text/plain", "inline"),
            ),
            _multi("related", "b5", _leaf("E", "text/html"), _leaf("F", "image/jpeg")),
        ),
        _leaf("G", "image/jpeg", "attachment"),
        _leaf("H", "application/x-excel"),
        b"Content-Type: message/rfc822\r\nX-Name: J\r\n\r\nSubject: J\r\n\r\nJ\r\n",
    ),
    _leaf("K", "text/plain", "inline"),
)


def _names(parts: list[Part], raw: bytes) -> list[str]:
    out = []
    for part in parts:
        fields = jmap.header_fields(raw, part)
        out.append(jmap.header_value(fields, jmap.HeaderProperty("X-Name", "Text")))
    return out


def test_rfc_8621_body_lists_example() -> None:
    structure = scan(RFC_EXAMPLE)
    text, html, attachments = jmap.body_lists(structure)
    assert _names(text, RFC_EXAMPLE) == ["A", "B", "C", "D", "K"]
    assert _names(html, RFC_EXAMPLE) == ["A", "E", "K"]
    assert _names(attachments, RFC_EXAMPLE) == ["C", "F", "G", "H", "J"]


def test_body_structure_part() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b'--x\r\nContent-Type: image/png; name="=?utf-8?q?b=C3=A9.png?="\r\nContent-ID: < img1@x >\r\n'
        b"Content-Transfer-Encoding: base64\r\nContent-Language: fr\r\nContent-Location: a.png\r\n\r\n"
        b"iVBORw0K\r\n--x--\r\n"
    )
    s = scan(raw)
    props = [*jmap.DEFAULT_BODY_PROPERTIES, "headers", "header:Content-ID:asText"]
    got = jmap.body_part(s.root, raw, lambda p: f"G1.{p.section}", props)
    assert got["partId"] is None
    assert got["blobId"] is None
    assert got["type"] == "multipart/mixed"
    text, image = got["subParts"]
    assert text == {
        "partId": "1",
        "blobId": "G1.1",
        "size": 2,
        "name": None,
        "type": "text/plain",
        "charset": "us-ascii",
        "disposition": None,
        "cid": None,
        "language": None,
        "location": None,
        "headers": [{"name": "Content-Type", "value": " text/plain"}],
        "header:Content-ID:asText": None,
    }
    assert image["name"] == "bé.png"
    assert image["size"] == 6
    assert image["cid"] == "img1@x"
    assert image["language"] == ["fr"]
    assert image["location"] == "a.png"
    assert image["charset"] is None
    assert image["header:Content-ID:asText"] == "< img1@x >"
    assert "subParts" not in image


def _form(value: bytes, form: jmap.HeaderForm) -> Any:
    return jmap.parse_form(value, form)


def test_header_forms() -> None:
    assert _form(b" =?UTF-8?Q?Hello_?=\r\n =?UTF-8?B?d29ybGQ=?= ", "Text") == "Hello world"
    assert _form(b" a\r\n b", "Raw") == " a\r\n b"
    addresses = (
        b' "James Smythe" <james@example.com>, Friends: jane@example.com,'
        b" =?UTF-8?Q?John_Sm=C3=AEth?= <john@example.com>;"
    )
    assert _form(addresses, "Addresses") == [
        {"name": "James Smythe", "email": "james@example.com"},
        {"name": None, "email": "jane@example.com"},
        {"name": "John Smîth", "email": "john@example.com"},
    ]
    assert _form(addresses, "GroupedAddresses") == [
        {"name": None, "addresses": [{"name": "James Smythe", "email": "james@example.com"}]},
        {
            "name": "Friends",
            "addresses": [
                {"name": None, "email": "jane@example.com"},
                {"name": "John Smîth", "email": "john@example.com"},
            ],
        },
    ]
    assert _form(b" joe@x.test (Joe Bloggs)", "Addresses") == [{"name": "Joe Bloggs", "email": "joe@x.test"}]
    assert _form(b" <a@b> <c@d>\r\n <e@f>", "MessageIds") == ["a@b", "c@d", "e@f"]
    assert _form(b" no ids", "MessageIds") is None
    assert _form(b" Tue, 1 Jul 2003 10:52:37 +0200", "Date") == "2003-07-01T10:52:37+02:00"
    assert _form(b" 1 Jul 2003 10:52:37 -0000", "Date") == "2003-07-01T10:52:37Z"
    assert _form(b" yesterday", "Date") is None
    assert _form(b" <mailto:x@y?subject=unsub>, <https://x.test/u\r\n nsub>", "URLs") == [
        "mailto:x@y?subject=unsub",
        "https://x.test/unsub",
    ]
    assert _form(b" none", "URLs") is None


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ("header:From", jmap.HeaderProperty("From")),
        ("header:from:asAddresses:all", jmap.HeaderProperty("from", "Addresses", True)),
        ("header:X-Thing:asURLs", jmap.HeaderProperty("X-Thing", "URLs")),
        ("header:Subject:asText", jmap.HeaderProperty("Subject", "Text")),
        ("header:Subject:asAddresses", None),
        ("header:Date:asMessageIds", None),
        ("header:From:asBogus", None),
        ("header:From:all:asText", None),
        ("header::asText", None),
        ("header:Fr om", None),
        ("From", None),
    ],
)
def test_header_properties(prop: str, expected: jmap.HeaderProperty | None) -> None:
    assert jmap.parse_header_property(prop) == expected


def test_last_instance_and_all() -> None:
    fields = [("Received", b" one"), ("Subject", b" s"), ("received", b" two")]
    assert jmap.header_value(fields, jmap.HeaderProperty("Received")) == " two"
    assert jmap.header_value(fields, jmap.HeaderProperty("RECEIVED", "Text", True)) == ["one", "two"]
    assert jmap.header_value(fields, jmap.HeaderProperty("X-No")) is None
    assert jmap.header_value(fields, jmap.HeaderProperty("X-No", "Raw", True)) == []


def test_body_values() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=v\r\n\r\n"
        b"--v\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"caf=E9 cr=E8me\r\nline\r\n"
        b"--v\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbad \xff here\r\n"
        b"--v\r\nContent-Type: text/plain; charset=x-unknown-set\r\n\r\nplain\r\n--v--\r\n"
    )
    s = scan(raw)
    one, two, three = s.root.parts
    assert jmap.body_value(one, raw) == {
        "value": "café crème\nline",
        "isEncodingProblem": False,
        "isTruncated": False,
    }
    assert jmap.body_value(one, raw, 4) == {"value": "caf", "isEncodingProblem": False, "isTruncated": True}
    assert jmap.body_value(one, raw, 5) == {"value": "café", "isEncodingProblem": False, "isTruncated": True}
    assert jmap.body_value(two, raw) == {
        "value": "bad \ufffd here",
        "isEncodingProblem": True,
        "isTruncated": False,
    }
    assert jmap.body_value(three, raw)["isEncodingProblem"] is True


def test_preview() -> None:
    assert jmap.preview("  Hello\r\n\r\n  world  ") == "Hello world"
    assert jmap.preview("<style>p{}</style><p>Hi&nbsp;there</p><script>x()</script>", html=True) == "Hi there"
    assert len(jmap.preview("x " * 1000)) == 256
