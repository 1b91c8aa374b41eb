"""One audit, top to bottom: read the past once, collect, compare with the past, correlate, score, measure.

No output is written here: the CLI renders every output from the returned ``AuditResult`` and records the run
once (``record``) when everything succeeded.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor import __version__
from auditor.changes import deduplicate, diff_snapshots, merge_events
from auditor.compact import SharedKeys
from auditor.config import Config, IdentitySettings
from auditor.cost import Price, account_prices, spend_kpi
from auditor.exclusions import ExclusionStatus, apply_exclusions
from auditor.gctuning import bulk_allocation
from auditor.history import History, PastAudit, Pruned, RunRecord
from auditor.identity import correlate, inherit_on_premises_policies
from auditor.kpis import Kpi, compute_kpis
from auditor.model import (
    Account,
    ChangeAction,
    DepartedAccount,
    Finding,
    Inventory,
    SourceState,
    SourceStatus,
    to_jsonable,
)
from auditor.policy_rating import PolicyRater
from auditor.rules import RULES
from auditor.rules.base import RuleContext
from auditor.scoring import Verdicts, verdict_key
from auditor.snapshot_delta import SnapshotChange, change_of
from connectors import SOURCE_TYPES
from connectors.base import CollectContext, SourceError, SourceResult

Progress = Callable[[str], None]


@dataclass
class RunChanges:
    """What recording a run adds to the history beside the scored result."""

    snapshots: dict[str, list[Account]] = field(default_factory=dict)  # sources read in full
    source_states: dict[str, dict[str, str]] = field(default_factory=dict)
    departures: list[DepartedAccount] = field(default_factory=list)  # accounts gone since the previous audit
    # The previous snapshot of each of those sources (run id, delta depth, how this run's differs from it, None
    # when no delta keeps the order): this run's is stored as a delta from it.
    bases: dict[str, tuple[str, int, SnapshotChange | None]] = field(default_factory=dict)


@dataclass
class AuditResult:
    """The scored audit: every output reads this and nothing else, and history stores it whole, so a past run
    renders again without collecting or judging anything."""

    run_id: str
    as_of: datetime
    generated_at: datetime
    organization: str
    period_days: int
    strong_policy_score: int
    inventory: Inventory
    verdicts: Verdicts
    findings: list[Finding]
    kpis: list[Kpi]
    exclusions: list[dict[str, Any]]  # ExclusionStatus.as_dict() of each exclusion
    accepted_risks: list[dict[str, Any]]
    previous_run: RunRecord | None  # past runs without their findings: what outputs show of them is below
    past_runs: list[RunRecord]
    gaps: list[str] = field(default_factory=list)  # data this audit is missing: makes it incomplete
    notes: list[str] = field(default_factory=list)  # caveats the report must state (expired exclusions, ...)
    pseudonymised: bool = False  # identifying values replaced by keyed pseudonyms (auditor.pseudonymise)
    since_previous: dict[str, int] = field(default_factory=dict)  # open findings "new" and "resolved" since then
    # Keys of the open findings that were not open in the previous audit (none recorded on a first audit, where
    # every finding is new): notifications and the OCSF export say which.
    new_findings: list[str] = field(default_factory=list)
    prices: dict[str, Price] = field(default_factory=dict)  # by verdict key: accounts of sources with a price
    changes: RunChanges | None = field(default=None, repr=False)  # None once stored

    @property
    def complete(self) -> bool:
        return not self.gaps

    @property
    def period_start(self) -> datetime:
        return self.as_of - timedelta(days=self.period_days)

    def open_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "open"]

    def run_record(self, *, with_findings: bool = True) -> RunRecord:
        return RunRecord(
            id=self.run_id, as_of=self.as_of, generated_at=self.generated_at, tool_version=__version__,
            complete=self.complete, sources=[to_jsonable(s) for s in self.inventory.sources],
            kpis={k.id: {"value": k.value, "detail": k.detail} for k in self.kpis},
            findings=list(self.open_finding_summaries()) if with_findings else [],
        )

    def open_finding_summaries(self) -> Iterator[dict[str, Any]]:
        """What history keeps of each open finding for later runs (new and resolved, trends)."""
        for f in self.findings:
            if f.status == "open":
                yield {"key": f.key, "rule": f.rule, "severity": f.severity.value, "subject": f.subject.name}


def _collect(
    config: Config, as_of: datetime, past: PastAudit, progress: Progress,
) -> tuple[Inventory, dict[str, list[Account]], dict[str, dict[str, str]]]:
    inventory = Inventory()
    complete_snapshots: dict[str, list[Account]] = {}
    states: dict[str, dict[str, str]] = {}
    for source in config.sources:
        if not source.enabled:
            continue
        # Said whatever becomes of the read: a failed source must not hide that it was configured insecurely.
        status = SourceStatus(name=source.name, type=source.type, warnings=source.insecure_settings())
        progress(f"collecting {source.name} ({source.type})")
        try:
            result = SOURCE_TYPES[source.type].collect(
                source, CollectContext(as_of, config.audit.period_days, past.states.get(source.name, {})))
        except SourceError as exc:
            status.state, status.error = SourceState.FAILED, str(exc)
        except Exception as exc:  # a connector bug must not cost the other sources their audit
            status.state, status.error = SourceState.FAILED, f"unexpected error: {type(exc).__name__}: {exc}"
        else:
            duplicates = _drop_duplicate_ids(result)
            status.accounts, status.policies = len(result.accounts), len(result.policies)
            status.change_events = len(result.change_events)
            status.warnings += result.warnings + _future_times(result.accounts, as_of)
            if result.partial_error or duplicates:
                status.state = SourceState.PARTIAL
                status.error = "; ".join(e for e in (result.partial_error, duplicates) if e)
            else:
                complete_snapshots[source.name] = result.accounts
                if result.state:
                    states[source.name] = result.state
            inventory.accounts.extend(result.accounts)
            inventory.policies.extend(result.policies)
            inventory.change_events.extend(result.change_events)
        status.collected_at = datetime.now(UTC)
        inventory.sources.append(status)
    return inventory, complete_snapshots, states


def _drop_duplicate_ids(result: SourceResult) -> str | None:
    """Two records with one id: which one is true is not known. The first is audited, the rest listed."""
    seen: set[str] = set()
    kept: list[Account] = []
    dropped: list[Account] = []
    for account in result.accounts:
        (dropped if account.id in seen else kept).append(account)
        seen.add(account.id)
    if not dropped:
        return None
    result.accounts = kept
    listed = ", ".join(f"{a.id} ({a.username})" for a in dropped[:10]) + (" ..." if len(dropped) > 10 else "")
    return f"{len(dropped)} record(s) repeat an id already read and are not audited: {listed}"


_TIMES = ("last_activity_at", "created_at", "password_last_set_at")
_CLOCK_SKEW = timedelta(days=1)


def _future_times(accounts: list[Account], as_of: datetime) -> list[str]:
    """Times after the audit's as-of (beyond a day of clock skew) are kept but said: a wrong clock, a
    replayed export audited with an old --as-of, or a value someone wrote."""
    found = [f"{a.username}: {name} {getattr(a, name).isoformat()}" for a in accounts for name in _TIMES
             if getattr(a, name) is not None and getattr(a, name) > as_of + _CLOCK_SKEW]
    if not found:
        return []
    listed = "; ".join(found[:10]) + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
    return [f"{len(found)} time value(s) after the audit's as-of time: {listed}"]


def _source_gaps(inventory: Inventory) -> list[str]:
    gaps = []
    for status in inventory.sources:
        if status.state == SourceState.FAILED:
            gaps.append(f"source {status.name} failed and is not in this audit: {status.error}")
        elif status.state == SourceState.PARTIAL:
            gaps.append(f"source {status.name} was read only in part: {status.error}")
    return gaps


def _compare(
    inventory: Inventory, snapshots: dict[str, list[Account]], past: PastAudit, as_of: datetime, since: datetime,
) -> tuple[list[DepartedAccount], dict[str, SnapshotChange | None]]:
    """Differences with the previous complete snapshots become change events; accounts gone are departures. Only
    the previous accounts whose stored encodings differ from the current ones are read back whole and compared."""
    derived = []
    departures: list[DepartedAccount] = []
    changes: dict[str, SnapshotChange | None] = {}
    for source, accounts in snapshots.items():
        if source in past.snapshots:
            previous_as_of, stored = past.snapshots[source]
            comparison, differing = stored.compared(accounts)
            derived.extend(diff_snapshots(source, differing, accounts, previous_as_of, as_of,
                                          unchanged=comparison.unchanged))
            departures.extend(DepartedAccount(a, as_of, previous_as_of) for a in differing
                              if a.id not in comparison.changed)  # differing and not changed: gone
            changes[source] = change_of(comparison, accounts)
    logged = deduplicate([*inventory.change_events, *past.events])
    inventory.change_events = merge_events(logged, derived, since)
    return departures, changes


def _link_people(
    settings: IdentitySettings, inventory: Inventory, past: PastAudit, departed_now: list[DepartedAccount],
    as_of: datetime,
) -> str | None:
    """Build the identity graph, or say why it cannot be built (a gap: the cross-source rules need it)."""
    authority = settings.authoritative_source
    status = next((s for s in inventory.sources if s.name == authority), None)
    if status is None or status.state != SourceState.OK:
        state = "not read (disabled in the config)" if status is None else f"{status.state.value}"
        return (f"accounts were not linked to people because the authoritative source {authority} was {state}: "
                "offboarding gaps, unmanaged accounts and person-level inactivity were not evaluated")
    departed = {d.account.id: d for d in past.departures}
    departed.update({d.account.id: d for d in departed_now if d.account.source == authority})
    leaving = (ChangeAction.DISABLED, ChangeAction.DELETED)
    events = [e for e in inventory.change_events if e.source == authority and e.action in leaving]
    inventory.identity = correlate(inventory.accounts, settings, as_of, departed.values(),
                                   deduplicate([*events, *past.leaving_events]), past.snapshot_times)
    return None


def _evaluate(
    config: Config, inventory: Inventory, context: RuleContext, progress: Progress,
) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    gaps: list[str] = []
    for rule_id, rule in RULES.items():
        if rule_id in config.audit.disabled_rules:
            continue
        progress(f"rule {rule_id}")
        try:
            findings.extend(rule.evaluate(inventory, context))
        except Exception as exc:  # report it as a gap rather than losing the whole audit
            gaps.append(f"rule {rule_id} could not be evaluated: {type(exc).__name__}: {exc}")
    findings.sort(key=lambda f: (-f.severity.rank, f.rule, f.source, f.subject.name.lower()))
    return findings, gaps


def _exclude(config: Config, inventory: Inventory, findings: list[Finding], as_of: datetime,
             ) -> tuple[list[ExclusionStatus], list[ExclusionStatus], list[str]]:
    exclusions = apply_exclusions(findings, inventory.accounts, config.exclusions, as_of)
    accepted = apply_exclusions(findings, inventory.accounts, config.accepted_risks, as_of, mark="accepted_by")
    notes = []
    for kind, statuses in (("exclusion", exclusions), ("accepted risk", accepted)):
        for entry in statuses:
            if entry.expired:
                notes.append(f"{kind} {entry.exclusion.label} expired on {entry.exclusion.expires}: "
                             f"{len(entry.findings)} finding(s) it covered are reported again")
    return exclusions, accepted, notes


def events_window(config: Config, context: RuleContext | None = None) -> timedelta:
    """How far before its as-of an audit reads change events: the period, and before it as far back as any rule
    reads (a spike's baseline)."""
    settings = config.audit
    context = context or RuleContext(
        as_of=datetime.now(UTC), settings=settings, inactive_days=config.inactive_days_for,
        parameters=config.rule_parameters, rater=PolicyRater(settings.organization, 0, 2000))
    return timedelta(days=settings.period_days + context.lookback_days(r.meta for r in RULES.values()) + 1)


def prune_history(config: Config, history: History, now: datetime, *, keep_runs: int | None = None,
                  keep_days: int | None = None, dry_run: bool = False) -> Pruned:
    """Retention: ``[audit] history_keep_runs`` / ``history_keep_days`` unless given here."""
    return history.prune(keep_runs or config.audit.history_keep_runs, keep_days or config.audit.history_keep_days,
                         now, events_window(config), dry_run=dry_run)


def run_audit(
    config: Config, as_of: datetime, history: History, progress: Progress = lambda _: None,
    rater: PolicyRater | None = None,
) -> AuditResult:
    """Collect -> compare with the past -> correlate -> score -> measure. Recording and rendering read the
    result. ``rater`` may be shared by audits of one organisation in one process (its ratings are pure)."""
    generated_at = datetime.now(UTC)
    settings = config.audit
    context = RuleContext(
        as_of=as_of, settings=settings, inactive_days=config.inactive_days_for, parameters=config.rule_parameters,
        rater=rater or PolicyRater(settings.organization, settings.thresholds.strong_policy_score, as_of.year),
    )
    since = as_of - events_window(config, context)
    enabled = [s.name for s in config.sources if s.enabled]
    authority = config.identity.authoritative_source if config.identity is not None else None
    past = history.read_past(as_of, enabled, authority, since)

    with bulk_allocation():  # the inventory is built once and lives to the end: see auditor.gctuning
        inventory, snapshots, states = _collect(config, as_of, past, progress)
    inventory.reviews = past.reviews
    inherit_on_premises_policies(inventory)
    gaps = _source_gaps(inventory)

    progress("comparing with history")
    departures, snapshot_changes = _compare(inventory, snapshots, past, as_of, since)

    if config.identity is not None:
        progress("linking accounts to people")
        gap = _link_people(config.identity, inventory, past, departures, as_of)
        if gap:
            gaps.append(gap)

    findings, rule_gaps = _evaluate(config, inventory, context, progress)
    gaps += rule_gaps
    exclusions, accepted, notes = _exclude(config, inventory, findings, as_of)
    verdicts = context.scorer.verdicts(inventory)

    kpis = compute_kpis(inventory, findings, verdicts, as_of, settings.period_days)
    prices = account_prices(config.sources, inventory.accounts)
    if prices:
        kpis.append(spend_kpi(inventory.accounts, findings, verdicts, prices))
        for finding in findings:  # the cost of leaving it as it is, beside the finding's other evidence
            price = prices.get(verdict_key(finding.source, finding.subject.id)) if finding.subject.type == "account" \
                else None
            if price is not None:
                finding.evidence = SharedKeys({**finding.evidence, "monthly_cost": {
                    "amount": price.monthly, "currency": price.currency, "basis": price.basis}})
    run_id = f"{generated_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    now_open = {f.key for f in findings if f.status == "open"}
    before = past.previous_findings
    since_previous = {"new": len(now_open - before), "resolved": len(before - now_open)} if past.runs else {}
    runs = [dataclasses.replace(r, findings=[]) for r in past.runs]
    bases = {s: (*past.snapshot_bases[s], snapshot_changes[s]) for s in snapshot_changes if s in past.snapshot_bases}
    return AuditResult(
        run_id=run_id, as_of=as_of, generated_at=generated_at, organization=settings.organization,
        period_days=settings.period_days, strong_policy_score=settings.thresholds.strong_policy_score,
        inventory=inventory, verdicts=verdicts, findings=findings, kpis=kpis,
        exclusions=[s.as_dict() for s in exclusions], accepted_risks=[s.as_dict() for s in accepted],
        previous_run=runs[-1] if runs else None, past_runs=runs, gaps=gaps, notes=notes,
        since_previous=since_previous, new_findings=sorted(now_open - before) if past.runs else [], prices=prices,
        changes=RunChanges(snapshots, states, departures, bases),
    )


def record(history: History, result: AuditResult, files: dict[str, bytes] | None = None,
           rendered: Collection[str] = ()) -> None:
    """Write the run once: its scored result, snapshots, events, source states, departures, the files ``files``
    (those not made from the result), and the names of the files ``rendered`` from the result (made again from
    it when a bundle of the run is asked for)."""
    from auditor.result_store import result_chunks

    changes = result.changes or RunChanges()
    # The open findings' summaries written as they are made: held as a list they were 300 MB at a million.
    history.record_run(result.run_record(with_findings=False), changes.snapshots, result.inventory.change_events,
                       changes.source_states, files or {}, changes.departures,
                       result_chunks(result, changes.snapshots, events_apart=True), changes.bases, rendered,
                       result.inventory.change_events, open_findings=result.open_finding_summaries())
