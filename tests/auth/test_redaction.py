"""Credentials are scrubbed from log records, whoever logs them (mailroom.redaction).

The end-to-end check, a real ``mailroom serve`` at its most verbose, is
tests/test_secrets_in_logs.py; these pin the scrubbing rules one by one.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from mailroom import redaction
from mailroom.auth import tokens
from mailroom.cli.serve import log_config
from mailroom.redaction import redact

SESSION = tokens.new_secret("ms").secret
KEY = tokens.new_secret("mr").secret


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f'127.0.0.1:5 - "WebSocket /api/v1/events?token={SESSION}&last_event_id=3" [accepted]', SESSION),
        ("GET /x?access_token=abc123&a=1", "abc123"),
        ("GET /x?key=abc123", "abc123"),
        ("login password=hunter2 ok", "hunter2"),
        ("headers: [(b'authorization', b'Bearer abc.def'), (b'host', b'x')]", "abc.def"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ('{"username": "a", "password": "p\\"w0rd"}', "w0rd"),
        ("{'new_password': 'swordfish'}", "swordfish"),
        ("b'AUTH PLAIN AGFsaWNlAHB3'", "AGFsaWNlAHB3"),
        ("redis://user:pw-secret@host:6379/0", "pw-secret"),
        (f"Bearer%20{KEY}", KEY),
        (f'< TEXT \'{{"token": "{SESSION}"}}\' [55 bytes]', SESSION),
        ("Client(client_id='web', client_secret='s3cr3t-value', uris=[])", "s3cr3t-value"),
        # OpenID Connect: the authorization code in the callback URL, and JWTs anywhere.
        ('"GET /web/oidc/callback?code=Sp1xAuthCode-_x9&state=abc HTTP/1.1" 303', "Sp1xAuthCode-_x9"),
        ("Location: http://h/cb?state=s&code=Sp1xAuthCode", "Sp1xAuthCode"),
        ("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLXBhcnQ was refused", "c2lnbmF0dXJlLXBhcnQ"),
    ],
)
def test_credentials_are_redacted(text: str, secret: str) -> None:
    scrubbed = redact(text)
    assert secret not in scrubbed
    assert "[redacted]" in scrubbed
    assert redact(scrubbed) == scrubbed  # idempotent: scrubbing twice changes nothing


def test_what_is_not_a_credential_stays() -> None:
    for text in (
        "AUTH failed unexpectedly; authorization required",
        "Idempotency-Key=abc retried",
        "authorization: Bearer %s",
        "token=%s",
        "session ms_AbCdEfGh ended",  # a lookup id alone is no secret
        "('127.0.0.1', 5) << b'250-AUTH LOGIN PLAIN'",  # the EHLO line listing mechanisms
        "error code=invalid_params",  # an error code is no authorization code
        "Client(client_id='web', name='x')",
    ):
        assert redact(text) == text
    # The prefix and lookup id of an issued secret stay: they say which key it was.
    assert redact(KEY) == f"{KEY[:11]}_[redacted]"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    redaction.install()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_every_logger_is_scrubbed_at_the_record(captured: io.StringIO) -> None:
    # uvicorn's WebSocket line (logged even with the access log off), by argument.
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/api/v1/events?token={SESSION}"
    )
    # A secret only visible once formatted.
    logging.getLogger("mailroom.x").info("token=%s", "plain-secret")
    # aiosmtpd quoting an undecodable AUTH answer as it came.
    logging.getLogger("mail.log").debug("%r can't decode base64: %s", ("127.0.0.1", 5), b"hunter2")
    # Objects whose repr shows a credential, and tracebacks.
    logging.getLogger("mailroom.y").info("headers %r", {"Authorization": f"Bearer {KEY}"})
    try:
        raise ValueError(f"bad token {SESSION}")
    except ValueError:
        logging.getLogger("mailroom.z").exception("failed")
    text = captured.getvalue()
    for secret in (SESSION, KEY, "plain-secret", "hunter2"):
        assert secret not in text
    assert '"WebSocket /api/v1/events?token=[redacted]" [accepted]' in text
    assert "ValueError: bad token ms_" in text


def test_uvicorn_access_formatter_still_gets_its_arguments(captured: io.StringIO) -> None:
    # uvicorn's access formatter unpacks the record's five arguments: they stay five.
    from uvicorn.logging import AccessFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    logger = logging.getLogger("uvicorn.access.test")
    logger.addHandler(handler)
    try:
        logger.info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", f"/api/v1/events?token={KEY}", "1.1", 200)
    finally:
        logger.removeHandler(handler)
    assert out.getvalue().strip() == '1.2.3.4:5 - "GET /api/v1/events?token=[redacted] HTTP/1.1" 200 OK'


def test_serve_logging_scrubs_on_every_handler() -> None:
    config = log_config("debug")
    assert all("redact" in h["filters"] for h in config["handlers"].values())
    assert config["root"]["level"] == logging.DEBUG
    assert config["loggers"]["uvicorn"]["level"] == logging.DEBUG
    assert log_config("warning")["loggers"]["uvicorn"]["level"] == logging.INFO
