"""The okta connector against the Okta simulator over real HTTPS (tests/simulators/okta.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from auditor.model import ChangeAction
from connectors.base import CollectContext, SourceError
from connectors.okta import OktaConfig, collect
from tests.servers.harness import Pki
from tests.simulators.okta import OktaOrg, OktaSimulator, log_event, okta_user

TOKEN = "00Okta-Api-Token-For-Tests-0123456789"
NOW = datetime.now(UTC).replace(microsecond=0)


def make_org() -> OktaOrg:
    day = timedelta(days=1)
    users = [
        okta_user("00u1", "ada@example.com", "ACTIVE", last_login=NOW - 2 * day, created=NOW - 400 * day,
                  employee="E-1"),
        okta_user("00u2", "bob@example.com", "DEPROVISIONED", last_login=NOW - 50 * day, created=NOW - 500 * day,
                  status_changed=NOW - 45 * day),
        okta_user("00u3", "cy@example.com", "SUSPENDED", last_login=NOW - 20 * day, created=NOW - 300 * day,
                  status_changed=NOW - 10 * day),
        okta_user("00u4", "dee@example.com", "PROVISIONED", last_login=None, created=NOW - 5 * day),
        okta_user("00u5", "eve@example.com", "STAGED", last_login=None, created=NOW - 3 * day),
        okta_user("00u6", "fay@example.com", "LOCKED_OUT", last_login=NOW - 200 * day, created=NOW - 900 * day),
        okta_user("00u7", "gus@example.com", "DEPROVISIONED", last_login=None, created=NOW - 800 * day,
                  status_changed=NOW - 300 * day),
    ]
    policy = {"complexity": {"minLength": 8, "minLowerCase": 0, "minUpperCase": 0, "minNumber": 1, "minSymbol": 0,
                             "excludeUsername": True, "dictionary": {"common": {"exclude": False}}},
              "age": {"maxAgeDays": 0, "historyCount": 4}, "lockout": {"maxAttempts": 10}}
    strict = {"complexity": {"minLength": 14, "minLowerCase": 1, "minUpperCase": 1, "minNumber": 1, "minSymbol": 1,
                             "dictionary": {"common": {"exclude": True}}},
              "age": {"maxAgeDays": 90}, "lockout": {"maxAttempts": 5}}
    return OktaOrg(
        token=TOKEN, users=users,
        groups={"00gEveryone": ("Everyone", [u["id"] for u in users]), "00gAdmins": ("Admins", ["00u1"])},
        policies=[
            {"id": "00pDefault", "type": "PASSWORD", "name": "Default Policy", "status": "ACTIVE", "priority": 2,
             "system": True, "conditions": {"people": {"groups": {"include": ["00gEveryone"]}}},
             "settings": {"password": policy}},
            {"id": "00pAdmins", "type": "PASSWORD", "name": "Administrators", "status": "ACTIVE", "priority": 1,
             "system": False, "conditions": {"people": {"groups": {"include": ["00gAdmins"]}}},
             "settings": {"password": strict}},
        ],
        logs=[log_event("user.lifecycle.deactivate", users[1], NOW - 45 * day),
              log_event("user.lifecycle.suspend", users[2], NOW - 10 * day),
              log_event("user.account.update_password", users[0], NOW - 3 * day),
              log_event("user.session.start", users[0], NOW - 2 * day),  # a sign-in, not a change
              log_event("user.lifecycle.create", users[5], NOW - 80 * day)],  # older than log_days
    )


@pytest.fixture
def sim(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[OktaSimulator]:
    monkeypatch.setenv("OKTA_TOKEN", TOKEN)
    with OktaSimulator(make_org(), pki.cert, pki.key) as simulator:
        yield simulator


def config(sim: OktaSimulator, pki: Pki, **overrides: object) -> OktaConfig:
    settings: dict[str, object] = {"name": "okta", "type": "okta", "base_url": sim.base_url, "token_env": "OKTA_TOKEN",
                                   "ca_bundle": str(pki.ca), "page_size": 2, **overrides}
    return OktaConfig.model_validate(settings)


def test_every_status_including_deprovisioned(sim: OktaSimulator, pki: Pki) -> None:
    result = collect(config(sim, pki), CollectContext(NOW))
    accounts = {a.username.split("@")[0]: a for a in result.accounts}
    assert set(accounts) == {"ada", "bob", "cy", "dee", "eve", "fay", "gus"}
    # The default listing never returned the two DEPROVISIONED users; only the status filter did.
    listings = sim.paths("/api/v1/users")
    assert any(r.query.get("filter") == 'status eq "DEPROVISIONED"' for r in listings)
    assert len(listings) >= 4  # page_size 2: several Link-paged requests
    assert {n for n, a in accounts.items() if a.enabled} == {"ada", "dee", "fay"}
    assert accounts["bob"].disabled_at == NOW - timedelta(days=45)  # statusChanged of a DEPROVISIONED user
    assert accounts["cy"].disabled_at == NOW - timedelta(days=10)
    assert accounts["ada"].disabled_at is None
    assert accounts["gus"].activity_known and accounts["gus"].last_activity_at is None  # lastLogin null: never
    assert accounts["ada"].last_activity_at == NOW - timedelta(days=2)
    assert accounts["dee"].invitation_pending_since is not None
    assert accounts["ada"].identifiers == {"employee_id": "E-1"}
    assert not result.warnings


def test_rate_limit_reset_is_an_epoch_and_is_honoured(sim: OktaSimulator, pki: Pki) -> None:
    sim.close_window("/api/v1/users", 2)
    sim.close_window("/api/v1/logs", 1)
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 7
    assert sim.early_retries == 0  # never came back before X-Rate-Limit-Reset
    assert any("throttled 2 request(s)" in w and "X-Rate-Limit-Reset" in w for w in result.warnings)


def test_password_policies_follow_group_priority(sim: OktaSimulator, pki: Pki) -> None:
    result = collect(config(sim, pki), CollectContext(NOW))
    policies = {p.id: p for p in result.policies}
    assert policies["00pAdmins"].min_length == 14 and policies["00pAdmins"].min_character_classes == 4
    assert policies["00pAdmins"].banned_list and policies["00pAdmins"].max_age == timedelta(days=90)
    assert policies["00pDefault"].min_length == 8 and policies["00pDefault"].max_age is None
    governing = {a.username.split("@")[0]: a.password_policy_id for a in result.accounts}
    assert governing["ada"] == "00pAdmins"  # in both groups: the lower priority number wins
    assert governing["bob"] == governing["fay"] == "00pDefault"


def test_system_log_is_a_bounded_query(sim: OktaSimulator, pki: Pki) -> None:
    result = collect(config(sim, pki, log_days=60), CollectContext(NOW))
    events = {(e.username, e.action) for e in result.change_events}
    # Sign-ins are not changes; the create 80 days ago is before the 60-day window.
    assert events == {("bob@example.com", ChangeAction.DISABLED), ("cy@example.com", ChangeAction.DISABLED),
                      ("ada@example.com", ChangeAction.PASSWORD_RESET)}
    shorter = collect(config(sim, pki, log_days=30), CollectContext(NOW))
    assert {e.username for e in shorter.change_events} == {"cy@example.com", "ada@example.com"}
    request = sim.paths("/api/v1/logs")[0]
    assert "since" in request.query and "until" in request.query  # bounded: finite, unlike polling


def test_bad_token_is_refused_without_echoing_it(sim: OktaSimulator, pki: Pki,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKTA_TOKEN", "00Wrong-Token-Value-987654321")
    with pytest.raises(SourceError, match=r"refused \(HTTP 401 E0000011\): Invalid token") as raised:
        collect(config(sim, pki), CollectContext(NOW))
    assert "Wrong-Token" not in str(raised.value)


def test_missing_log_permission_is_a_warning(sim: OktaSimulator, pki: Pki) -> None:
    from tests.simulators.https import Reply
    from tests.simulators.okta import okta_error

    sim.faults["/api/v1/logs"] = [Reply(403, okta_error("E0000006", "You do not have permission"))]
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 7 and result.partial_error is None
    assert any("System Log not read" in w and "E0000006" in w for w in result.warnings)


def test_a_failure_after_the_first_page_keeps_what_was_read_as_partial(sim: OktaSimulator, pki: Pki) -> None:
    from tests.simulators.https import Reply
    from tests.simulators.okta import okta_error

    sim.faults["/api/v1/users"] = [None, None, Reply(500, okta_error("E0000009", "Internal Server Error"))]
    result = collect(config(sim, pki, max_attempts=1), CollectContext(NOW))
    assert len(result.accounts) == 4  # two pages of two
    assert result.partial_error is not None and "E0000009" in result.partial_error


def test_config_needs_a_token_and_https() -> None:
    with pytest.raises(ValidationError, match="token_env or token_file"):
        OktaConfig.model_validate({"name": "o", "type": "okta", "base_url": "https://acme.okta.com"})
    with pytest.raises(ValidationError, match="plain http"):
        OktaConfig.model_validate({"name": "o", "type": "okta", "base_url": "http://acme.okta.com",
                                   "token_env": "X"})


def test_an_optional_part_that_fails_otherwise_than_refused_makes_the_source_partial(sim: OktaSimulator,
                                                                                     pki: Pki) -> None:
    from tests.simulators.https import Reply
    from tests.simulators.okta import okta_error

    # One policy for every optional read (connectors.saas.OptionalReads): refused (403) is "unknown", said in a
    # warning (test above); any other failure means data is missing unseen, so the source is partial.
    sim.faults["/api/v1/logs"] = [Reply(500, okta_error("E0000009", "Internal Server Error"))]
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 7
    assert result.partial_error is not None and "System Log" in result.partial_error
    assert not any("System Log not read" in w for w in result.warnings)


def test_check_access_names_what_a_lesser_token_cannot_read(sim: OktaSimulator, pki: Pki, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from auditor.cli import main
    from connectors.okta import SOURCE_TYPE

    assert SOURCE_TYPE.check_access is not None
    assert {c.status for c in SOURCE_TYPE.check_access(config(sim, pki))} == {"ok"}
    sim.org.limited_tokens["00Limited-Token-0123456789"] = {"/api/v1/logs"}
    monkeypatch.setenv("OKTA_TOKEN", "00Limited-Token-0123456789")
    checks = {c.what: c for c in SOURCE_TYPE.check_access(config(sim, pki))}
    logs = checks["read the System Log (okta.logs.read)"]
    assert logs.status == "missing" and logs.impact == "Okta token lacks okta.logs.read: lifecycle events unknown"
    assert "E0000006" in logs.detail
    assert checks["list users (okta.users.read)"].status == "ok"
    audit_toml = tmp_path / "audit.toml"
    audit_toml.write_text(f'[[sources]]\nname = "okta"\ntype = "okta"\nbase_url = "{sim.base_url}"\n'
                          f'token_env = "OKTA_TOKEN"\nca_bundle = "{pki.ca}"\n')
    result = CliRunner().invoke(main, ["check-access", str(audit_toml)])
    assert result.exit_code == 3
    assert "MISSING" in result.output and "lifecycle events unknown" in result.output
    assert "00Limited-Token" not in result.output
    monkeypatch.setenv("OKTA_TOKEN", "00Wrong-Token-Value-987654321")
    [refused] = SOURCE_TYPE.check_access(config(sim, pki))[:1]
    assert refused.status == "missing" and "E0000011" in refused.detail
