"""Any bytes give a structure, and every view of it works: nothing here may raise."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.domain.mime import MimeStructure, Part, imap, jmap, scan

_HEADERS = [
    b"Content-Type", b"Content-Transfer-Encoding", b"Content-Disposition", b"Content-ID",
    b"Content-Language", b"Content-Location", b"From", b"To", b"Subject", b"Date", b"Message-ID",
]  # fmt: skip
_VALUES = [
    b"multipart/mixed; boundary=b", b"multipart/alternative; boundary=\"b\"", b"message/rfc822",
    b"text/plain; charset=utf-8", b"text/html; charset*=utf-8''%E2%82%AC", b"base64", b"quoted-printable",
    b"attachment; filename*0=a; filename*1*=%ff", b"<a@b>", b"=?utf-8?q?=ff?=", b"a (b) <c@d>, g: e@f;",
    b"multipart/digest; boundary=", b"\xff\xfe", b"(((", b"\"unterminated",
]  # fmt: skip
_LINES = st.one_of(
    st.tuples(st.sampled_from(_HEADERS), st.sampled_from(_VALUES)).map(lambda kv: kv[0] + b": " + kv[1]),
    st.sampled_from(
        [b"", b"--b", b"--b--", b" folded", b"body text", b"=E9=", b"aGVsbG8=", b"\r", b"From x"]
    ),
    st.binary(max_size=20),
)
MIME_LIKE = st.lists(_LINES, max_size=60).flatmap(
    lambda lines: st.sampled_from([b"\r\n", b"\n"]).map(lambda eol: eol.join(lines))
)
MESSAGES = st.one_of(st.binary(max_size=2000), MIME_LIKE)


def _check_part(part: Part, size: int) -> None:
    assert 0 <= part.header_start <= part.body_start <= part.body_end <= size
    assert part.decoded_size >= 0
    assert part.lines >= 0
    for child in part.parts:
        assert part.body_start <= child.header_start
        assert child.body_end <= part.body_end
        _check_part(child, size)
    if part.message is not None:
        _check_part(part.message, size)


def _sections(structure: MimeStructure) -> list[str]:
    specs = ["", "HEADER", "TEXT", "HEADER.FIELDS (From Subject)", "HEADER.FIELDS.NOT (To)"]
    for part in structure.root.walk():
        if part.section:
            specs += [part.section, f"{part.section}.MIME", f"{part.section}.HEADER", f"{part.section}.TEXT"]
    return specs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES, st.binary(max_size=30))
def test_every_view_of_any_bytes(raw: bytes, trace: bytes) -> None:
    structure = scan(raw)
    _check_part(structure.root, len(raw))
    assert MimeStructure.from_json(structure.to_json()) == structure
    imap.envelope(structure.envelope)
    imap.body_structure(structure.root)
    imap.body_structure(structure.root, extensible=False)
    for spec in _sections(structure):
        section = imap.parse_section(spec)
        assert section is not None, spec
        data = imap.section_bytes(structure, section, raw, trace)
        span = imap.section_range(structure, section, len(trace))
        if span is not None:
            assert (trace + raw)[span[0] : span[1]] == data
        with contextlib.suppress(imap.UnknownTransferEncoding):
            imap.binary_bytes(structure, section.part, raw, trace)
    text, html, _attachments = jmap.body_lists(structure)
    jmap.body_part(
        structure.root, raw, lambda p: p.section, [*jmap.BODY_PART_PROPERTIES, "header:From:asAddresses"]
    )
    for part in [*text, *html]:
        value = jmap.body_value(part, raw, 10)
        assert len(value["value"].encode()) <= 10
    fields = jmap.header_fields(raw, structure.root, trace)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "X-Any"):
        for form in jmap.FORMS:
            jmap.header_value(fields, jmap.HeaderProperty(name, form, True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_section_spec_parses_or_is_refused(spec: str) -> None:
    section = imap.parse_section(spec)
    if section is not None:
        assert all(n >= 1 for n in section.part)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_any_header_property_parses_or_is_refused(prop: str) -> None:
    jmap.parse_header_property("header:" + prop)
    jmap.preview(prop, html=True)
