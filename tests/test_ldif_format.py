import base64
import io

import pytest

from connectors.ldif_format import LdifError, read_ldif
from tests.ldif_fixtures import sid


def parse(data: bytes) -> tuple[list, list[str]]:
    warnings: list[str] = []
    return list(read_ldif(data, warnings)), warnings


def test_folded_lines_comments_and_version() -> None:
    text = (
        "version: 1\n"
        "# a comment that is\n"
        "  folded over two lines\n"
        "\n"
        "dn: CN=A Very Long Name That Needs Folding,OU=People,DC=corp,\n"
        " DC=test\n"
        "description: first part\n"
        "  second part\n"
        "cn: A\n"
    )
    entries, warnings = parse(text.encode())
    assert len(entries) == 1
    assert entries[0].dn == "CN=A Very Long Name That Needs Folding,OU=People,DC=corp,DC=test"
    assert entries[0].text("description") == "first part second part"
    assert warnings == []


def test_base64_non_ascii_and_binary_values() -> None:
    name = "Zoë Müller 李雷"
    raw_sid = sid(21, 1, 2, 3, 1105)
    text = (
        f"dn:: {base64.b64encode(f'CN={name},DC=corp'.encode()).decode()}\n"
        f"displayName:: {base64.b64encode(name.encode()).decode()}\n"
        f"objectSid:: {base64.b64encode(raw_sid).decode()}\n"
    )
    entries, _ = parse(text.encode())
    assert entries[0].dn == f"CN={name},DC=corp"
    assert entries[0].text("displayname") == name  # attribute names are case-insensitive
    assert entries[0].first("objectSid") == raw_sid


def test_crlf_utf16_and_bom() -> None:
    text = "dn: CN=a,DC=x\r\ncn: Zoë\r\n\r\ndn: CN=b,DC=x\r\ncn: b\r\n"
    for data in (text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode("utf-8")):
        entries, _ = parse(data)
        assert [e.text("cn") for e in entries] == ["Zoë", "b"]


def test_change_records_and_url_values_are_skipped_with_warnings() -> None:
    text = (
        "dn: CN=a,DC=x\ncn: a\njpegPhoto:< file:///etc/shadow\n\n"
        "dn: CN=b,DC=x\nchangetype: modify\nreplace: cn\ncn: b2\n-\n\n"
        "dn: CN=c,DC=x\ncontrol: 1.2.840.113556.1.4.805 true\nchangetype: delete\n"
    )
    entries, warnings = parse(text.encode())
    assert [e.dn for e in entries] == ["CN=a,DC=x"]
    assert not entries[0].has("jpegPhoto")
    assert any("URL reference" in w for w in warnings)
    assert any("2 change record(s) skipped" in w for w in warnings)


def test_attribute_options_are_dropped() -> None:
    entries, _ = parse(b"dn: CN=g,DC=x\nmember;range=0-1499: CN=a,DC=x\nuserCertificate;binary:: AAE=\n")
    assert entries[0].texts("member") == ["CN=a,DC=x"]
    assert entries[0].first("userCertificate") == b"\x00\x01"


@pytest.mark.parametrize(("text", "message"), [
    ("cn: a\n", "must start with 'dn:'"),
    ("dn: CN=a\nnot an attribute line\n", "line 2"),
    ("dn: CN=a\nobjectSid:: !!!notbase64\n", "invalid base64"),
    ("version: 2\n\ndn: CN=a\n", "unsupported LDIF version"),
])
def test_malformed_input_names_the_line(text: str, message: str) -> None:
    with pytest.raises(LdifError, match=message):
        parse(text.encode())


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_only_lf_and_crlf_end_a_line(separator: str) -> None:
    """A value may hold any of these (RFC 2849 SAFE-CHAR / UTF-8): they must not start a new attribute line."""
    from connectors.activedirectory import map_active_directory
    from tests.ldif_fixtures import ldif, user

    hidden = user("Alice", "alice", 512, 1, f"displayName: Alice{separator}isDeleted: TRUE")
    disabled = user("Bob", "bob", 512, 2, f"displayName: Bob{separator}userAccountControl: 514")
    entries, _ = parse(ldif(hidden, disabled).replace(b"\n", b"\r\n"))
    accounts = {a.username: a for a in map_active_directory("ad", entries).accounts}
    assert set(accounts) == {"alice", "bob"}  # Alice is not hidden as a deleted object
    assert accounts["bob"].enabled is True  # Bob is not disabled by a value
    assert accounts["alice"].display_name == f"Alice{separator}isDeleted: TRUE"


def test_blank_lines_that_continuations_follow_are_read_in_one_pass_over_the_file() -> None:
    # No record ends where a continuation follows a blank line: the reader looks for a record's end in each new
    # chunk only (searched again from the top each time, 2 MB of these took 14 s; now well under one).
    data = b"dn: CN=A,DC=x\ncn: A\n" + b"\n\n " * 700_000 + b"\n\ndn: CN=B,DC=x\ncn: B\n"
    read = [(e.dn, e.attributes) for e in read_ldif(io.BytesIO(data), [], [], chunk_size=1 << 16)]
    assert read == [(e.dn, e.attributes) for e in read_ldif(data, [], [], plain=False)]
    assert [dn for dn, _ in read] == ["CN=A,DC=x", "CN=B,DC=x"]
