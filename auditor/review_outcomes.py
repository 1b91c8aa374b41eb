"""What became of access-review decisions: read by the revocation rule, the review KPIs and the evidence
bundle alike, from the campaigns the inventory carries (pure: no history, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auditor.model import Account, Inventory, ReviewCampaign, ReviewDecision, ReviewPacket
from auditor.timeconv import to_iso


@dataclass(frozen=True)
class Decided:
    campaign: ReviewCampaign
    packet: ReviewPacket
    decision: ReviewDecision


def latest_decisions(campaigns: list[ReviewCampaign]) -> dict[tuple[str, str], Decided]:
    """Each account's latest decision across campaigns: a later "keep" overrides an earlier "revoke"."""
    latest: dict[tuple[str, str], Decided] = {}
    for campaign in campaigns:
        for packet in campaign.packets:
            for decision in packet.decisions:
                key = (decision.source, decision.account_id)
                if key not in latest or decision.decided_at >= latest[key].decision.decided_at:
                    latest[key] = Decided(campaign, packet, decision)
    return latest


def revocation_outcome(account: Account | None, as_of: datetime) -> str:
    """"carried out" (disabled, expired or gone) or "not carried out" (still usable)."""
    if account is None:
        return "carried out (account gone)"
    return "not carried out" if account.usable_at(as_of) else "carried out"


def revocations(inventory: Inventory, as_of: datetime) -> list[tuple[Decided, Account | None, str]]:
    revoked = {key: decided for key, decided in latest_decisions(inventory.reviews).items()
               if decided.decision.decision == "revoke"}
    if not revoked:  # no index of every account for no decision
        return []
    accounts = {(a.source, a.id): a for a in inventory.accounts}
    return [(decided, accounts.get(key), revocation_outcome(accounts.get(key), as_of))
            for key, decided in revoked.items()]


def completion(campaign: ReviewCampaign) -> dict[str, Any]:
    """How far a campaign got: decided of in scope, overall and per reviewer."""
    per_reviewer = {p.reviewer: (len({(d.source, d.account_id) for d in p.decisions}), len(p.accounts))
                    for p in campaign.packets}
    decided = sum(d for d, _ in per_reviewer.values())
    total = sum(n for _, n in per_reviewer.values())
    return {"campaign": campaign.id, "run": campaign.run_id, "accounts": total, "decided": decided,
            "unassigned": len(campaign.unassigned), "share": round(decided / total, 4) if total else None,
            "per_reviewer": dict(sorted(per_reviewer.items()))}  # reviewer -> (decided, in scope)


def _completion_evidence(campaign: ReviewCampaign) -> dict[str, Any]:
    done = completion(campaign)
    return {**done, "per_reviewer": [{"reviewer": r, "decided": d, "accounts": n}
                                     for r, (d, n) in done["per_reviewer"].items()]}


def campaign_evidence(inventory: Inventory, as_of: datetime) -> list[dict[str, Any]]:
    """reviews.json: each campaign's scope, packets and digests, decisions, and what became of revocations."""
    outcomes = {(d.decision.source, d.decision.account_id, d.campaign.id): outcome
                for d, _account, outcome in revocations(inventory, as_of)}
    return [{
        "campaign": campaign.id, "run": campaign.run_id, "created_at": to_iso(campaign.created_at), "by": campaign.by,
        "completion": _completion_evidence(campaign),
        "unassigned": campaign.unassigned,
        "packets": [{"packet": p.id, "reviewer": p.reviewer, "digest": p.digest, "accounts": p.accounts,
                     "decisions": [{
                         "source": d.source, "account_id": d.account_id, "username": d.username,
                         "decision": d.decision, "comment": d.comment, "decided_at": to_iso(d.decided_at),
                         **({"outcome": outcomes.get((d.source, d.account_id, campaign.id), "superseded")}
                            if d.decision == "revoke" else {}),
                     } for d in p.decisions]} for p in campaign.packets],
    } for campaign in inventory.reviews]
