"""The key server's HTTP faces: HKP (``/pks/lookup``) and Web Key Directory (``/.well-known/openpgpkey``).

Both speak their own formats over the public methods ``mail.keyserver.search`` and
``mail.keyserver.wkd`` (the runner still validates, limits and accounts every call):

- HKP (draft-shaw-openpgp-hkp): ``GET /pks/lookup?op=get|index|vindex&search=...``, with
  ``options=mr`` the machine-readable index gpg parses. ``search`` is a fingerprint or a long
  or short key id (``0x``-prefixed hex), or an address (``alice@example.org``, also inside
  ``<...>``): addresses are matched exactly, never as a substring, so the server cannot be
  used to list who has a key. ``op=get`` answers the armored keys (``application/pgp-keys``).
- WKD (draft-koch-openpgp-webkey-service): ``/.well-known/openpgpkey/hu/<hash>?l=<local>``
  for the domain of the request's host, and the advanced form
  ``/.well-known/openpgpkey/<domain>/hu/<hash>``; the binary (unarmored) keys; the
  ``policy`` file of both forms (empty: no options).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from mailroom.auth.principal import anonymous
from mailroom.domain.pgp import MAX_KEY_CHARS
from mailroom.errors import InvalidParams, MailroomError, RateLimited
from mailroom.frontends.http_auth import client_ip
from mailroom.registry import CallInfo

if TYPE_CHECKING:
    from mailroom.bootstrap import Mailroom

_HEX = re.compile(r"^(?:0[xX])?([0-9A-Fa-f]+)$")
_ADDRESS = re.compile(r"[^\s<>]+@[^\s<>]+")
_BRACKETED = re.compile(r"<([^\s<>]+@[^\s<>]+)>")
_NOT_FOUND = PlainTextResponse("No keys found\n", status_code=404)


#: Largest ``POST /pks/add`` body: a key of ``MAX_KEY_CHARS`` percent-encoded (3 bytes a
#: character at worst) and the field name.
MAX_UPLOAD_BYTES = 3 * MAX_KEY_CHARS + 64
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def upload_keytext(body: bytes) -> str | None:
    """HKP's form-encoded upload body → the ``keytext`` field (None: not such a body)."""
    try:
        text = body.decode("ascii")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    values = fields.get("keytext")
    if values is None or len(values) != 1 or not values[0].strip():
        return None
    return values[0]


def _text(text: str, status: int, headers: dict[str, str] | None = None) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status, headers=headers)


def _error_text(error: MailroomError) -> Response:
    detail = error.message
    if isinstance(error, InvalidParams) and error.errors:
        detail = "; ".join(e.message for e in error.errors)
    headers = dict(error.headers)
    if isinstance(error, RateLimited):
        headers.setdefault("Retry-After", str(error.retry_after))
    return _text(f"{detail}\n", error.status, headers)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f'<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto"><h1>{escape(title)}</h1>'
        f"{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


def _search_params(search: str) -> dict[str, str] | None:
    """HKP's ``search`` as the method's parameters (None: a kind of search we do not do)."""
    text = search.strip().replace(" ", "")
    hexa = _HEX.match(text)
    if hexa is not None and (text[:2].lower() == "0x" or len(hexa.group(1)) in (40, 64)):
        digits = hexa.group(1).upper()
        if len(digits) in (40, 64):
            return {"fingerprint": digits}
        if len(digits) in (8, 16):
            return {"key_id": digits}
        return None
    text = search.strip()
    if _ADDRESS.fullmatch(text):
        return {"email": text}
    bracketed = _BRACKETED.search(text)  # "Alice <alice@example.org>"
    return {"email": bracketed.group(1)} if bracketed else None


def _epoch(value: Any) -> str:
    if value is None:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return str(int(moment.timestamp()))


def _mr_index(keys: list[dict[str, Any]]) -> str:
    """The machine-readable index (draft-shaw-openpgp-hkp §5.2)."""
    lines = [f"info:1:{len(keys)}"]
    for key in keys:
        created, expires = _epoch(key["key_created_at"]), _epoch(key["expires_at"])
        lines.append(f"pub:{key['fingerprint']}:{key['algorithm_id']}:{key['bits']}:{created}:{expires}:")
        for uid in key["user_ids"]:
            lines.append(f"uid:{quote(uid, safe=' @<>()._-+!')}:{created}::")
    return "\n".join(lines) + "\n"


def dearmor(armored: str) -> bytes:
    """The binary packets of an ASCII-armored block (headers and checksum dropped)."""
    lines = armored.strip().splitlines()
    body: list[str] = []
    in_body = False
    for line in lines[1:]:
        if line.startswith("-----END"):
            break
        if not in_body:
            in_body = line.strip() == ""
            continue
        if line.startswith("="):
            continue  # the CRC-24 checksum line
        body.append(line.strip())
    return base64.b64decode("".join(body), validate=True)


def keyserver_routes(mailroom: Mailroom) -> list[Route]:
    async def call(request: Request, name: str, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        ip = client_ip(request)
        info = CallInfo(protocol="hkp" if name.endswith("search") else "wkd", client_ip=ip)
        try:
            result: list[dict[str, Any]] = await mailroom.runner.invoke(name, params, anonymous(ip), info)
        except InvalidParams:
            return None
        return result

    async def lookup(request: Request) -> Response:
        q = request.query_params
        op = q.get("op", "get").lower()
        if op not in ("get", "index", "vindex"):
            return PlainTextResponse(
                f"op={op[:20]} is not supported: use get, index or vindex\n", status_code=501
            )
        params = _search_params(q.get("search", ""))
        if params is None:
            return PlainTextResponse(
                "search by fingerprint, key id (0x...) or exact address\n", status_code=400
            )
        try:
            keys = await call(request, "mail.keyserver.search", params)
        except MailroomError as error:
            return PlainTextResponse(f"{error.message}\n", status_code=error.status)
        if not keys:
            return _NOT_FOUND
        if op == "get":
            return Response(
                "\n".join(k["armored"].strip() for k in keys) + "\n", media_type="application/pgp-keys"
            )
        return PlainTextResponse(_mr_index(keys))

    async def invoke(request: Request, name: str, params: dict[str, Any]) -> dict[str, Any]:
        ip = client_ip(request)
        info = CallInfo(protocol="hkp", client_ip=ip)
        result: dict[str, Any] = await mailroom.runner.invoke(name, params, anonymous(ip), info)
        return result

    async def add(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_UPLOAD_BYTES):
            return _text(f"an upload is at most {MAX_UPLOAD_BYTES} bytes\n", 413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                return _text(f"an upload is at most {MAX_UPLOAD_BYTES} bytes\n", 413)
        keytext = upload_keytext(bytes(body))
        if keytext is None:
            return _text("send one form field keytext=<ASCII-armored public key>\n", 400)
        try:
            result = await invoke(request, "mail.keyserver.add", {"keytext": keytext})
        except MailroomError as error:
            return _error_text(error)
        lines = [f"Key {result['fingerprint']} received."]
        if result["listed"]:
            lines.append("Listed (user-sourced) for: " + ", ".join(result["listed"]))
        if result["pending"]:
            lines.append(
                "Published for these addresses once their owner confirms the mailed link: "
                + ", ".join(result["pending"])
            )
        if result["published"]:
            lines.append("Already published by the owner for: " + ", ".join(result["published"]))
        return _text("\n".join(lines) + "\n", 200)

    async def confirm_page(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method == "POST":
                key = await invoke(request, "mail.keyserver.confirm", {"token": token})
                return _page(
                    "Key published",
                    f"<p>The key <code>{escape(key['fingerprint'])}</code> is now published for "
                    f"<strong>{escape(key['email'])}</strong>.</p>",
                )
            pending = await invoke(request, "mail.keyserver.confirmation", {"token": token})
        except MailroomError as error:
            return _page("Key not published", f"<p>{escape(error.message)}.</p>", error.status)
        uids = "".join(f"<li>{escape(uid)}</li>" for uid in pending["user_ids"])
        return _page(
            "Publish your key?",
            f"<p>Publish the OpenPGP key <code>{escape(pending['fingerprint'])}</code> for "
            f"<strong>{escape(pending['email'])}</strong>?</p><ul>{uids}</ul>"
            '<form method="post"><button type="submit">Publish this key</button></form>'
            "<p>If it is not your key, close this page: nothing is published without the button.</p>",
        )

    async def wkd(request: Request) -> Response:
        domain = request.path_params.get("domain") or (request.url.hostname or "")
        domain = domain.removeprefix("openpgpkey.") if "domain" not in request.path_params else domain
        params: dict[str, Any] = {"domain": domain, "local_hash": request.path_params["hash"]}
        if "l" in request.query_params:
            params["local_part"] = request.query_params["l"]
        try:
            keys = await call(request, "mail.keyserver.wkd", params)
        except MailroomError as error:
            return PlainTextResponse(f"{error.message}\n", status_code=error.status)
        if not keys:
            return _NOT_FOUND
        try:
            body = b"".join(dearmor(k["armored"]) for k in keys)
        except (binascii.Error, ValueError):
            return PlainTextResponse("the stored key could not be read\n", status_code=500)
        return Response(body, media_type="application/octet-stream")

    async def policy(request: Request) -> Response:
        return Response(b"", media_type="text/plain")

    return [
        Route("/pks/lookup", lookup, methods=["GET"]),
        Route("/pks/add", add, methods=["POST"]),
        Route("/pks/confirm/{token}", confirm_page, methods=["GET", "POST"]),
        Route("/.well-known/openpgpkey/hu/{hash}", wkd, methods=["GET"]),
        Route("/.well-known/openpgpkey/policy", policy, methods=["GET"]),
        Route("/.well-known/openpgpkey/{domain}/hu/{hash}", wkd, methods=["GET"]),
        Route("/.well-known/openpgpkey/{domain}/policy", policy, methods=["GET"]),
    ]
