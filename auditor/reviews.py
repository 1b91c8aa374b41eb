"""User-access reviews: one packet per reviewer for a recorded audit, and the decisions they return.

A campaign reviews the enabled accounts of one run (machine accounts aside). Each packet is bound to its
campaign and to the exact list of accounts it holds by a SHA-256 digest kept in the history, so an import
refuses a packet from another campaign, an edited account list, or a decision that is not keep, revoke or
modify, naming the file and row. Everything in a packet came from a directory: hostile text, escaped in HTML
and neutralised in CSV.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
import secrets
from base64 import b64encode
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from auditor import jsonio
from auditor.config import ReviewOwner
from auditor.engine import AuditResult
from auditor.exports import csv_safe
from auditor.model import Account, AccountKind, ReviewCampaign, ReviewDecision, ReviewPacket
from auditor.scoring import verdict_key
from auditor.timeconv import to_iso
from connectors.dn import dn_key

DECISIONS = ("keep", "revoke", "modify")
COLUMNS = ("campaign", "packet", "row", "source", "account_id", "username", "name", "kind", "last_use",
           "privileged", "groups", "open_findings", "monthly_cost", "decision", "comment")


class ReviewError(Exception):
    """A packet that cannot be imported: the message names the file and row."""


@dataclass
class Plan:
    campaign: ReviewCampaign
    reviewers: dict[str, str] = field(default_factory=dict)  # packet id -> the reviewer's display name


def in_scope(result: AuditResult) -> list[Account]:
    """Accounts with access to review: enabled (or of unknown state: they may have access), not machines."""
    return [a for a in result.inventory.accounts
            if a.kind != AccountKind.MACHINE and result.verdicts.of(a).state in ("enabled", "unknown")]


class _Directory:
    """Finds the account a manager reference names: in the account's own source first, then by address."""

    def __init__(self, accounts: Iterable[Account]) -> None:
        self.by_key: dict[tuple[str, str], Account] = {}
        self.by_address: dict[str, Account] = {}
        for account in accounts:
            keys = [account.id, account.username.lower(), *(v for v in account.identifiers.values())]
            if account.email:
                keys.append(account.email.lower())
                self.by_address.setdefault(account.email.lower(), account)
            if dn := account.raw.get("dn"):
                keys.append(f"dn:{dn_key(dn)}")
            for key in keys:
                self.by_key.setdefault((account.source, key), account)

    def manager(self, account: Account) -> Account | str | None:
        """The manager's account; else the reference itself when it is an address (a reviewer still); else None."""
        reference = account.manager
        if not reference:
            return None
        kind, _, value = reference.partition(":")
        if kind == "dn":
            try:
                found = self.by_key.get((account.source, f"dn:{dn_key(value)}"))
            except ValueError:
                found = None
        else:
            found = self.by_key.get((account.source, value)) or self.by_key.get((account.source, value.lower()))
        found = found or self.by_address.get(value.lower())
        if found is not None:
            return found
        return value.lower() if "@" in value else None


def _reviewer(manager: Account) -> tuple[str, str]:
    return (manager.email or manager.username).lower(), manager.display_name or manager.username


def _owner(owners: Iterable[ReviewOwner], account: Account, by: str) -> str | None:
    return next((o.owner.lower() for o in owners if o.covers(account, by)), None)


def packet_digest(campaign_id: str, packet_id: str, accounts: Iterable[Iterable[str]]) -> str:
    canonical = "\n".join("\x1f".join((campaign_id, packet_id, *key)) for key in accounts)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def plan(result: AuditResult, by: str, owners: Iterable[ReviewOwner], now: datetime) -> Plan:
    """Who reviews which account: ``manager`` (the directories' manager data; owners for the rest), ``source``
    or ``group`` (the configured owners); accounts nobody is found for are listed as unassigned."""
    owners = tuple(owners)
    directory = _Directory(result.inventory.accounts)
    assigned: dict[str, list[Account]] = {}
    names: dict[str, str] = {}
    unassigned: list[Account] = []
    for account in in_scope(result):
        reviewer: str | None = None
        if by == "manager":
            manager = directory.manager(account)
            if isinstance(manager, Account):
                reviewer, names[reviewer] = _reviewer(manager)
            else:
                reviewer = manager
        if reviewer is None:
            reviewer = _owner(owners, account, by)
        if reviewer is None:
            unassigned.append(account)
        else:
            assigned.setdefault(reviewer, []).append(account)
    campaign_id = f"{now:%Y%m%d}-{secrets.token_hex(3)}"
    packets = []
    for number, (reviewer, accounts) in enumerate(sorted(assigned.items()), start=1):
        packet_id = f"p{number:03d}"
        keys = [[a.source, a.id, a.username] for a in accounts]
        packets.append(ReviewPacket(packet_id, reviewer, packet_digest(campaign_id, packet_id, keys), keys))
    campaign = ReviewCampaign(campaign_id, result.run_id, now, by, packets,
                              [[a.source, a.id, a.username] for a in unassigned])
    return Plan(campaign, {p.id: names.get(p.reviewer, p.reviewer) for p in packets})


@dataclass(frozen=True)
class Row:
    """One account of a packet as the reviewer sees it."""

    source: str
    account_id: str
    username: str
    name: str
    kind: str
    last_use: str
    privileged: str
    groups: str
    open_findings: str
    monthly_cost: str


class Rows:
    """The packet rows of one audit: its accounts and open findings indexed once for every packet."""

    def __init__(self, result: AuditResult) -> None:
        self.result = result
        self.accounts = {(a.source, a.id): a for a in result.inventory.accounts}
        self.findings: dict[tuple[str, str], list[str]] = {}
        for finding in result.open_findings():
            if finding.subject.type == "account":
                self.findings.setdefault((finding.source, finding.subject.id), []).append(finding.rule)

    def __call__(self, keys: Iterable[Iterable[str]]) -> list[Row]:
        made = []
        for source, account_id, *_username in keys:
            account = self.accounts[(source, account_id)]
            unknown = not account.activity_known or self.result.verdicts.of(account).activity.value == "unknown"
            price = self.result.prices.get(verdict_key(source, account_id))
            made.append(Row(source, account_id, account.username, account.display_name or "", account.kind.value,
                            "unknown" if unknown else to_iso(account.last_activity_at) or "never",
                            "yes" if account.privileged else "no", ";".join(account.groups),
                            ";".join(sorted(self.findings.get((source, account_id), []))),
                            f"{price.monthly:.2f} {price.currency}" if price else ""))
        return made


def packet_csv(campaign: ReviewCampaign, packet: ReviewPacket, rows: list[Row]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for number, row in enumerate(rows, start=1):
        writer.writerow([csv_safe(v) for v in (campaign.id, packet.id, number, row.source, row.account_id,
                                               row.username, row.name, row.kind, row.last_use, row.privileged,
                                               row.groups, row.open_findings, row.monthly_cost, "", "")])
    return buffer.getvalue().encode("utf-8-sig")


_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}"
          "th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top;font-size:13px}"
          "th{background:#eee}.choices span{display:inline-block;border:1px solid #888;border-radius:3px;"
          "padding:0 4px;margin-right:3px}.meta{color:#555}")


def packet_html(campaign: ReviewCampaign, packet: ReviewPacket, reviewer_name: str, rows: list[Row]) -> bytes:
    """A self-contained page: no script, no request (the CSP allows only its own style block)."""
    style_hash = b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; form-action 'none'"
    e = html.escape
    decisions = {(d.source, d.account_id): d for d in packet.decisions}
    body = []
    for number, row in enumerate(rows, start=1):
        decided = decisions.get((row.source, row.account_id))
        decision = (f'<td class="decision">{e(decided.decision)}</td><td>{e(decided.comment)}</td>' if decided
                    else '<td class="decision choices"><span>keep</span><span>revoke</span><span>modify</span></td>'
                         "<td></td>")
        body.append(f"<tr><td>{number}</td><td>{e(row.source)}</td><td>{e(row.username)}</td><td>{e(row.name)}</td>"
                    f"<td>{e(row.kind)}</td><td>{e(row.last_use)}</td><td>{e(row.privileged)}</td>"
                    f"<td>{e(row.groups)}</td><td>{e(row.open_findings)}</td><td>{e(row.monthly_cost)}</td>"
                    f"{decision}</tr>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<title>Access review {e(campaign.id)} for {e(reviewer_name)}</title><style>{_STYLE}</style></head>
<body><h1>Access review for {e(reviewer_name)}</h1>
<p class="meta">Campaign <b id="campaign">{e(campaign.id)}</b>, packet <b id="packet">{e(packet.id)}</b>, accounts as
audited in run {e(campaign.run_id)}; digest <code id="digest">{e(packet.digest)}</code>.</p>
<p>For each account decide <b>keep</b> (access is still appropriate), <b>revoke</b> (remove it) or <b>modify</b>
(change it: say how in the comment). Write the decision in the <code>decision</code> column of the CSV file of
this packet, add a comment where useful, and return the CSV. Do not add, remove or reorder rows: an edited
account list is refused.</p>
<table><thead><tr><th>#</th><th>Source</th><th>Account</th><th>Name</th><th>Kind</th><th>Last use</th>
<th>Privileged</th><th>Groups</th><th>Open findings</th><th>Monthly cost</th><th>Decision</th><th>Comment</th></tr>
</thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
    return page.encode("utf-8")


def packet_files(plan: Plan, result: AuditResult) -> dict[str, bytes]:
    """A campaign's directory: each reviewer's CSV (to return) and HTML (to read), the accounts nobody was found
    to review, and campaign.json (scope, packets and their digests)."""
    campaign = plan.campaign
    make_rows = Rows(result)
    files: dict[str, bytes] = {}
    listing = []
    for packet in campaign.packets:
        stem = f"{packet.id}-{re.sub(r'[^A-Za-z0-9@._-]', '_', packet.reviewer)[:60]}"
        rows = make_rows(packet.accounts)
        files[f"{stem}.csv"] = packet_csv(campaign, packet, rows)
        files[f"{stem}.html"] = packet_html(campaign, packet, plan.reviewers.get(packet.id, packet.reviewer), rows)
        listing.append({"packet": packet.id, "reviewer": packet.reviewer, "digest": packet.digest,
                        "accounts": len(packet.accounts), "csv": f"{stem}.csv", "html": f"{stem}.html"})
    if campaign.unassigned:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(COLUMNS[3:-2])
        writer.writerows([csv_safe(v) for v in (r.source, r.account_id, r.username, r.name, r.kind, r.last_use,
                                                r.privileged, r.groups, r.open_findings, r.monthly_cost)]
                         for r in make_rows(campaign.unassigned))
        files["no-reviewer.csv"] = buffer.getvalue().encode("utf-8-sig")
    files["campaign.json"] = jsonio.dumps({
        "campaign": campaign.id, "run": campaign.run_id, "by": campaign.by,
        "created_at": to_iso(campaign.created_at), "packets": listing, "unassigned": len(campaign.unassigned),
    }, indent=True)
    return files


def _cell(value: str) -> str:
    """A cell as it was before csv_safe marked it (a spreadsheet that saved the packet may have dropped the
    mark already: then the cell is left as it is)."""
    return value[1:] if value.startswith("'") and csv_safe(value[1:]) == value else value


@dataclass(frozen=True)
class Imported:
    campaign_id: str
    packet_id: str
    decisions: list[ReviewDecision]


def read_packet(path: Path, campaigns: Mapping[str, ReviewCampaign], now: datetime) -> Imported:
    """A returned packet CSV, checked against its campaign in the history; decisions dated ``now``."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ReviewError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ReviewError(f"{path}: not UTF-8 text (save the packet as CSV UTF-8)") from None
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ReviewError(f"{path}: not a readable CSV file: {exc}") from None
    if not table or [c.strip().lower() for c in table[0]] != list(COLUMNS):
        raise ReviewError(f"{path}: row 1: not a review packet (expected the columns {', '.join(COLUMNS)})")
    numbered = [(number, cells) for number, cells in enumerate(table[1:], start=2) if any(cells)]  # file rows
    for number, cells in numbered:
        if len(cells) != len(COLUMNS):
            raise ReviewError(f"{path}: row {number}: {len(cells)} columns, expected {len(COLUMNS)}")
    records = [(number, dict(zip(COLUMNS, map(_cell, cells), strict=True))) for number, cells in numbered]
    if not records:
        raise ReviewError(f"{path}: the packet has no rows")
    first, head = records[0]
    campaign_id, packet_id = head["campaign"], head["packet"]
    campaign = campaigns.get(campaign_id)
    if campaign is None:
        raise ReviewError(f"{path}: row {first}: campaign {campaign_id[:40]!r} is not in this history (a packet of "
                          "another campaign or organisation?)")
    packet = next((p for p in campaign.packets if p.id == packet_id), None)
    if packet is None:
        raise ReviewError(f"{path}: row {first}: campaign {campaign_id} has no packet {packet_id[:20]!r}")
    decisions = []
    for number, record in records:
        if (record["campaign"], record["packet"]) != (campaign_id, packet_id):
            raise ReviewError(f"{path}: row {number}: belongs to campaign {record['campaign'][:40]!r} packet "
                              f"{record['packet'][:20]!r}, not to {campaign_id} {packet_id}: packets were mixed")
        decision = record["decision"].strip().lower()
        if decision and decision not in DECISIONS:
            raise ReviewError(f"{path}: row {number}: decision {record['decision'][:40]!r} is not one of "
                              f"{', '.join(DECISIONS)} (or empty: not decided yet)")
        if decision:
            decisions.append(ReviewDecision(record["source"], record["account_id"], record["username"], decision,
                                            record["comment"].strip()[:2000], now))
    listed = [[r["source"], r["account_id"], r["username"]] for _, r in records]
    if packet_digest(campaign_id, packet_id, listed) != packet.digest:
        expected = [list(k) for k in packet.accounts]
        numbers = [n for n, _ in records]
        differs = next((i for i, (got, want) in enumerate(zip(listed, expected, strict=False)) if got != want),
                       min(len(listed), len(expected)))  # else the first row beyond the shorter list
        row = numbers[differs] if differs < len(numbers) else numbers[-1] + 1
        raise ReviewError(f"{path}: row {row}: the account list differs from packet {packet_id} as issued "
                          "(a row added, removed, reordered, or its source, id or username changed): the digest does "
                          "not match")
    return Imported(campaign_id, packet_id, decisions)
