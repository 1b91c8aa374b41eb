"""Every row of docs/unknown-values.md, tested: one field of a real-shaped record changed, mapped, checked.

The table is the contract users read; this test reads it too, so a row cannot drift from the code.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditor.model import Account, AccountKind, PasswordPolicy
from auditor.timeconv import TimeFormatError, from_iso8601
from connectors import github, google, okta, scim, slack
from connectors.activedirectory import map_active_directory
from connectors.csv_export import CsvConfig
from connectors.csv_export import collect as collect_csv
from connectors.dn import dn_key
from connectors.graph_users import map_user as map_graph_user
from connectors.graph_users import mfa_registrations
from connectors.ldif_format import DirectoryEntry
from connectors.openldap import OpenLdapOptions, map_openldap
from connectors.values import ValueProblems
from tests.ldif_fixtures import filetime, guid, sid

TABLE = Path(__file__).resolve().parent.parent / "docs" / "unknown-values.md"
AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
VARIANTS = ("absent", "null", "wrong type", "out of range")
ABSENT = object()


def table_rows() -> list[tuple[str, str, str, str]]:
    """(connector, field, variant, outcome) for every cell of every table."""
    rows, connector = [], None
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            connector = line[3:].strip()
        match = re.fullmatch(r"\| `([^`]+)` \|(.+)\|", line.strip())
        if match and connector:
            cells = [c.strip() for c in match.group(2).split("|")]
            assert len(cells) == len(VARIANTS), line
            rows += [(connector, match.group(1), v, c) for v, c in zip(VARIANTS, cells, strict=True) if c != "—"]
    return rows


@dataclass
class Mapped:
    subject: Account | PasswordPolicy
    warnings: list[str]


# ---- values for each variant ----

def _is_time(text: str) -> bool:
    try:
        return from_iso8601(text) is not None
    except TimeFormatError:
        return False


def json_value(original: Any, variant: str, field: str) -> Any:
    if variant == "absent":
        return ABSENT
    if variant == "null":
        return None
    if variant == "wrong type":
        if isinstance(original, bool):
            return "false"  # a string boolean: truthy in Python, not a JSON boolean
        if original is None or isinstance(original, str):
            return 12345
        return "text"
    if isinstance(original, str) and _is_time(original):
        return "9999-12-31T00:00:00Z"
    if isinstance(original, int | float) and not isinstance(original, bool):
        return 10**13  # an epoch in the year 318857
    return "UNDOCUMENTED_" + str(original).upper()


LDAP_OUT_OF_RANGE = {
    "filetime": str(2650467743990000000),  # year 9999
    "generalized": "00010101000000Z",  # year 1
    "number": "123456789012345678901234",  # 24 digits: not a number any attribute holds
    "days": "99999999999",  # shadowExpire: days after 1970 past any calendar
}


def ldap_value(kind: str, variant: str) -> Any:
    """LDAP has no null: an empty value stands for it."""
    values = {"absent": ABSENT, "null": b"", "wrong type": b"garbage"}
    return values[variant] if variant in values else LDAP_OUT_OF_RANGE[kind].encode()


def set_path(record: dict[str, Any], path: str, value: Any) -> Any:
    """Set (or remove, for ABSENT) a dotted path; returns the original value."""
    *parents, last = path.split(".")
    target = record
    for name in parents:
        target = target[name]
    original = target.get(last)
    if value is ABSENT:
        target.pop(last, None)
    else:
        target[last] = value
    return original


# ---- real-shaped base records, one mapping per connector ----

DOMAIN = "DC=corp,DC=example"
AD_USER = {
    "objectClass": [b"top", b"person", b"organizationalPerson", b"user"], "sAMAccountName": [b"alice"],
    "userAccountControl": [b"512"], "objectGUID": [guid(1).bytes_le], "objectSid": [sid(21, 1, 2, 3, 1001)],
    "whenCreated": [b"20240101000000.0Z"],
    "lastLogonTimestamp": [str(filetime(AS_OF - timedelta(days=10))).encode()],
    "lastLogon": [str(filetime(AS_OF - timedelta(days=12))).encode()],
    "pwdLastSet": [str(filetime(AS_OF - timedelta(days=30))).encode()],
    "accountExpires": [str(filetime(AS_OF + timedelta(days=300))).encode()],
}
AD_DOMAIN = {
    "objectClass": [b"top", b"domain", b"domainDNS"], "objectSid": [sid(21, 1, 2, 3)],
    "minPwdLength": [b"12"], "pwdProperties": [b"1"], "maxPwdAge": [b"-36288000000000"],
    "lockoutThreshold": [b"5"], "pwdHistoryLength": [b"24"], "minPwdAge": [b"-864000000000"],
}
AD_KINDS = {"lastLogonTimestamp": "filetime", "lastLogon": "filetime", "pwdLastSet": "filetime",
            "accountExpires": "filetime", "whenCreated": "generalized"}


def map_ad(field: str, variant: str) -> Mapped:
    user, domain = copy.deepcopy(AD_USER), copy.deepcopy(AD_DOMAIN)
    target = domain if field in domain else user
    value = ldap_value(AD_KINDS.get(field, "number"), variant)
    if value is ABSENT:
        target.pop(field, None)
    else:
        target[field] = [value]
    other = {**copy.deepcopy(AD_USER), "sAMAccountName": [b"bob"], "objectGUID": [guid(2).bytes_le]}
    entries = [entry(DOMAIN, domain), entry(f"CN=Alice,OU=Staff,{DOMAIN}", user),
               entry(f"CN=Bob,OU=Staff,{DOMAIN}", other)]
    result = map_active_directory("ad", entries)
    if target is domain:
        return Mapped(next(p for p in result.policies if p.id == dn_key(DOMAIN)), result.warnings)
    return Mapped(next(a for a in result.accounts if a.username == "alice"), result.warnings)


def entry(dn: str, attributes: dict[str, list[Any]]) -> DirectoryEntry:
    return DirectoryEntry(dn=dn, attributes={k.lower(): [bytes(v) for v in vs] for k, vs in attributes.items()})


OL_POLICY_DN = "cn=Standard Policy,ou=Policies,dc=example,dc=com"
OL_POLICY = {"objectClass": [b"person", b"pwdPolicy"], "cn": [b"Standard Policy"], "sn": [b"Standard Policy"],
             "pwdAttribute": [b"userPassword"], "pwdMinLength": [b"12"], "pwdCheckQuality": [b"2"],
             "pwdMaxAge": [b"7776000"]}
OL_USER = {"objectClass": [b"inetOrgPerson"], "uid": [b"jdoe"], "cn": [b"John Doe"],
           "authTimestamp": [b"20261025081500Z"], "createTimestamp": [b"20240110120000Z"],
           "shadowExpire": [b"21000"], "pwdPolicySubentry": [b"cn=Standard Policy, ou=Policies, dc=example, dc=com"]}
OL_KINDS = {"authTimestamp": "generalized", "createTimestamp": "generalized", "shadowExpire": "days"}


def map_ol(field: str, variant: str) -> Mapped:
    user, policy = copy.deepcopy(OL_USER), copy.deepcopy(OL_POLICY)
    target = policy if field.startswith("pwd") and field != "pwdPolicySubentry" else user
    value = ldap_value(OL_KINDS.get(field, "number"), variant)
    if value is ABSENT:
        target.pop(field, None)
    else:
        target[field] = [value]
    other = {**copy.deepcopy(OL_USER), "uid": [b"asmith"]}
    result = map_openldap("ol", [entry(OL_POLICY_DN, policy), entry("uid=jdoe,ou=People,dc=example,dc=com", user),
                                 entry("uid=asmith,ou=People,dc=example,dc=com", other)], OpenLdapOptions())
    assert [a.username for a in result.accounts] == ["jdoe", "asmith"]  # the policy entry is not an account
    if target is policy:
        return Mapped(result.policies[0], result.warnings)
    return Mapped(result.accounts[0], result.warnings)


GRAPH_USER = {
    "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "userPrincipalName": "MeganB@contoso.com",
    "displayName": "Megan Bowen", "accountEnabled": True, "userType": "Member", "passwordPolicies": None,
    "createdDateTime": "2019-04-10T08:21:15Z", "onPremisesSyncEnabled": None,
    "signInActivity": {"lastSignInDateTime": "2026-10-30T07:02:11Z", "lastSuccessfulSignInDateTime":
                       "2026-10-30T07:02:11Z", "lastNonInteractiveSignInDateTime": "0001-01-01T00:00:00Z"},
}
GRAPH_REGISTRATION = {"id": GRAPH_USER["id"], "userPrincipalName": "MeganB@contoso.com", "isMfaRegistered": True}


def map_graph(field: str, variant: str) -> Mapped:
    user, registration = copy.deepcopy(GRAPH_USER), copy.deepcopy(GRAPH_REGISTRATION)
    record, path = (registration, field.split(".", 1)[1]) if field.startswith("registration.") else (user, field)
    *parents, last = path.split(".")
    holder = record
    for name in parents:
        holder = holder[name]
    set_path(record, path, json_value(holder.get(last), variant, field))
    problems = ValueProblems()
    account = map_graph_user("graph", user, sign_in_known=True, unknown_reason=None,
                             mfa=mfa_registrations([registration], problems), problems=problems)
    return Mapped(account, problems.warnings())


OKTA_USER = {"id": "00u1ero7vZFVEIYLWPBN", "status": "ACTIVE", "created": "2013-06-24T16:39:18.000Z",
             "statusChanged": "2013-06-24T16:39:19.000Z", "lastLogin": "2026-10-24T21:43:34.000Z",
             "profile": {"firstName": "Eric", "lastName": "Judy", "email": "eric.judy@example.com",
                         "login": "eric.judy@example.com"}}
GOOGLE_USER = {"id": "106463738418826530542", "primaryEmail": "liz@example.com",
               "name": {"fullName": "Elizabeth Smith"}, "isAdmin": True, "isDelegatedAdmin": False,
               "lastLoginTime": "2026-10-30T18:02:07.000Z", "creationTime": "2019-08-05T09:00:00.000Z",
               "suspended": False, "archived": False, "isEnrolledIn2Sv": True, "isEnforcedIn2Sv": True}
SLACK_MEMBER = {"id": "W012A3CDE", "name": "spengler", "deleted": False, "real_name": "Egon Spengler",
                "profile": {"email": "spengler@ghostbusters.example.com"}, "is_admin": True, "is_bot": False,
                "has_2fa": False}
SLACK_LOGIN = {"user_id": "W012A3CDE", "username": "spengler", "date_first": 1422922864, "date_last": 1793000000}
SCIM_USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "c75ad752", "userName": "jsmith",
             "emails": [{"value": "jsmith@example.com", "primary": True}], "active": True,
             "meta": {"resourceType": "User", "created": "2024-01-23T04:56:22Z"}}
GITHUB_MEMBER = {"login": "octocat", "id": 1, "type": "User", "site_admin": False}


def json_mapper(base: dict[str, Any], mapping: Callable[[dict[str, Any], ValueProblems], Account],
                ) -> Callable[[str, str], Mapped]:
    def mapped(field: str, variant: str) -> Mapped:
        record = copy.deepcopy(base)
        *parents, last = field.split(".")
        holder = record
        for name in parents:
            holder = holder[name]
        set_path(record, field, json_value(holder.get(last), variant, field))
        problems = ValueProblems()
        account = mapping(record, problems)
        return Mapped(account, problems.warnings())
    return mapped


def map_slack(field: str, variant: str) -> Mapped:
    member, login = copy.deepcopy(SLACK_MEMBER), copy.deepcopy(SLACK_LOGIN)
    record, path = (login, field.split(".", 1)[1]) if field.startswith("logins.") else (member, field)
    set_path(record, path, json_value(record.get(path), variant, field))
    problems = ValueProblems()
    access: dict[str, float | None] = {}
    slack.read_access_logs({"ok": True, "logins": [login], "paging": {"pages": 1}}, 1, access, problems)
    account = slack.map_user("slack", member, access, True, None, "", problems)
    return Mapped(account, problems.warnings())


CSV_HEADER = {"id": "User ID", "username": "Email", "enabled": "Status", "last_activity_at": "Last Sign In",
              "created_at": "Created", "mfa_registered": "MFA"}
CSV_ROW = {"User ID": "u-1", "Email": "ann@example.com", "Status": "Active", "Last Sign In": "2026-10-28 09:14",
           "Created": "2024-02-01 10:00", "MFA": "yes"}


def map_csv(tmp: Path) -> Callable[[str, str], Mapped]:
    def mapped(field: str, variant: str) -> Mapped:
        row = dict(CSV_ROW)
        column = CSV_HEADER[field]
        row[column] = {"absent": "", "wrong type": "N/A"}.get(variant, "9999-12-31 00:00")
        path = tmp / "users.csv"
        path.write_text(",".join(CSV_HEADER.values()) + "\n" + ",".join(row[c] for c in CSV_HEADER.values()) + "\n")
        config = CsvConfig.model_validate({"name": "app", "type": "csv", "path": str(path),
                                           "columns": CSV_HEADER, "date_format": "%Y-%m-%d %H:%M"})
        result = collect_csv(config, AS_OF)
        return Mapped(result.accounts[0], result.warnings)
    return mapped


def mappers(tmp: Path) -> dict[str, Callable[[str, str], Mapped]]:
    return {
        "ad": map_ad, "openldap": map_ol, "graph": map_graph, "slack": map_slack, "csv": map_csv(tmp),
        "okta": json_mapper(OKTA_USER, lambda r, p: okta.map_user("okta", r, p)),
        "google": json_mapper(GOOGLE_USER, lambda r, p: google.map_user("google", r, p)),
        "scim": json_mapper(SCIM_USER, lambda r, p: scim.map_user("scim", r, p)),
        "github": json_mapper(GITHUB_MEMBER, lambda r, _p: github.map_member(
            "github", r, outside=False, admin=False, two_factor_off=None, required=None, saml_address=None,
            credential_used=None)),
    }


# ---- outcomes ----

def _account(subject: Account | PasswordPolicy) -> Account:
    assert isinstance(subject, Account)
    return subject


def _policy(subject: Account | PasswordPolicy) -> PasswordPolicy:
    assert isinstance(subject, PasswordPolicy)
    return subject


OUTCOMES: dict[str, Callable[[Account | PasswordPolicy], bool]] = {
    "enabled unknown": lambda s: _account(s).enabled is None,
    "activity unknown": lambda s: not _account(s).activity_known,
    "never used": lambda s: _account(s).activity_known and _account(s).last_activity_at is None,
    "active": lambda s: _account(s).activity_known and _account(s).last_activity_at is not None,
    "created unknown": lambda s: _account(s).created_at is None,
    "password age unknown": lambda s: _account(s).password_last_set_at is None,
    "no expiry date": lambda s: _account(s).expires_at is None,
    "expiry unknown": lambda s: _account(s).password_never_expires is None,
    "never expires false": lambda s: _account(s).password_never_expires is False,
    "MFA unknown": lambda s: _account(s).mfa_registered is None,
    "not privileged": lambda s: _account(s).privileged is False,
    "human": lambda s: _account(s).kind == AccountKind.HUMAN,
    "no email": lambda s: _account(s).email is None,
    "policy unknown": lambda s: _account(s).password_policy_id is None,
    "strength unknown": lambda s: not _policy(s).settings_known,
    "schema default": lambda s: _policy(s).settings_known and not _policy(s).unknown_settings,
}


def check(outcome: str, mapped: Mapped, field: str) -> None:
    expected, _, warning = outcome.partition(" + ")
    if expected.endswith(" unknown") and expected[:-8] in {"max_age", "lockout_threshold", "history_length"}:
        assert expected[:-8] in _policy(mapped.subject).unknown_settings, mapped.subject
    else:
        assert OUTCOMES[expected](mapped.subject), f"expected {expected}: {mapped.subject}"
    if warning:
        name = field.rsplit(".", 1)[-1]
        name = CSV_HEADER.get(name, name)
        assert any(name in w for w in mapped.warnings), f"no warning naming {name}: {mapped.warnings}"


ROWS = table_rows()


def test_every_connector_has_a_table() -> None:
    assert {c for c, *_ in ROWS} == {"ad", "openldap", "graph", "okta", "google", "slack", "scim", "github", "csv"}
    assert len(ROWS) > 100


@pytest.mark.parametrize(("connector", "field", "variant", "outcome"), ROWS,
                         ids=[f"{c}-{f}-{v}" for c, f, v, _ in ROWS])
def test_documented_outcome(connector: str, field: str, variant: str, outcome: str, tmp_path: Path) -> None:
    check(outcome, mappers(tmp_path)[connector](field, variant), field)


def test_the_unchanged_records_are_read_without_warnings(tmp_path: Path) -> None:
    """The base records map to known values with no warning: each row's outcome comes from its one change.
    (``userType`` set to null is the no-op change here: it only decides guest or member.)"""
    for name in ("graph", "okta", "google", "scim", "slack"):
        field = {"graph": "userType", "okta": "profile.firstName", "google": "orgUnitPath", "scim": "userType",
                 "slack": "tz"}[name]
        mapped = mappers(tmp_path)[name](field, "absent")
        account = _account(mapped.subject)
        assert (account.enabled is True and account.activity_known) or name == "scim", name
        assert not mapped.warnings, (name, mapped.warnings)
    ad = map_ad("description", "absent")
    assert _account(ad.subject).enabled and _account(ad.subject).activity_known
