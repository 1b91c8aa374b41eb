"""The entra connector: real msal and requests over real HTTPS against the local Graph simulator."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from connectors.base import SourceError
from connectors.entra import EntraConfig, collect
from tests.servers.harness import Pki
from tests.simulators.graph import Fault, GraphSimulator, Tenant, make_tenant

SECRET = "Sim-Client-Secret-Value-42"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.create()
    return pki


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


def test_many_pages_throttling_and_a_503_mid_paging(sim: GraphSimulator, pki: Pki) -> None:
    sim.faults["/v1.0/users"] = [None, Fault(429, retry_after="1"), Fault(429), None, Fault(503)]
    result = collect(config(sim, pki), NOW)
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
        collect(config(sim, pki, max_throttle_wait=60), NOW)
    sim.faults["/v1.0/users"] = [Fault(503)] * 3
    with pytest.raises(SourceError, match="HTTP 503"):
        collect(config(sim, pki, max_attempts=3), NOW)


def test_unlicensed_tenant_means_activity_unknown(sim: GraphSimulator, pki: Pki) -> None:
    sim.tenant.licensed = False
    result = collect(config(sim, pki), NOW)
    assert len(result.accounts) == 1200
    assert not any(a.activity_known for a in result.accounts)
    reason = result.accounts[0].activity_unknown_reason or ""
    assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in reason and "P1/P2" in reason


def test_missing_permissions_degrade_to_unknown(sim: GraphSimulator, pki: Pki) -> None:
    sim.tenant.forbidden = {"/v1.0/reports/authenticationMethods/userRegistrationDetails",
                            "/v1.0/roleManagement/directory/roleAssignments"}
    result = collect(config(sim, pki), NOW)
    assert all(a.mfa_registered is None for a in result.accounts)  # unknown, never "not registered"
    assert not any(a.privileged for a in result.accounts)
    assert any("MFA registration not readable" in w for w in result.warnings)
    assert any("directory roles not readable" in w for w in result.warnings)


def test_token_error_shows_aadsts_and_never_the_secret(sim: GraphSimulator, pki: Pki, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "Wrong-Secret-Never-Shown-7"
    monkeypatch.setenv("ENTRA_SECRET", wrong)
    with pytest.raises(SourceError, match=r"token request failed: invalid_client: AADSTS7000215: Invalid client"):
        collect(config(sim, pki), NOW)
    (tmp_path / "audit.toml").write_text(
        "[audit]\nhistory_db = 'h.sqlite'\n[[sources]]\nname = 'entra'\ntype = 'entra'\n"
        f"tenant_id = '{sim.tenant.tenant_id}'\nclient_id = '{sim.tenant.client_id}'\n"
        "client_secret_env = 'ENTRA_SECRET'\n"
        f"authority_host = '{sim.base_url}'\ngraph_endpoint = '{sim.base_url}'\nca_bundle = '{pki.ca}'\n")
    result = CliRunner().invoke(
        main, ["run", "--config", str(tmp_path / "audit.toml"), "--output", str(tmp_path / "o")])
    assert result.exit_code == 3
    assert wrong not in result.output
    for path in (tmp_path / "o").iterdir():
        assert wrong not in path.read_text("utf-8-sig")
    document = json.loads((tmp_path / "o" / "findings.json").read_text())
    assert "AADSTS7000215" in document["sources"][0]["error"]


def test_certificate_credentials(tenant: Tenant, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, cert = tmp_path / "app.key", tmp_path / "app.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=auditor-app", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    tenant.client_secret = None
    tenant.certificate_pem = cert.read_text()
    bundle = tmp_path / "app.pem"
    bundle.write_text(key.read_text() + cert.read_text())
    with GraphSimulator(tenant, pki.cert, pki.key) as sim:
        settings = config(sim, pki).model_dump() | {"client_secret_env": None, "certificate_file": str(bundle)}
        result = collect(EntraConfig.model_validate(settings), NOW)
        assert len(result.accounts) == 1200
        [form] = sim.token_requests
        assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        assert "client_secret" not in form


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
    collect(config(sim, pki), NOW)
    assert sim.token_requests[0]["scope"] == [f"{sim.base_url}/.default"]


def test_directory_audits_and_retention_note(sim: GraphSimulator, pki: Pki) -> None:
    sim.tenant.audits = [
        {"id": f"a{n}", "activityDisplayName": name, "activityDateTime": (NOW - timedelta(days=days)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"), "result": "success", "category": "UserManagement",
         "initiatedBy": {"user": {"userPrincipalName": "admin@contoso.test"}},
         "targetResources": [{"id": "u1", "type": "User", "userPrincipalName": "user1@contoso.test"}]}
        for n, (name, days) in enumerate([("Add user", 2), ("Disable account", 5), ("Reset password (by admin)", 40)])
    ]
    result = collect(config(sim, pki), NOW)
    assert [e.action.value for e in result.change_events] == ["created", "disabled"]
    long = collect(config(sim, pki, audit_days=60), NOW)
    assert len(long.change_events) == 3
    assert any("kept 30 days at most" in w for w in long.warnings)


def test_config_rules() -> None:
    base = {"name": "e", "type": "entra", "tenant_id": "t", "client_id": "c"}
    with pytest.raises(ValueError, match="exactly one of"):
        EntraConfig.model_validate(base)
    with pytest.raises(ValueError, match="exactly one of"):
        EntraConfig.model_validate(base | {"client_secret_env": "A", "certificate_file": "x.pem"})
    with pytest.raises(ValueError, match="https"):
        EntraConfig.model_validate(base | {"client_secret_env": "A", "graph_endpoint": "http://graph.local"})
