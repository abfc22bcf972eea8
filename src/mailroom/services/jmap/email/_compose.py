"""Building an RFC 5322 message from a JMAP Email create object (RFC 8621 §4.6).

Supported: the header convenience properties (from, sender, to, cc, bcc, replyTo, subject,
sentAt, messageId, inReplyTo, references), ``header:Name[:asForm][:all]`` values in every
form (on the Email and on its parts), and the body either as ``bodyStructure`` or as
``textBody`` / ``htmlBody`` / ``attachments``; text parts take their content from
``bodyValues`` by ``partId`` (kept exactly: no line end is added; ``us-ascii`` when the text
is ASCII, else ``utf-8``), other parts from a blob (``blobId``), which the caller fetched
beforehand (``blobs``). The rules of RFC 8621 §4.6 are checked first (`_check`): no
``headers`` property, no ``Content-*`` field on the Email, no ``Content-Transfer-Encoding``
on a part, no header field given twice (``from`` and ``header:From``), no ``charset`` or
``size`` beside a ``partId``, no truncated or undecodable bodyValue, at most one part in
``textBody`` and in ``htmlBody``, ``bodyStructure`` alone.
"""

from __future__ import annotations

import quopri
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

from mailroom.domain.mime.jmap import HeaderProperty, parse_header_property


class ComposeError(ValueError):
    """A create object this server cannot make a message of: (SetError properties, why)."""

    def __init__(self, properties: list[str], description: str) -> None:
        super().__init__(description)
        self.properties = properties
        self.description = description


_ADDRESS_HEADERS = {
    "from": "From",
    "sender": "Sender",
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
    "replyTo": "Reply-To",
}
_ID_HEADERS = {"messageId": "Message-ID", "inReplyTo": "In-Reply-To", "references": "References"}


def _addresses(prop: str, value: Any) -> list[Address]:
    if not isinstance(value, list):
        raise ComposeError([prop], f"{prop} must be a list of EmailAddress")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str) or "@" not in item["email"]:
            raise ComposeError([prop], f"{prop} holds an invalid EmailAddress")
        local, _, domain = item["email"].rpartition("@")
        try:
            out.append(Address(display_name=str(item.get("name") or ""), username=local, domain=domain))
        except (ValueError, TypeError) as exc:
            raise ComposeError([prop], f"{prop}: {exc}") from None
    return out


#: The Email properties that stand for a header field (RFC 8621 §4.1.3, §4.1.4).
_PROPERTY_FIELDS = {
    **{prop: name.lower() for prop, name in _ADDRESS_HEADERS.items()},
    **{prop: name.lower() for prop, name in _ID_HEADERS.items()},
    "subject": "subject",
    "sentAt": "date",
}
#: The EmailBodyPart properties that stand for a header field.
_PART_FIELDS = {
    "type": "content-type",
    "charset": "content-type",
    "name": "content-disposition",
    "disposition": "content-disposition",
    "cid": "content-id",
    "language": "content-language",
    "location": "content-location",
}


def _header(prop: str, where: str) -> HeaderProperty:
    parsed = parse_header_property(prop)
    if parsed is None:
        raise ComposeError([where], f"{prop}: not a header property this field can be given as")
    return parsed


def _check_fields(obj: dict[str, Any], fields: dict[str, str], prefix: str) -> None:
    """No header field twice in one object (``from`` and ``header:From``, or two forms)."""
    seen: dict[str, str] = {}
    for prop in obj:
        if prop.startswith("header:"):
            key = _header(prop, prefix + prop).key
        elif prop in fields and fields is not _PART_FIELDS:  # type, charset... share fields
            key = fields[prop]
        else:
            continue
        if key in seen:
            raise ComposeError([prefix + prop], f"{seen[key]} and {prop} are the same header field")
        seen[key] = prop


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict):
        raise ComposeError([where], f"{where} must be an EmailBodyPart")
    prefix = where + "/"
    if "headers" in part:
        raise ComposeError([prefix + "headers"], "give each header field as a header: property")
    for prop in part:
        if prop.lower() == "header:content-transfer-encoding" or prop.lower().startswith(
            "header:content-transfer-encoding:"
        ):
            raise ComposeError([prefix + prop], "the server chooses the Content-Transfer-Encoding")
    _check_fields(part, _PART_FIELDS, prefix)
    described = {_PART_FIELDS[p] for p in part if p in _PART_FIELDS}
    for prop in part:
        if prop.startswith("header:") and _header(prop, prefix + prop).key in described:
            raise ComposeError([prefix + prop], f"{prop} is also given by a body part property")
    if "partId" in part:
        for prop in ("charset", "size"):
            if prop in part:
                raise ComposeError([prefix + prop], f"{prop} cannot be given with a partId")
    subs = part.get("subParts")
    if isinstance(subs, list):
        for n, sub in enumerate(subs):
            _check_part(sub, f"{where}/subParts/{n}")


def _check(create: dict[str, Any], values: dict[str, Any]) -> None:
    """RFC 8621 §4.6's rules on a create object (ComposeError names the properties)."""
    structural: list[str] = [k for k in ("textBody", "htmlBody", "attachments") if k in create]
    if "bodyStructure" in create and structural:
        raise ComposeError(structural, "give bodyStructure or textBody/htmlBody/attachments, not both")
    if "headers" in create:
        raise ComposeError(["headers"], "give each header field as a header: property")
    for prop in create:
        if prop.startswith("header:") and prop[len("header:") :].lower().startswith("content-"):
            raise ComposeError([prop], "Content-* header fields belong on body parts")
    _check_fields(create, _PROPERTY_FIELDS, "")
    for key in ("textBody", "htmlBody"):
        items = create.get(key)
        if items is not None and (not isinstance(items, list) or len(items) > 1):
            raise ComposeError([key], f"{key} holds at most one part")
    if "bodyStructure" in create:
        _check_part(create["bodyStructure"], "bodyStructure")
    for key in ("textBody", "htmlBody", "attachments"):
        items = create.get(key)
        if isinstance(items, list):
            for n, item in enumerate(items):
                _check_part(item, f"{key}/{n}")
    bad = [
        f"bodyValues/{part_id}/{flag}"
        for part_id, value in values.items()
        if isinstance(value, dict)
        for flag in ("isTruncated", "isEncodingProblem")
        if value.get(flag)
    ]
    if bad:
        raise ComposeError(bad, "a bodyValue cannot be truncated or have an encoding problem")


def _address_text(address: Address) -> str:
    """A mailbox as Cyrus (Fastmail) writes it: an ASCII display name always quoted."""
    name = address.display_name
    if not name or not name.isascii():
        return str(address)
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address.addr_spec}>'


def _form_value(prop: HeaderProperty, value: Any, where: str) -> str:
    """One header field value of ``prop``'s form as it goes in the message."""
    form = prop.form
    if form in ("Raw", "Text"):
        if not isinstance(value, str):
            raise ComposeError([where], f"{where} must be a string")
        if form == "Raw":
            return value.strip()
        return str(value).strip()
    if form == "Addresses":
        return ", ".join(_address_text(a) for a in _addresses(where, value))
    if form == "GroupedAddresses":
        if not isinstance(value, list):
            raise ComposeError([where], f"{where} must be a list of EmailAddressGroup")
        out = []
        for group in value:
            if not isinstance(group, dict):
                raise ComposeError([where], f"{where} holds an invalid EmailAddressGroup")
            members = ", ".join(_address_text(a) for a in _addresses(where, group.get("addresses") or []))
            name = group.get("name")
            out.append(f"{name}: {members};" if name is not None else members)
        return ", ".join(x for x in out if x)
    if form == "MessageIds":
        if not isinstance(value, list) or not all(
            isinstance(i, str) and i and not set("<> \t\r\n") & set(i) for i in value
        ):
            raise ComposeError([where], f"{where} must be a list of message ids")
        return " ".join(f"<{i}>" for i in value)
    if form == "Date":
        try:
            return format_datetime(datetime.fromisoformat(str(value)))
        except (TypeError, ValueError):
            raise ComposeError([where], f"{where} is not a date-time") from None
    if not isinstance(value, list) or not all(isinstance(u, str) and u for u in value):  # URLs
        raise ComposeError([where], f"{where} must be a list of URLs")
    return ", ".join(f"<{u}>" for u in value)


def _set_headers(msg: EmailMessage, obj: dict[str, Any], prefix: str) -> None:
    """Write ``obj``'s ``header:`` properties into ``msg`` (each replaces that field)."""
    for prop, value in obj.items():
        if not prop.startswith("header:"):
            continue
        where = prefix + prop
        parsed = _header(prop, where)
        items = value if parsed.all else [value]
        if parsed.all and not isinstance(value, list):
            raise ComposeError([where], f"{where} must be a list")
        del msg[parsed.name]
        for item in items:
            msg[parsed.name] = _form_value(parsed, item, where)


def build_message(create: dict[str, Any], blobs: dict[str, bytes], hostname: str) -> bytes:
    """The message for ``create``; ``blobs`` maps the blobIds it names to their bytes."""
    values = create.get("bodyValues") or {}
    if not isinstance(values, dict):
        raise ComposeError(["bodyValues"], "bodyValues must be an object")
    _check(create, values)
    if "bodyStructure" in create:
        msg = _part(create["bodyStructure"], values, blobs, "bodyStructure")
    else:
        msg = _simple_body(create, values, blobs)
    for prop, name in _ADDRESS_HEADERS.items():
        if create.get(prop) is not None:
            del msg[name]
            msg[name] = _addresses(prop, create[prop])
    if create.get("subject") is not None:
        del msg["Subject"]
        msg["Subject"] = str(create["subject"])
    sent = create.get("sentAt")
    if sent is not None or "Date" not in msg:  # else a one-part body's header:Date named it
        del msg["Date"]
        try:
            msg["Date"] = (
                format_datetime(datetime.fromisoformat(sent))
                if sent
                else format_datetime(datetime.now().astimezone())
            )
        except (TypeError, ValueError):
            raise ComposeError(["sentAt"], "sentAt is not a date-time") from None
    for prop, name in _ID_HEADERS.items():
        ids = create.get(prop)
        if ids is None:
            continue
        if not isinstance(ids, list) or not all(
            isinstance(i, str) and i and "<" not in i and ">" not in i for i in ids
        ):
            raise ComposeError([prop], f"{prop} must be a list of message ids")
        del msg[name]
        msg[name] = " ".join(f"<{i}>" for i in ids)
    _set_headers(msg, create, "")
    if "Message-ID" not in msg:
        msg["Message-ID"] = make_msgid(domain=hostname)
    if "MIME-Version" not in msg:
        msg["MIME-Version"] = "1.0"
    return msg.as_bytes(policy=SMTP)


def _text(part: dict[str, Any], values: dict[str, Any], where: str) -> str:
    part_id = part.get("partId")
    value = values.get(part_id) if isinstance(part_id, str) else None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        raise ComposeError([where], f"{where}: partId {part_id!r} has no bodyValue")
    if value.get("isTruncated") or value.get("isEncodingProblem"):
        raise ComposeError(["bodyValues"], "a bodyValue cannot be truncated or have an encoding problem")
    return str(value["value"])


def _part(part: Any, values: dict[str, Any], blobs: dict[str, bytes], where: str) -> EmailMessage:
    if not isinstance(part, dict):
        raise ComposeError([where], f"{where} must be an EmailBodyPart")
    media = str(part.get("type") or "text/plain").lower()
    msg = EmailMessage()
    if media.startswith("multipart/"):
        subs = part.get("subParts")
        if not isinstance(subs, list) or not subs:
            raise ComposeError([where], f"{where}: a multipart needs subParts")
        msg.make_mixed()
        msg.set_type(media)
        for n, sub in enumerate(subs):
            msg.attach(_part(sub, values, blobs, f"{where}/subParts/{n}"))
        _set_headers(msg, part, where + "/")
        return msg
    maintype, _, subtype = media.partition("/")
    if "partId" in part and "blobId" not in part:
        if maintype == "text":
            _set_text(msg, _text(part, values, where), subtype or "plain")
        else:  # a bodyValue of another type: its UTF-8 octets, base64
            content = _text(part, values, where).encode("utf-8")
            msg.set_content(content, maintype=maintype or "application", subtype=subtype or "octet-stream")
    elif isinstance(part.get("blobId"), str):
        data = blobs.get(part["blobId"])
        if data is None:
            raise ComposeError([where], f"blob {part['blobId']} not found")
        msg.set_content(data, maintype=maintype or "application", subtype=subtype or "octet-stream")
    else:
        raise ComposeError([where], f"{where}: a part needs partId or blobId")
    disposition = part.get("disposition")
    name = part.get("name")
    if disposition or name:
        del msg["Content-Disposition"]
        msg["Content-Disposition"] = str(disposition or "attachment")
        if name:
            msg.set_param("filename", str(name), header="Content-Disposition")
    if part.get("cid"):
        msg["Content-ID"] = f"<{part['cid']}>"
    language = part.get("language")
    if language is not None:
        if not isinstance(language, list) or not all(isinstance(x, str) and x for x in language):
            raise ComposeError([f"{where}/language"], "language must be a list of language tags")
        if language:
            msg["Content-Language"] = ", ".join(language)
    if part.get("location") is not None:
        msg["Content-Location"] = str(part["location"])
    _set_headers(msg, part, where + "/")
    return msg


def _set_text(msg: EmailMessage, text: str, subtype: str) -> None:
    """``text`` as the part's content exactly (set_content would add a line end):
    7bit us-ascii when it is ASCII with short lines, else quoted-printable utf-8."""
    ascii_ = text.isascii() and all(len(line) <= 998 for line in text.splitlines())
    charset = "us-ascii" if ascii_ else "utf-8"
    msg["Content-Type"] = f"text/{subtype}"
    msg.set_param("charset", charset)
    if ascii_:
        msg["Content-Transfer-Encoding"] = "7bit"
        msg.set_payload(text.replace("\r\n", "\n").replace("\n", "\r\n"))
    else:
        msg["Content-Transfer-Encoding"] = "quoted-printable"
        msg.set_payload(quopri.encodestring(text.encode("utf-8")).decode("ascii"))


def _simple_body(create: dict[str, Any], values: dict[str, Any], blobs: dict[str, bytes]) -> EmailMessage:
    text = create.get("textBody") or []
    html = create.get("htmlBody") or []
    attachments = create.get("attachments") or []
    if not all(isinstance(x, list) for x in (text, html, attachments)) or len(text) > 1 or len(html) > 1:
        raise ComposeError(["textBody", "htmlBody"], "textBody and htmlBody hold at most one part each")
    bodies = [_part(p, values, blobs, "textBody") for p in text] + [
        _part(p, values, blobs, "htmlBody") for p in html
    ]
    if len(bodies) == 2:
        body = EmailMessage()
        body.make_alternative()
        for b in bodies:
            body.attach(b)
    elif bodies:
        body = bodies[0]
    else:
        body = EmailMessage()
        body.set_content("")
    if not attachments:
        return body
    outer = EmailMessage()
    outer.make_mixed()
    outer.attach(body)
    for item in attachments:
        outer.attach(
            _part(
                {"disposition": "attachment", **item} if isinstance(item, dict) else item,
                values,
                blobs,
                "attachments",
            )
        )
    return outer
