"""The slack connector against the Slack Web API simulator over real HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from auditor.model import AccountKind
from connectors.base import CollectContext, SourceError
from connectors.slack import SlackConfig, collect
from tests.servers.harness import Pki
from tests.simulators.slack import SlackSimulator, SlackTeam, access_entry, slack_member

TOKEN = "xoxp-1111-2222-3333-slacktesttoken"
NOW = datetime.now(UTC).replace(microsecond=0)


def make_team() -> SlackTeam:
    members = [slack_member(f"U{n:03d}", f"user{n}", f"user{n}@example.com") for n in range(5)]
    members += [
        slack_member("U100", "left", "left@example.com", deleted=True),
        slack_member("U200", "partner", "p@partner.example", is_restricted=True),
        slack_member("U300", "deploybot", is_bot=True),
        slack_member("USLACKBOT", "slackbot"),
        slack_member("U400", "boss", "boss@example.com", is_admin=True, is_owner=True, has_2fa=False),
    ]
    logins = [access_entry(f"U{n:03d}", f"user{n}", (NOW - timedelta(days=n * 40)).timestamp()) for n in range(4)]
    logins.append(access_entry("U000", "user0", (NOW - timedelta(days=100)).timestamp()))  # older entry, same user
    return SlackTeam(token=TOKEN, members=members, logins=logins)


@pytest.fixture
def sim(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackSimulator]:
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    with SlackSimulator(make_team(), pki.cert, pki.key) as simulator:
        yield simulator


def config(sim: SlackSimulator, pki: Pki, **overrides: object) -> SlackConfig:
    return SlackConfig.model_validate({"name": "slack", "type": "slack", "base_url": f"{sim.base_url}/api",
                                       "token_env": "SLACK_TOKEN", "ca_bundle": str(pki.ca), "page_size": 3,
                                       **overrides})


def test_users_kinds_and_access_log_activity(sim: SlackSimulator, pki: Pki) -> None:
    result = collect(config(sim, pki), CollectContext(NOW))
    accounts = {a.username: a for a in result.accounts}
    assert len(accounts) == 10 and len(sim.paths("/api/users.list")) == 4  # cursor paging, 3 a page
    assert all("limit" in r.query for r in sim.paths("/api/users.list"))
    assert accounts["deploybot"].kind == accounts["slackbot"].kind == AccountKind.BOT
    assert accounts["partner"].kind == AccountKind.GUEST
    assert not accounts["left"].enabled
    assert accounts["boss"].privileged and accounts["boss"].mfa_registered is False
    assert accounts["user0"].last_activity_at == NOW  # the newest date_last of the user's entries
    assert accounts["user2"].last_activity_at == NOW - timedelta(days=80)
    # Every access-log entry was read: a user with none never signed in.
    assert accounts["user4"].activity_known and accounts["user4"].last_activity_at is None
    assert not result.warnings


def test_free_plan_means_activity_unknown(sim: SlackSimulator, pki: Pki) -> None:
    sim.team.paid = False
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 10 and not any(a.activity_known for a in result.accounts)
    assert {a.activity_unknown_reason for a in result.accounts} == {"team.accessLogs needs a paid plan"}
    assert any("paid_only" in w or "paid plan" in w for w in result.warnings)


def test_rate_limit_retry_after_is_honoured(sim: SlackSimulator, pki: Pki) -> None:
    sim.close_window("/api/users.list", 2)
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 10 and sim.early_retries == 0
    assert any("throttled 1 request(s)" in w for w in result.warnings)


def test_invalid_auth_arrives_as_ok_false(sim: SlackSimulator, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "xoxp-wrong-0000-token")
    with pytest.raises(SourceError, match=r"users\.list failed: HTTP 200 invalid_auth") as raised:
        collect(config(sim, pki), CollectContext(NOW))
    assert "wrong" not in str(raised.value)


def test_check_access_on_a_free_plan(sim: SlackSimulator, pki: Pki) -> None:
    from connectors.slack import SOURCE_TYPE

    assert SOURCE_TYPE.check_access is not None
    assert {c.status for c in SOURCE_TYPE.check_access(config(sim, pki))} == {"ok"}
    sim.team.paid = False
    users, logs = SOURCE_TYPE.check_access(config(sim, pki))
    assert users.status == "ok"
    assert (logs.status, logs.impact) == ("missing", "activity unknown for every user") and "paid_only" in logs.detail
