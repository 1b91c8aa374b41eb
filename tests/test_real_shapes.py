"""Audits of payloads shaped as vendors really send them (tests/data/<vendor>/), not as our simulators do.

Each defect of "unknown is never a default" has its regression here, on the real shape that showed it:
a global-catalog AD export without policy attributes, OpenLDAP DNs with spaces and the admin guide's
``person`` policy entry, Microsoft's own ``$select`` sign-in example, unreadable times, the lastLogonTimestamp
lag window. Each run: exit 0, findings as documented, a warning naming source, record and attribute.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from auditor.cli import main
from auditor.model import AccountKind
from connectors import github, google, okta, scim, slack
from connectors.http_json import _error_of
from connectors.values import ValueProblems
from tests.servers.harness import Pki
from tests.simulators.google import Workspace
from tests.simulators.https import HttpsSimulator, Reply, Request

DATA = Path(__file__).resolve().parent / "data"
AS_OF = "2026-11-01"


def run_audit(tmp_path: Path, sources: str, *env: tuple[str, str]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(exit code, findings.json, accounts.csv rows by username) of one audit as of the fixtures' date."""
    config = tmp_path / "audit.toml"
    config.write_text(f"[audit]\norganization = 'Example'\nhistory_db = 'h.sqlite'\n{sources}")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out"),
                                       "--as-of", AS_OF, "--quiet"], env=dict(env))
    assert result.exit_code in (0, 1), result.output
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    rows = csv.DictReader(io.StringIO((tmp_path / "out" / "accounts.csv").read_text(encoding="utf-8-sig")))
    return result.exit_code, document, {row["username"]: row for row in rows}


def open_findings(document: dict[str, Any], rule: str) -> dict[str, dict[str, Any]]:
    return {f["subject"]["name"]: f for f in document["findings"] if f["rule"] == rule and f["status"] == "open"}


def warnings(document: dict[str, Any]) -> list[str]:
    return [w for s in document["sources"] for w in s["warnings"]]


def test_global_catalog_export_unknown_policy_lag_window_and_unreadable_logon(tmp_path: Path) -> None:
    code, document, accounts = run_audit(tmp_path, f"""
[[sources]]
name = "corp-ad"
type = "ldif"
path = "{DATA / 'ad' / 'global_catalog_ldapsearch.ldif'}"
""")
    assert code == 0 and document["complete"]
    # Defect 1: no policy attributes in a GC read is "unknown strength", never a weak policy.
    assert not open_findings(document, "weak-password-policy")
    assert document["kpis"]["strong_policy_share"]["value"] is None
    assert document["kpis"]["strong_policy_share"]["detail"]["unknown"] == 6
    assert {a["policy_strength"] for a in accounts.values()} == {"unknown"}
    assert any("DC=corp,DC=example" in w and "minPwdLength" in w for w in warnings(document))
    # Defect 6: 95 days with a 14-day lag is neither active nor proven inactive.
    inactive = open_findings(document, "inactive-enabled")
    assert inactive["bstale"]["severity"] == "medium" and inactive["bstale"]["evidence"]["confidence"] == "high"
    margin = inactive["cmargin"]
    assert margin["severity"] == "low" and margin["evidence"]["days_since_last_use_between"] == [81, 95]
    assert accounts["cmargin"]["activity"] == "inactive_within_lag"
    assert document["kpis"]["inactive_enabled_accounts"]["detail"]["inactive_within_lag"] == 1
    # Defect 4: a garbled FILETIME is "activity unknown" with a warning, never a never-used finding.
    assert set(open_findings(document, "never-used-enabled")) == {"enever"}
    assert accounts["ggarbled"]["activity"] == "unknown"
    assert any("CN=Gina Garbled" in w and "lastLogonTimestamp" in w for w in warnings(document))
    assert set(open_findings(document, "password-never-expires")) == {"fforever"}
    assert accounts["dgone"]["enabled"] == "false" and accounts["aactive"]["activity"] == "active"


def test_ldapsearch_result_other_than_success_makes_the_source_partial(tmp_path: Path) -> None:
    export = (DATA / "ad" / "global_catalog_ldapsearch.ldif").read_text()
    (tmp_path / "cut.ldif").write_text(export.replace("result: 0 Success", "result: 4 Size limit exceeded"))
    config = tmp_path / "audit.toml"
    config.write_text(f"[audit]\nhistory_db = 'h.sqlite'\n[[sources]]\nname = 'ad'\ntype = 'ldif'\n"
                      f"path = '{tmp_path / 'cut.ldif'}'\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 3
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert "Size limit exceeded" in document["sources"][0]["error"] and document["sources"][0]["status"] == "partial"


def test_openldap_admin_guide_policy_and_dns_with_spaces(tmp_path: Path) -> None:
    code, document, accounts = run_audit(tmp_path, f"""
[[sources]]
name = "ol"
type = "ldif"
path = "{DATA / 'openldap' / 'admin_guide_ppolicy.ldif'}"
privileged_groups = ["ldap-admins"]
""")
    assert code == 0
    # Defect 5: the policy entry (objectClass person + pwdPolicy) is a policy, not an account.
    assert set(accounts) == {"jdoe", "asmith", "rroe", "mlocked"}
    # Defect 2: "cn=Standard Policy, ou=Policies, ..." with spaces, other case and \20 all find the policy.
    assert {accounts[u]["password_policy"] for u in ("jdoe", "asmith", "rroe")} == {"ppolicy Standard Policy"}
    assert accounts["jdoe"]["policy_strength"] in ("strong", "weak")
    assert accounts["asmith"]["privileged"] == "true"  # member written "uid=ASMITH, ou=People, ..."
    # Defect 4: a non-date authTimestamp is "activity unknown", named in a warning.
    assert accounts["rroe"]["activity"] == "unknown"
    assert any("uid=rroe" in w and "authTimestamp" in w for w in warnings(document))
    assert accounts["mlocked"]["enabled"] == "false"
    assert set(open_findings(document, "inactive-enabled")) == {"asmith"}


def test_microsofts_documented_sign_in_select_says_nothing_about_enabled(tmp_path: Path) -> None:
    code, document, accounts = run_audit(tmp_path, f"""
[[sources]]
name = "entra"
type = "graph-json"
users_file = "{DATA / 'graph' / 'users_signin_select.json'}"
""")
    assert code == 0
    # Defect 3: without accountEnabled, both are "enabled unknown", not disabled (and not silently fine).
    assert {a["enabled"] for a in accounts.values()} == {"unknown"}
    assert document["kpis"]["enabled_unknown_accounts"]["value"] == 2
    assert not open_findings(document, "inactive-enabled")
    assert {a["password_never_expires"] for a in accounts.values()} == {"unknown"}
    assert any("2 record(s) have no accountEnabled" in w for w in warnings(document))
    # 0001-01-01T00:00:00Z is Graph's "never", not an unreadable time; "" is no successful sign-in yet.
    assert accounts["AdeleV@contoso.com"]["last_activity_at"] == "2021-06-17T16:41:33Z"
    assert not any("0001-01-01" in w for w in warnings(document))


def test_graph_pages_with_odd_values(tmp_path: Path) -> None:
    code, document, accounts = run_audit(tmp_path, f"""
[[sources]]
name = "entra"
type = "graph-json"
users_file = "{DATA / 'graph' / 'users_pages_odd_values.json'}"
registration_details_file = "{DATA / 'graph' / 'user_registration_details.json'}"
""")
    assert code == 0
    said = warnings(document)
    assert accounts["PattiF@contoso.com"]["enabled"] == "unknown"  # "false" is a string, not a boolean
    assert any("PattiF@contoso.com" in w and "accountEnabled" in w for w in said)
    assert accounts["PattiF@contoso.com"]["password_never_expires"] == "unknown"  # passwordPolicies not given
    assert accounts["LeeG@contoso.com"]["activity"] == "unknown"  # integer timestamp
    assert any("LeeG@contoso.com" in w and "lastSignInDateTime" in w for w in said)
    assert any("LeeG@contoso.com" in w and "createdDateTime" in w for w in said)
    assert accounts["LeeG@contoso.com"]["mfa_registered"] == "unknown"  # no isMfaRegistered in its record
    assert accounts["IsaiahL@contoso.com"]["activity"] == "unknown"  # signInActivity as a string
    assert accounts["MeganB@contoso.com"]["password_never_expires"] == "false"  # null: none set
    assert set(open_findings(document, "inactive-enabled")) == {"svc-backup@contoso.com"}
    assert set(open_findings(document, "password-never-expires")) == {"svc-backup@contoso.com"}
    assert set(open_findings(document, "mfa-not-registered")) == {"svc-backup@contoso.com"}
    assert set(open_findings(document, "never-used-enabled")) == {"guest_fabrikam.com#EXT#@contoso.onmicrosoft.com"}


def csv_source(date_format: str) -> str:
    return f"""
[[sources]]
name = "app"
type = "csv"
path = "{DATA / 'csv' / 'saas_users_report.csv'}"
date_format = "{date_format}"
[sources.columns]
id = "User ID"
username = "Email"
enabled = "Status"
last_activity_at = "Last Sign In"
created_at = "Created"
"""


def test_saas_csv_report_with_unreadable_cells(tmp_path: Path) -> None:
    code, document, accounts = run_audit(tmp_path, csv_source("%Y-%m-%d %H:%M"))
    assert code == 0
    said = warnings(document)
    assert accounts["eve@example.com"]["enabled"] == "unknown"  # "Pending invite": neither true nor false
    assert any("row 6" in w and "Status" in w for w in said)
    assert accounts["eve@example.com"]["activity"] == "unknown"  # "N/A"
    assert accounts["fox@example.com"]["activity"] == "unknown"  # 31/02/2026 25:61
    assert any("row 7" in w and "Last Sign In" in w for w in said)
    assert set(open_findings(document, "never-used-enabled")) == {"dee@example.com"}  # an empty cell: never
    assert set(open_findings(document, "inactive-enabled")) == {"bo@example.com"}


def test_invalid_date_format_is_unknown_activity_not_never_used(tmp_path: Path) -> None:
    code, document, accounts = run_audit(tmp_path, csv_source("%Q-%m"))
    assert code == 0
    assert not open_findings(document, "inactive-enabled")
    assert set(open_findings(document, "never-used-enabled")) == {"dee@example.com"}  # empty: never, in any format
    assert {accounts[u]["activity"] for u in ("ann@example.com", "bo@example.com", "fox@example.com")} == {"unknown"}
    assert any("%Q-%m" in w and "Last Sign In" in w for w in warnings(document))


# ---- SaaS payloads, mapped directly ----

def load(*parts: str) -> Any:
    return json.loads((DATA.joinpath(*parts)).read_text())


def test_okta_documented_users() -> None:
    problems = ValueProblems()
    users = {a.username: a for a in (okta.map_user("okta", u, problems) for u in load("okta", "list_users.json"))}
    assert users["eric.judy@example.com"].enabled and users["eric.judy@example.com"].activity_known
    assert users["eric.judy@example.com"].email_aliases == ["eric@example.org"]
    assert users["isaac.brock@example.com"].invitation_pending_since is not None
    never = users["never.used@example.com"]
    assert never.activity_known and never.last_activity_at is None  # documented: null until the first sign-in
    assert users["sam@example.com"].enabled is False and users["sam@example.com"].disabled_at is not None
    projected = users["projected@example.com"]  # no status, no lastLogin: a projection, not a verdict
    assert projected.enabled is None and not projected.activity_known
    assert any("projected@example.com" in w and "status" in w for w in problems.warnings())


def test_google_users_with_a_fields_projection() -> None:
    problems = ValueProblems()
    page = load("google", "users_list_fields_projection.json")
    users = {a.username: a for a in (google.map_user("google", u, problems) for u in page["users"])}
    liz = users["liz@example.com"]
    assert liz.enabled and liz.privileged and liz.mfa_registered and liz.identifiers["employee_id"] == "E1001"
    new = users["new.hire@example.com"]
    assert new.activity_known and new.last_activity_at is None  # 1970-01-01: never signed in
    assert users["gone@example.com"].enabled is False
    projected = users["projected@example.com"]
    assert projected.enabled is None and not projected.activity_known and projected.mfa_registered is None
    assert any("projected@example.com" in w for w in problems.warnings())


def test_slack_documented_members_and_access_logs() -> None:
    problems = ValueProblems()
    access: dict[str, float | None] = {}
    pages, _oldest = slack.read_access_logs(load("slack", "team_access_logs.json"), 1, access, problems)
    assert pages == 1
    members = {m["name"]: slack.map_user("slack", m, access, True, None, "", problems)
               for m in load("slack", "users_list.json")["members"]}
    assert members["spengler"].privileged and members["spengler"].mfa_registered is False
    assert members["spengler"].activity_known and members["spengler"].last_activity_at is not None
    assert not members["glinda"].activity_known  # date_last "yesterday"
    assert any("W07QCRPA4" in w and "date_last" in w for w in problems.warnings())
    assert members["former"].enabled is False and members["slackbot"].kind == AccountKind.BOT
    assert not members["slackbot"].activity_known  # bots never sign in: no "never used" for Slackbot
    assert members["unsaid"].enabled is None  # no "deleted" flag


def test_scim_rfc_7643_minimal_user_has_no_active() -> None:
    problems = ValueProblems()
    users = {a.username: a for a in (scim.map_user("scim", u, problems)
                                     for u in load("scim", "list_response.json")["Resources"])}
    assert users["bjensen@example.com"].enabled is None  # RFC 7643 8.1: no "active" at all
    assert users["jsmith@example.com"].enabled is True and users["jsmith@example.com"].email == "jsmith@example.com"
    assert users["left@example.com"].enabled is None  # "False" as a string
    assert any("left@example.com" in w and "active" in w for w in problems.warnings())


def test_github_documented_members() -> None:
    members = {m["login"]: github.map_member("github", m, outside=False, admin=False, two_factor_off=None,
                                             required=None, saml_address=None, credential_used=None)
               for m in load("github", "org_members.json")}
    assert members["octocat"].kind == AccountKind.HUMAN and members["deploy-bot[bot]"].kind == AccountKind.BOT
    assert {a.activity_known for a in members.values()} == {False}  # GitHub gives no member activity
    assert {a.mfa_registered for a in members.values()} == {None}  # not an owner's token: 2FA unknown


@pytest.mark.parametrize(("status", "path", "code", "message"), [
    (403, ("graph", "error_authorization_request_denied.json"), "Authorization_RequestDenied", "Insufficient"),
    (401, ("okta", "error_invalid_token.json"), "E0000011", "Invalid token"),
])
def test_vendor_error_bodies(status: int, path: tuple[str, str], code: str, message: str) -> None:
    response = requests.Response()
    response.status_code = status
    response._content = (DATA.joinpath(*path)).read_bytes()
    response.headers["Content-Type"] = "application/json"
    parsed_code, parsed_message = _error_of(response)
    assert parsed_code == code and message in parsed_message


# ---- the same payloads through the whole audit, served over HTTPS as the vendor would ----

class Replay(HttpsSimulator):
    """Serves stored vendor payloads by path; later pages of a paged listing are empty."""

    def __init__(self, routes: dict[str, Any], *args: Any) -> None:
        super().__init__(*args)
        self.routes = routes

    def route(self, request: Request) -> Reply:
        served = [r for r in self.requests if r.path == request.path]
        body = self.routes.get(request.path)
        if body is None:
            return Reply(404, {"error": "not_found"})
        return Reply(200, body(request, len(served)) if callable(body) else body)


@pytest.fixture
def replay(pki: Pki) -> Iterator[Any]:
    started: list[Replay] = []

    def start(routes: dict[str, Any]) -> Replay:
        simulator = Replay(routes, pki.cert, pki.key)
        simulator.__enter__()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.__exit__()


def test_okta_and_slack_payloads_through_a_whole_audit(replay: Any, pki: Pki, tmp_path: Path) -> None:
    users = load("okta", "list_users.json")
    okta_sim = replay({"/api/v1/users": lambda request, _n: [] if "filter" in request.query else users})
    members = load("slack", "users_list.json")
    slack_sim = replay({
        "/api/users.list": lambda _r, n: members if n <= 1 else {"ok": True, "members": [],
                                                                 "response_metadata": {"next_cursor": ""}},
        "/api/team.accessLogs": load("slack", "team_access_logs.json"),
    })
    code, document, accounts = run_audit(tmp_path, f"""
[[sources]]
name = "okta"
type = "okta"
base_url = "{okta_sim.base_url}"
token_env = "OKTA_TOKEN"
ca_bundle = "{pki.ca}"
read_policies = false
read_system_log = false
[[sources]]
name = "slack"
type = "slack"
base_url = "{slack_sim.base_url}/api"
token_env = "SLACK_TOKEN"
ca_bundle = "{pki.ca}"
""", ("OKTA_TOKEN", "00abcdefghijklmnopqrstuvwxyz0123456789ABCD"), ("SLACK_TOKEN", "xoxp-1-2-3-abcdef"))
    assert code == 0 and document["complete"]
    assert accounts["projected@example.com"]["enabled"] == "unknown"
    assert accounts["unsaid"]["enabled"] == "unknown" and accounts["glinda"]["activity"] == "unknown"
    assert document["kpis"]["enabled_unknown_accounts"]["value"] == 2
    said = warnings(document)
    assert any("projected@example.com" in w and "status" in w for w in said)
    assert any("W07QCRPA4" in w and "date_last" in w for w in said)
    assert set(open_findings(document, "never-used-enabled")) == {"never.used@example.com"}


def test_google_scim_and_github_payloads_through_a_whole_audit(replay: Any, pki: Pki, tmp_path: Path) -> None:
    google_page = load("google", "users_list_fields_projection.json")
    google_sim = replay({
        "/token": {"access_token": "ya29.replayed-access-token", "expires_in": 3599, "token_type": "Bearer"},
        "/admin/directory/v1/users": lambda request, _n: {"users": []} if "pageToken" in request.query
        else google_page,
    })
    key = tmp_path / "sa.json"
    key.write_text(Workspace().key_json(f"{google_sim.base_url}/token"))
    scim_sim = replay({"/v2/Users": load("scim", "list_response.json")})
    members = load("github", "org_members.json")
    github_sim = replay({
        "/orgs/acme": {"login": "acme", "id": 9},  # not an owner's token: no 2FA requirement field
        "/orgs/acme/members": lambda request, _n: [] if request.query.get("role") == "admin"
        or "filter" in request.query else members,
        "/orgs/acme/outside_collaborators": [],
    })
    code, document, accounts = run_audit(tmp_path, f"""
[[sources]]
name = "workspace"
type = "google"
base_url = "{google_sim.base_url}"
credentials_file = "{key}"
subject = "admin@example.com"
ca_bundle = "{pki.ca}"
[[sources]]
name = "scim"
type = "scim"
base_url = "{scim_sim.base_url}/v2"
token_env = "SCIM_TOKEN"
ca_bundle = "{pki.ca}"
[[sources]]
name = "github"
type = "github"
base_url = "{github_sim.base_url}"
organization = "acme"
token_env = "GH_TOKEN"
read_saml_identities = false
ca_bundle = "{pki.ca}"
""", ("SCIM_TOKEN", "scim-token-value"), ("GH_TOKEN", "ghp_replayedtokenvalue"))
    assert code == 0 and document["complete"], document["gaps"]
    assert accounts["projected@example.com"]["enabled"] == "unknown"  # Google: a fields projection
    assert accounts["new.hire@example.com"]["activity"] != "unknown"  # 1970-01-01: never signed in
    assert accounts["bjensen@example.com"]["enabled"] == "unknown"  # SCIM: RFC 7643's user has no active
    assert accounts["left@example.com"]["enabled"] == "unknown"  # "False" as a string
    assert {accounts[u]["activity"] for u in ("octocat", "hubot")} == {"unknown"}  # GitHub: no member activity
    said = warnings(document)
    assert any("left@example.com" in w and "active" in w for w in said)
    assert any("projected@example.com" in w for w in said)


def test_managers_as_okta_and_google_send_them() -> None:
    """Okta's profile.managerId is free text (a string, a number, or junk); Google's relations carry the manager
    as a typed relation. Absent, empty or unreadable: no manager (the account goes to an owner or unassigned)."""
    from connectors.google import map_user as google_user
    from connectors.okta import map_user as okta_user
    from connectors.values import ValueProblems

    problems = ValueProblems()
    okta = [okta_user("okta", u, problems) for u in json.loads((DATA / "okta" / "users_with_manager.json").read_text())]
    assert [a.manager for a in okta] == ["ref:00u1ero7vZFVEIYLWPBM", "ref:1042", None]
    assert any("profile.managerId" in w for w in problems.warnings())
    users = json.loads((DATA / "google" / "users_relations.json").read_text())["users"]
    assert [google_user("google", u, ValueProblems()).manager for u in users] == ["ref:boss@example.com", None, None]
