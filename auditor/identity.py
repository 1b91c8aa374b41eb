"""Links between sources that describe the same identity (the basis for cross-source rules)."""

from __future__ import annotations

from auditor.model import Inventory


def inherit_on_premises_policies(inventory: Inventory) -> int:
    """A cloud account synced from an audited directory is governed by its directory account's password
    policy (password hash sync keeps the on-premises rules). Linked by the directory's objectSid, which
    Entra ID keeps as onPremisesSecurityIdentifier. Returns how many accounts were linked."""
    by_sid = {a.identifiers["sid"]: a for a in inventory.accounts if "sid" in a.identifiers}
    linked = 0
    for account in inventory.accounts:
        on_prem = by_sid.get(account.identifiers.get("on_prem_sid", ""))
        if on_prem is None or account.password_policy_id is not None or on_prem.source == account.source:
            continue
        account.password_policy_id = on_prem.password_policy_id
        account.password_policy_source = on_prem.source
        linked += 1
    return linked
