from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from auditor.cli import main
from tests.conftest import HOSTILE_LOGIN, HOSTILE_NAME

AS_OF = "2026-06-30"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def audit(config: Path, out: Path, *extra: str) -> Result:
    return run("run", "--config", str(config), "--output", str(out), "--as-of", AS_OF, *extra)


def test_complete_run_outputs(small_org: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = audit(small_org, out)
    assert result.exit_code == 0, result.output
    assert "Audit complete" in result.stdout
    for name in ("report.html", "findings.json", "findings.csv", "accounts.csv"):
        assert (out / name).stat().st_mode & 0o777 == 0o600  # personal data: owner-only
    document = json.loads((out / "findings.json").read_text())
    schema = json.loads(files("auditor").joinpath("schemas/findings.schema.json").read_text())
    jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
    rules = {f["rule"] for f in document["findings"]}
    assert {"inactive-enabled", "never-used-enabled", "password-never-expires", "password-not-required",
            "weak-password-policy"} <= rules
    excluded = [f for f in document["findings"] if f["excluded_by"]]
    assert [f["subject"]["name"] for f in excluded] == ["bg-admin"]
    assert document["as_of"] == "2026-06-30T00:00:00Z" and document["complete"] is True


def test_schema_rejects_a_broken_document(small_org: Path, tmp_path: Path) -> None:
    audit(small_org, tmp_path / "out")
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    schema = json.loads(files("auditor").joinpath("schemas/findings.schema.json").read_text())
    document["findings"][0]["severity"] = "apocalyptic"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_csv_neutralises_formulas(small_org: Path, tmp_path: Path) -> None:
    audit(small_org, tmp_path / "out")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "accounts.csv").read_text("utf-8-sig"))))
    usernames = {r["username"] for r in rows}
    assert "'=cmd|' /C calc'!A0" in usernames and "'@SUM(1+1)*cmd" in usernames and "'+bob" in usernames
    findings = list(csv.DictReader(io.StringIO((tmp_path / "out" / "findings.csv").read_text("utf-8-sig"))))
    assert "'=cmd|' /C calc'!A0" in {r["subject"] for r in findings}
    assert {r["status"] for r in findings} == {"open", "Excluded by username=bg-*"}
    for row in rows + findings:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_report_is_self_contained_and_inert(small_org: Path, tmp_path: Path) -> None:
    audit(small_org, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    policy = unescape(csp.group(1))
    assert policy.startswith("default-src 'none'; style-src 'sha256-")
    assert "unsafe-inline" not in policy
    # No remote resources: no src/href to any URL, no <link> or external scripts.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "<link" not in html
    # Hostile directory text never appears raw: the data block escapes '<', and the page renders it as text
    # (tests/test_report_browser.py checks the rendered page in a real browser).
    assert HOSTILE_NAME not in html and HOSTILE_LOGIN not in html
    assert 'href="javascript:' not in html.lower()
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert data is not None and "<" not in data.group(1)
    report = json.loads(data.group(1))
    names = report["accounts"]["columns"].index("display_name")
    assert any(row[names] == HOSTILE_NAME for row in report["accounts"]["rows"])
    inactive = report["findings"]["inactive-enabled"]
    assert any(f[2] == HOSTILE_LOGIN and f[3].startswith(HOSTILE_LOGIN + " is enabled") for f in inactive)
    # Exactly two script elements: the data block and our own hashed script.
    assert len(re.findall(r"<script", html)) == 2


def test_fail_on_threshold(small_org: Path, tmp_path: Path) -> None:
    assert audit(small_org, tmp_path / "a", "--fail-on", "high").exit_code == 1
    assert audit(small_org, tmp_path / "b", "--fail-on", "critical").exit_code == 0


def test_failed_source_exit_3_others_audited(small_org: Path, tmp_path: Path) -> None:
    (small_org.parent / "users.json").unlink()
    out = tmp_path / "out"
    result = audit(small_org, out, "--fail-on", "info")
    assert result.exit_code == 3  # incomplete beats --fail-on
    document = json.loads((out / "findings.json").read_text())
    status = {s["name"]: s["status"] for s in document["sources"]}
    assert status == {"ad": "ok", "entra": "failed", "saas": "ok"}
    assert document["complete"] is False
    assert document["gaps"] == ["source entra failed and is not in this audit: cannot read "
                                f"{small_org.parent / 'users.json'}: No such file or directory"]
    assert {f["source"] for f in document["findings"]} >= {"ad", "saas"}
    html = (out / "report.html").read_text()
    assert "Incomplete audit" in html and "source entra failed" in html


def test_usage_and_config_errors_exit_2_and_write_nothing(small_org: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[audit]\nbogus = 1\n")
    out = tmp_path / "never"
    for args in (
        ["run", "--config", str(bad), "--output", str(out)],
        ["run", "--demo", "--config", str(small_org), "--output", str(out)],
        ["run", "--config", str(small_org), "--as-of", "last tuesday", "--output", str(out)],
        ["run", "--config", str(tmp_path / "missing.toml"), "--output", str(out)],
        ["run", "--config", str(small_org), "--fail-on", "extreme", "--output", str(out)],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert not out.exists()
    result = CliRunner().invoke(main, ["run", "--config", str(bad)])
    assert result.output.strip() == f"auditor: error: {bad}: audit.bogus: unknown key"


def test_quiet_is_silent(small_org: Path, tmp_path: Path) -> None:
    result = audit(small_org, tmp_path / "out", "--quiet")
    assert result.exit_code == 0 and result.output == ""


def test_history_second_run_compares_with_first(small_org: Path, tmp_path: Path) -> None:
    assert audit(small_org, tmp_path / "one").exit_code == 0
    ldif_path = small_org.parent / "ad.ldif"
    ldif_path.write_bytes(ldif_path.read_bytes().replace(b"userAccountControl: 544", b"userAccountControl: 546"))
    result = run("run", "--config", str(small_org), "--output", str(tmp_path / "two"), "--as-of", "2026-07-07")
    assert result.exit_code == 0
    html = (tmp_path / "two" / "report.html").read_text()
    assert "Since the previous audit (as of 2026-06-30T00:00:00Z)" in html
    assert "1 resolved" in html  # the kiosk account is now disabled
    document = json.loads((tmp_path / "two" / "findings.json").read_text())
    volume = [f for f in document["findings"] if f["rule"] == "account-change-volume" and f["source"] == "ad"]
    assert volume and volume[0]["evidence"]["per_action"].get("disabled") == 1


def test_as_of_makes_runs_reproducible(small_org: Path, tmp_path: Path) -> None:
    def findings(out: Path) -> list[dict[str, object]]:
        return json.loads((out / "findings.json").read_text())["findings"]
    audit(small_org, tmp_path / "a")
    (small_org.parent / "history.sqlite").unlink()
    audit(small_org, tmp_path / "b")
    assert findings(tmp_path / "a") == findings(tmp_path / "b")


def test_rules_command() -> None:
    from auditor.rules import RULES

    listing = run("rules")
    assert all(rule_id in listing.output for rule_id in RULES)
    data = json.loads(run("rules", "--json").output)
    assert {r["id"] for r in data} == set(RULES)
    assert all(r["controls"] for r in data)


def test_report_summary_trends_and_charts(small_org: Path, tmp_path: Path) -> None:
    assert audit(small_org, tmp_path / "one").exit_code == 0
    result = run("run", "--config", str(small_org), "--output", str(tmp_path / "two"), "--as-of", "2026-07-07")
    assert result.exit_code == 0
    html = (tmp_path / "two" / "report.html").read_text()
    posture = dict(re.findall(r"<tr><td>([^<]+)</td><td><span class=\"posture posture-[a-z-]+\">([^<]+)</span>", html))
    assert posture == {"Dormant accounts": "at risk", "Password policies": "at risk",  # kiosk: high severity
                       "Multi-factor authentication": "good", "Account changes": "good", "Coverage": "good",
                       "Offboarding and ownership": "not evaluated"}  # no [identity] in this org
    assert html.count('<svg class="spark"') == 6  # a trend per key figure once there is an earlier run
    assert 'aria-label="Account changes per day"' in html and 'aria-label="Enabled accounts by days' in html
    weak = re.findall(r'<rect class="bar weak"[^>]*><title>([^<]+)</title>', html)
    assert any(t.startswith("Default domain policy (corp)") for t in weak)


def test_jsonl_for_siem(small_org: Path, tmp_path: Path) -> None:
    assert audit(small_org, tmp_path / "out", "--jsonl").exit_code == 0
    lines = (tmp_path / "out" / "findings.jsonl").read_text().splitlines()
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert len(lines) == len(document["findings"]) > 5
    records = [json.loads(line) for line in lines]
    assert all(r["run_id"] == document["run_id"] and r["as_of"] == "2026-06-30T00:00:00Z" for r in records)
    assert [r["rule"] for r in records] == [f["rule"] for f in document["findings"]]
    assert not (tmp_path / "plain").exists() and audit(small_org, tmp_path / "plain").exit_code == 0
    assert not (tmp_path / "plain" / "findings.jsonl").exists()  # only when asked


@pytest.mark.parametrize("value", ["＝1+1", "﹦1+1", "＋1", "－1", "＠SUM(1)", " =1+1", "\u00a0=1+1", "\u200b=1+1",
                                   "\ufeff=1+1", "\t=1", "\n=1", "-1+1", "@SUM(1)"])
def test_formula_neutralisation_beyond_ascii(value: str) -> None:
    """Full-width and small forms, and '=' after blanks spreadsheets skip (OWASP CSV Injection; LibreOffice
    reads some of these as text, other spreadsheets may not): every one gets the leading quote."""
    from auditor.exports import csv_safe

    assert csv_safe(value) == "'" + value
    assert csv_safe("a=b") == "a=b" and csv_safe(-5) == "-5"  # plain text and our own numbers are unchanged


def test_a_fault_of_the_auditor_itself_exits_4_scrubbed_and_publishes_nothing(
        small_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's own exit code for an uncaught error is 1, which schedulers are told means findings: a bug must
    not pass for an audit result. Simulated by an output that fails (a failing rule is isolated already: the
    run is incomplete, exit 3), carrying a secret in its message."""
    from auditor import outputs, secrets

    def failing(*_: object) -> list[bytes]:
        raise RuntimeError("boom near hunter2-secret-value")

    monkeypatch.setitem(outputs.RENDERERS, "findings.csv", failing)
    secrets.register("hunter2-secret-value")
    try:
        out = tmp_path / "out"
        result = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out),
                                           "--as-of", AS_OF, "--quiet"])
    finally:
        secrets.forget_secrets()
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output and "hunter2-secret-value" not in result.output
    assert "auditor: internal error: RuntimeError: boom near" in result.output
    assert not (out / "latest").exists()
