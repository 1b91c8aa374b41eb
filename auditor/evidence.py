"""Evidence bundles for auditors: one zip with the report, the exports, the inventory, the effective config,
run metadata, a per-control index, and a manifest of SHA-256 digests that ``auditor verify`` checks.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import io
import json
import platform
import secrets
import socket
import zipfile
import zlib
from typing import Any

from auditor import __version__
from auditor.config import Config, redacted_config
from auditor.engine import AuditResult
from auditor.model import to_jsonable
from auditor.rules import RULES
from auditor.timeconv import to_iso

BUNDLE_FORMAT = "identity-auditor-evidence/1"
MANIFEST = "manifest.json"
INVENTORY = "inventory.json"
# Account fields that identify a person; pseudonymising replaces them, and drops raw directory values.
_PERSONAL = ("username", "email", "display_name")


def evidence_files(result: AuditResult, config: Config, outputs: dict[str, bytes]) -> dict[str, bytes]:
    """Every file of the bundle except the manifest."""
    files = dict(outputs)
    inventory = {
        "as_of": to_iso(result.as_of),
        "accounts": to_jsonable(result.inventory.accounts),
        "password_policies": to_jsonable(result.inventory.policies),
        "change_events": to_jsonable([e for e in result.inventory.change_events
                                      if result.context.period_start < e.at <= result.as_of]),
    }
    files[INVENTORY] = _json(inventory)
    files["config.json"] = _json(redacted_config(config))
    files["run.json"] = _json({
        "tool": {"name": "identity-auditor", "version": __version__}, "run_id": result.run_id,
        "as_of": to_iso(result.as_of), "generated_at": to_iso(result.generated_at), "complete": result.complete,
        "gaps": result.gaps, "notes": result.notes, "sources": to_jsonable(result.inventory.sources),
        "operator": _operator(), "host": socket.gethostname(), "python": platform.python_version(),
    })
    files["controls.json"] = _json(control_index(result))
    return files


def control_index(result: AuditResult) -> list[dict[str, Any]]:
    """For each control: the rules that test it, the population they examined, and the findings."""
    index: dict[tuple[str, str], dict[str, Any]] = {}
    population = {"accounts": len(result.inventory.accounts), "password_policies": len(result.inventory.policies),
                  "sources": [s.name for s in result.inventory.sources]}
    for rule_id, rule in RULES.items():
        for control in rule.meta.controls:
            entry = index.setdefault((control.framework, control.control), {
                "framework": control.framework, "control": control.control, "rules": [], "population": population,
                "open_findings": [], "excluded_findings": []})
            entry["rules"].append(rule_id)
    for finding in result.findings:
        for control in finding.controls:
            entry = index[(control.framework, control.control)]
            key = "excluded_findings" if finding.excluded_by else "open_findings"
            entry[key].append({"rule": finding.rule, "severity": finding.severity.value, "source": finding.source,
                               "subject": finding.subject.name, "message": finding.message})
    return sorted(index.values(), key=lambda e: (e["framework"], e["control"]))


def pseudonymise_inventory(data: bytes) -> bytes:
    """Replace personal fields with keyed pseudonyms: stable within one bundle (so records still join),
    meaningless outside it (the key is random and not kept)."""
    key = secrets.token_bytes(32)

    def alias(value: str) -> str:
        return "p-" + hmac.new(key, value.lower().encode("utf-8"), hashlib.sha256).hexdigest()[:16]

    inventory = json.loads(data)
    for account in inventory["accounts"]:
        for name in _PERSONAL:
            if account.get(name):
                account[name] = alias(account[name])
        account["identifiers"] = {k: alias(v) for k, v in account.get("identifiers", {}).items()}
        account["email_aliases"] = [alias(v) for v in account.get("email_aliases", [])]
        account["raw"] = {}
    for event in inventory["change_events"]:
        for name in ("username", "actor"):
            if event.get(name):
                event[name] = alias(event[name])
    inventory["pseudonymised"] = True
    return _json(inventory)


def build_bundle(files: dict[str, bytes], *, pseudonymise: bool = False) -> bytes:
    files = dict(files)
    if pseudonymise:
        files[INVENTORY] = pseudonymise_inventory(files[INVENTORY])
    manifest = {
        "format": BUNDLE_FORMAT,
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in sorted(files.items())},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in sorted(files.items()):
            bundle.writestr(name, data)
        bundle.writestr(MANIFEST, _json(manifest))
    return buffer.getvalue()


def verify_bundle(data: bytes) -> tuple[list[str], str]:
    """(problems, manifest digest). No problems: every file is present, unaltered, and listed."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return ["not a zip file"], ""
    with bundle:
        names = set(bundle.namelist())
        if MANIFEST not in names:
            return ["no manifest.json"], ""
        raw_manifest = bundle.read(MANIFEST)
        try:
            manifest = json.loads(raw_manifest)
            listed: dict[str, dict[str, Any]] = manifest["files"]
        except (ValueError, KeyError, TypeError):
            return ["manifest.json is not a manifest"], ""
        problems = []
        if manifest.get("format") != BUNDLE_FORMAT:
            problems.append(f"unknown bundle format {manifest.get('format')!r}")
        for name, expected in sorted(listed.items()):
            if name not in names:
                problems.append(f"{name}: listed in the manifest but missing")
                continue
            try:
                content = bundle.read(name)
            except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as exc:  # damaged data or CRC
                problems.append(f"{name}: unreadable ({exc})")
                continue
            if hashlib.sha256(content).hexdigest() != expected.get("sha256"):
                problems.append(f"{name}: SHA-256 does not match the manifest")
        for name in sorted(names - set(listed) - {MANIFEST}):
            problems.append(f"{name}: not listed in the manifest")
    return problems, hashlib.sha256(raw_manifest).hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"
