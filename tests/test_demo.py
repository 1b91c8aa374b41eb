from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import main
from auditor.config import load_config
from auditor.rules import RULES

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_and_every_rule_fires(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--demo", "--output", str(out), "--as-of", "2026-09-15"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "findings.json").read_text())
    assert len({(f["source"], f["subject"]["id"]) for f in document["findings"]}) > 50
    sources = {s["name"]: s for s in document["sources"]}
    assert set(sources) == {"corp-ad", "entra", "salesapp"}
    assert sum(s["accounts"] for s in sources.values()) >= 300
    fired = {f["rule"] for f in document["findings"] if not f["excluded_by"]}
    assert fired == set(RULES), set(RULES) - fired
    # History gives a baseline: the mass password reset is found, the ordinary days are not.
    spikes = [f for f in document["findings"] if f["rule"] == "change-volume-spike"]
    assert [f["evidence"]["day"] for f in spikes] == ["2026-09-06"]
    assert spikes[0]["evidence"]["per_action"] == {"password_reset": 38}
    # One exclusion in force, one expired and said so.
    assert [e["expired"] for e in document["exclusions"]] == [False, True]
    assert any("expired" in note for note in document["notes"])
    kpis = document["kpis"]
    assert kpis["inactive_enabled_accounts"]["value"] > 0
    assert 0 < kpis["strong_policy_share"]["value"] < 1
    assert kpis["account_changes"]["detail"]["per_action"]["password_reset"] >= 38
    html = (out / "report.html").read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "Since the previous audit" in html


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "config.example.toml")
    from connectors import SOURCE_TYPES

    assert {s.type for s in config.sources} == set(SOURCE_TYPES)  # every source type is documented there
    assert config.exclusions
