"""findings.ocsf.jsonl: every line an OCSF 1.5 event that the OCSF models read back without losing a key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from tests.conftest import HOSTILE_LOGIN
from tests.test_cli import audit, run

CLASSES = {2004: DetectionFinding, 2003: ComplianceFinding}


def _events(out: Path) -> list[dict[str, Any]]:
    lines = (out / "findings.ocsf.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines]


def _kept(emitted: Any, parsed: Any, where: str = "") -> None:
    """Everything emitted survives the model: a key the schema does not know would be dropped on the way."""
    if isinstance(emitted, dict):
        assert isinstance(parsed, dict), where
        for key, value in emitted.items():
            assert key in parsed, f"{where}.{key} is not an OCSF attribute here"
            if key not in ("data", "unmapped"):  # free-form by the schema
                _kept(value, parsed[key], f"{where}.{key}")
    elif isinstance(emitted, list):
        assert isinstance(parsed, list) and len(parsed) == len(emitted), where
        for index, (one, other) in enumerate(zip(emitted, parsed, strict=True)):
            _kept(one, other, f"{where}[{index}]")
    else:
        assert emitted == parsed, where


def test_every_line_is_a_valid_ocsf_event(small_org: Path, tmp_path: Path) -> None:
    result = audit(small_org, tmp_path / "out", "--format", "ocsf")
    assert result.exit_code == 0, result.output
    events = _events(tmp_path / "out")
    findings = json.loads((tmp_path / "out" / "findings.json").read_text())["findings"]
    detections = [e for e in events if e["class_uid"] == 2004]
    assert len(detections) == len(findings)
    for event in events:
        model = CLASSES[event["class_uid"]]
        parsed = model.model_validate(event).model_dump(mode="json", exclude_none=True)
        _kept(event, parsed)
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        assert event["category_uid"] == 2 and event["metadata"]["version"] == "1.5.0"
        assert event["time"] == 1_782_777_600_000  # 2026-06-30T00:00:00Z in milliseconds
    assert all(e["activity_id"] == 1 for e in events)  # a first audit: everything is new
    by_subject = {e["resources"][0]["name"]: e for e in detections}
    excluded = by_subject["bg-admin"]
    assert excluded["status"] == "Suppressed" and excluded["status_detail"] == "Excluded by username=bg-*"
    assert by_subject["stale"]["status_id"] == 1
    assert {e["severity"] for e in detections} <= {"Informational", "Low", "Medium", "High", "Critical"}
    assert HOSTILE_LOGIN in by_subject  # data, JSON-escaped: the SIEM decides how to show it
    compliance = [e for e in events if e["class_uid"] == 2003]
    assert compliance and all(e["compliance"]["status_id"] in (1, 3) for e in compliance)
    assert any(e["compliance"]["status_id"] == 3 for e in compliance)


def test_second_audit_updates_and_creates(small_org: Path, tmp_path: Path) -> None:
    assert audit(small_org, tmp_path / "one", "--format", "ocsf").exit_code == 0
    first = {e["finding_info"]["uid"] for e in _events(tmp_path / "one") if e["class_uid"] == 2004}
    ldif = small_org.parent / "ad.ldif"
    ldif.write_bytes(ldif.read_bytes().replace(b"sAMAccountName: active\n", b"sAMAccountName: active2\n", 1))
    result = run("run", "--config", str(small_org), "--output", str(tmp_path / "two"), "--as-of", "2026-07-30",
                 "--format", "ocsf")
    assert result.exit_code == 0, result.output
    detections = [e for e in _events(tmp_path / "two") if e["class_uid"] == 2004]
    updated = [e for e in detections if e["activity_id"] == 2]
    created = [e for e in detections if e["activity_id"] == 1]
    assert updated and all(e["finding_info"]["uid"] in first for e in updated)  # a finding's uid is stable
    assert created and all(e["finding_info"]["uid"] not in first for e in created)
    assert all(e["type_uid"] == 200401 for e in created)


def test_incomplete_audit_cannot_pass_a_control(small_org: Path, tmp_path: Path) -> None:
    config = small_org.read_text().replace('path = "saas.csv"', 'path = "missing.csv"')
    small_org.write_text(config)
    result = audit(small_org, tmp_path / "out", "--format", "ocsf")
    assert result.exit_code == 3
    statuses = {e["compliance"]["status_id"] for e in _events(tmp_path / "out") if e["class_uid"] == 2003}
    assert 1 not in statuses and 2 in statuses  # Warning: "did not yield a result due to missing information"


def test_rendered_again_byte_for_byte(small_org: Path, tmp_path: Path) -> None:
    assert audit(small_org, tmp_path / "one", "--format", "ocsf").exit_code == 0
    written = (tmp_path / "one" / "findings.ocsf.jsonl").read_bytes()
    run_id = json.loads((tmp_path / "one" / "findings.json").read_text())["run_id"]
    result = run("render", "--run", run_id, "--config", str(small_org), "--output", str(tmp_path / "again"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again" / "findings.ocsf.jsonl").read_bytes() == written
