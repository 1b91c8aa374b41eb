"""unmanaged-account: accounts that belong to no person in the authoritative directory."""

from __future__ import annotations

from auditor.controls import CIS, ISO, NIST, SOC2, refs
from auditor.model import AccountKind, Finding, Inventory, Severity
from auditor.rules.base import Rule, RuleContext, RuleMeta, account_finding, raised_if_privileged

META = RuleMeta(
    id="unmanaged-account",
    area="Offboarding and ownership",
    examines="accounts",
    needs_identity=True,
    title="Accounts no directory person owns",
    description="Enabled accounts in other sources that link to no person of the authoritative directory: "
    "shadow accounts created by hand, accounts of people who left before the history began, or accounts "
    "whose source gives no identity key. Bots, machines, service accounts, declared service accounts "
    "([identity] service_accounts) and guests (external by design; see the guest rules) are not reported.",
    severity=Severity.MEDIUM,
    remediation="Find the owner. Connect the application to the directory (SSO and SCIM) so that its accounts "
    "follow the joiner and leaver process; remove accounts nobody claims; declare real service accounts.",
    controls=refs((CIS, "5.1"), (CIS, "6.7"), (NIST, "AC-2"), (ISO, "A.5.16"), (SOC2, "CC6.2")),
)


def evaluate(inventory: Inventory, ctx: RuleContext) -> list[Finding]:
    graph = inventory.identity
    if graph is None:
        return []
    findings = []
    for unlinked in graph.unlinked:
        account = unlinked.account
        if (not account.usable_at(ctx.as_of) or account.automated or account.kind == AccountKind.GUEST
                or graph.declared_service(account)):
            continue
        why = {
            "no_key": "its source gives no email, employee ID or directory identifier to link it by",
            "ambiguous": f"it cannot be told apart: {unlinked.detail}",
        }.get(unlinked.reason, f"no {graph.authoritative_source} person matches it")
        findings.append(account_finding(
            META, account, f"{account.username} in {account.source} belongs to no one in "
            f"{graph.authoritative_source}: {why}",
            {"reason": unlinked.reason, "detail": unlinked.detail, "keys_tried": list(graph.keys),
             "email": account.email, "kind": account.kind.value, "privileged": account.privileged},
            raised_if_privileged(account, META.severity),
        ))
    return findings


RULE = Rule(META, evaluate)
