"""Machine-readable outputs: ``findings.json`` (versioned contract), ``findings.jsonl``, and the CSV files.

Each is made as a stream of chunks, a batch of findings or rows at a time: at a million accounts no output is
ever whole in memory (``auditor.outputs`` writes the chunks to their file as they come)."""

from __future__ import annotations

import codecs
import json
import operator
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from auditor import __version__, jsonio
from auditor.engine import AuditResult
from auditor.jsonio import Streamed, batched
from auditor.model import ControlRef, Finding, to_jsonable
from auditor.rules import RULES
from auditor.timeconv import to_iso
from auditor.views import account_rows, person_rows

FINDINGS_SCHEMA_VERSION = "1.1"  # 1.1: "person" subjects, the offboarding_gaps KPI
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "|")
_FORMULA_CHARS = "=+-@"
# Leading characters a spreadsheet may skip before reading "=": white space, NBSP, zero-width and BOM.
_BLANKS = " \t\r\n\x0b\x0c\u00a0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
    "\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"


def csv_safe(value: Any) -> str:
    """Neutralise spreadsheet formula injection: a cell a spreadsheet may evaluate gets a leading quote.

    Spreadsheets evaluate "=", "+", "-", "@" (OWASP CSV Injection), some after leading blanks, and some read
    full-width or small forms (＝＋－＠, ﹦) as the ASCII ones: the first non-blank character is compared after
    NFKC normalisation, and blanks include NBSP, zero-width spaces and a BOM. Our own numbers are not text
    a directory wrote, and stay numbers.
    """
    if type(value) is str and value[:1].isascii() and value[:1].isalnum():
        return value  # most cells: an ASCII letter or digit first is neither a blank nor a formula sign
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    significant = text.lstrip(_BLANKS)
    if significant and unicodedata.normalize("NFKC", significant[0])[:1] in _FORMULA_CHARS:
        return "'" + text
    return text


def findings_head(result: AuditResult) -> dict[str, Any]:
    """findings.json without its findings (``"findings": None`` holds their place, last)."""
    return {
        "schema_version": FINDINGS_SCHEMA_VERSION,
        "tool": {"name": "identity-auditor", "version": __version__},
        "run_id": result.run_id,
        "organization": result.organization,
        "generated_at": to_iso(result.generated_at),
        "as_of": to_iso(result.as_of),
        "complete": result.complete,
        "gaps": result.gaps,
        "notes": result.notes,
        "sources": [
            {"name": s.name, "type": s.type, "status": s.state.value, "accounts": s.accounts,
             "policies": s.policies, "change_events": s.change_events, "error": s.error, "warnings": s.warnings,
             "collected_at": to_iso(s.collected_at)}
            for s in result.inventory.sources
        ],
        "kpis": {k.id: {"label": k.label, "value": k.value, "unit": k.unit, "detail": k.detail} for k in result.kpis},
        "exclusions": result.exclusions,
        "accepted_risks": result.accepted_risks,
        "rules": [
            {"id": r.meta.id, "title": r.meta.title, "severity": r.meta.severity.value,
             "controls": [to_jsonable(c) for c in r.meta.controls]}
            for r in RULES.values()
        ],
        "findings": None,
    }


def finding_entry(finding: Finding) -> dict[str, Any]:
    """One finding as findings.json and findings.jsonl write it."""
    subject = finding.subject
    return {
        "rule": finding.rule, "severity": finding.severity.value, "source": finding.source,
        "subject": {"type": subject.type, "id": subject.id, "name": subject.name,
                    **({"username": subject.name} if subject.type == "account" else {})},
        # The model's own values: jsonio writes them as their converted form (to_jsonable), without the walk.
        "message": finding.message, "evidence": finding.evidence, "controls": finding.controls,
        "excluded_by": finding.excluded_by,
        "accepted_by": finding.accepted_by, "status": finding.status,
    }


def findings_json(result: AuditResult) -> Iterator[bytes]:
    """The versioned findings document, written a batch of findings at a time."""
    return jsonio.dumps_streamed({**findings_head(result), "findings": Streamed(map(finding_entry, result.findings))},
                                 indent=True)


def findings_jsonl(result: AuditResult) -> Iterator[bytes]:
    """One finding per line for SIEM ingestion, each carrying the run it came from."""
    stamp = {"run_id": result.run_id, "as_of": to_iso(result.as_of), "organization": result.organization,
             "tool_version": __version__, "audit_complete": result.complete}
    return jsonio.dumps_lines({**stamp, **finding_entry(f)} for f in result.findings)


ACCOUNT_COLUMNS = (
    "source", "id", "username", "display_name", "email", "kind", "enabled", "privileged", "activity",
    "last_activity_at", "last_activity_attribute", "days_since_activity", "created_at", "password_last_set_at",
    "password_never_expires", "mfa_registered", "password_policy", "policy_strength", "groups", "findings",
)


def csv_line(cells: list[str]) -> str:
    """One CSV record of text cells as ``csv.writer(..., lineterminator="\r\n")`` writes it (the default
    dialect, minimal quoting): a cell holding a comma, a quote, CR or LF quoted, its quotes doubled. Joined by
    str methods, not csv's character-by-character C loop: findings.csv's evidence cells (hundreds of characters,
    quotes throughout) took csv.writer some 10 us a row. A line none of whose cells needs quotes is checked
    whole."""
    line = ",".join(cells)
    if line.count(",") == len(cells) - 1 and '"' not in line and "\r" not in line and "\n" not in line:
        return '""\r\n' if line == "" and len(cells) == 1 else line + "\r\n"  # csv quotes a lone empty cell
    return ",".join(_quoted(cell) for cell in cells) + "\r\n"


def _quoted(cell: str) -> str:
    if "," in cell or '"' in cell or "\r" in cell or "\n" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _csv(header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> Iterator[bytes]:
    """UTF-8 with a BOM (Excel opens UTF-8 names correctly), CRLF, every cell through :func:`csv_safe`;
    written a batch of rows at a time."""
    yield codecs.BOM_UTF8 + csv_line(list(header)).encode("utf-8")
    for batch in batched(rows):
        # csv_safe's first tests inline: most cells pass them, and a call for each of 20 million cells was seconds.
        yield "".join(csv_line([value if type(value) is str and (not value or ((first := value[:1]).isalnum()
                                                                               and first.isascii()))
                                else _YES_NO[value] if type(value) is bool else csv_safe(value) for value in row])
                      for row in batch).encode("utf-8")


_YES_NO = ("false", "true")  # a bool's cell, as csv_safe writes it, by the bool as an index


def _state(enabled: bool | None) -> str:
    return "unknown" if enabled is None else "enabled" if enabled else "disabled"


# Yes/no columns whose empty cell would hide that the source did not say: written as "unknown".
_TRISTATE = frozenset({"enabled", "password_never_expires", "mfa_registered"})


PRICE_COLUMNS = ("monthly_cost", "currency")  # only when a source has a [sources.cost]


def accounts_csv(result: AuditResult) -> Iterator[bytes]:
    columns = ACCOUNT_COLUMNS + (PRICE_COLUMNS if result.prices else ())
    cells = operator.itemgetter(*columns)  # a row's cells in one call, not a lookup each
    tristate = [index for index, column in enumerate(columns) if column in _TRISTATE]

    def row_cells(row: dict[str, Any]) -> list[Any]:
        values = list(cells(row))
        for index in tristate:
            if values[index] is None:
                values[index] = "unknown"
        return values

    return _csv(columns, map(row_cells, account_rows(result)))


PERSON_COLUMNS = ("person", "name", "directory_account", "directory_state", "departed_not_before", "departed_at",
                  "last_activity_anywhere", "enabled_accounts", "accounts", "findings")


def people_csv(result: AuditResult) -> Iterator[bytes]:
    """One row per person; their accounts as "source:username (state, last use, linked by key)"."""
    rows = []
    for row in person_rows(result):
        accounts = "; ".join(
            f"{a['source']}:{a['username']} ({_state(a['enabled'])}, "
            f"last {a['last_activity_at'] or a['activity']}, by {a['linked_by']})" for a in row["accounts"])
        rows.append([*(row[c] for c in PERSON_COLUMNS[:-2]), accounts, ";".join(row["findings"])])
    return _csv(PERSON_COLUMNS, rows)


FINDING_COLUMNS = ("rule", "severity", "status", "source", "subject_type", "subject_id", "subject", "message",
                   "controls", "evidence")


def evidence_json(evidence: Mapping[str, Any]) -> str:
    """A finding's evidence as findings.csv writes it: ``json.dumps(to_jsonable(evidence), sort_keys=True)``,
    with json converting only what it cannot write itself (times, durations, dataclasses), not walking every
    value in Python first (a third of the file's time). The same text while the evidence's keys are text, as
    every rule's are."""
    return json.dumps(dict(evidence.items()), default=to_jsonable, ensure_ascii=False, sort_keys=True)


def findings_csv(result: AuditResult) -> Iterator[bytes]:
    # By the rule's controls tuple, which its findings share (a past run's findings read back each have their
    # own: then only the first few are remembered). The tuples live as long as the result, so ids stay theirs.
    controls: dict[int, str] = {}

    def controls_text(refs: tuple[ControlRef, ...]) -> str:
        text = controls.get(id(refs))
        if text is None:
            text = "; ".join(f"{c.framework} {c.control}" for c in refs)
            if len(controls) < 256:
                controls[id(refs)] = text
        return text

    return _csv(FINDING_COLUMNS, (
        [f.rule, f.severity.value, f.status_note or "open", f.source,
         f.subject.type, f.subject.id, f.subject.name, f.message, controls_text(f.controls), evidence_json(f.evidence)]
        for f in result.findings
    ))
