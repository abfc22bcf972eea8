"""API schemas of mail client sign-up and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class LoginResult(BaseModel):
    """A new or renewed session: send ``token`` as ``Authorization: Bearer <token>`` until
    ``exp_date``; before or after that, ``refresh_token`` renews it once (until
    ``refresh_exp_date``) without the password."""

    token: str = Field(description="The session token; shown once, stored only as a digest.")
    exp_date: datetime = Field(description="When the session token stops working.")
    refresh_token: str = Field(
        description="Single use: POST it to /sessions/refresh for a new token and a new refresh token."
    )
    refresh_exp_date: datetime = Field(description="Until when refresh_token can renew the session.")
    session_id: str
    email: str = Field(description="The mailbox the session acts on.")


class Session(BaseModel):
    """A session as its owner sees it (never the token)."""

    id: str
    current: bool = Field(description="Whether this is the session making the request.")
    mobile: bool = Field(description="Recognised as a phone or tablet (the longer lifetime applies).")
    user_agent: str
    client_ip: str | None
    created_at: datetime
    expires_at: datetime = Field(description="When the current session token stops working.")
    refresh_expires_at: datetime | None = Field(
        default=None, description="Until when the session can be renewed with its refresh token."
    )
    last_used_at: datetime


class SignupResult(BaseModel):
    """``created`` (with a valid invite, HTTP 201) or ``waitlisted`` (HTTP 202, with ``position``)."""

    status: Literal["created", "waitlisted"]
    username: str
    email: str = Field(description="The address the account has, or will have once admitted.")
    position: int | None = Field(default=None, description="Place in the domain's waitlist (1 is next).")
