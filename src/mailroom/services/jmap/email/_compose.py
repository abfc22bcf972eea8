"""Building an RFC 5322 message from a JMAP Email create object (RFC 8621 §4.6).

Supported: the header convenience properties (from, sender, to, cc, bcc, replyTo, subject,
sentAt, messageId, inReplyTo, references), ``header:Name`` / ``header:Name:asText`` and
``:asRaw`` values, and the body either as ``bodyStructure`` or as ``textBody`` / ``htmlBody``
/ ``attachments``; text parts take their content from ``bodyValues`` by ``partId``, other
parts from a blob (``blobId``), which the caller fetched beforehand (``blobs``).
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any


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


def build_message(create: dict[str, Any], blobs: dict[str, bytes], hostname: str) -> bytes:
    """The message for ``create``; ``blobs`` maps the blobIds it names to their bytes."""
    values = create.get("bodyValues") or {}
    if not isinstance(values, dict):
        raise ComposeError(["bodyValues"], "bodyValues must be an object")
    if "bodyStructure" in create and any(k in create for k in ("textBody", "htmlBody", "attachments")):
        raise ComposeError(["bodyStructure"], "give bodyStructure or textBody/htmlBody/attachments, not both")
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
    if create.get("messageId") is None:
        del msg["Message-ID"]
        msg["Message-ID"] = make_msgid(domain=hostname)
    for prop, value in create.items():
        if prop.startswith("header:"):
            name, _, form = prop[len("header:") :].partition(":")
            if form not in ("", "asRaw", "asText") or not isinstance(value, str):
                raise ComposeError([prop], f"{prop}: only Raw and Text header values can be set")
            msg[name] = value.strip()
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
        for sub in subs:
            msg.attach(_part(sub, values, blobs, where))
        return msg
    maintype, _, subtype = media.partition("/")
    if "partId" in part and "blobId" not in part:
        if maintype != "text":
            raise ComposeError([where], f"{where}: only text parts take a bodyValue")
        msg.set_content(_text(part, values, where), subtype=subtype or "plain")
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
    return msg


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
