"""Who may send as whom, over the real wire: submission (smtplib, STARTTLS + AUTH), REST,
JSON-RPC and XML-RPC; DKIM only aligned with the From; allow_spoofing for global admins only.

The two reproductions of issue 11 §1 are the first two tests.
"""

from __future__ import annotations

import re
import smtplib
import xmlrpc.client
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import dkim
import httpx
import pytest
from sqlalchemy import select

from mailroom.bootstrap import Mailroom
from mailroom.delivery.outbound import submit
from mailroom.delivery.queue import OutboundQueue
from mailroom.errors import SenderNotAllowed
from mailroom.frontends.smtp import Listeners
from mailroom.frontends.smtp.submission import start_submission
from mailroom.store.mail_schema import emails
from mailroom.store.outbound_schema import outbound_queue
from tests.conftest import Actor, problem
from tests.mailhelpers import message
from tests.outbound.conftest import Sink
from tests.outbound.test_submission import login, run, session

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery staple"
MakeUser = Callable[..., Awaitable[Actor]]


@pytest.fixture
async def submission(mailroom: Mailroom) -> AsyncIterator[int]:
    running: Listeners = await start_submission(mailroom, bind=("127.0.0.1", 0))
    try:
        yield running.ports["submission"]
    finally:
        await running.close()


def transaction(
    port: int, user: str, mail_from: str, raw: bytes, rcpt: str = "someone@remote.example"
) -> tuple[int, str]:
    """Log in as ``user`` over STARTTLS and send ``raw``: the first refusal, or DATA's reply."""
    with session(port) as client:
        code, _ = login(client, user, PASSWORD)
        assert code == 235
        code, text = client.mail(mail_from)
        if code != 250:
            return code, text.decode()
        code, text = client.rcpt(rcpt)
        assert code == 250, text
        try:
            code, text = client.data(raw)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
        return code, text.decode()


async def queued(mailroom: Mailroom) -> list[dict[str, Any]]:
    async with mailroom.runtime.db.read() as tx:
        return await tx.all(select(outbound_queue).order_by(outbound_queue.c.id))


async def stored(mailroom: Mailroom) -> int:
    async with mailroom.runtime.db.read() as tx:
        return len(await tx.all(select(emails.c.id)))


async def dkim_key(mailroom: Mailroom, domain: str) -> tuple[dict[str, Any], Callable[..., bytes]]:
    """A DKIM key for ``domain``, and a resolver that publishes it (for ``dkim.verify``)."""
    key = await mailroom.registry.call("admin.dkim.generate", {"domain": domain, "bits": 1024})
    record = "".join(re.findall(r'"([^"]*)"', key["record_value"])).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == key["record_name"].encode() else b""

    return key, dns


def header(raw: bytes, name: str) -> str | None:
    found = re.search(rb"^" + name.encode() + rb": (.*?)\r?$", raw.split(b"\r\n\r\n", 1)[0], re.M)
    return found.group(1).decode() if found else None


def signing_domain(raw: bytes) -> str | None:
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    found = re.search(r"^DKIM-Signature:.*?\bd=([^;\s]+)", head, re.S | re.M)
    return found.group(1) if found else None


# -- the reproductions ---------------------------------------------------------------------


async def test_another_tenants_from_is_refused_at_data(
    mailroom: Mailroom, submission: int, make_user: MakeUser
) -> None:
    """Reproduction 1: alice@example.org, MAIL FROM her own address, ``From: dave@cli.test``."""
    await make_user("alice@example.org")
    await make_user("dave@cli.test")
    await dkim_key(mailroom, "cli.test")
    raw = message(sender="dave@cli.test", to="someone@remote.example", message_id=None)
    code, text = await run(transaction, submission, "alice@example.org", "alice@example.org", raw)
    assert code == 553
    assert text.startswith("5.7.1 From: <dave@cli.test>")
    assert await queued(mailroom) == []
    assert await stored(mailroom) == 0  # no sent copy either


async def test_a_manager_cannot_grant_spoofing(
    mailroom: Mailroom,
    client: httpx.AsyncClient,
    submission: int,
    make_user: MakeUser,
    admin: Actor,
    sink: Sink,
    queue: OutboundQueue,
) -> None:
    """Reproduction 2: a manager of example.org PATCHes allow_spoofing on bob; bob then sends
    as ``dave@cli.test``."""
    manager = await make_user("mgr@example.org", manages=("example.org",))
    await make_user("bob@example.org")
    await make_user("dave@cli.test")
    await dkim_key(mailroom, "cli.test")
    r = await client.patch(
        "/api/v1/users/bob@example.org", json={"allow_spoofing": True}, headers=manager.headers
    )
    body = problem(r, 403, "forbidden")
    assert body["data"]["fields"] == ["allow_spoofing"]
    r = await client.post(
        "/api/v1/users",
        json={"email": "eve@example.org", "password": PASSWORD, "allow_spoofing": True},
        headers=manager.headers,
    )
    problem(r, 403, "forbidden")
    # Nothing changed, so nothing was audited as changed.
    audit = await mailroom.registry.call("admin.audit.list", {"method": "admin.users.update"})
    assert audit["total"] == 0

    raw = message(sender="dave@cli.test", to="someone@remote.example", message_id=None)
    code, text = await run(transaction, submission, "bob@example.org", "dave@cli.test", raw)
    assert (code, text.split(" ", 1)[0]) == (553, "5.7.1")
    assert "<dave@cli.test>" in text
    await queue.run_once()
    assert sink.messages == []

    # A global administrator may grant it, and it is audited.
    r = await client.patch(
        "/api/v1/users/bob@example.org", json={"allow_spoofing": True}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    audit = await mailroom.registry.call("admin.audit.list", {"method": "admin.users.update"})
    [entry] = audit["items"]
    assert entry["target"] == "bob@example.org"
    assert entry["changes"]["allow_spoofing"] == {"before": False, "after": True}


# -- the envelope sender and the header, over submission ------------------------------------


async def test_every_spelling_of_ones_own_address(
    mailroom: Mailroom, submission: int, make_user: MakeUser
) -> None:
    await make_user("alice@example.org")
    await make_user("dave@cli.test")
    await mailroom.registry.call(
        "admin.alternatives.create", {"domain": "example.org", "alternative": {"name": "alt.example"}}
    )

    def conversation() -> list[int]:
        codes = []
        with session(submission) as client:
            login(client, "alice@example.org", PASSWORD)
            for sender in (
                "Alice@Example.ORG",
                "alice@alt.example",
                "alice+lists@example.org",
                "alice+x@ALT.example",
                "a.lice@example.org",  # another mailbox name: the resolver does not fold dots here
                "dave@cli.test",
                "alice@cli.test",
                "",
            ):
                codes.append(client.mail(f"<{sender}>")[0])
                client.rset()
        return codes

    assert await run(conversation) == [250, 250, 250, 250, 553, 553, 553, 553]
    raw = message(sender="Alice <ALICE@alt.example>", to="someone@remote.example", message_id=None)
    code, _ = await run(transaction, submission, "alice@example.org", "alice+x@example.org", raw)
    assert code == 250


async def test_a_signed_up_name_in_any_spelling(
    mailroom: Mailroom, submission: int, make_domain: Callable[..., Awaitable[Any]]
) -> None:
    await make_domain("example.org", signup_enabled=True)
    invite = await mailroom.registry.call("admin.invites.create", {"invite": {"domain": "example.org"}})
    await mailroom.registry.call(
        "mail.signup.create",
        {
            "username": "john.smith",
            "password": PASSWORD,
            "domain": "example.org",
            "reg_token": invite["token"],
        },
    )

    def conversation() -> list[int]:
        with session(submission) as client:
            assert login(client, "john.smith@example.org", PASSWORD)[0] == 235
            codes = []
            for sender in ("johnsmith@example.org", "John.Smith@example.org", "jo.hn.smith@example.org"):
                codes.append(client.mail(sender)[0])
                client.rset()
            return codes

    assert await run(conversation) == [250, 250, 250]


async def test_aliases_identities_and_nothing_else(
    mailroom: Mailroom, submission: int, make_user: MakeUser
) -> None:
    await make_user("alice@example.org")
    await make_user("carol@example.org")
    await mailroom.registry.call(
        "admin.alternatives.create", {"domain": "example.org", "alternative": {"name": "alt.example"}}
    )
    for address, destinations in (
        ("sales@example.org", ["carol@example.org", "ALICE@alt.example"]),
        ("hr@example.org", ["carol@example.org"]),
        ("*@example.org", ["alice@example.org"]),
    ):
        await mailroom.registry.call(
            "admin.aliases.create",
            {"alias": {"address": address, "destinations": destinations, "wildcard": "*" in address}},
        )
    await mailroom.registry.call(
        "admin.identities.create",
        {"email": "alice@example.org", "identity": {"address": "Alice.Private@Remote.example"}},
    )

    def conversation() -> list[int]:
        codes = []
        with session(submission) as client:
            login(client, "alice@example.org", PASSWORD)
            for sender in (
                "sales@example.org",  # an alias that delivers to her (in another spelling)
                "sales@alt.example",
                "alice.private@remote.example",  # her identity
                "hr@example.org",  # an alias of someone else
                "carol@example.org",  # someone else
                "anything@example.org",  # caught by the wildcard, but not hers to send as
                "other@remote.example",
            ):
                codes.append(client.mail(sender)[0])
                client.rset()
        return codes

    assert await run(conversation) == [250, 250, 250, 553, 553, 553, 553]

    raw = message(sender="Alice <alice.private@remote.example>", to="x@remote.example", message_id=None)
    assert (await run(transaction, submission, "alice@example.org", "alice@example.org", raw))[0] == 250
    await mailroom.registry.call(
        "admin.identities.delete", {"email": "alice@example.org", "address": "alice.private@remote.example"}
    )
    code, text = await run(transaction, submission, "alice@example.org", "alice@example.org", raw)
    assert code == 553
    assert "<alice.private@remote.example>" in text


@pytest.mark.parametrize(
    "headers",
    [
        # The Sender header counts like From.
        "From: alice@example.org\r\nSender: dave@cli.test",
        # Every address of a From, and every From line.
        "From: alice@example.org, dave@cli.test",
        "From: alice@example.org\r\nFrom: dave@cli.test",
        # Read one way by one parser and another way by another.
        "From: alice@example.org <dave@cli.test>",
        # The obsolete space before the colon: the stdlib's parser skips the line, clients may not.
        "From: alice@example.org\r\nFrom : dave@cli.test",
        # Folded.
        "From: Alice\r\n <dave@cli.test>",
        # Names no mailbox.
        "From: undisclosed-senders:;",
    ],
)
async def test_every_header_sender_is_checked(
    mailroom: Mailroom, submission: int, make_user: MakeUser, headers: str
) -> None:
    await make_user("alice@example.org")
    raw = f"{headers}\r\nTo: x@remote.example\r\nSubject: hi\r\n\r\nhello\r\n".encode()
    code, text = await run(transaction, submission, "alice@example.org", "alice@example.org", raw)
    assert code == 553, text
    assert text.startswith("5.7.1 ")
    assert await queued(mailroom) == []


async def test_a_message_without_from_names_nobody_and_is_not_signed(
    mailroom: Mailroom, submission: int, make_user: MakeUser, sink: Sink, queue: OutboundQueue
) -> None:
    await make_user("alice@example.org")
    await dkim_key(mailroom, "example.org")
    raw = b"To: x@remote.example\r\nSubject: hi\r\n\r\nhello\r\n"
    assert (await run(transaction, submission, "alice@example.org", "alice@example.org", raw))[0] == 250
    await queue.run_once()
    [got] = sink.messages
    assert signing_domain(got.content) is None  # no From: no domain to align with


async def test_submit_itself_applies_the_rule(mailroom: Mailroom, make_user: MakeUser) -> None:
    """Any path that sends through submit() (a draft sent later too) meets the rule."""
    alice = await make_user("alice@example.org")
    assert alice.principal.user_id is not None
    raw = message(sender="dave@cli.test", to="x@remote.example", message_id=None)
    with pytest.raises(SenderNotAllowed) as info:
        await submit(
            mailroom.runtime,
            raw,
            mail_from="alice@example.org",
            recipients=["x@remote.example"],
            source="api",
            sender_user_id=alice.principal.user_id,
        )
    assert info.value.data == {"field": "from", "address": "dave@cli.test"}
    assert await queued(mailroom) == []


# -- DKIM ------------------------------------------------------------------------------------


async def test_dkim_signs_only_as_the_from_domain(
    mailroom: Mailroom, submission: int, make_user: MakeUser, sink: Sink, queue: OutboundQueue
) -> None:
    await make_user("alice@example.org", allow_spoofing=True)
    await make_user("dave@cli.test")
    _, dns = await dkim_key(mailroom, "example.org")
    await dkim_key(mailroom, "cli.test")
    cases = [
        # (envelope, From): signed as the From's domain when it has a key, else not at all.
        ("alice@example.org", "alice@example.org", "example.org"),
        ("alice@example.org", "news@elsewhere.example", None),  # not as the envelope's domain
        ("dave@cli.test", "alice@example.org", "example.org"),
        ("alice@example.org", "alice@example.org, x@elsewhere.example", None),
    ]
    for envelope, sender, _ in cases:
        raw = message(sender=sender, to="x@remote.example", message_id=None)
        code, text = await run(
            transaction, submission, "alice@example.org", envelope, raw, "x@remote.example"
        )
        assert code == 250, text
    await queue.run_once()
    assert len(sink.messages) == len(cases)
    by_envelope_and_from = {(m.mail_from, header(m.content, "From")): m for m in sink.messages}
    for envelope, sender, domain in cases:
        got = by_envelope_and_from[(envelope, sender)]
        assert signing_domain(got.content) == domain, (envelope, sender)
        if domain == "example.org":
            assert dkim.verify(got.content, dnsfunc=dns)


# -- the mail client API and RPC --------------------------------------------------------------


async def test_post_emails_from_address(
    mailroom: Mailroom,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    sink: Sink,
    queue: OutboundQueue,
) -> None:
    alice = await make_user("alice@example.org", display_name="Alice")
    await make_user("dave@cli.test")
    await mailroom.registry.call(
        "admin.identities.create",
        {
            "email": "alice@example.org",
            "identity": {"address": "support@example.org", "display_name": "Support"},
        },
    )
    email = {"to": ["x@remote.example"], "subject": "hi", "body": "hello"}
    for from_address in ("dave@cli.test", "someone@remote.example"):
        for draft in (False, True):
            r = await client.post(
                "/api/v1/emails",
                json={**email, "from_address": from_address, "draft": draft},
                headers=alice.headers,
            )
            body = problem(r, 403, "sender_not_allowed")
            assert body["data"] == {"field": "from", "address": from_address}
            assert r.headers["content-type"] == "application/problem+json"
    assert await queued(mailroom) == []
    assert await stored(mailroom) == 0

    r = await client.post(
        "/api/v1/emails", json={**email, "from_address": "support@example.org"}, headers=alice.headers
    )
    assert r.status_code == 201, r.text
    await queue.run_once()
    [got] = sink.messages
    assert got.mail_from == "alice@example.org"  # bounces come back to her
    assert header(got.content, "From") == "Support <support@example.org>"

    listing = await client.get("/api/v1/me/identities", headers=alice.headers)
    assert listing.status_code == 200
    assert [(i["address"], i["display_name"]) for i in listing.json()["items"]] == [
        ("support@example.org", "Support")
    ]


async def test_rpc_protocols_answer_the_same_error(
    client: httpx.AsyncClient, make_user: MakeUser, mailroom: Mailroom
) -> None:
    alice = await make_user("alice@example.org")
    params = {"email": {"to": ["x@remote.example"], "body": "x", "from_address": "dave@cli.test"}}
    r = await client.post(
        "/rpc/json",
        json={"jsonrpc": "2.0", "id": 1, "method": "mail.emails.send", "params": params},
        headers=alice.headers,
    )
    error = r.json()["error"]
    assert error["code"] == -32071
    assert error["data"]["code"] == "sender_not_allowed"
    assert error["data"]["address"] == "dave@cli.test"
    body = xmlrpc.client.dumps((params,), "mail.emails.send", allow_none=True)
    r = await client.post("/rpc/xml", content=body, headers={"content-type": "text/xml", **alice.headers})
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(r.content)
    assert fault.value.faultCode == -32071
    assert fault.value.faultString.startswith("sender_not_allowed: ")
    assert await queued(mailroom) == []
