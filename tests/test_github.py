"""The github connector against the GitHub REST + GraphQL simulator over real HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from auditor.model import AccountKind
from connectors.base import CollectContext, SourceError
from connectors.github import GitHubConfig, collect
from tests.servers.harness import Pki
from tests.simulators.github import GitHubSimulator, Organization, gh_user

OWNER_TOKEN = "ghp_owner_token_1111111111111111111111"
NOW = datetime.now(UTC).replace(microsecond=0)


def make_org() -> Organization:
    members = [gh_user(f"dev{n}", 100 + n) for n in range(7)] + [gh_user("ci-bot", 900, "Bot")]
    return Organization(
        login="acme", owner_token=OWNER_TOKEN, members=members, admins={"dev0"},
        outside=[gh_user("contractor", 500)], two_factor_off={"dev3", "contractor"},
        saml={"dev0": "dev.zero@example.com", "dev1": "dev.one@example.com"},
        credentials=[{"login": "dev1", "credential_id": 1, "credential_type": "personal access token",
                      "credential_authorized_at": "2026-01-02T10:00:00Z",
                      "credential_accessed_at": "2026-10-01T08:00:00Z"}],
    )


@pytest.fixture
def sim(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubSimulator]:
    monkeypatch.setenv("GH_TOKEN", OWNER_TOKEN)
    with GitHubSimulator(make_org(), pki.cert, pki.key) as simulator:
        yield simulator


def config(sim: GitHubSimulator, pki: Pki, **overrides: object) -> GitHubConfig:
    return GitHubConfig.model_validate({"name": "github", "type": "github", "base_url": sim.base_url,
                                        "organization": "acme", "token_env": "GH_TOKEN", "ca_bundle": str(pki.ca),
                                        "page_size": 3, **overrides})


def test_members_collaborators_2fa_and_saml(sim: GitHubSimulator, pki: Pki) -> None:
    result = collect(config(sim, pki), CollectContext(NOW))
    accounts = {a.username: a for a in result.accounts}
    assert set(accounts) == {*(f"dev{n}" for n in range(7)), "ci-bot", "contractor"}
    assert len([r for r in sim.paths("/orgs/acme/members") if r.query.get("role") == "all"]) == 3  # 8 members, 3 a page
    assert accounts["ci-bot"].kind == AccountKind.BOT
    assert accounts["contractor"].kind == AccountKind.GUEST
    assert accounts["dev0"].privileged and not accounts["dev1"].privileged
    assert accounts["dev3"].mfa_registered is False and accounts["dev2"].mfa_registered is True
    assert accounts["dev0"].mfa_enforced is False  # the organization does not require 2FA
    assert accounts["dev0"].email == "dev.zero@example.com"  # from the SAML identity
    assert accounts["dev2"].email is None
    assert not accounts["dev1"].activity_known  # GitHub has no last activity; credential use is evidence only
    assert accounts["dev1"].raw["credential_accessed_at"] == "2026-10-01T08:00:00Z"
    assert not result.warnings


def test_without_an_owner_token_2fa_is_unknown_not_off(sim: GitHubSimulator, pki: Pki,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN", sim.org.member_token)
    result = collect(config(sim, pki), CollectContext(NOW))
    assert {a.mfa_registered for a in result.accounts} == {None}
    assert {a.mfa_enforced for a in result.accounts} == {None}
    assert any("Only owners can use this filter" in w for w in result.warnings)


def test_primary_rate_limit_waits_for_the_reset_epoch(sim: GitHubSimulator, pki: Pki) -> None:
    sim.close_window("/orgs/acme/outside_collaborators", 2)
    result = collect(config(sim, pki), CollectContext(NOW))
    assert len(result.accounts) == 9
    assert sim.early_retries == 0
    assert any("throttled 1 request(s)" in w for w in result.warnings)


def test_organization_without_saml_says_so(sim: GitHubSimulator, pki: Pki) -> None:
    sim.org.saml = None
    result = collect(config(sim, pki), CollectContext(NOW))
    assert {a.email for a in result.accounts} == {None}
    assert any("does not use SAML SSO" in w for w in result.warnings)


def test_bad_token(sim: GitHubSimulator, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN", "ghp_wrong_token_22222222222222222222")
    with pytest.raises(SourceError, match=r"refused \(HTTP 401\): Bad credentials") as raised:
        collect(config(sim, pki), CollectContext(NOW))
    assert "wrong_token" not in str(raised.value)


def test_graphql_url_follows_enterprise_server() -> None:
    server = GitHubConfig.model_validate({"name": "g", "type": "github", "organization": "o", "token_env": "T",
                                          "base_url": "https://git.example.com/api/v3"})
    assert server.graphql == "https://git.example.com/api/graphql"
    cloud = GitHubConfig.model_validate({"name": "g", "type": "github", "organization": "o", "token_env": "T"})
    assert cloud.graphql == "https://api.github.com/graphql"


def test_check_access_says_a_member_token_is_not_an_owner(sim: GitHubSimulator, pki: Pki,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.github import SOURCE_TYPE

    assert SOURCE_TYPE.check_access is not None
    assert {c.status for c in SOURCE_TYPE.check_access(config(sim, pki))} == {"ok"}
    monkeypatch.setenv("GH_TOKEN", sim.org.member_token)
    *members, two_factor = SOURCE_TYPE.check_access(config(sim, pki))
    assert {c.status for c in members} == {"ok"}
    assert (two_factor.status, two_factor.impact) == ("missing", "GitHub token is not an owner: 2FA state unknown")
    assert "Only owners can use this filter" in two_factor.detail
