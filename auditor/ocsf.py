"""findings.ocsf.jsonl: the run's findings as OCSF events, one JSON object a line, for SIEMs that ingest the
Open Cybersecurity Schema Framework (https://schema.ocsf.io, version 1.5.0).

- One **Detection Finding** (class 2004) per finding: activity Create when the finding is new since the
  previous audit, Update when it was already open; status New, or Suppressed when an exclusion or an accepted
  risk covers it (shown, not counted, as everywhere else).
- One **Compliance Finding** (class 2003) per control the rules evidence: Fail when an open finding maps to
  it, Pass when none does and every source was read in full, Warning ("did not yield a result due to missing
  information") when none does but the audit is incomplete: an unread source proves nothing.

Rendered from the scored result alone, like every other output; ``findings.jsonl`` stays as it is.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterator
from typing import Any

from auditor import __version__, jsonio
from auditor.engine import AuditResult
from auditor.evidence import control_index
from auditor.model import Finding, Severity
from auditor.rules import RULES

OCSF_VERSION = "1.5.0"
FINDINGS_CATEGORY = 2
DETECTION_FINDING, COMPLIANCE_FINDING = 2004, 2003  # class_uid = category_uid * 1000 + class id
CREATE, UPDATE = 1, 2  # activity_id; type_uid = class_uid * 100 + activity_id
_SEVERITY_IDS = {Severity.INFO: 1, Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
_SEVERITY_NAMES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
_RANK = operator.attrgetter("rank")
_PASS, _WARNING, _FAIL = 1, 2, 3  # compliance status_id
_COMPLIANCE_STATUS = {_PASS: "Pass", _WARNING: "Warning", _FAIL: "Fail"}


def findings_ocsf(result: AuditResult) -> Iterator[bytes]:
    """One event a line, written a batch at a time."""
    return jsonio.dumps_lines(ocsf_events(result))


def ocsf_events(result: AuditResult) -> Iterator[dict[str, Any]]:
    """Detection Findings in the findings' order, then Compliance Findings by framework and control."""
    time = _millis(result)
    new = set(result.new_findings)  # empty on a first audit: then every finding is new
    for finding in result.findings:
        yield _detection(result, finding, time, finding.key in new or not result.previous_run)
    for entry in control_index(result):
        yield _compliance(result, entry, time)


def _millis(result: AuditResult) -> int:
    return int(result.as_of.timestamp() * 1000)  # OCSF timestamp_t: milliseconds since the epoch


def _uid(*parts: str) -> str:
    """Stable across runs (a SIEM follows one finding from audit to audit); opaque, so no name leaks into it."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def _envelope(result: AuditResult, class_uid: int, class_name: str, activity_id: int, severity_id: int,
              event_code: str, uid: str, time: int) -> dict[str, Any]:
    return {
        "activity_id": activity_id, "activity_name": "Create" if activity_id == CREATE else "Update",
        "category_uid": FINDINGS_CATEGORY, "category_name": "Findings",
        "class_uid": class_uid, "class_name": class_name, "type_uid": class_uid * 100 + activity_id,
        "severity_id": severity_id, "severity": _SEVERITY_NAMES[severity_id], "time": time,
        "metadata": {
            "version": OCSF_VERSION, "uid": _uid(result.run_id, uid), "event_code": event_code,
            "correlation_uid": result.run_id,
            "product": {"name": "identity-auditor", "vendor_name": "identity-auditor", "version": __version__},
        },
    }


def _detection(result: AuditResult, finding: Finding, time: int, is_new: bool) -> dict[str, Any]:
    rule = RULES.get(finding.rule)
    severity_id = _SEVERITY_IDS[finding.severity]
    suppressed = finding.status != "open"
    event = _envelope(result, DETECTION_FINDING, "Detection Finding", CREATE if is_new else UPDATE, severity_id,
                      finding.rule, finding.key, time)
    event.update({
        "message": finding.message,
        "status_id": 3 if suppressed else 1, "status": "Suppressed" if suppressed else "New",
        "finding_info": {
            "uid": _uid(finding.key), "title": rule.meta.title if rule else finding.rule, "desc": finding.message,
            "types": [finding.rule], "data_sources": [finding.source],
        },
        "resources": [{"type": finding.subject.type, "uid": finding.subject.id, "name": finding.subject.name,
                       "group": {"name": finding.source}}],
        "evidences": [{"data": finding.evidence}],  # written by jsonio as its converted form
        "unmapped": {
            "controls": [f"{c.framework} {c.control}" for c in finding.controls],
            "status_note": finding.status_note, "audit_complete": result.complete,
        },
    })
    if suppressed:
        event["status_detail"] = finding.status_note
    return event


def _compliance(result: AuditResult, entry: dict[str, Any], time: int) -> dict[str, Any]:
    status = _FAIL if entry["open_findings"] else _PASS if result.complete else _WARNING
    # The findings themselves, not their summaries: a summary is a dict made on each read (a million at scale).
    worst = max((f.severity for f in entry["open_findings"].findings), key=_RANK, default=None)
    control = f"{entry['framework']} {entry['control']}"
    event = _envelope(result, COMPLIANCE_FINDING, "Compliance Finding", UPDATE if result.previous_run else CREATE,
                      _SEVERITY_IDS[worst] if worst else 1, control, control, time)
    event.update({
        "message": f"{control}: {_COMPLIANCE_STATUS[status].lower()} ({len(entry['open_findings'])} open finding(s))",
        "status_id": 1, "status": "New",
        "finding_info": {"uid": _uid("control", control), "title": control, "types": entry["rules"]},
        "compliance": {
            "standards": [entry["framework"]], "control": entry["control"], "status_id": status,
            "checks": [{"uid": rule_id, "name": RULES[rule_id].meta.title} for rule_id in entry["rules"]],
        },
        "unmapped": {
            "population": entry["population"], "open_findings": len(entry["open_findings"]),
            "accepted_findings": len(entry["accepted_findings"]),
            "excluded_findings": len(entry["excluded_findings"]), "audit_complete": result.complete,
            "compliance_status": _COMPLIANCE_STATUS[status],
        },
    })
    return event
