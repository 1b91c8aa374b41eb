from datetime import timedelta

from auditor.activity import ActivityState, classify_activity
from auditor.model import AccountKind, ChangeAction, PasswordPolicy, Severity
from auditor.rules import RULES
from tests.rule_helpers import AS_OF, account, context, events, inventory


def fired(rule_id: str, inv, ctx=None) -> dict[str, object]:
    findings = RULES[rule_id].evaluate(inv, ctx or context())
    return {f.subject.name: f for f in findings}


class TestInactiveEnabled:
    def test_fires_and_does_not(self) -> None:
        inv = inventory(
            account("stale", days_idle=120), account("fresh", days_idle=10),
            account("disabled", days_idle=400, enabled=False),
            account("unknown", days_idle=None, known=False), account("never", days_idle=None),
            account("expired", days_idle=200, expires_at=AS_OF - timedelta(days=1)),
            account("admin", days_idle=100, privileged=True, privilege_evidence=["member of Domain Admins"]),
        )
        result = fired("inactive-enabled", inv)
        assert set(result) == {"stale", "admin"}
        assert result["stale"].severity == Severity.MEDIUM
        assert result["admin"].severity == Severity.HIGH  # privileged: one step more severe
        evidence = result["stale"].evidence
        assert evidence["days_since_last_activity"] == 120 and evidence["attribute"] == "lastLogonTimestamp"
        assert {c.framework for c in result["stale"].controls} >= {"CIS Controls v8", "NIST SP 800-53 rev5"}

    def test_lag_margin(self) -> None:
        # lastLogonTimestamp may trail real logons by 14 days: 95 days recorded could be 81 real.
        inv = inventory(account("margin", days_idle=95, lag_days=14), account("beyond", days_idle=105, lag_days=14))
        result = fired("inactive-enabled", inv)
        assert "lag" in result["beyond"].evidence["lag_caveat"]
        assert result["beyond"].severity == Severity.MEDIUM and result["beyond"].evidence["confidence"] == "high"
        # Not known to be active either: reported at low severity with the window its real last use lies in.
        margin = result["margin"]
        assert margin.severity == Severity.LOW and margin.evidence["confidence"] == "low"
        assert margin.evidence["days_since_last_use_between"] == [81, 95]
        assert "between 81 and 95 days ago" in margin.message
        verdict = classify_activity(inv.accounts[0], AS_OF, 90, 14)
        assert verdict.state == ActivityState.INACTIVE_WITHIN_LAG

    def test_enabled_unknown_is_neither_a_finding_nor_fine(self) -> None:
        inv = inventory(account("unsaid", days_idle=400, enabled=None), account("stale", days_idle=400))
        assert set(fired("inactive-enabled", inv)) == {"stale"}
        from auditor.kpis import compute_kpis

        ctx = context()
        kpis = {k.id: k for k in compute_kpis(inv, [], ctx.scorer.verdicts(inv), AS_OF, ctx.settings.period_days)}
        assert kpis["enabled_unknown_accounts"].value == 1
        assert kpis["inactive_enabled_accounts"].value == 1
        assert kpis["inactive_deactivated_share"].detail["inactive_disabled"] == 0  # unknown is not "disabled"

    def test_per_source_threshold(self) -> None:
        inv = inventory(account("saas", days_idle=45, source="saas"), account("ad", days_idle=45, source="ad"))
        assert set(fired("inactive-enabled", inv, context(per_source={"saas": 30}))) == {"saas"}


class TestNeverUsed:
    def test_grace_period_and_unknowns(self) -> None:
        inv = inventory(
            account("old-never", days_idle=None, created_days=60), account("new-never", days_idle=None, created_days=5),
            account("no-date", days_idle=None, created_days=None), account("used", days_idle=3),
            account("unknown", days_idle=None, known=False, created_days=60),
            account("disabled-never", days_idle=None, enabled=False),
        )
        result = fired("never-used-enabled", inv, context(new_account_grace_days=14))
        assert set(result) == {"old-never", "no-date"}
        assert "creation date unknown" in result["no-date"].evidence["note"]

    def test_classification_states(self) -> None:
        assert classify_activity(account("n", days_idle=None, created_days=3), AS_OF, 90, 14).state == ActivityState.NEW
        assert classify_activity(account("u", known=False), AS_OF, 90, 14).state == ActivityState.UNKNOWN


class TestAccountFlags:
    def test_password_never_expires(self) -> None:
        inv = inventory(
            account("svc", password_never_expires=True, password_last_set_at=AS_OF - timedelta(days=800),
                    kind=AccountKind.SERVICE),
            account("normal", password_never_expires=False), account("unknown-flag"),
            account("off", password_never_expires=True, enabled=False),
            account("ws$", password_never_expires=True, kind=AccountKind.MACHINE),
        )
        result = fired("password-never-expires", inv)
        assert set(result) == {"svc"}
        assert result["svc"].evidence["password_age_days"] == 800

    def test_password_not_required(self) -> None:
        inv = inventory(account("kiosk", password_not_required=True), account("ok", password_not_required=False),
                        account("trust$", password_not_required=True, kind=AccountKind.MACHINE))
        assert set(fired("password-not-required", inv)) == {"kiosk"}

    def test_reversible_encryption_on_accounts_and_policies(self) -> None:
        policies = [PasswordPolicy("ad", "p1", "Cleartext policy", reversible_encryption=True),
                    PasswordPolicy("ad", "p2", "Normal policy", reversible_encryption=False)]
        inv = inventory(account("legacy", reversible_password_encryption=True), account("ok"), policies=policies)
        result = fired("reversible-password-encryption", inv)
        assert set(result) == {"legacy", "Cleartext policy"}
        assert result["Cleartext policy"].subject.type == "policy"


def test_mfa_not_registered() -> None:
    inv = inventory(
        account("nomfa", mfa_registered=False), account("hasmfa", mfa_registered=True), account("unknown"),
        account("admin", mfa_registered=False, privileged=True), account("off", mfa_registered=False, enabled=False),
        account("svc", mfa_registered=False, kind=AccountKind.SERVICE),
    )
    result = fired("mfa-not-registered", inv)
    assert set(result) == {"nomfa", "admin"}
    assert result["admin"].severity == Severity.HIGH and result["nomfa"].severity == Severity.MEDIUM


def test_guest_invitation_pending() -> None:
    inv = inventory(
        account("old-invite", kind=AccountKind.GUEST, invitation_pending_since=AS_OF - timedelta(days=45)),
        account("new-invite", kind=AccountKind.GUEST, invitation_pending_since=AS_OF - timedelta(days=10)),
        account("accepted", kind=AccountKind.GUEST),
        account("blocked", kind=AccountKind.GUEST, enabled=False, invitation_pending_since=AS_OF - timedelta(days=90)),
    )
    result = fired("guest-invitation-pending", inv)
    assert set(result) == {"old-invite"} and result["old-invite"].evidence["days_pending"] == 45
    assert set(fired("guest-invitation-pending", inv, context(thresholds={"guest_invitation_days": 5}))) == {
        "old-invite", "new-invite"}


class TestWeakPasswordPolicy:
    def test_weak_strong_and_unknown(self) -> None:
        weak = PasswordPolicy("ad", "weak", "Default domain policy", min_length=7, min_character_classes=3)
        strong = PasswordPolicy("ad", "strong", "Admins PSO", min_length=24, min_character_classes=3)
        unknown = PasswordPolicy("ad", "unk", "Unreadable PSO", settings_known=False, unknown_reason="not readable")
        inv = inventory(account("a", password_policy_id="weak"), policies=[weak, strong, unknown])
        ctx = context()
        result = fired("weak-password-policy", inv, ctx)
        assert set(result) == {"Default domain policy"}
        evidence = result["Default domain policy"].evidence
        assert evidence["zxcvbn_score"] < 3 and evidence["enabled_accounts_governed"] == 1
        assert evidence["weakest_admitted_candidate"]
        assert ctx.rater.admits(weak, evidence["weakest_admitted_candidate"])
        assert ctx.rater.rate(strong).strong is True
        assert ctx.rater.rate(unknown).strong is None

    def test_threshold_is_configurable(self) -> None:
        policy = PasswordPolicy("ad", "p", "Sixteen", min_length=16, min_character_classes=3, banned_list=True)
        assert fired("weak-password-policy", inventory(policies=[policy]), context("Org One", thresholds={}))
        lenient = context("Org One", thresholds={"strong_policy_score": 0})
        assert not fired("weak-password-policy", inventory(policies=[policy]), lenient)

    def test_same_policy_rated_once_per_run(self) -> None:
        policies = [PasswordPolicy("ad", f"p{n}", f"Copy {n}", min_length=9, min_character_classes=2) for n in range(4)]
        ctx = context("Cache Check Org")
        assert len(fired("weak-password-policy", inventory(policies=policies), ctx)) == 4
        assert ctx.rater.ratings_computed == 1

    def test_rater_respects_policy_rules(self) -> None:
        ctx = context()
        complex8 = PasswordPolicy("s", "c", "c", min_length=8, min_character_classes=3)
        assert ctx.rater.admits(complex8, "Password1") and not ctx.rater.admits(complex8, "password1")
        banned = PasswordPolicy("s", "b", "b", min_length=8, min_character_classes=3, banned_list=True)
        assert not ctx.rater.admits(banned, "Password1")  # Entra-style banned list: "password" + 1 char
        assert not ctx.rater.admits(banned, "P@ssw0rd1")  # substitutions are normalised before matching
        assert ctx.rater.admits(banned, "Summer2026!")


class TestChangeVolume:
    def test_volume_per_action_in_period_only(self) -> None:
        evts = events("ad", {3: 4, 10: 2}) + events("ad", {5: 3}, ChangeAction.CREATED) + events("ad", {60: 9})
        finding = fired("account-change-volume", inventory(change_events=evts), context(period_days=30))["ad"]
        assert finding.evidence["total"] == 9
        assert finding.evidence["per_action"] == {"modified": 6, "created": 3}

    def test_no_events_no_finding(self) -> None:
        assert fired("account-change-volume", inventory(change_events=events("ad", {90: 3}))) == {}

    def test_spike_fires_over_baseline(self) -> None:
        baseline = {d: 3 + d % 2 for d in range(1, 60)}
        baseline[8] = 30
        result = fired("change-volume-spike", inventory(change_events=events("ad", baseline)))
        assert list(result) == [f"ad on {(AS_OF - timedelta(days=8)).date().isoformat()}"]
        evidence = next(iter(result.values())).evidence
        assert evidence["count"] == 30 and evidence["baseline_median"] in (3, 3.5, 4)

    def test_spike_does_not_fire_on_noise_or_without_history(self) -> None:
        noisy = {d: (2, 6, 3, 5, 4, 8, 1)[d % 7] for d in range(1, 60)}
        assert fired("change-volume-spike", inventory(change_events=events("ad", noisy))) == {}
        # A big day with fewer than 7 days of history before it cannot be judged.
        assert fired("change-volume-spike", inventory(change_events=events("ad", {3: 40, 4: 1}))) == {}

    def test_spike_ignores_approximate_snapshot_times(self) -> None:
        baseline = {d: 3 for d in range(1, 60)}
        evts = events("ad", baseline)
        bunched = events("ad", {2: 50})
        for event in bunched:
            event.approximate_time = True
        assert fired("change-volume-spike", inventory(change_events=evts + bunched)) == {}


def test_every_rule_has_complete_metadata() -> None:
    for rule_id, rule in RULES.items():
        assert rule.meta.id == rule_id
        assert rule.meta.title and rule.meta.description and rule.meta.remediation
        assert rule.meta.controls, rule_id
