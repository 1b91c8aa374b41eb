"""The scim connector against a real SCIM 2.0 server (scim2-server) on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from auditor.cli import main
from connectors.base import CollectContext, SourceError
from connectors.scim import ENTERPRISE, ScimConfig, collect

TOKEN = "scim-test-token-0123456789"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def scim_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", "from scim2_server.testserver.cli import main; main()",
         "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", TOKEN],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v2"
    try:
        for _ in range(100):
            try:
                requests.get(f"{url}/ServiceProviderConfig", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        seed(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def seed(url: str) -> None:
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"})
    for n in range(250):
        user: dict[str, object] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"user{n:03d}",
            "emails": [{"value": f"user{n}@saas.test", "primary": True}], "displayName": f"User {n}",
            "externalId": f"ext-{n}"}
        if n != 7:  # user007 leaves "active" unsaid
            user["active"] = n % 10 != 0
        if n == 3:
            user["schemas"] = [*user["schemas"], ENTERPRISE]  # type: ignore[misc]
            user[ENTERPRISE] = {"employeeNumber": "E-1003"}
        if n == 5:
            user["userType"] = "Guest"
        session.post(f"{url}/Users", data=json.dumps(user), timeout=5).raise_for_status()


def config(url: str, **overrides: object) -> ScimConfig:
    return ScimConfig.model_validate({"name": "saas", "type": "scim", "base_url": url, "token_env": "SCIM_TOKEN",
                                      "allow_insecure_http": True, "page_size": 100, **overrides})


def test_paged_users(scim_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    result = collect(config(scim_url), CollectContext(NOW))
    accounts = {a.username: a for a in result.accounts}
    assert len(accounts) == 250  # three pages of 100 from startIndex 1
    assert [a.enabled for a in (accounts["user000"], accounts["user001"], accounts["user010"])] == [False, True, False]
    # RFC 7643 leaves "active" optional: unsaid is unknown, never "enabled", and said once with the record.
    assert accounts["user007"].enabled is None
    assert any("have no active: enabled state unknown" in w and "user007" in w for w in result.warnings)
    assert accounts["user003"].identifiers == {"external_id": "ext-3", "employee_id": "E-1003"}
    assert accounts["user005"].kind.value == "guest" and accounts["user001"].email == "user1@saas.test"
    created = accounts["user001"].created_at
    assert created is not None and abs((created - NOW).total_seconds()) < 600  # meta.created, set by the server
    assert not accounts["user001"].activity_known
    assert "last-login" in (accounts["user001"].activity_unknown_reason or "")


def test_wrong_token_is_refused_without_echoing_it(scim_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_TOKEN", "not-the-token-987")
    with pytest.raises(SourceError, match=r"authentication or permission refused \(HTTP 401\)") as info:
        collect(config(scim_url), CollectContext(NOW))
    assert "not-the-token-987" not in str(info.value)


def test_transport_and_auth_rules() -> None:
    base = {"name": "s", "type": "scim", "base_url": "http://saas.test/scim/v2", "token_env": "T"}
    with pytest.raises(ValueError, match="over plain http would expose them"):
        ScimConfig.model_validate(base)
    with pytest.raises(ValueError, match="not both and not neither"):
        ScimConfig.model_validate(base | {"base_url": "https://saas.test/scim/v2", "username": "u"})
    with pytest.raises(ValueError, match="username needs password_env"):
        ScimConfig.model_validate({**base, "token_env": None, "username": "u", "base_url": "https://saas.test/v2"})


def test_audit_counts_scim_activity_as_unknown(scim_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    (tmp_path / "audit.toml").write_text(
        "[audit]\nhistory_db = 'h.sqlite'\n[[sources]]\nname = 'saas'\ntype = 'scim'\n"
        f"base_url = '{scim_url}'\ntoken_env = 'SCIM_TOKEN'\nallow_insecure_http = true\n")
    result = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "audit.toml"), "--output",
                                       str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert not [f for f in document["findings"] if f["rule"] in ("inactive-enabled", "never-used-enabled")]
    # 250 less the 25 deactivated, less user007 whose enabled state SCIM does not say (counted apart)
    assert document["kpis"]["activity_unknown_accounts"]["value"] == 224
    assert document["kpis"]["enabled_unknown_accounts"]["value"] == 1


def test_check_access(scim_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.scim import SOURCE_TYPE

    assert SOURCE_TYPE.check_access is not None
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    assert [c.status for c in SOURCE_TYPE.check_access(config(scim_url))] == ["ok"]
    monkeypatch.setenv("SCIM_TOKEN", "wrong-token-value-42")
    [users] = SOURCE_TYPE.check_access(config(scim_url))
    assert users.status == "missing" and "wrong-token" not in users.detail
