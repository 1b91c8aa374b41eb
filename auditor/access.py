"""``auditor check-access`` and ``auditor permissions``: before the first scheduled run, prove that every
enabled source grants what the audit reads, and say what each gap would cost."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.config import Config
from auditor.secrets import scrub_text
from connectors import SOURCE_TYPES
from connectors.base import SourceConfig
from connectors.preflight import AccessCheck, files_readable


@dataclass(frozen=True)
class SourceAccess:
    source: SourceConfig
    checks: list[AccessCheck]

    @property
    def ok(self) -> bool:
        return all(c.status == "ok" for c in self.checks)


def check_sources(config: Config) -> list[SourceAccess]:
    """Every enabled source's checks, in config order. A check that crashes is reported, never raised: one
    source's surprise must not hide the others' answers."""
    results = []
    for source in config.sources:
        if not source.enabled:
            continue
        check = SOURCE_TYPES[source.type].check_access or files_readable
        try:
            checks = check(source)
        except Exception as exc:  # a connector's bug, shown as such
            checks = [AccessCheck("check access", "unreachable", "the source cannot be checked",
                                  f"{type(exc).__name__}: {exc}")]
        if not checks:
            checks = [AccessCheck("nothing to check", "ok")]
        results.append(SourceAccess(source, checks))
    return results


def access_table(results: list[SourceAccess]) -> str:
    rows = [("SOURCE", "CHECK", "STATUS", "WHAT IT MEANS FOR THE AUDIT")]
    for result in results:
        for check in result.checks:
            meaning = "" if check.status == "ok" else check.impact + (f" [{check.detail}]" if check.detail else "")
            rows.append((result.source.name, check.what, check.status.upper() if check.status != "ok" else "ok",
                         meaning))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
             for row in rows]
    return scrub_text("\n".join(line.rstrip() for line in lines))


def access_document(results: list[SourceAccess]) -> list[dict[str, object]]:
    return [{"source": r.source.name, "type": r.source.type, "ok": r.ok,
             "checks": [{"what": c.what, "status": c.status, "impact": c.impact, "detail": scrub_text(c.detail)}
                        for c in r.checks]} for r in results]


def permissions_text(types: list[str]) -> str:
    lines = []
    for name in types:
        source_type = SOURCE_TYPES[name]
        lines.append(f"{name}: {source_type.description}")
        needs = source_type.permissions or ("read access to the configured files (no network, no account)",)
        lines += [f"  - {need}" for need in needs]
    return "\n".join(lines)
