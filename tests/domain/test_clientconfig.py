"""mailroom.domain.clientconfig: which client listeners are served and where, the placeholder
host name, the start-up warnings, and the worker's start-up log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tests.lifespan import started_worker

from mailroom.domain.clientconfig import (
    CLIENT_SERVICES,
    ClientService,
    autoconfig_origin,
    hostname_warning,
    is_placeholder_host,
    public_smtp_port,
    served_services,
    startup_warnings,
)
from mailroom.settings import Settings


def make(**values: Any) -> Settings:
    return Settings(mode="test", secret_key="test-secret-key-not-for-production", **values)


@pytest.mark.parametrize(
    "name",
    [
        "mail.example.org",  # the default
        "example.com",
        "mx.example.net",
        "mail.test",
        "x.invalid",
        "mail.localhost",
        "localhost",
        "a.example",
        "mail.local",
        "box.localdomain",
        "mail.internal",
        "router.lan",
        "mail.home.arpa",
    ],
)
def test_placeholders(name: str) -> None:
    assert is_placeholder_host(name)
    assert is_placeholder_host(name.upper() + ".")


@pytest.mark.parametrize("name", ["mail.mailhost.net", "mx1.bücher.de", "notexample.org", "example.org.uk"])
def test_real_names(name: str) -> None:
    assert not is_placeholder_host(name)


def test_the_default_host_name_is_warned_about_and_a_real_one_is_not() -> None:
    warning = hostname_warning(make())
    assert warning is not None
    assert "'mail.example.org', a placeholder" in warning
    assert "MAILROOM_HOSTNAME" in warning
    assert startup_warnings(make()) == [warning]
    assert hostname_warning(make(hostname="mail.mailhost.net")) is None
    assert startup_warnings(make(hostname="mail.mailhost.net")) == []


def test_served_services_follow_the_port_settings() -> None:
    served = {s.service.name: s.port for s in served_services(make())}
    # The listening ports when no public port is set, in the order clients should prefer them.
    assert served == {"imaps": 2993, "imap": 2143, "pop3s": 2995, "pop3": 2110, "submission": 2587}
    assert list(served) == ["imaps", "imap", "pop3s", "pop3", "submission"]
    only_submission = {"imap_port": 0, "imaps_port": 0, "pop3_port": 0, "pop3s_port": 0}
    (served_one,) = served_services(make(**only_submission, public_submission_port=587))
    assert served_one.service.name == "submission"
    assert served_one.port == 587
    assert served_services(make(**only_submission, submission_port=0, public_submission_port=587)) == []
    pop3s_only = served_services(make(imap_port=0, imaps_port=0, pop3_port=0, submission_port=0))
    assert [(s.service.srv, s.service.socket_type, s.port) for s in pop3s_only] == [
        ("_pop3s._tcp", "SSL", 2995)
    ]


def test_a_row_whose_settings_do_not_exist_yet_is_not_served() -> None:
    future = ClientService(
        "managesieve", "imap", "STARTTLS", "_sieve._tcp", "sieve_port", "public_sieve_port"
    )
    assert [s.service for s in served_services(make(), (*CLIENT_SERVICES, future))] == list(CLIENT_SERVICES)
    assert future.incoming
    assert not CLIENT_SERVICES[-1].incoming
    assert all(s.incoming for s in CLIENT_SERVICES[:-1])


def test_public_smtp_port() -> None:
    assert public_smtp_port(make()) == 2525
    assert public_smtp_port(make(public_smtp_port=25)) == 25
    assert public_smtp_port(make(smtp_port=0, public_smtp_port=25)) is None


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        (None, None),
        ("http://mail.mailhost.net/", None),  # autodiscover is HTTPS only
        ("https://mail.mailhost.net", ("mail.mailhost.net", 443)),
        ("https://mail.mailhost.net/", ("mail.mailhost.net", 443)),
        ("https://Web.Mailhost.net:8443/", ("web.mailhost.net", 8443)),
        ("https://mail.mailhost.net/mailroom/", None),  # the documents must be at the root
    ],
)
def test_autoconfig_origin(url: str | None, origin: tuple[str, int] | None) -> None:
    assert autoconfig_origin(make(public_url=url)) == origin


@pytest.mark.anyio
async def test_each_worker_logs_the_warning_at_start(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # (Without a placeholder there is nothing to log: startup_warnings is [], tested above.)
    quiet = {
        "smtp_port": 0,
        "lmtp_port": 0,
        "submission_port": 0,
        "pop3_port": 0,
        "pop3s_port": 0,
        "imap_port": 0,
        "imaps_port": 0,
    }
    with caplog.at_level(logging.WARNING, logger="mailroom"):
        async with started_worker(settings.model_copy(update=quiet)):
            pass
    assert [r.getMessage() for r in caplog.records if "placeholder" in r.getMessage()] == [
        hostname_warning(settings)
    ]
