"""Rules by id. A new rule is one module plus one line here."""

from __future__ import annotations

from auditor.rules import (
    account_change_volume,
    change_volume_spike,
    guest_invitation_pending,
    inactive_enabled,
    mfa_not_enforced,
    mfa_not_registered,
    never_used_enabled,
    offboarding_gap,
    password_never_expires,
    password_not_required,
    person_inactive,
    reversible_password_encryption,
    review_revocation_not_applied,
    unmanaged_account,
    weak_password_policy,
)
from auditor.rules.base import Rule

RULES: dict[str, Rule] = {
    rule.meta.id: rule
    for rule in (
        inactive_enabled.RULE,
        never_used_enabled.RULE,
        weak_password_policy.RULE,
        password_never_expires.RULE,
        password_not_required.RULE,
        mfa_not_registered.RULE,
        guest_invitation_pending.RULE,
        reversible_password_encryption.RULE,
        account_change_volume.RULE,
        change_volume_spike.RULE,
        offboarding_gap.RULE,
        unmanaged_account.RULE,
        person_inactive.RULE,
        mfa_not_enforced.RULE,
        review_revocation_not_applied.RULE,
    )
}


def marked(mark: str) -> frozenset[str]:
    """Ids of the rules that declare ``mark`` (see ``auditor.rules.base.MARKS``)."""
    return frozenset(rule_id for rule_id, rule in RULES.items() if mark in rule.meta.marks)
