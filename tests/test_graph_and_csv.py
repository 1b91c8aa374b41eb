import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.model import AccountKind, ChangeAction
from connectors.base import SourceError
from connectors.csv_export import CsvConfig
from connectors.csv_export import collect as collect_csv
from connectors.graph_json import GraphJsonConfig
from connectors.graph_json import collect as collect_graph
from connectors.graph_users import CLOUD_POLICY_ID, WEAK_CLOUD_POLICY_ID

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


def graph_config(tmp_path: Path, users: object, audits: object = None, mfa: object = None) -> GraphJsonConfig:
    (tmp_path / "users.json").write_text(json.dumps(users))
    data: dict[str, object] = {"name": "entra", "type": "graph-json", "users_file": str(tmp_path / "users.json")}
    if audits is not None:
        (tmp_path / "audits.json").write_text(json.dumps(audits))
        data["audits_file"] = str(tmp_path / "audits.json")
    if mfa is not None:
        (tmp_path / "mfa.json").write_text(json.dumps(mfa))
        data["registration_details_file"] = str(tmp_path / "mfa.json")
    return GraphJsonConfig.model_validate(data)


def test_graph_pages_sign_in_activity_and_policies(tmp_path: Path) -> None:
    pages = [
        {"value": [
            {"id": "u1", "userPrincipalName": "a@x.test", "accountEnabled": True, "userType": "Member",
             "createdDateTime": "2024-01-01T00:00:00Z", "passwordPolicies": "DisablePasswordExpiration",
             "signInActivity": {"lastSuccessfulSignInDateTime": "2026-06-01T10:00:00Z",
                                "lastSignInDateTime": "2026-06-20T10:00:00Z"}},
            {"id": "u2", "userPrincipalName": "g_ext#EXT#@x.test", "accountEnabled": True, "userType": "Guest",
             "externalUserState": "PendingAcceptance", "externalUserStateChangeDateTime": "2026-01-05T00:00:00Z",
             "signInActivity": {"lastSignInDateTime": "2025-01-01T00:00:00Z",
                                "lastNonInteractiveSignInDateTime": "2025-03-01T00:00:00.1234567Z"}},
        ], "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=x"},
        {"value": [
            {"id": "u3", "userPrincipalName": "c@x.test", "accountEnabled": False, "signInActivity": None,
             "passwordPolicies": "DisableStrongPassword"},
            {"id": "u4", "userPrincipalName": "d@x.test", "accountEnabled": True, "onPremisesSyncEnabled": True,
             "onPremisesSecurityIdentifier": "S-1-5-21-1-2-3-1105", "signInActivity": {}},
        ]},
    ]
    mfa = {"value": [{"id": "u1", "isMfaRegistered": True}, {"id": "u2", "isMfaRegistered": False}]}
    result = collect_graph(graph_config(tmp_path, pages, mfa=mfa), AS_OF)
    accounts = {a.id: a for a in result.accounts}
    # Successful sign-ins win over later attempts (which may have failed).
    assert accounts["u1"].last_activity_at == datetime(2026, 6, 1, 10, tzinfo=UTC)
    assert accounts["u1"].last_activity_attribute == "signInActivity.lastSuccessfulSignInDateTime"
    assert accounts["u1"].password_never_expires and accounts["u1"].mfa_registered is True
    assert accounts["u2"].kind == AccountKind.GUEST and accounts["u2"].mfa_registered is False
    assert accounts["u2"].invitation_pending_since == datetime(2026, 1, 5, tzinfo=UTC)
    assert accounts["u1"].invitation_pending_since is None
    assert accounts["u2"].last_activity_attribute == "signInActivity.lastNonInteractiveSignInDateTime"
    assert accounts["u3"].activity_known and accounts["u3"].last_activity_at is None and not accounts["u3"].enabled
    assert accounts["u3"].mfa_registered is None  # not in the registration report: unknown, not "no"
    assert accounts["u1"].password_policy_id == CLOUD_POLICY_ID
    assert accounts["u3"].password_policy_id == WEAK_CLOUD_POLICY_ID
    assert accounts["u4"].password_policy_id is None  # synced: the on-premises policy governs
    assert accounts["u4"].identifiers["on_prem_sid"] == "S-1-5-21-1-2-3-1105"
    assert {p.id for p in result.policies} == {CLOUD_POLICY_ID, WEAK_CLOUD_POLICY_ID}


def test_graph_without_sign_in_activity_is_unknown(tmp_path: Path) -> None:
    result = collect_graph(graph_config(tmp_path, {"value": [{"id": "u1", "accountEnabled": True}]}), AS_OF)
    assert not result.accounts[0].activity_known
    assert "P1/P2" in (result.accounts[0].activity_unknown_reason or "")


def test_graph_audits_use_exact_activity_names(tmp_path: Path) -> None:
    def record(name: str, result: str = "success") -> dict[str, object]:
        return {"id": name, "activityDisplayName": name, "activityDateTime": "2026-06-10T08:00:00Z",
                "result": result, "initiatedBy": {"app": {"displayName": "HR sync"}},
                "targetResources": [{"id": "u1", "type": "User", "userPrincipalName": "a@x.test"}]}
    audits = {"value": [record("Add user"), record("Disable account"), record("Reset password (by admin)"),
                        record("Reset user password"), record("Delete user", "failure")]}
    result = collect_graph(graph_config(tmp_path, {"value": []}, audits=audits), AS_OF)
    assert [e.action for e in result.change_events] == [
        ChangeAction.CREATED, ChangeAction.DISABLED, ChangeAction.PASSWORD_RESET]
    assert result.change_events[0].actor == "HR sync"


def test_graph_rejects_non_graph_json(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="expected a Graph response"):
        collect_graph(graph_config(tmp_path, {"users": []}), AS_OF)
    (tmp_path / "users.json").write_text("{not json")
    config = GraphJsonConfig.model_validate(
        {"name": "e", "type": "graph-json", "users_file": str(tmp_path / "users.json")})
    with pytest.raises(SourceError, match="not valid JSON"):
        collect_graph(config, AS_OF)


def csv_config(tmp_path: Path, text: str, **extra: object) -> CsvConfig:
    (tmp_path / "users.csv").write_text(text, encoding="utf-8")
    return CsvConfig.model_validate({
        "name": "app", "type": "csv", "path": str(tmp_path / "users.csv"),
        "columns": {"id": "ID", "username": "Login", "enabled": "Status", "last_activity_at": "Last Login",
                    "kind": "Type", "groups": "Roles", "privileged": "Admin"},
        "kind_map": {"Bot": "service"}, **extra,
    })


def test_csv_mapping(tmp_path: Path) -> None:
    text = ("ID,Login,Status,Last Login,Type,Roles,Admin\n"
            "1,ann,Active,2026-06-01T00:00:00Z,human,sales;crm-admin,yes\n"
            "2,bot,Active,2026-06-29T00:00:00+02:00,Bot,,no\n"
            "3,cid,Suspended,,human,,no\n"
            "4,dee,weird,not-a-date,alien,,maybe\n")
    result = collect_csv(csv_config(tmp_path, text), AS_OF)
    accounts = {a.username: a for a in result.accounts}
    assert accounts["ann"].enabled and accounts["ann"].privileged and accounts["ann"].groups == ["sales", "crm-admin"]
    assert accounts["bot"].kind == AccountKind.SERVICE
    assert accounts["bot"].last_activity_at == datetime(2026, 6, 28, 22, tzinfo=UTC)
    assert not accounts["cid"].enabled and accounts["cid"].activity_known and accounts["cid"].last_activity_at is None
    # An unreadable status is unknown (neither enabled nor disabled), and said in a warning naming row and column;
    # so is an unreadable last-login cell: activity unknown, never "never used".
    assert accounts["dee"].enabled is None and accounts["dee"].kind == AccountKind.UNKNOWN
    assert any("unreadable value: row 5: Status" in w for w in result.warnings)
    assert not accounts["dee"].activity_known and any("row 5: Last Login" in w for w in result.warnings)


def test_csv_missing_column_and_events(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="Last Login"):
        collect_csv(csv_config(tmp_path, "ID,Login,Status,Type,Roles,Admin\n1,a,Active,human,,no\n"), AS_OF)
    (tmp_path / "events.csv").write_text("When,User,What,Who\n2026-06-01T10:00:00Z,1,User Created,hr\n"
                                         "2026-06-02T10:00:00Z,1,Login,ann\n2026-06-03T10:00:00Z,1,disabled,hr\n")
    config = csv_config(
        tmp_path, "ID,Login,Status,Last Login,Type,Roles,Admin\n1,a,Active,,human,,no\n",
        events_path=str(tmp_path / "events.csv"),
        event_columns={"at": "When", "account_id": "User", "action": "What", "actor": "Who"},
        action_map={"User Created": "created"},
    )
    result = collect_csv(config, AS_OF)
    assert [(e.action, e.actor) for e in result.change_events] == [
        (ChangeAction.CREATED, "hr"), (ChangeAction.DISABLED, "hr")]
    assert any("'Login' (1)" in w for w in result.warnings)
