"""Properties of every connector's mapping, on real-shaped records (tests/data and the outcome-table bases):

- removing any one attribute never adds a finding, nor makes one more severe (only low-confidence findings,
  which say what they could not know, may appear): a missing value is unknown, never a verdict;
- no value of any type in any field makes a mapping raise;
- the DN, LDIF and time parsers never raise anything but their own documented error.

``AUDITOR_FUZZ_EXAMPLES`` raises the number of generated examples for a longer run (default 150).
"""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.config import AuditSettings
from auditor.model import Account, Inventory, PasswordPolicy
from auditor.policy_rating import PolicyRater
from auditor.rules import RULES
from auditor.rules.base import RuleContext
from auditor.timeconv import TimeFormatError, from_generalized_time, from_iso8601, parse_timestamp
from connectors import google, okta, scim, slack
from connectors.activedirectory import map_active_directory
from connectors.dn import dn_key, first_rdn_value
from connectors.graph_users import map_user as map_graph_user
from connectors.ldif_format import LdifError, read_ldif
from connectors.values import ValueProblems
from tests.test_unknown_values import AD_DOMAIN, AD_USER, DOMAIN, GRAPH_USER, OKTA_USER, SCIM_USER, SLACK_MEMBER, entry

DATA = Path(__file__).resolve().parent / "data"
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
EXAMPLES = int(os.environ.get("AUDITOR_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTEXT = RuleContext(as_of=AS_OF, settings=AuditSettings(organization="Example"), inactive_days=lambda _s: 90,
                      rater=PolicyRater("Example", 3, AS_OF.year))

Mapping = Callable[[dict[str, Any]], Account]


def _graph(record: dict[str, Any]) -> Account:
    return map_graph_user("graph", record, sign_in_known=True, unknown_reason=None, mfa={}, problems=ValueProblems())


def _slack(record: dict[str, Any]) -> Account:
    return slack.map_user("slack", record, {}, True, None, "", ValueProblems())


MAPPINGS: dict[str, Mapping] = {
    "graph": _graph,
    "okta": lambda r: okta.map_user("okta", r, ValueProblems()),
    "google": lambda r: google.map_user("google", r, ValueProblems()),
    "scim": lambda r: scim.map_user("scim", r, ValueProblems()),
    "slack": _slack,
}


def records() -> list[tuple[str, dict[str, Any]]]:
    """Every real-shaped record of the JSON sources: the stored vendor payloads and the table's bases."""
    graph_users = [u for page in json.loads((DATA / "graph" / "users_pages_odd_values.json").read_text())
                   for u in page["value"]]
    graph_users += json.loads((DATA / "graph" / "users_signin_select.json").read_text())["value"]
    stored = {
        "graph": [GRAPH_USER, *graph_users],
        "okta": [OKTA_USER, *json.loads((DATA / "okta" / "list_users.json").read_text())],
        "google": json.loads((DATA / "google" / "users_list_fields_projection.json").read_text())["users"],
        "scim": [SCIM_USER, *json.loads((DATA / "scim" / "list_response.json").read_text())["Resources"]],
        "slack": [SLACK_MEMBER, *json.loads((DATA / "slack" / "users_list.json").read_text())["members"]],
    }
    return [(name, record) for name, items in stored.items() for record in items if isinstance(record, dict)]


RECORDS = records()


def paths(record: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of nested objects (as tuples: SCIM extension keys contain dots)."""
    if isinstance(record, dict):
        for key, value in record.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))


def changed(record: dict[str, Any], path: tuple[str, ...], value: Any = None, *, remove: bool = False,
            ) -> dict[str, Any]:
    copied = copy.deepcopy(record)
    holder = copied
    for name in path[:-1]:
        holder = holder[name]
    if remove:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return copied


def definite_findings(accounts: list[Account], policies: list[PasswordPolicy] = ()) -> dict[str, int]:  # type: ignore[assignment]
    """rule -> highest severity rank among findings that are not marked low-confidence."""
    inventory = Inventory(accounts=accounts, policies=list(policies))
    found: dict[str, int] = {}
    for rule_id, rule in RULES.items():
        for finding in rule.evaluate(inventory, CONTEXT):
            if finding.evidence.get("confidence") != "low":
                found[rule_id] = max(found.get(rule_id, -1), finding.severity.rank)
    return found


def assert_no_new_verdict(before: dict[str, int], after: dict[str, int], what: str) -> None:
    for rule_id, rank in after.items():
        assert rule_id in before and rank <= before[rule_id], f"{what}: {rule_id} appeared or got worse"


@pytest.mark.parametrize(("connector", "record"), RECORDS,
                         ids=[f"{c}-{i}" for i, (c, _) in enumerate(RECORDS)])
def test_removing_any_one_attribute_never_adds_a_finding(connector: str, record: dict[str, Any]) -> None:
    mapping = MAPPINGS[connector]
    before = definite_findings([mapping(record)])
    for path in paths(record):
        assert_no_new_verdict(before, definite_findings([mapping(changed(record, path, remove=True))]),
                              f"without {'.'.join(path)}")


def test_removing_any_one_ad_attribute_never_adds_a_finding() -> None:
    def audit(user: dict[str, Any], domain: dict[str, Any]) -> dict[str, int]:
        other = {**copy.deepcopy(AD_USER), "sAMAccountName": [b"bob"]}
        result = map_active_directory("ad", [entry(DOMAIN, domain), entry(f"CN=Alice,OU=Staff,{DOMAIN}", user),
                                             entry(f"CN=Bob,OU=Staff,{DOMAIN}", other)])
        return definite_findings([a for a in result.accounts if a.username == "alice"], result.policies)

    before = audit(AD_USER, AD_DOMAIN)
    for name in [*AD_USER, *AD_DOMAIN]:
        if name in ("lastLogonTimestamp", "lastLogon") or name == "objectClass":
            continue  # AD writes no logon time before the first logon: absent is "never", by AD's definition
        user = {k: v for k, v in AD_USER.items() if k != name}
        domain = {k: v for k, v in AD_DOMAIN.items() if k != name}
        assert_no_new_verdict(before, audit(user, domain), f"without {name}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(index=st.integers(min_value=0, max_value=len(RECORDS) - 1), data=st.data(), value=json_values)
def test_no_value_in_any_field_makes_a_mapping_raise(index: int, data: st.DataObject, value: Any) -> None:
    connector, record = RECORDS[index]
    path = data.draw(st.sampled_from(list(paths(record))))
    account = MAPPINGS[connector](changed(record, path, value))
    definite_findings([account])  # and the rules read whatever the mapping made of it


@FUZZ
@given(name=st.sampled_from(sorted({*AD_USER, *AD_DOMAIN} - {"objectClass"})), value=st.binary(max_size=40))
def test_no_ad_value_makes_the_mapping_raise(name: str, value: bytes) -> None:
    user = {**AD_USER, name: [value]} if name in AD_USER else AD_USER
    domain = {**AD_DOMAIN, name: [value]} if name in AD_DOMAIN else AD_DOMAIN
    result = map_active_directory("ad", [entry(DOMAIN, domain), entry(f"CN=Alice,OU=Staff,{DOMAIN}", user)])
    definite_findings(result.accounts, result.policies)


@FUZZ
@given(st.text(max_size=80))
def test_dn_keys_never_raise_and_are_their_own_keys(dn: str) -> None:
    key = dn_key(dn)
    assert dn_key(key) == key  # a key parses back to itself: matching is an equivalence, whatever the input
    first_rdn_value(dn)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["CN", "cn", "OU", "dc", "uid", "Street", "2.5.4.3", "cN ", "x", ""]),
                          st.text(alphabet=st.sampled_from(list("aZ09 =#+,;<>\\\"-~.\tÉé")), max_size=8)),
                max_size=4))
def test_plain_dns_key_as_the_general_reader_keys_them(rdns: list[tuple[str, str]]) -> None:
    """Plain DNs are keyed by their lower-cased text: the same key as the full reader gives them."""
    from connectors.dn import _general_key, dn_key_uncached

    dn = ",".join(f"{kind}={value}" for kind, value in rdns)
    assert dn_key_uncached(dn) == _general_key(dn)


@FUZZ
@given(st.binary(max_size=400))
def test_ldif_reader_raises_only_ldif_errors(data: bytes) -> None:
    try:
        list(read_ldif(data, [], []))
    except LdifError:
        pass


_LDIF_PIECES = st.sampled_from([
    b"dn: CN=A,DC=x\n", b"dn: CN=B,DC=x\r\n", b"cn: A\n", b" folded\n", b"\n", b"\r\n", b"# note\n",
    b"version: 1\n", b"objectClass: user\n", b"sAMAccountName:: YWxpY2U=\n", b"changetype: add\n",
    b"mail:< file:///etc/passwd\n", b"displayName: Zo\xc3\xab\n", b"displayName: Zo\xeb\n", b"\xef\xbb\xbf",
    b"\xff\xfe", b"search: 2\nresult: 4 Size limit exceeded\n", b"\xe6\x9d", b"\x8e\n", b"noline",
])


def _read_all(data: Any, **options: Any) -> tuple[Any, ...]:
    warnings: list[str] = []
    incomplete: list[str] = []
    try:
        entries = [(e.dn, e.attributes) for e in read_ldif(data, warnings, incomplete, **options)]
    except LdifError as exc:
        return ("error", str(exc))
    return entries, warnings, incomplete


@FUZZ
@given(st.lists(st.one_of(_LDIF_PIECES, st.binary(max_size=6)), max_size=30), st.integers(1, 9))
def test_ldif_read_from_a_stream_is_the_ldif_read_whole(pieces: list[bytes], chunk_size: int) -> None:
    # A file is read a chunk at a time: a line, a character or a byte-order mark cut between chunks reads as
    # it does in the whole file, with the same warnings (the not-UTF-8 line number too).
    data = b"".join(pieces)
    assert _read_all(io.BytesIO(data), chunk_size=chunk_size) == _read_all(data)


_PLAIN_PIECES = st.sampled_from([
    b"dn:: Q049QSxEQz14\n", b"DN: CN=C,DC=x\n", b"objectGUID:: AAAAAAAAAAAAAAAAAAAAAA==\n", b"cn:: !!\n",
    b"cn:: YQ==\x1c\n", b"\t\n", b" \n", b"a:b\n", b"memberOf: CN=G,OU=Groups,\n", b" DC=x\n", b"x\r\r\n",
    b"\r", b"\n\n", b"-\n", b"control: 1.2.3\n", b"cn;lang-en: A\n", b"\xc2\xa0\n", b"#x: y\n",
])


@FUZZ
@given(st.lists(st.one_of(_LDIF_PIECES, _PLAIN_PIECES, st.binary(max_size=6)), max_size=40), st.integers(1, 40))
def test_plain_records_read_from_their_bytes_read_as_the_general_reader_reads_them(pieces: list[bytes],
                                                                                   chunk_size: int) -> None:
    # Records of plain lines skip the text reader: every record, warning, error and line number is the same.
    data = b"".join(pieces)
    assert _read_all(io.BytesIO(data), chunk_size=chunk_size) == _read_all(data, plain=False)


@FUZZ
@given(st.text(max_size=40), st.sampled_from(["iso8601", "filetime", "generalized", "unix", "%Y-%m-%d", "%Q"]))
def test_time_parsers_raise_only_time_format_errors(text: str, fmt: str) -> None:
    for parse in (lambda: parse_timestamp(text, fmt), lambda: from_iso8601(text),
                  lambda: from_generalized_time(text)):
        try:
            parse()
        except TimeFormatError:
            pass


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("cnouCNOU=, #abz\t.0é")), max_size=40))
def test_the_fast_dn_reader_reads_as_the_general_one(dn: str) -> None:
    """DNs without escapes, quotes, '+' or ';' take a split-based path: it must agree with the full reader."""
    from connectors.dn import DnSyntaxError, _split_avas, _split_avas_escaped

    def read(reader: Callable[[str], Any]) -> Any:
        try:
            return reader(dn)
        except DnSyntaxError:
            return "error"

    assert read(_split_avas) == read(_split_avas_escaped)
