"""Broken and hostile exports: nothing hidden, nothing silently accepted (issue: hostile input).

A record we cannot read is listed and the rest of the source is audited; the source is then partial (exit 3).
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main
from connectors.values import ValueProblems
from tests.ldif_fixtures import domain_head, filetime, ldif, user
from tests.ldif_fixtures import guid as ldif_guid

EXPORT = ldif(domain_head(), user("Alice", "alice", 512, 1), user("Bob", "bob", 512, 2), user("Cy", "cy", 512, 3))


def audit_one(tmp_path: Path, name: str, data: bytes, source: str) -> tuple[int, dict[str, Any]]:
    """(exit code, findings.json) of an audit of one export, written to ``name``; ``source`` is the rest of its
    [[sources]] table."""
    (tmp_path / name).write_bytes(data)
    config = tmp_path / "audit.toml"
    config.write_text(f"[audit]\nhistory_db = 'h.sqlite'\n[[sources]]\npath = '{tmp_path / name}'\n{source}")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out"), "-q"])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads((tmp_path / "out" / "findings.json").read_text())


def audit_ldif(tmp_path: Path, data: bytes) -> tuple[int, dict[str, Any]]:
    return audit_one(tmp_path, "ad.ldif", data, "name = 'ad'\ntype = 'ldif'\n")


def audit_csv(tmp_path: Path, text: str) -> tuple[int, dict[str, Any]]:
    """(exit code, the source's entry in findings.json) of an audit of one CSV export."""
    code, document = audit_one(tmp_path, "users.csv", text.encode(), "name = 'app'\ntype = 'csv'\n"
                               "columns = { id = 'id', username = 'u', enabled = 'e' }\n")
    return code, document["sources"][0]


def usernames(document: dict[str, Any], tmp_path: Path) -> set[str]:
    text = (tmp_path / "out" / "accounts.csv").read_text(encoding="utf-8-sig")
    return {line.split(",")[2] for line in text.splitlines()[1:]}


def test_a_truncated_ldif_export_is_partial_and_the_cut_record_is_not_an_account(tmp_path: Path) -> None:
    cut = EXPORT[: EXPORT.index(b"sAMAccountName: cy") + len(b"sAMAccountName: c")]  # no line end: cut off
    code, document = audit_ldif(tmp_path, cut)
    assert code == 3 and document["sources"][0]["status"] == "partial"
    assert "ends inside this record" in document["sources"][0]["error"]
    assert usernames(document, tmp_path) == {"alice", "bob"}  # "c" is not a never-used account


def test_a_cut_inside_base64_is_a_listed_record_not_an_empty_complete_audit(tmp_path: Path) -> None:
    guid = base64.b64encode(ldif_guid(3).bytes_le).decode()
    cut = EXPORT.replace(f"objectGUID:: {guid}".encode(), f"objectGUID:: {guid[:7]}".encode())
    code, document = audit_ldif(tmp_path, cut)
    assert code == 3 and "invalid base64" in document["sources"][0]["error"]
    assert usernames(document, tmp_path) == {"alice", "bob"}


def test_a_second_record_for_a_dn_is_listed_and_only_the_first_audited(tmp_path: Path) -> None:
    shadow = user("Alice", "alice", 514, 1).replace("CN=Alice", "cn=alice")  # same DN, other case: disabled
    code, document = audit_ldif(tmp_path, EXPORT + b"\n" + shadow.encode())
    assert code == 3 and "a second record for cn=alice" in document["sources"][0]["error"]
    text = (tmp_path / "out" / "accounts.csv").read_text(encoding="utf-8-sig")
    assert ",alice," in text and text.count(",alice,") == 1


def test_invalid_utf8_is_said_with_its_line(tmp_path: Path) -> None:
    code, document = audit_ldif(tmp_path, EXPORT.replace(b"sAMAccountName: bob", b"sAMAccountName: b\xe9b"))
    assert code == 0
    assert any("not UTF-8" in w and "line " in w for w in document["sources"][0]["warnings"])


def test_times_in_the_future_are_said(tmp_path: Path) -> None:
    later = filetime(datetime(2031, 1, 1, tzinfo=UTC))
    code, document = audit_ldif(tmp_path, EXPORT.replace(b"sAMAccountName: bob",
                                                         f"sAMAccountName: bob\nlastLogon: {later}".encode()))
    assert code == 0
    assert any("after the audit's as-of time" in w and "bob: last_activity_at 2031" in w
               for w in document["sources"][0]["warnings"])


def test_csv_rows_that_are_not_rows_are_listed_and_a_never_closed_quote_swallows_nothing_silently(
    tmp_path: Path,
) -> None:
    code, source = audit_csv(tmp_path, "id,u,e\n1,ann,true\n2,bob,true,extra\n3,cy\n\"4,dee,true\n5,eve,true\n")
    assert code == 3
    error = source["error"]
    assert "users.csv line 3: 3 fields expected, 4 found" in error
    assert "users.csv line 4: 3 fields expected, 2 found" in error
    assert "users.csv line 5" in error and "never closed" in error


def test_one_record_that_breaks_a_mapping_is_listed_and_the_rest_are_mapped() -> None:
    problems = ValueProblems()

    def mapping(record: dict[str, Any]) -> str:
        return record["login"].upper()

    mapped = problems.map_each([{"login": "ann"}, {"id": "00u2", "login": None}, {"login": "cy"}], mapping)
    assert mapped == ["ANN", "CY"]
    assert problems.partial_error() == ("1 record(s) could not be read and are not audited: "
                                        "00u2: AttributeError: 'NoneType' object has no attribute 'upper'")


def test_a_config_with_no_enabled_source_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text("[[sources]]\nname = 'a'\ntype = 'ldif'\npath = 'x.ldif'\nenabled = false\n")
    for command in (["run", "--config", str(config), "--output", str(tmp_path / "out")], ["check-config", str(config)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2 and "no enabled source" in result.output
    assert not (tmp_path / "out").exists()  # nothing is written


# ---- fuzzing: no input raises anything but the documented error, or hangs ----

from hypothesis import given  # noqa: E402 - the fuzz section keeps its imports beside it
from hypothesis import strategies as st  # noqa: E402

from auditor.config import ConfigError, parse_config  # noqa: E402
from auditor.evidence import verify_bundle, write_bundle  # noqa: E402
from tests.test_config import GOOD  # noqa: E402
from tests.test_mapping_properties import FUZZ  # noqa: E402


@FUZZ
@given(st.text(max_size=300))
def test_any_config_text_is_a_config_or_a_config_error(text: str) -> None:
    try:
        parse_config(text, path=Path("/etc/auditor/audit.toml"))
    except ConfigError as exc:
        assert str(exc).startswith("/etc/auditor/audit.toml: ") and "\n" not in str(exc)


@FUZZ
@given(position=st.integers(min_value=0, max_value=len(GOOD)), insert=st.text(max_size=12),
       cut=st.integers(min_value=0, max_value=8))
def test_a_damaged_real_config_is_a_config_or_a_config_error(position: int, insert: str, cut: int) -> None:
    try:
        parse_config(GOOD[:position] + insert + GOOD[position + cut:], path=Path("/etc/auditor/audit.toml"))
    except ConfigError:
        pass


_BUFFER = io.BytesIO()
write_bundle(_BUFFER, {"inventory.json": b'{"accounts": []}', "findings.json": b'{"findings": []}',
                       "report.html": b"<html></html>"})
BUNDLE = _BUFFER.getvalue()


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_verify_to_problems_never_an_exception(data: bytes) -> None:
    problems, _digest = verify_bundle(data)
    assert problems


@FUZZ
@given(position=st.integers(min_value=0, max_value=len(BUNDLE) - 1), value=st.integers(min_value=0, max_value=255),
       truncate=st.booleans())
def test_a_damaged_real_bundle_never_raises(position: int, value: int, truncate: bool) -> None:
    damaged = BUNDLE[:position] if truncate else BUNDLE[:position] + bytes([value]) + BUNDLE[position + 1:]
    problems, _digest = verify_bundle(damaged)
    if not problems:  # a byte no content depends on (a header's "version needed"): the content is intact
        with zipfile.ZipFile(io.BytesIO(damaged)) as bundle, zipfile.ZipFile(io.BytesIO(BUNDLE)) as original:
            assert {n: bundle.read(n) for n in bundle.namelist()} == {n: original.read(n) for n in original.namelist()}


def test_times_in_year_9999_and_year_1_are_unknown_not_a_traceback(tmp_path: Path) -> None:
    far = EXPORT.replace(b"sAMAccountName: bob", b"sAMAccountName: bob\nlastLogonTimestamp: 2650467743990000000")
    far = far.replace(b"sAMAccountName: cy\n", b"sAMAccountName: cy\nwhenCreated: 00010101000000Z\n")
    code, document = audit_ldif(tmp_path, far)
    assert code == 0
    said = document["sources"][0]["warnings"]
    assert any("CN=Bob" in w and "lastLogonTimestamp" in w and "out of range" in w for w in said)
    assert any("CN=Cy" in w and "whenCreated" in w for w in said)


def test_two_records_with_one_id_in_any_source_are_named(tmp_path: Path) -> None:
    code, source = audit_csv(tmp_path, "id,u,e\n1,ann,true\n1,ann-twin,false\n2,bob,true\n")
    assert code == 3
    assert "repeat an id already read" in source["error"] and "1 (ann-twin)" in source["error"]
    assert source["accounts"] == 2


def test_a_128_kb_csv_value_is_read_and_the_rest_audited(tmp_path: Path) -> None:
    from connectors.csv_export import CsvConfig
    from connectors.csv_export import collect as collect_csv

    (tmp_path / "users.csv").write_text(f"id,u,e,d\n1,ann,true,{'x' * 140_000}\n2,bob,true,short\n")
    config = CsvConfig.model_validate({"name": "app", "type": "csv", "path": str(tmp_path / "users.csv"),
                                       "columns": {"id": "id", "username": "u", "enabled": "e",
                                                   "display_name": "d"}})
    result = collect_csv(config, datetime(2026, 11, 1, tzinfo=UTC))
    assert [a.username for a in result.accounts] == ["ann", "bob"] and result.partial_error is None


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_csv_values_with_unicode_line_separators_stay_in_their_row(separator: str, tmp_path: Path) -> None:
    from connectors.csv_export import CsvConfig
    from connectors.csv_export import collect as collect_csv

    (tmp_path / "users.csv").write_text(f"id,u,e\n1,ann{separator}2,true\n3,cy,false\n", encoding="utf-8")
    config = CsvConfig.model_validate({"name": "app", "type": "csv", "path": str(tmp_path / "users.csv"),
                                       "columns": {"id": "id", "username": "u", "enabled": "e"}})
    result = collect_csv(config, datetime(2026, 11, 1, tzinfo=UTC))
    assert [(a.id, a.username, a.enabled) for a in result.accounts] == [("1", f"ann{separator}2", True),
                                                                        ("3", "cy", False)]


@FUZZ
@given(st.text(max_size=300))
def test_any_csv_file_is_accounts_or_a_source_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    from connectors.base import SourceError
    from connectors.csv_export import CsvConfig
    from connectors.csv_export import collect as collect_csv

    path = tmp_path_factory.mktemp("csv") / "users.csv"
    path.write_text("id,u,e,t\n" + text, encoding="utf-8", errors="surrogateescape")
    config = CsvConfig.model_validate({"name": "app", "type": "csv", "path": str(path), "date_format": "unix",
                                       "columns": {"id": "id", "username": "u", "enabled": "e",
                                                   "last_activity_at": "t"}})
    try:
        collect_csv(config, datetime(2026, 11, 1, tzinfo=UTC))
    except SourceError:
        pass


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_graph_json_file_is_accounts_or_a_source_error(tmp_path_factory: pytest.TempPathFactory,
                                                           data: bytes) -> None:
    from connectors.base import SourceError
    from connectors.graph_json import GraphJsonConfig
    from connectors.graph_json import collect as collect_graph

    path = tmp_path_factory.mktemp("graph") / "users.json"
    path.write_bytes(data)
    try:
        collect_graph(GraphJsonConfig.model_validate({"name": "g", "type": "graph-json", "users_file": str(path)}),
                      datetime(2026, 11, 1, tzinfo=UTC))
    except SourceError:
        pass


@FUZZ
@given(value=st.text(max_size=80).filter(lambda v: "\n" not in v and "\r" not in v))
def test_a_hostile_ldif_value_changes_no_other_record(value: str) -> None:
    """Whatever one display name holds (FF, NEL, U+2028, 'isDeleted: TRUE', ...), the others read the same."""
    from connectors.activedirectory import map_active_directory
    from connectors.ldif_format import read_ldif

    def audit(data: bytes) -> dict[str, tuple[Any, ...]]:
        accounts = map_active_directory("ad", list(read_ldif(data, [], []))).accounts
        return {a.username: (a.enabled, a.last_activity_at, a.password_policy_id) for a in accounts}

    before = audit(EXPORT)
    hostile = EXPORT.replace(b"sAMAccountName: bob\n", f"sAMAccountName: bob\ndisplayName: {value}\n".encode())
    after = audit(hostile)
    assert {k: v for k, v in after.items() if k != "bob"} == {k: v for k, v in before.items() if k != "bob"}
    assert "bob" in after  # and bob is still there


def test_a_malformed_sid_on_a_group_loses_no_member(tmp_path: Path) -> None:
    from tests.ldif_fixtures import DOMAIN

    team = f"CN=Team,CN=Users,{DOMAIN}"
    group = f"dn: {team}\nobjectClass: top\nobjectClass: group\nobjectSid: S-1-abc\n"
    export = ldif(domain_head(), group, user("Alice", "alice", 512, 1, member_of=(team,)), user("Bob", "bob", 512, 2))
    code, document = audit_ldif(tmp_path, export)
    assert code == 0 and usernames(document, tmp_path) == {"alice", "bob"}
    assert any("CN=Team" in w and "objectSid" in w for w in document["sources"][0]["warnings"])


# ---- lone surrogates: JSON can escape half of a UTF-16 pair ("\ud800"), which no output can write ----

_ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=8)
_JSON_WITH_ANY_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_ANY_TEXT, inner, max_size=3), max_leaves=10)


def _holds_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_holds_surrogate, value))


@FUZZ
@given(_JSON_WITH_ANY_TEXT, st.booleans())
def test_json_a_server_sends_never_holds_text_no_output_can_write(value: Any, escaped: bool) -> None:
    from auditor import jsonio
    from connectors.http_json import parse_json

    # Escaped ("\ud800") or encoded as UTF-8 bytes (which json reads too): either way, read as U+FFFD.
    data = json.dumps(value, ensure_ascii=escaped).encode("utf-8", "surrogatepass")
    parsed = parse_json(data)
    assert not _holds_surrogate(parsed)
    jsonio.dumps(parsed)
    if not _holds_surrogate(value):
        assert parsed == value


def test_a_lone_surrogate_a_directory_sends_is_written_as_the_replacement_character(tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    users.write_text('{"value": [{"id": "u1", "userPrincipalName": "ann@x.test", "displayName": "Ann \\ud800 Lee",'
                     ' "accountEnabled": true, "createdDateTime": "2024-01-01T00:00:00Z"}]}')
    config = tmp_path / "auditor.toml"
    config.write_text(f'[audit]\nhistory_db = "{tmp_path / "history.sqlite"}"\n\n'
                      f'[[sources]]\nname = "entra"\ntype = "graph-json"\nusers_file = "{users}"\n')
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out"),
                                       "--as-of", "2026-06-30T00:00:00Z", "--quiet", "--evidence", "--jsonl"])
    assert result.exit_code in (0, 1), result.output
    assert "Ann \ufffd Lee".encode() in (tmp_path / "out" / "accounts.csv").read_bytes()
