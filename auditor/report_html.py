"""The self-contained HTML report: one file, no network, inline CSS/JS admitted by hash only."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from auditor import __version__
from auditor.activity import ActivityState
from auditor.controls import FRAMEWORKS
from auditor.engine import AuditResult
from auditor.kpis import Kpi
from auditor.model import AccountKind, Finding, SourceState
from auditor.rules import RULES
from auditor.timeconv import to_iso
from auditor.views import account_rows


def _asset(name: str) -> str:
    return files("report_templates").joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def script_json(value: Any) -> Markup:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' can close or open a tag."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return Markup(text)  # noqa: S704 - escaped just above for the script-data context


def _kpi_display(kpi: Kpi) -> str:
    if kpi.value is None:
        return "n/a"
    if kpi.unit == "ratio":
        return f"{kpi.value * 100:.1f}%"
    return f"{kpi.value:,}"


def _detail_text(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def _evidence_text(evidence: dict[str, Any]) -> str:
    lines = []
    for key, value in evidence.items():
        if value is None or value == [] or value == {}:
            continue
        shown = value if isinstance(value, str | int | float | bool) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {shown}")
    return "\n".join(lines)


ACCOUNT_COLUMNS = ("source", "username", "display_name", "email", "kind", "enabled", "privileged", "activity",
                   "days_since_activity", "last_activity_attribute", "policy_strength", "mfa_registered", "groups",
                   "findings")
# Columns with few distinct values are sent once as a list and referenced by position: at 100,000 accounts
# the difference is tens of megabytes.
_DICTIONARY_COLUMNS = {"source", "kind", "activity", "last_activity_attribute", "policy_strength", "groups",
                       "findings"}


def _encode_accounts(result: AuditResult) -> dict[str, Any]:
    dictionaries: dict[str, dict[Any, int]] = {c: {} for c in _DICTIONARY_COLUMNS}
    rows = []
    for row in account_rows(result):
        encoded = []
        for column in ACCOUNT_COLUMNS:
            value = row[column]
            if column in dictionaries:
                value = dictionaries[column].setdefault(value, len(dictionaries[column]))
            encoded.append(value)
        rows.append(encoded)
    return {"columns": ACCOUNT_COLUMNS, "dictionaries": {c: list(d) for c, d in dictionaries.items()}, "rows": rows}


def _encode_findings(findings: list[Finding]) -> tuple[dict[str, Any], list[list[Any]]]:
    """Evidence every finding of a rule shares (thresholds, caveats) once; each row keeps only its own."""
    common: dict[str, Any] = {}
    if len(findings) > 1:
        first = findings[0].evidence
        common = {k: v for k, v in first.items() if all(f.evidence.get(k, object()) == v for f in findings[1:])}
    rows = [
        [f.severity.value, f.source, f.subject.name, f.message,
         _evidence_text({k: v for k, v in f.evidence.items() if k not in common}), f.status_note]
        for f in findings
    ]
    return common, rows


def _policy_rows(result: AuditResult) -> list[dict[str, Any]]:
    governed = Counter(
        a.policy_key for a in result.inventory.accounts
        if a.usable_at(result.as_of) and a.kind != AccountKind.MACHINE
    )
    rows = []
    for policy in result.inventory.policies:
        rating = result.context.rater.rate(policy)
        if not policy.settings_known:
            rules, label = "unknown", f"unknown: {rating.reason}"
        else:
            rules = (
                f"min length {policy.min_length or 0}; "
                + (f"{policy.min_character_classes} of 4 character classes; " if policy.min_character_classes else "")
                + ("banned-password list; " if policy.banned_list else "")
                + (f"max age {policy.max_age.days} days" if policy.max_age else "never expires")
            )
            label = f"{'strong' if rating.strong else 'weak'} (zxcvbn score {rating.score})"
        rows.append({
            "source": policy.source, "name": policy.name, "rules": rules, "rating": label,
            "example": rating.weakest_example or "", "governed": governed[(policy.source, policy.id)],
        })
    return rows


def _source_rows(result: AuditResult) -> list[dict[str, Any]]:
    rows = []
    for status in result.inventory.sources:
        unknown = Counter(
            a.activity_unknown_reason or "source does not report activity"
            for a in result.inventory.accounts if a.source == status.name and not a.activity_known
        )
        lags = {a.last_activity_attribute: a.activity_lag for a in result.inventory.accounts
                if a.source == status.name and a.activity_known and a.activity_lag}
        gaps = [f"activity unknown for {n} account(s): {reason}" for reason, n in unknown.items()]
        gaps += [f"{attr} may lag real use by up to {lag.total_seconds() / 86400:g} days"
                 for attr, lag in lags.items() if attr]
        unreadable = sum(1 for p in result.inventory.policies if p.source == status.name and not p.settings_known)
        if unreadable:
            gaps.append(f"{unreadable} password policy/policies with unreadable settings (strength unknown)")
        gaps += status.warnings
        rows.append({
            "name": status.name, "type": status.type, "state": status.state.value, "accounts": status.accounts,
            "policies": status.policies, "change_events": status.change_events,
            "error": status.error if status.state != SourceState.OK else None, "gaps": gaps,
        })
    return rows


def render_report(result: AuditResult) -> bytes:
    css, js = _asset("report.css"), _asset("report.js")
    csp = (
        "default-src 'none'; "
        f"style-src {_csp_hash(css)}; script-src {_csp_hash(js)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    env = Environment(
        loader=FileSystemLoader(str(files("report_templates"))),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
    )
    sections = []
    findings_data: dict[str, list[list[Any]]] = {}
    for rule_id, rule in RULES.items():
        mine = [f for f in result.findings if f.rule == rule_id]
        mine.sort(key=lambda f: f.status != "open")  # open first, then excluded and accepted
        common, findings_data[rule_id] = _encode_findings(mine)
        sections.append({
            "id": rule_id, "title": rule.meta.title, "severity": rule.meta.severity.value,
            "description": rule.meta.description, "remediation": rule.meta.remediation,
            "controls": "; ".join(f"{c.framework} {c.control}" for c in rule.meta.controls),
            "frameworks": "|".join(sorted({c.framework for c in rule.meta.controls})),
            "open": sum(1 for f in mine if f.status == "open"), "excluded": sum(1 for f in mine if f.excluded_by),
            "accepted": sum(1 for f in mine if f.accepted_by),
            "common_evidence": _evidence_text(common),
        })
    since_previous = None
    if result.previous_run:
        before = {f["key"] for f in result.previous_run.findings}
        now = {f.key for f in result.open_findings()}
        since_previous = {"as_of": to_iso(result.previous_run.as_of), "new": len(now - before),
                          "resolved": len(before - now)}
    template = env.get_template("report.html.j2")
    html = template.render(
        csp=csp, css=Markup(css), js=Markup(js),  # noqa: S704 - our own package files, hashed into the CSP
        organization=result.organization, as_of=to_iso(result.as_of), as_of_day=result.as_of.date().isoformat(),
        generated_at=to_iso(result.generated_at), run_id=result.run_id, version=__version__,
        complete=result.complete, gaps=result.gaps, notes=result.notes,
        kpis=[{"id": k.id, "label": k.label, "display": _kpi_display(k), "detail_text": _detail_text(k.detail)}
              for k in result.kpis],
        since_previous=since_previous, rule_sections=sections, policies=_policy_rows(result),
        sources=_source_rows(result),
        exclusions=[{"selector": s.exclusion.label, "reason": s.exclusion.reason,
                     "expires": s.exclusion.expires.isoformat() if s.exclusion.expires else None,
                     "expired": s.expired, "findings": len(s.findings)} for s in result.exclusions],
        accepted_risks=[{"selector": s.exclusion.label, "reason": s.exclusion.reason,
                         "owner": getattr(s.exclusion, "owner", ""), "expires": str(s.exclusion.expires),
                         "expired": s.expired, "findings": len(s.findings)} for s in result.accepted_risks],
        activity_states=[s.value for s in ActivityState],
        frameworks=FRAMEWORKS,
        report_json=script_json({"accounts": _encode_accounts(result), "findings": findings_data}),
    )
    return html.encode("utf-8")
