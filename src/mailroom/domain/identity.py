"""Second factors and app passwords as clients see them (secrets only in the one answer that
issues them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: The protocols an app password can be made for (never the web or API login).
AppProtocol = Literal["smtp", "imap", "pop3", "jmap", "dav"]
AppPasswordName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TotpSetup(BaseModel):
    """A new TOTP secret, not yet on: add it to an authenticator app, then confirm a code.

    Shown this once; the secret is stored encrypted and never returned again."""

    secret: str = Field(description="The base32 secret, for typing into an app.")
    otpauth_uri: str = Field(description="The otpauth://totp/ URI (what the QR code holds).")
    qr_svg: str = Field(description="The URI as a QR code, an SVG document.")


class TotpEnabled(BaseModel):
    """The second factor is on; the recovery codes are shown this once."""

    enabled: bool = True
    recovery_codes: list[str] = Field(description="Ten single-use codes for when the app is lost.")


class TotpStatus(BaseModel):
    """Whether the caller's logins need a second factor."""

    enabled: bool
    pending: bool = Field(description="A set-up was started and awaits its confirming code.")
    confirmed_at: datetime | None = None
    recovery_codes_left: int = 0


class AppPasswordCreate(BaseModel):
    """A new app password: a name for the client that uses it and the protocols it may log in to."""

    model_config = ConfigDict(extra="forbid")

    name: AppPasswordName
    protocols: Annotated[list[AppProtocol], Field(min_length=1, max_length=5)]


class AppPassword(BaseModel):
    """An app password as its owner sees it (never the secret)."""

    id: str
    name: str
    protocols: list[AppProtocol]
    created_at: datetime
    last_used_at: datetime | None = None
    last_ip: str | None = None


class AppPasswordIssued(AppPassword):
    """A new app password: ``password`` is shown this once, stored only as a digest."""

    password: str
