"""Exclusions: findings on listed accounts are kept but marked, and not counted, until they expire."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor.config import AcceptedRisk, Exclusion
from auditor.model import Account, Finding


@dataclass
class ExclusionStatus:
    exclusion: Exclusion
    expired: bool
    findings: list[str] = field(default_factory=list)  # keys of the findings it matched (or would have)

    def as_dict(self) -> dict[str, Any]:
        """What findings.json and the report say of an exclusion or accepted risk."""
        entry = self.exclusion
        data: dict[str, Any] = {
            "selector": entry.label, "reason": entry.reason,
            "expires": entry.expires.isoformat() if entry.expires else None,
            "expired": self.expired, "findings": len(self.findings),
        }
        if isinstance(entry, AcceptedRisk):
            data["owner"] = entry.owner
        return data


def matches(exclusion: Exclusion, account: Account, rule: str) -> bool:
    if exclusion.source and exclusion.source != account.source:
        return False
    if exclusion.rules and rule not in exclusion.rules:
        return False
    if exclusion.id and exclusion.id != account.id:
        return False
    if exclusion.username and not fnmatch.fnmatchcase(account.username.lower(), exclusion.username.lower()):
        return False
    return not exclusion.group or account.in_group(exclusion.group)


def apply_exclusions(
    findings: list[Finding], accounts: list[Account], exclusions: tuple[Exclusion, ...], as_of: datetime,
    mark: str = "excluded_by",
) -> list[ExclusionStatus]:
    """Mark matching findings (``excluded_by`` or ``accepted_by``) with the entry's label, unless the entry
    has expired: then the finding stays open and the status records what it would have covered."""
    if not exclusions:  # the usual case: no index of a million accounts for nothing
        return []
    by_key = {(a.source, a.id): a for a in accounts}
    statuses = [ExclusionStatus(e, e.expires is not None and e.expires < as_of.date()) for e in exclusions]
    for finding in findings:
        if finding.subject.type != "account":
            continue
        account = by_key.get((finding.source, finding.subject.id))
        if account is None:
            continue
        for status in statuses:
            if matches(status.exclusion, account, finding.rule):
                status.findings.append(finding.key)
                if not status.expired and finding.status == "open":
                    setattr(finding, mark, status.exclusion.label)
    return statuses
