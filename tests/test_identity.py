"""Identity correlation (auditor.identity) and the rules that read it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from auditor.config import ConfigError, IdentitySettings, parse_config
from auditor.identity import EmailNormaliser, correlate
from auditor.model import AccountKind, ChangeAction, ChangeEvent, DepartedAccount, Severity
from auditor.rules import RULES
from tests.rule_helpers import AS_OF, account, context, inventory

SETTINGS = IdentitySettings(authoritative_source="ad", domain_aliases=(("example.com", "example.co.uk"),),
                            service_accounts=("svc-*",))


def link_keys(graph) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, username) -> (person's directory username, key) for every linked non-directory account."""
    return {(link.account.source, link.account.username): (p.authoritative.username, link.key)
            for p in graph.people for link in p.links[1:]}


def fired(rule_id: str, inv, ctx=None) -> dict[tuple[str, str], object]:
    return {(f.source, f.subject.name): f for f in RULES[rule_id].evaluate(inv, ctx or context())}


class TestEmailNormaliser:
    def test_case_plus_and_aliases(self) -> None:
        normalise = EmailNormaliser([["example.com", "Example.CO.UK", "corp.example.com"]])
        assert normalise(" Jane.Doe+github@Example.co.uk ") == "jane.doe@example.com"
        assert normalise("JANE.DOE@corp.example.com") == "jane.doe@example.com"
        assert normalise("jane.doe@other.org") == "jane.doe@other.org"  # not an alias: kept apart
        assert normalise("not-an-address") is None
        assert normalise("+tag@example.com") is None


class TestCorrelation:
    def test_each_key_links_and_records_itself(self) -> None:
        ad = [
            account("jdoe", identifiers={"sid": "S-1-5-21-1-2-3-1104"}),
            account("asmith", identifiers={"immutable_id": "q80yUJzY3kmzg5PJ0xVSoQ=="}),
            account("bjones", identifiers={"employee_id": "E-0042"}),
            account("cwong", email="Carol.Wong@example.com"),
        ]
        others = [
            account("jdoe@example.com", source="entra", identifiers={"on_prem_sid": "s-1-5-21-1-2-3-1104"}),
            account("alice", source="entra", identifiers={"immutable_id": "q80yUJzY3kmzg5PJ0xVSoQ=="}),
            account("bob", source="okta", identifiers={"employee_id": " e-0042 "}),
            account("carol", source="slack", email="carol.wong+slack@EXAMPLE.co.uk"),
        ]
        graph = correlate(ad + others, SETTINGS, AS_OF)
        assert link_keys(graph) == {
            ("entra", "jdoe@example.com"): ("jdoe", "sid"),
            ("entra", "alice"): ("asmith", "immutable_id"),
            ("okta", "bob"): ("bjones", "employee_id"),
            ("slack", "carol"): ("cwong", "email"),
        }
        assert not graph.unlinked
        carol = next(p for p in graph.people if p.authoritative.username == "cwong")
        assert carol.links[1].value == "carol.wong@example.com"

    def test_key_order_decides_and_transitive_links(self) -> None:
        # The Entra account links by SID; the Okta account only shares the Entra account's UPN, and reaches
        # the person through it.
        ad = [account("jdoe", identifiers={"sid": "S-1-5-21-9"})]
        entra = account("x", source="entra", identifiers={"on_prem_sid": "S-1-5-21-9", "upn": "jd@example.com"})
        okta = account("jd@example.com", source="okta")
        graph = correlate([*ad, entra, okta], SETTINGS, AS_OF)
        assert link_keys(graph) == {("entra", "x"): ("jdoe", "sid"), ("okta", "jd@example.com"): ("jdoe", "email")}
        # With only employee_id configured, neither links.
        only_employee = SETTINGS.model_copy(update={"keys": ("employee_id",)})
        graph = correlate([*ad, entra, okta], only_employee, AS_OF)
        assert link_keys(graph) == {}
        assert {u.reason for u in graph.unlinked} == {"no_key"}

    def test_ambiguity_and_rehire(self) -> None:
        twins = [account("a1", email="team@example.com"), account("a2", email="team@example.com")]
        shared = account("team", source="slack", email="team@example.com")
        graph = correlate([*twins, shared], SETTINGS, AS_OF)
        assert [(u.account.username, u.reason) for u in graph.unlinked] == [("team", "ambiguous")]
        assert "a1, a2" in graph.unlinked[0].detail
        # A rehire: the old, disabled account and the new one share the address; the enabled one wins.
        old = account("jdoe-old", email="jdoe@example.com", enabled=False)
        new = account("jdoe", email="jdoe@example.com")
        graph = correlate([old, new, account("jdoe", source="okta", email="jdoe@example.com")], SETTINGS, AS_OF)
        assert link_keys(graph) == {("okta", "jdoe"): ("jdoe", "email")}

    def test_unlinked_reasons_and_service_accounts(self) -> None:
        ad = [account("jdoe", email="jdoe@example.com"), account("svc-backup", email="backup@example.com")]
        saas = [account("stranger", source="okta", email="someone@gmail.com"),
                account("octocat", source="github"),
                account("backup", source="okta", email="backup@example.com")]
        graph = correlate(ad + saas, SETTINGS, AS_OF)
        assert [p.authoritative.username for p in graph.people] == ["jdoe"]  # declared service: no person
        assert {u.account.username: u.reason for u in graph.unlinked} == {
            "stranger": "no_match", "octocat": "no_key", "backup": "no_match"}


class TestDepartureDates:
    def person(self, graph, username):
        return next(p for p in graph.people if p.authoritative.username == username)

    def test_dated_by_status_time_event_expiry_or_unknown(self) -> None:
        ad = [
            account("by-status", enabled=False, disabled_at=AS_OF - timedelta(days=20)),
            account("by-event", enabled=False),
            account("by-expiry", expires_at=AS_OF - timedelta(days=3)),
            account("undated", enabled=False),
            account("here"),
        ]
        disabled = ChangeEvent("ad", AS_OF - timedelta(days=9), "id-by-event", ChangeAction.DISABLED,
                               origin="snapshot", approximate_time=True)
        older = ChangeEvent("ad", AS_OF - timedelta(days=90), "id-by-event", ChangeAction.DISABLED)
        audits = [AS_OF - timedelta(days=d) for d in (30, 16, 9)]
        graph = correlate(ad, SETTINGS, AS_OF, departure_events=[older, disabled], audit_times=audits)
        assert self.person(graph, "by-status").departure.at == AS_OF - timedelta(days=20)
        by_event = self.person(graph, "by-event").departure
        assert by_event.at == AS_OF - timedelta(days=9) and "between two audits" in by_event.evidence
        assert by_event.not_before == AS_OF - timedelta(days=16)  # the audit before the one that saw it
        assert self.person(graph, "by-expiry").departure.at == AS_OF - timedelta(days=3)
        undated = self.person(graph, "undated").departure
        assert undated.how == "disabled" and undated.at is None and "unknown" in undated.evidence
        assert self.person(graph, "here").departure is None

    def test_disabled_then_removed_left_when_disabled(self) -> None:
        gone = account("left", enabled=False, disabled_at=AS_OF - timedelta(days=70))
        graph = correlate([], SETTINGS, AS_OF, departed=[DepartedAccount(gone, AS_OF - timedelta(days=5))])
        departure = self.person(graph, "left").departure
        assert departure.how == "deleted" and departure.at == AS_OF - timedelta(days=70)

    def test_removed_accounts_from_history(self) -> None:
        gone = account("left", email="left@example.com")
        tombstoned = account("tomb", email="tomb@example.com")
        deleted = ChangeEvent("ad", AS_OF - timedelta(days=40), "id-tomb", ChangeAction.DELETED,
                              detail="tombstone")
        graph = correlate(
            [account("left", source="okta", email="LEFT@example.co.uk")], SETTINGS, AS_OF,
            departed=[DepartedAccount(gone, AS_OF - timedelta(days=12)),
                      DepartedAccount(tombstoned, AS_OF - timedelta(days=2))],
            departure_events=[deleted],
        )
        left = self.person(graph, "left")
        assert left.departure.not_before is None  # no earlier audit time known here
        assert left.departure.how == "deleted" and left.departure.at == AS_OF - timedelta(days=12)
        assert [link.account.source for link in left.links] == ["ad", "okta"]
        assert self.person(graph, "tomb").departure.at == AS_OF - timedelta(days=40)  # the tombstone's own date


class TestOffboardingGap:
    def test_fires_with_dates_and_not_for_disabled_or_present_people(self) -> None:
        ad = [account("leaver", email="leaver@example.com", enabled=False, disabled_at=AS_OF - timedelta(days=30)),
              account("stayer", email="stayer@example.com")]
        saas = [
            account("leaver", source="okta", email="leaver@example.com", days_idle=5),  # used after leaving
            account("leaver", source="slack", email="leaver@example.com", days_idle=45),  # not since
            account("leaver", source="github", email="leaver@example.com", enabled=False),  # offboarded: fine
            account("stayer", source="okta", email="stayer@example.com"),
        ]
        inv = inventory(*ad, *saas, identity=correlate(ad + saas, SETTINGS, AS_OF))
        result = fired("offboarding-gap", inv)
        assert set(result) == {("okta", "leaver"), ("slack", "leaver")}
        okta = result[("okta", "leaver")]
        assert okta.severity == Severity.CRITICAL and okta.evidence["used_after_departure"] is True
        assert okta.evidence["days_since_departure"] == 30
        assert okta.evidence["account_last_activity_at"] == "2026-06-25T00:00:00Z"
        assert okta.evidence["linked_by"] == "email"
        slack = result[("slack", "leaver")]
        assert slack.severity == Severity.HIGH and slack.evidence["used_after_departure"] is False
        assert "disabled 30 days ago (2026-05-31)" in slack.message

    def test_a_window_is_said_as_a_window(self) -> None:
        ad = [account("leaver", email="leaver@example.com", enabled=False)]
        saas = [account("leaver", source="okta", email="leaver@example.com", days_idle=12)]
        seen = ChangeEvent("ad", AS_OF - timedelta(days=7), "id-leaver", ChangeAction.DISABLED, origin="snapshot",
                           approximate_time=True)
        graph = correlate(ad + saas, SETTINGS, AS_OF, departure_events=[seen],
                          audit_times=[AS_OF - timedelta(days=14), AS_OF - timedelta(days=7)])
        finding = fired("offboarding-gap", inventory(*ad, *saas, identity=graph))[("okta", "leaver")]
        assert "between 2026-06-16 and 2026-06-23 (7-14 days ago)" in finding.message
        assert finding.evidence["days_since_departure_at_most"] == 14
        # Used 12 days ago: maybe before the departure, so not claimed as use after it.
        assert finding.evidence["used_after_departure"] is False and finding.severity == Severity.HIGH

    def test_nothing_without_identity(self) -> None:
        assert fired("offboarding-gap", inventory(account("x", enabled=False))) == {}


class TestUnmanagedAccount:
    def test_fires_for_orphans_not_bots_or_service_accounts(self) -> None:
        ad = [account("jdoe", email="jdoe@example.com")]
        saas = [
            account("jdoe", source="okta", email="jdoe@example.com"),
            account("shadow", source="okta", email="shadow@gmail.com"),
            account("deploybot", source="slack", kind=AccountKind.BOT),
            account("svc-sync", source="okta", email="sync@example.com"),  # declared service account
            account("ci", source="okta", kind=AccountKind.SERVICE),
            account("old-shadow", source="okta", email="gone@gmail.com", enabled=False),
            account("octocat", source="github"),
            account("partner", source="slack", email="p@partner.example", kind=AccountKind.GUEST),
        ]
        inv = inventory(*ad, *saas, identity=correlate(ad + saas, SETTINGS, AS_OF))
        result = fired("unmanaged-account", inv)
        assert set(result) == {("okta", "shadow"), ("github", "octocat")}
        assert result[("okta", "shadow")].evidence["reason"] == "no_match"
        assert result[("github", "octocat")].evidence["reason"] == "no_key"


class TestPersonInactive:
    def test_active_anywhere_is_not_inactive_but_stale_accounts_still_show(self) -> None:
        ad = [account("hybrid", email="hybrid@example.com", days_idle=200),
              account("gone-quiet", email="quiet@example.com", days_idle=200),
              account("unknowable", email="unknown@example.com", days_idle=None, known=False),
              account("only-here", days_idle=300)]  # one account: inactive-enabled alone reports it
        cloud = [account("hybrid", source="entra", email="hybrid@example.com", days_idle=2),
                 account("quiet", source="okta", email="quiet@example.com", days_idle=150),
                 account("unknown", source="scim", email="unknown@example.com", days_idle=None, known=False)]
        inv = inventory(*ad, *cloud, identity=correlate(ad + cloud, SETTINGS, AS_OF))
        people = fired("person-inactive", inv)
        assert set(people) == {("ad", "gone-quiet")}
        assert people[("ad", "gone-quiet")].subject.type == "person"
        assert len(people[("ad", "gone-quiet")].evidence["accounts"]) == 2
        stale = fired("inactive-enabled", inv)
        assert ("ad", "hybrid") in stale  # stale on-premises...
        assert stale[("ad", "hybrid")].evidence["person_active_elsewhere"] == [
            "entra:hybrid last active 2026-06-28T00:00:00Z"]  # ...and active in the cloud: both facts


class TestMfaNotEnforced:
    def test_fires_only_where_the_source_says_not_enforced(self) -> None:
        inv = inventory(
            account("open", source="google", mfa_enforced=False, mfa_registered=False),
            account("voluntary", source="google", mfa_enforced=False, mfa_registered=True),
            account("enforced", source="google", mfa_enforced=True),
            account("unsaid", source="slack"),
            account("bot", source="slack", mfa_enforced=False, kind=AccountKind.BOT),
            account("suspended", source="google", mfa_enforced=False, enabled=False),
        )
        result = fired("mfa-not-enforced", inv)
        assert set(result) == {("google", "open"), ("google", "voluntary")}
        assert result[("google", "open")].severity == Severity.MEDIUM
        assert result[("google", "voluntary")].severity == Severity.LOW


class TestIdentityConfig:
    BASE = '[[sources]]\nname = "ad"\ntype = "ldif"\npath = "x.ldif"\n'

    def test_valid(self) -> None:
        config = parse_config(self.BASE + '[identity]\nauthoritative_source = "ad"\nkeys = ["email", "sid"]\n'
                              'domain_aliases = [["example.com", "example.org"]]\n')
        assert config.identity is not None and config.identity.keys == ("email", "sid")

    @pytest.mark.parametrize(("body", "expected"), [
        ('authoritative_source = "hr"', "<config>: identity.authoritative_source: no source named 'hr'"),
        ('authoritative_source = "ad"\nkeys = ["email", "phone"]', "identity: Value error, unknown correlation"),
        ('authoritative_source = "ad"\nkeys = []', "identity: Value error, keys: name at least one"),
        ('keys = ["email"]', "identity.authoritative_source: required key is missing"),
    ])
    def test_errors_name_the_key(self, body: str, expected: str) -> None:
        with pytest.raises(ConfigError) as raised:
            parse_config(self.BASE + "[identity]\n" + body + "\n")
        assert expected in str(raised.value)
