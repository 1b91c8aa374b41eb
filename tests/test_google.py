"""The google connector against the Google token endpoint + Directory API simulator over real HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.base import CollectContext, SourceError
from connectors.google import GoogleConfig, collect
from tests.servers.harness import Pki
from tests.simulators.google import GoogleSimulator, Workspace, google_error, google_user
from tests.simulators.https import Reply

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def make_workspace() -> Workspace:
    users = [google_user("1", "admin@example.com", last_login=NOW - DAY, created=NOW - 900 * DAY, isAdmin=True,
                         aliases=["it@example.com"])]
    users.append(google_user("2", "never@example.com", last_login=None, created=NOW - 400 * DAY,
                             isEnrolledIn2Sv=False, isEnforcedIn2Sv=False))
    users.append(google_user("3", "gone@example.com", last_login=NOW - 60 * DAY, created=NOW - 700 * DAY,
                             suspended=True, suspensionReason="ADMIN"))
    users.append(google_user("4", "archived@example.com", last_login=NOW - 300 * DAY, created=NOW - 800 * DAY,
                             archived=True))
    users.append(google_user("5", "helper@example.com", last_login=NOW - 3 * DAY, created=NOW - 100 * DAY,
                             isDelegatedAdmin=True, isEnforcedIn2Sv=False,
                             externalIds=[{"value": "E-77", "type": "organization"}]))
    users += [google_user(str(10 + n), f"user{n}@example.com", last_login=NOW - n * DAY, created=NOW - 500 * DAY)
              for n in range(9)]
    return Workspace(users=users)


@pytest.fixture
def sim(pki: Pki) -> Iterator[GoogleSimulator]:
    with GoogleSimulator(make_workspace(), pki.cert, pki.key) as simulator:
        yield simulator


def config(sim: GoogleSimulator, pki: Pki, tmp_path: Path, **overrides: object) -> GoogleConfig:
    key = tmp_path / "sa.json"
    key.write_text(sim.workspace.key_json(f"{sim.base_url}/token"))
    settings: dict[str, object] = {"name": "workspace", "type": "google", "base_url": sim.base_url,
                                   "credentials_file": str(key), "subject": "admin@example.com",
                                   "ca_bundle": str(pki.ca), "page_size": 4, **overrides}
    return GoogleConfig.model_validate(settings)


def test_users_pages_and_the_1970_never_sentinel(sim: GoogleSimulator, pki: Pki, tmp_path: Path) -> None:
    result = collect(config(sim, pki, tmp_path), CollectContext(NOW))
    accounts = {a.username: a for a in result.accounts}
    assert len(accounts) == 14
    assert len(sim.paths("/admin/directory/v1/users")) == 4  # 14 users, 4 a page
    never = accounts["never@example.com"]
    assert never.activity_known and never.last_activity_at is None  # 1970-01-01: never, not 56 years idle
    assert never.last_activity_raw == "1970-01-01T00:00:00.000Z"
    assert accounts["admin@example.com"].last_activity_at == NOW - DAY
    assert not accounts["gone@example.com"].enabled and not accounts["archived@example.com"].enabled
    assert accounts["admin@example.com"].privileged and accounts["helper@example.com"].privileged
    assert accounts["helper@example.com"].mfa_enforced is False and accounts["helper@example.com"].mfa_registered
    assert accounts["helper@example.com"].identifiers == {"employee_id": "E-77"}
    assert accounts["admin@example.com"].email_aliases == ["it@example.com"]
    token_request = sim.paths("/token")[0]
    assert token_request.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert not result.warnings


def test_rate_limits_are_retried_with_backoff(sim: GoogleSimulator, pki: Pki, tmp_path: Path) -> None:
    sim.faults["/admin/directory/v1/users"] = [
        None, Reply(403, google_error(403, "Rate Limit Exceeded", "userRateLimitExceeded", "PERMISSION_DENIED"))]
    sim.close_window("/admin/directory/v1/users", 1)
    result = collect(config(sim, pki, tmp_path), CollectContext(NOW))
    assert len(result.accounts) == 14
    # Google sends no Retry-After: the client backs off until the window opens (more than once, perhaps).
    throttled = [int(w.split("throttled ")[1].split(" ")[0]) for w in result.warnings if "throttled" in w]
    assert throttled and throttled[0] >= 2


def test_delegation_not_granted(sim: GoogleSimulator, pki: Pki, tmp_path: Path) -> None:
    sim.workspace.delegated_scopes = set()
    with pytest.raises(SourceError, match=r"unauthorized_client.*domain-wide delegation") as raised:
        collect(config(sim, pki, tmp_path), CollectContext(NOW))
    assert "PRIVATE KEY" not in str(raised.value)


def test_subject_must_be_an_administrator(sim: GoogleSimulator, pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="invalid_grant: Invalid email or User ID"):
        collect(config(sim, pki, tmp_path, subject="user1@example.com"), CollectContext(NOW))


def test_permission_error_is_not_retried(sim: GoogleSimulator, pki: Pki, tmp_path: Path) -> None:
    sim.faults["/admin/directory/v1/users"] = [
        Reply(403, google_error(403, "Not Authorized to access this resource/api", "forbidden", "PERMISSION_DENIED"))]
    with pytest.raises(SourceError, match=r"refused \(HTTP 403 forbidden\)"):
        collect(config(sim, pki, tmp_path), CollectContext(NOW))
    assert len(sim.paths("/admin/directory/v1/users")) == 1


def test_key_config_rules(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="credentials_file or credentials_env"):
        GoogleConfig.model_validate({"name": "g", "type": "google", "subject": "a@example.com"})
    key = tmp_path / "sa.json"
    key.write_text('{"type": "service_account", "client_email": "x@y", "private_key": "k", '
                   '"token_uri": "http://oauth2.example/token"}')
    cfg = GoogleConfig.model_validate({"name": "g", "type": "google", "subject": "a@example.com",
                                       "credentials_file": str(key)})
    with pytest.raises(SourceError, match=r"token_uri: .*plain http"):
        collect(cfg, CollectContext(NOW))


def test_check_access_without_delegation(sim: GoogleSimulator, pki: Pki, tmp_path: Path) -> None:
    from connectors.google import SOURCE_TYPE

    assert SOURCE_TYPE.check_access is not None
    assert [c.status for c in SOURCE_TYPE.check_access(config(sim, pki, tmp_path))] == ["ok"]
    sim.workspace.delegated_scopes = set()
    [users] = SOURCE_TYPE.check_access(config(sim, pki, tmp_path))
    assert users.status == "missing" and "unauthorized_client" in users.detail
