"""The entra connector: real msal and requests over real HTTPS against the local Graph simulator."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from connectors.base import CollectContext, SourceError
from connectors.entra import EntraConfig, collect
from tests.servers.harness import Pki
from tests.simulators.graph import Fault, GraphSimulator, Tenant, make_tenant

SECRET = "Sim-Client-Secret-Value-42"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def tenant() -> Tenant:
    return make_tenant(1200, NOW, client_secret=SECRET)


@pytest.fixture
def sim(tenant: Tenant, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphSimulator]:
    monkeypatch.setenv("ENTRA_SECRET", SECRET)
    with GraphSimulator(tenant, pki.cert, pki.key) as simulator:
        yield simulator


def config(sim: GraphSimulator, pki: Pki, **overrides: object) -> EntraConfig:
    settings: dict[str, object] = {
        "name": "entra", "type": "entra", "tenant_id": sim.tenant.tenant_id, "client_id": sim.tenant.client_id,
        "client_secret_env": "ENTRA_SECRET", "authority_host": sim.base_url, "graph_endpoint": sim.base_url,
        "ca_bundle": str(pki.ca), **overrides,
    }
    return EntraConfig.model_validate(settings)


def write_config_file(path: Path, sim: GraphSimulator, pki: Pki) -> None:
    """An audit config with one entra source pointed at the simulator, history beside it."""
    path.write_text(
        "[audit]\nhistory_db = 'h.sqlite'\n[[sources]]\nname = 'entra'\ntype = 'entra'\n"
        f"tenant_id = '{sim.tenant.tenant_id}'\nclient_id = '{sim.tenant.client_id}'\n"
        "client_secret_env = 'ENTRA_SECRET'\n"
        f"authority_host = '{sim.base_url}'\ngraph_endpoint = '{sim.base_url}'\nca_bundle = '{pki.ca}'\n")


def test_many_pages_throttling_and_a_503_mid_paging(sim: GraphSimulator, pki: Pki) -> None:
    sim.faults["/v1.0/users"] = [None, Fault(429, retry_after="1"), Fault(429), None, Fault(503)]
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 1200 and result.partial_error is None
    assert len(sim.graph_requests("/v1.0/users")) == 3 + 3  # three pages of 500, three answered with faults
    assert any("waited" in w and "Retry-After" in w for w in result.warnings)
    accounts = {a.id: a for a in result.accounts}
    admin = accounts["00000000-0000-0000-0000-00000000000a"]
    assert admin.privileged and admin.privilege_evidence == ["directory role Global Administrator"]
    assert sum(1 for a in result.accounts if a.mfa_registered is False) == 300
    # The generated Global Administrator is also one of the dormant users: last success a year ago.
    assert admin.activity_known and admin.last_activity_at is not None
    assert (NOW - admin.last_activity_at).days == 365
    never = accounts["00000000-0000-0000-0000-000000000032"]  # user 49: never signed in
    assert never.activity_known and never.last_activity_at is None
    assert all(a.last_activity_attribute in (None, "signInActivity.lastSuccessfulSignInDateTime")
               for a in result.accounts)


def test_throttling_is_bounded(sim: GraphSimulator, pki: Pki) -> None:
    sim.faults["/v1.0/users"] = [Fault(429, retry_after="3600")]
    with pytest.raises(SourceError, match="gave up after waiting"):
        collect(config(sim, pki, max_throttle_wait=60), CollectContext(NOW))
    sim.faults["/v1.0/users"] = [Fault(503)] * 3
    with pytest.raises(SourceError, match="HTTP 503"):
        collect(config(sim, pki, max_attempts=3), CollectContext(NOW))


def test_unlicensed_tenant_means_activity_unknown(sim: GraphSimulator, pki: Pki) -> None:
    sim.tenant.licensed = False
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 1200
    assert not any(a.activity_known for a in result.accounts)
    reason = result.accounts[0].activity_unknown_reason or ""
    assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in reason and "P1/P2" in reason


def test_missing_permissions_degrade_to_unknown(sim: GraphSimulator, pki: Pki) -> None:
    sim.tenant.forbidden = {"/v1.0/reports/authenticationMethods/userRegistrationDetails",
                            "/v1.0/roleManagement/directory/roleAssignments"}
    result = collect(config(sim, pki), CollectContext(NOW))
    assert all(a.mfa_registered is None for a in result.accounts)  # unknown, never "not registered"
    assert not any(a.privileged for a in result.accounts)
    assert any("MFA registration not readable" in w for w in result.warnings)
    assert any("directory roles not readable" in w for w in result.warnings)


def test_token_error_shows_aadsts_and_never_the_secret(sim: GraphSimulator, pki: Pki, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "Wrong-Secret-Never-Shown-7"
    monkeypatch.setenv("ENTRA_SECRET", wrong)
    with pytest.raises(SourceError, match=r"token request failed: invalid_client: AADSTS7000215: Invalid client"):
        collect(config(sim, pki), CollectContext(NOW))
    write_config_file(tmp_path / "audit.toml", sim, pki)
    result = CliRunner().invoke(
        main, ["run", "--config", str(tmp_path / "audit.toml"), "--output", str(tmp_path / "o")])
    assert result.exit_code == 3
    assert wrong not in result.output
    for path in (p for p in (tmp_path / "o").rglob("*") if p.is_file()):  # every file of every run
        assert wrong not in path.read_text("utf-8-sig")
    document = json.loads((tmp_path / "o" / "findings.json").read_text())
    assert "AADSTS7000215" in document["sources"][0]["error"]


@pytest.mark.parametrize("form", ["pem", "pfx"])
def test_certificate_credentials(form: str, tenant: Tenant, pki: Pki, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    key, cert = tmp_path / "app.key", tmp_path / "app.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=auditor-app", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    tenant.client_secret = None
    tenant.certificate_pem = cert.read_text()
    extra: dict[str, object] = {"client_secret_env": None}
    if form == "pem":
        bundle = tmp_path / "app.pem"
        bundle.write_text(key.read_text() + cert.read_text())
        extra["certificate_file"] = str(bundle)
    else:
        bundle = tmp_path / "app.pfx"
        subprocess.run(["openssl", "pkcs12", "-export", "-inkey", str(key), "-in", str(cert), "-out", str(bundle),
                        "-passout", "pass:Pfx-Passphrase-9"], check=True, capture_output=True)
        monkeypatch.setenv("ENTRA_CERT_PASSWORD", "Pfx-Passphrase-9")
        extra |= {"certificate_file": str(bundle), "certificate_password_env": "ENTRA_CERT_PASSWORD"}
    with GraphSimulator(tenant, pki.cert, pki.key) as sim:
        result = collect(EntraConfig.model_validate(config(sim, pki).model_dump() | extra), CollectContext(NOW))
        assert len(result.accounts) == 1200
        [form_data] = sim.token_requests
        assert form_data["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        assert "client_secret" not in form_data


def test_scope_follows_the_graph_endpoint_and_national_clouds() -> None:
    def endpoints(**overrides: object) -> tuple[str, str, str]:
        return EntraConfig.model_validate({"name": "e", "type": "entra", "tenant_id": "t", "client_id": "c",
                                           "client_secret_env": "X", **overrides}).endpoints()
    assert endpoints() == ("https://login.microsoftonline.com", "https://graph.microsoft.com",
                           "https://graph.microsoft.com/.default")
    assert endpoints(cloud="usgov") == ("https://login.microsoftonline.us", "https://graph.microsoft.us",
                                        "https://graph.microsoft.us/.default")
    assert endpoints(cloud="usgov-dod")[2] == "https://dod-graph.microsoft.us/.default"
    assert endpoints(cloud="china") == ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn",
                                        "https://microsoftgraph.chinacloudapi.cn/.default")


def test_scope_sent_matches_graph_endpoint(sim: GraphSimulator, pki: Pki) -> None:
    collect(config(sim, pki), CollectContext(NOW))
    assert sim.token_requests[0]["scope"] == [f"{sim.base_url}/.default"]


def test_directory_audits_and_retention_note(sim: GraphSimulator, pki: Pki) -> None:
    sim.tenant.audits = [
        {"id": f"a{n}", "activityDisplayName": name, "activityDateTime": (NOW - timedelta(days=days)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"), "result": "success", "category": "UserManagement",
         "initiatedBy": {"user": {"userPrincipalName": "admin@contoso.test"}},
         "targetResources": [{"id": "u1", "type": "User", "userPrincipalName": "user1@contoso.test"}]}
        for n, (name, days) in enumerate([("Add user", 2), ("Disable account", 5), ("Reset password (by admin)", 40)])
    ]
    result = collect(config(sim, pki), CollectContext(NOW))
    assert [e.action.value for e in result.change_events] == ["created", "disabled"]
    long = collect(config(sim, pki, audit_days=60), CollectContext(NOW))
    assert len(long.change_events) == 3
    assert any("kept 30 days at most" in w for w in long.warnings)
    # Unset, audit_days is the audit's own period ([audit] period_days), as documented.
    by_period = collect(config(sim, pki), CollectContext(NOW, period_days=60))
    assert len(by_period.change_events) == 3


def test_config_rules() -> None:
    base = {"name": "e", "type": "entra", "tenant_id": "t", "client_id": "c"}
    with pytest.raises(ValueError, match="exactly one of"):
        EntraConfig.model_validate(base)
    with pytest.raises(ValueError, match="exactly one of"):
        EntraConfig.model_validate(base | {"client_secret_env": "A", "certificate_file": "x.pem"})
    with pytest.raises(ValueError, match="https"):
        EntraConfig.model_validate(base | {"client_secret_env": "A", "graph_endpoint": "http://graph.local"})


def test_users_delta_between_audits(sim: GraphSimulator, pki: Pki) -> None:
    first = collect(config(sim, pki), CollectContext(NOW))
    assert first.state["users_delta_link"].startswith(f"{sim.base_url}/v1.0/users/delta?$deltatoken=")
    sim.change_user(str(uuid.UUID(int=5)), accountEnabled=False)
    sim.change_user(str(uuid.UUID(int=6)), displayName="Renamed")
    sim.remove_user(str(uuid.UUID(int=7)))
    sim.add_user({"id": "new-user", "userPrincipalName": "new@contoso.test", "accountEnabled": True,
                  "createdDateTime": (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    later = NOW + timedelta(days=1)
    second = collect(config(sim, pki), CollectContext(later, previous_state=first.state))
    delta = {(e.account_id, e.action.value) for e in second.change_events if (e.detail or "").startswith("users delta")}
    assert delta == {("00000000-0000-0000-0000-000000000005", "disabled"),
                     ("00000000-0000-0000-0000-000000000006", "modified"),
                     ("00000000-0000-0000-0000-000000000007", "deleted"), ("new-user", "created")}
    assert all(h.get("Prefer") == "return=minimal" for h in sim.graph_requests("/v1.0/users/delta"))
    assert second.state["users_delta_link"] != first.state["users_delta_link"]


def test_expired_delta_token_means_a_full_read(sim: GraphSimulator, pki: Pki) -> None:
    first = collect(config(sim, pki), CollectContext(NOW))
    sim.expire_delta_tokens()
    sim.remove_user(str(uuid.UUID(int=3)))
    second = collect(config(sim, pki), CollectContext(NOW + timedelta(days=8), previous_state=first.state))
    assert any("delta token is no longer valid (SyncStateNotFound)" in w for w in second.warnings)
    assert not [e for e in second.change_events if (e.detail or "").startswith("users delta")]
    assert second.state["users_delta_link"] and second.state != first.state
    assert len(second.accounts) == 1199  # the full user read is unaffected


def test_a_foreign_delta_link_is_never_followed(sim: GraphSimulator, pki: Pki) -> None:
    stolen = {"users_delta_link": "https://attacker.example/v1.0/users/delta?$deltatoken=1",
              "users_delta_as_of": "2026-01-01T00:00:00Z"}
    result = collect(config(sim, pki), CollectContext(NOW, previous_state=stolen))
    assert any("no longer valid" in w for w in result.warnings)
    assert result.state["users_delta_link"].startswith(sim.base_url)


def test_delta_link_kept_in_history_between_runs(sim: GraphSimulator, pki: Pki, tmp_path: Path) -> None:
    write_config_file(tmp_path / "audit.toml", sim, pki)

    def run(as_of: datetime, out: str) -> dict[str, object]:
        result = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "audit.toml"), "--output",
                                           str(tmp_path / out), "--as-of", as_of.strftime("%Y-%m-%dT%H:%M:%SZ")])
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / out / "findings.json").read_text())

    run(NOW, "one")
    initial_round = len(sim.graph_requests("/v1.0/users/delta"))
    sim.change_user(str(uuid.UUID(int=5)), accountEnabled=False)
    document = run(NOW + timedelta(days=1), "two")
    volume = next(f for f in document["findings"] if f["rule"] == "account-change-volume")  # type: ignore[attr-defined]
    # The delta's "disabled" and the snapshot difference for the same change are one change, not two.
    assert volume["evidence"]["per_action"] == {"disabled": 1}
    # The second run followed the saved link: one request, instead of another full round of pages.
    assert initial_round == 6 and len(sim.graph_requests("/v1.0/users/delta")) == initial_round + 1


def test_a_50000_user_tenant_audits_end_to_end(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTRA_SECRET", SECRET)
    tenant = make_tenant(50_000, NOW, client_secret=SECRET)
    with GraphSimulator(tenant, pki.cert, pki.key) as sim:
        write_config_file(tmp_path / "audit.toml", sim, pki)
        result = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "audit.toml"), "--output",
                                           str(tmp_path / "out"), "--quiet"])
        assert result.exit_code == 0, result.output
        assert len(sim.graph_requests("/v1.0/users")) == 100  # 50,000 users at 500 a page
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert document["sources"][0]["accounts"] == 50_000
    inactive = [f for f in document["findings"] if f["rule"] == "inactive-enabled"]
    # Every tenth user is a year dormant, less the disabled ones (every 97th) among them.
    assert len(inactive) == len([n for n in range(50_000) if n % 10 == 9 and n % 50 != 49 and n % 97 != 0])


def test_consistency_level_is_sent_on_every_page(sim: GraphSimulator, pki: Pki) -> None:
    from connectors.graph_client import GraphClient, RetryPolicy, TrustedSession

    session = TrustedSession(str(pki.ca))
    sim.tokens.add("static-test-token")
    client = GraphClient(session, sim.base_url, lambda: "static-test-token", RetryPolicy(), timeout=10)
    pages = list(client.pages("/v1.0/users", {"$top": "100", "$count": "true"}, {"ConsistencyLevel": "eventual"}))
    assert len(pages) == 12
    headers = sim.graph_requests("/v1.0/users")
    assert len(headers) == 12 and all(h.get("ConsistencyLevel") == "eventual" for h in headers)


def test_unreachable_authority_is_a_clear_source_error(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("ENTRA_SECRET", SECRET)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{probe.getsockname()[1]}"
    settings = {"name": "entra", "type": "entra", "tenant_id": "t", "client_id": "c",
                "client_secret_env": "ENTRA_SECRET", "authority_host": dead, "graph_endpoint": dead,
                "ca_bundle": str(pki.ca), "timeout": 5}
    with pytest.raises(SourceError, match="cannot reach the authority") as info:
        collect(EntraConfig.model_validate(settings), CollectContext(NOW))
    assert SECRET not in str(info.value)


def test_check_access_proves_each_application_permission(sim: GraphSimulator, pki: Pki) -> None:
    from connectors.entra import SOURCE_TYPE

    assert SOURCE_TYPE.check_access is not None
    assert {c.status for c in SOURCE_TYPE.check_access(config(sim, pki))} == {"ok"}
    sim.tenant.forbidden = {"/v1.0/auditLogs/directoryAudits", "/v1.0/roleManagement/directory/roleAssignments"}
    sim.tenant.licensed = False
    checks = {c.what: c for c in SOURCE_TYPE.check_access(config(sim, pki))}
    assert checks["list users (User.Read.All)"].status == "ok"
    activity = checks["sign-in activity (AuditLog.Read.All, Entra ID P1/P2)"]
    assert activity.status == "missing"
    assert activity.impact == ("no AuditLog.Read.All (or no P1/P2 licence): activity will be unknown for every "
                               "Entra user")
    assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in activity.detail
    assert checks["directory audit log (AuditLog.Read.All and Directory.Read.All)"].status == "missing"
    assert checks["directory role assignments (RoleManagement.Read.Directory)"].status == "missing"
    assert checks["MFA registration (AuditLog.Read.All)"].status == "ok"


def test_check_access_with_a_wrong_secret(sim: GraphSimulator, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.entra import SOURCE_TYPE

    monkeypatch.setenv("ENTRA_SECRET", "not-the-secret-at-all")
    assert SOURCE_TYPE.check_access is not None
    [token] = SOURCE_TYPE.check_access(config(sim, pki))
    assert token.status == "missing" and "AADSTS" in token.detail and "not-the-secret" not in token.detail


def test_licences_named_from_subscribed_skus(sim: GraphSimulator, pki: Pki) -> None:
    sku = "c7df2760-2c81-4ef7-b578-5b5392b571df"
    sim.tenant.users[0]["assignedLicenses"] = [{"disabledPlans": [], "skuId": sku}]
    sim.tenant.subscribed_skus = [{"skuId": sku, "skuPartNumber": "ENTERPRISEPREMIUM", "appliesTo": "User"}]
    result = collect(config(sim, pki), CollectContext(NOW))
    by_id = {a.id: a for a in result.accounts}
    assert by_id[sim.tenant.users[0]["id"]].licences == ("ENTERPRISEPREMIUM",)
    sim.tenant.forbidden = {"/v1.0/subscribedSkus"}
    result = collect(config(sim, pki), CollectContext(NOW))
    assert {a.id: a for a in result.accounts}[sim.tenant.users[0]["id"]].licences == (sku,)
    assert any("subscribed SKUs not readable" in w for w in result.warnings)
