"""The oidc_* settings: validation and the secret kept out of sight."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailroom.settings import Settings


def test_client_secret_is_masked_and_never_in_the_repr() -> None:
    settings = Settings(oidc_client_secret="super-secret-value", mode="test")
    assert settings.masked()["oidc_client_secret"] == "**********"
    assert "super-secret-value" not in repr(settings)
    assert "super-secret-value" not in str(settings.masked())


@pytest.mark.parametrize(
    "issuer", ["https://id.example.com/realms/mail", "http://127.0.0.1:8080", "http://[::1]:9"]
)
def test_issuer_https_or_loopback(issuer: str) -> None:
    assert Settings(oidc_issuer=issuer, mode="test").oidc_issuer == issuer


@pytest.mark.parametrize("issuer", ["http://id.example.com", "ftp://id.example.com", "https://"])
def test_issuer_refused_otherwise(issuer: str) -> None:
    with pytest.raises(ValidationError):
        Settings(oidc_issuer=issuer, mode="test")


def test_allowed_domains_are_normalised() -> None:
    settings = Settings(oidc_allowed_domains=["Example.ORG."], mode="test")
    assert settings.oidc_allowed_domains == ["example.org"]
