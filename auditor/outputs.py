"""Every output of a run, rendered from the scored result alone: the run writes these, and a past run (its
result read back from history) renders the same bytes again."""

from __future__ import annotations

from auditor.engine import AuditResult
from auditor.exports import accounts_csv, findings_csv, findings_json, findings_jsonl, people_csv
from auditor.ocsf import findings_ocsf
from auditor.report_html import render_report

JSONL = "findings.jsonl"
OCSF = "findings.ocsf.jsonl"


def render_outputs(result: AuditResult, *, jsonl: bool = False, ocsf: bool = False) -> dict[str, bytes]:
    outputs = {
        "findings.json": findings_json(result),
        "accounts.csv": accounts_csv(result),
        "findings.csv": findings_csv(result),
        "report.html": render_report(result),
    }
    if result.inventory.identity is not None:
        outputs["people.csv"] = people_csv(result)
    if jsonl:
        outputs[JSONL] = findings_jsonl(result)
    if ocsf:
        outputs[OCSF] = findings_ocsf(result)
    return outputs
