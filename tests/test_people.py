"""Acceptance: one identity across AD, Entra ID and SaaS sources, audited through the CLI over real HTTPS.

Three audits ten days apart; between the first two, Jo Leaver's AD account is disabled. Jo's Okta account
(linked by employee ID) and Google account (linked by an alias-domain address) stay enabled and in use;
the Entra account (linked by objectSid) was disabled with AD. The GitHub source fails throughout.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.ldif_fixtures import DOMAIN_SUBS, domain_head, filetime, guid, ldif, user
from tests.servers.harness import Pki
from tests.simulators.github import GitHubSimulator, Organization
from tests.simulators.google import GoogleSimulator, Workspace, google_user
from tests.simulators.okta import OktaOrg, OktaSimulator, okta_user
from tests.simulators.slack import SlackSimulator, SlackTeam, access_entry, slack_member

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
RUNS = (NOW - 20 * DAY, NOW - 10 * DAY, NOW)


def directory(as_of: datetime) -> bytes:
    leaver_enabled = as_of < NOW - 15 * DAY  # disabled between the first and the second audit
    return ldif(
        domain_head(),
        user("Jo Leaver", "jleaver", 512 if leaver_enabled else 514, 1, "mail: jleaver@example.com",
             "userPrincipalName: jleaver@example.com", "employeeID: E-100",
             f"lastLogonTimestamp: {filetime(NOW - 16 * DAY)}"),
        user("Al Stayer", "astayer", 512, 2, "mail: astayer@example.com", "userPrincipalName: astayer@example.com",
             f"lastLogonTimestamp: {filetime(NOW - 3 * DAY)}"),
    )


def entra_users() -> dict[str, object]:
    sid = "S-1-5-21-" + "-".join(map(str, DOMAIN_SUBS[1:])) + "-2001"
    return {"value": [{
        "id": "e-1", "userPrincipalName": "jo.leaver@example.onmicrosoft.com", "mail": None, "displayName": "Jo",
        "accountEnabled": False, "userType": "Member", "createdDateTime": "2024-01-01T00:00:00Z",
        "onPremisesSyncEnabled": True, "onPremisesSecurityIdentifier": sid,
        "signInActivity": {"lastSignInDateTime": (NOW - 16 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }, {  # no SID on this one: Entra Connect's source anchor, base64(objectGUID), links it
        "id": "e-2", "userPrincipalName": "al@example.onmicrosoft.com", "accountEnabled": True,
        "userType": "Member", "onPremisesSyncEnabled": True,
        "onPremisesImmutableId": base64.b64encode(guid(2).bytes_le).decode(),
        "signInActivity": {"lastSignInDateTime": (NOW - DAY).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }]}


@dataclass
class Sims:
    okta: OktaSimulator
    google: GoogleSimulator
    slack: SlackSimulator
    github: GitHubSimulator


@pytest.fixture
def sims(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sims]:
    okta = OktaOrg(token="00okta-token-for-people-test-000000", users=[
        okta_user("00u1", "jo.l@example.com", "ACTIVE", last_login=NOW - 2 * DAY, created=NOW - 400 * DAY,
                  employee="E-100"),
        okta_user("00u2", "astayer@example.com", "ACTIVE", last_login=NOW - DAY, created=NOW - 400 * DAY),
        okta_user("00u3", "night.owl@gmail.example", "ACTIVE", last_login=NOW - 5 * DAY, created=NOW - 90 * DAY),
        okta_user("00u4", "old.hand@example.com", "DEPROVISIONED", last_login=NOW - 200 * DAY,
                  created=NOW - 900 * DAY, status_changed=NOW - 150 * DAY),
    ])
    workspace = Workspace(users=[
        google_user("g1", "jleaver@example.co.uk", last_login=NOW - DAY, created=NOW - 500 * DAY),
        google_user("g2", "astayer@example.com", last_login=NOW - DAY, created=NOW - 500 * DAY, isAdmin=True),
        google_user("g3", "fresh@example.com", last_login=None, created=NOW - 60 * DAY),
    ])
    team = SlackTeam(token="xoxp-people-test-token-1234", members=[
        slack_member("U1", "astayer", "ASTAYER+slack@example.com"),
        slack_member("U2", "deploybot", is_bot=True), slack_member("USLACKBOT", "slackbot"),
    ], logins=[access_entry("U1", "astayer", (NOW - DAY).timestamp())])
    github = Organization(login="acme", owner_token="ghp_owner_token_for_people_test_00000")
    monkeypatch.setenv("OKTA_TOKEN", okta.token)
    monkeypatch.setenv("SLACK_TOKEN", team.token)
    monkeypatch.setenv("GH_TOKEN", "ghp_revoked_token_000000000000000000")  # GitHub fails: revoked
    with (OktaSimulator(okta, pki.cert, pki.key) as o, GoogleSimulator(workspace, pki.cert, pki.key) as g,
          SlackSimulator(team, pki.cert, pki.key) as s, GitHubSimulator(github, pki.cert, pki.key) as h):
        yield Sims(o, g, s, h)


def write_config(tmp_path: Path, sims: Sims, pki: Pki) -> Path:
    (tmp_path / "sa.json").write_text(sims.google.workspace.key_json(f"{sims.google.base_url}/token"))
    (tmp_path / "entra.json").write_text(json.dumps(entra_users()))
    ca = pki.ca.as_posix()
    config = tmp_path / "audit.toml"
    config.write_text(f"""
[audit]
history_db = "history.sqlite"
[[sources]]
name = "corp-ad"
type = "ldif"
path = "corp-ad.ldif"
[[sources]]
name = "entra"
type = "graph-json"
users_file = "entra.json"
[[sources]]
name = "okta"
type = "okta"
base_url = "{sims.okta.base_url}"
token_env = "OKTA_TOKEN"
ca_bundle = "{ca}"
[[sources]]
name = "workspace"
type = "google"
base_url = "{sims.google.base_url}"
credentials_file = "sa.json"
subject = "astayer@example.com"
ca_bundle = "{ca}"
[[sources]]
name = "slack"
type = "slack"
base_url = "{sims.slack.base_url}/api"
token_env = "SLACK_TOKEN"
ca_bundle = "{ca}"
[[sources]]
name = "github"
type = "github"
base_url = "{sims.github.base_url}"
organization = "acme"
token_env = "GH_TOKEN"
ca_bundle = "{ca}"
[identity]
authoritative_source = "corp-ad"
keys = ["sid", "immutable_id", "employee_id", "email"]
domain_aliases = [["example.com", "example.co.uk"]]
""")
    return config


def test_offboarded_person_still_active_in_two_saas_apps(sims: Sims, pki: Pki, tmp_path: Path) -> None:
    config = write_config(tmp_path, sims, pki)
    for as_of in RUNS:
        (tmp_path / "corp-ad.ldif").write_bytes(directory(as_of))
        result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out"),
                                           "--as-of", as_of.strftime("%Y-%m-%dT%H:%M:%SZ"), "--quiet"])
        assert result.exit_code == 3, result.output  # incomplete: GitHub failed
    out = tmp_path / "out"
    document = json.loads((out / "findings.json").read_text())

    # The failing SaaS source is said plainly; every other source was audited.
    states = {s["name"]: s["status"] for s in document["sources"]}
    assert states == {"corp-ad": "ok", "entra": "ok", "okta": "ok", "workspace": "ok", "slack": "ok",
                      "github": "failed"}
    assert any(g.startswith("source github failed") and "Bad credentials" in g for g in document["gaps"])
    report = (out / "report.html").read_text()
    assert "Incomplete audit" in report and "source github failed" in report

    gaps = {(f["source"], f["subject"]["name"]): f for f in document["findings"] if f["rule"] == "offboarding-gap"}
    assert set(gaps) == {("okta", "jo.l@example.com"), ("workspace", "jleaver@example.co.uk")}
    for finding in gaps.values():
        evidence = finding["evidence"]
        assert evidence["directory_account"] == "corp-ad:jleaver"
        assert evidence["departed_not_before"] == RUNS[0].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert evidence["departed_at"] == RUNS[1].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (evidence["days_since_departure"], evidence["days_since_departure_at_most"]) == (10, 20)
        assert evidence["used_after_departure"] is True and finding["severity"] == "critical"
    assert gaps[("okta", "jo.l@example.com")]["evidence"]["linked_by"] == "employee_id"
    assert gaps[("okta", "jo.l@example.com")]["evidence"]["account_last_activity_at"] == (
        (NOW - 2 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert gaps[("workspace", "jleaver@example.co.uk")]["evidence"]["linked_by"] == "email"

    kpi = document["kpis"]["offboarding_gaps"]
    assert kpi["value"] == 1 and kpi["detail"]["accounts"] == 2 and kpi["detail"]["used_after_departure"] == 2

    unmanaged = {(f["source"], f["subject"]["name"]) for f in document["findings"]
                 if f["rule"] == "unmanaged-account"}
    assert unmanaged == {("okta", "night.owl@gmail.example"), ("workspace", "fresh@example.com")}  # no bots

    people = list(csv.DictReader(io.StringIO((out / "people.csv").read_text(encoding="utf-8-sig"))))
    jo = next(p for p in people if p["directory_account"] == "corp-ad:jleaver")
    assert jo["directory_state"] == "disabled" and jo["enabled_accounts"] == "2"
    assert "entra:jo.leaver@example.onmicrosoft.com (disabled" in jo["accounts"] and "by sid" in jo["accounts"]
    al = next(p for p in people if p["directory_account"] == "corp-ad:astayer")
    assert "slack:astayer" in al["accounts"] and "by email" in al["accounts"]  # case and +tag normalised
    assert "entra:al@example.onmicrosoft.com (enabled" in al["accounts"] and "by immutable_id" in al["accounts"]
    assert 'id="people"' in report and "corp-ad:jleaver" in report
    # The DEPROVISIONED Okta user (left out of Okta's default listing) is in the inventory.
    accounts = (out / "accounts.csv").read_text(encoding="utf-8-sig")
    assert "old.hand@example.com" in accounts
