"""Access reviews through the CLI on the demo organisation (its AD export names managers; owners cover the rest):
packets, decisions, refusals, and what the next audit makes of them. The live version (Samba AD and the Entra
simulator) is in tests/test_ldap_live.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_cli import run

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, str]:
    """The demo's config (with its history) and the id of a fresh audit of it."""
    from auditor.demo import prepare_demo

    config = prepare_demo(tmp_path / "demo", AS_OF)
    assert config.path is not None
    result = run("run", "--config", str(config.path), "--output", str(tmp_path / "out"), "--as-of", "2026-06-30",
                 "--quiet")
    assert result.exit_code == 0, result.output
    return config.path, json.loads((tmp_path / "out" / "findings.json").read_text())["run_id"]


def _packets(directory: Path) -> dict[str, dict[str, object]]:
    campaign = json.loads((directory / "campaign.json").read_text())
    return {str(p["reviewer"]): p for p in campaign["packets"]}


def _read(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline="")))


def _write(path: Path, table: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(table)
    path.write_text(buffer.getvalue(), encoding="utf-8-sig")


def _decide(path: Path, decisions: dict[int, tuple[str, str]]) -> list[list[str]]:
    """Fill the decision and comment of the given data rows (1 = the first account), as a reviewer would."""
    table = _read(path)
    for row, (decision, comment) in decisions.items():
        table[row][-2:] = [decision, comment]
    _write(path, table)
    return table


def test_packets_per_manager_and_owner(demo: tuple[Path, str], tmp_path: Path) -> None:
    config, run_id = demo
    result = run("review", "create", "--run", run_id, "--config", str(config), "--by", "manager",
                 "--output", str(tmp_path / "packets"))
    assert result.exit_code == 0, result.output
    packets = _packets(tmp_path / "packets")
    assert {"sales-ops@northwind.example", "cloud-admins@northwind.example",
            "security@northwind.example"} <= set(packets)  # owners of sources and of a group
    managers = [r for r in packets if r.split("@")[0] not in ("sales-ops", "cloud-admins", "security")]
    assert len(managers) >= 10  # team leads, from the AD export's manager attribute
    lead = packets[managers[0]]
    table = _read(tmp_path / "packets" / str(lead["csv"]))
    assert table[0][:6] == ["campaign", "packet", "row", "source", "account_id", "username"]
    assert table[0][-2:] == ["decision", "comment"] and len(table) - 1 == lead["accounts"]
    assert {row[3] for row in table[1:]} == {"corp-ad"}
    html = (tmp_path / "packets" / str(lead["html"])).read_text()
    assert str(lead["digest"]) in html and "Content-Security-Policy" in html and "<script" not in html
    assert (tmp_path / "packets" / "no-reviewer.csv").exists()
    assert "campaign" in result.output and "without a reviewer" in result.output
    for path in (tmp_path / "packets").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600  # packets list people and their access


def test_decisions_become_findings_and_kpis(demo: tuple[Path, str], tmp_path: Path) -> None:
    config, run_id = demo
    assert run("review", "create", "--run", run_id, "--config", str(config), "--output",
               str(tmp_path / "packets")).exit_code == 0
    packets = _packets(tmp_path / "packets")
    sales = tmp_path / "packets" / str(packets["sales-ops@northwind.example"]["csv"])
    table = _decide(sales, {1: ("revoke", "left the sales team"), 2: ("Keep", ""), 3: ("modify", "read-only")})
    revoked = table[1][5]
    result = run("review", "import", str(sales), "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "imported 3 decision(s) from 1 packet(s)" in result.output
    # The next audit (decisions are dated when imported: audited now, with no grace period): the account is
    # still enabled in the export.
    config.write_text(config.read_text() + "\n[rules.review-revocation-not-applied]\ngrace_days = 0\n")
    result = run("run", "--config", str(config), "--output", str(tmp_path / "next"), "--evidence", "--quiet")
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "next" / "findings.json").read_text())
    unapplied = [f for f in document["findings"] if f["rule"] == "review-revocation-not-applied"
                 and f["evidence"]["reviewer"] == "sales-ops@northwind.example"]
    assert [f["subject"]["name"] for f in unapplied] == [revoked]
    assert unapplied[0]["evidence"]["comment"] == "left the sales team"
    completion = document["kpis"]["review_completion"]
    assert completion["detail"]["decided"] == 3 and completion["value"] == pytest.approx(
        3 / completion["detail"]["accounts"], abs=1e-4)
    assert document["kpis"]["revocations_carried_out"]["detail"]["not_carried_out"] >= 1
    html = (tmp_path / "next" / "report.html").read_text()
    assert 'id="access-review"' in html and "<td>sales-ops@northwind.example</td><td>3</td>" in html
    import zipfile

    bundle = next((tmp_path / "next").glob("evidence-*.zip"))
    with zipfile.ZipFile(bundle) as archive:
        inventory = json.loads(archive.read("inventory.json"))
    campaign = inventory["access_reviews"][-1]
    decisions = [d for p in campaign["packets"] for d in p["decisions"]]
    assert {d["decision"] for d in decisions} == {"revoke", "keep", "modify"}
    assert [d["outcome"] for d in decisions if d["decision"] == "revoke"] == ["not carried out"]
    assert all(len(p["digest"]) == 64 for p in campaign["packets"])


@pytest.mark.parametrize(("tamper", "message"), [
    (lambda t: t[2].__setitem__(4, "ffffffff-0000-0000-0000-000000000000"),
     "row 3: the account list differs from packet"),
    (lambda t: t.pop(2), "the account list differs from packet"),
    (lambda t: t[1].__setitem__(13, "delete"), "row 2: decision 'delete' is not one of keep, revoke, modify"),
    (lambda t: [row.__setitem__(0, "20990101-abcdef") for row in t[1:]],
     "row 2: campaign '20990101-abcdef' is not in this history"),
    (lambda t: t[3].__setitem__(1, "p999"), "row 4: belongs to campaign"),
])
def test_tampered_packets_are_refused(demo: tuple[Path, str], tmp_path: Path, tamper: object,
                                      message: str) -> None:
    config, run_id = demo
    assert run("review", "create", "--run", run_id, "--config", str(config), "--output",
               str(tmp_path / "packets")).exit_code == 0
    packets = _packets(tmp_path / "packets")
    path = tmp_path / "packets" / str(packets["sales-ops@northwind.example"]["csv"])
    table = _read(path)
    tamper(table)  # type: ignore[operator]
    _write(path, table)
    good = tmp_path / "packets" / str(packets["cloud-admins@northwind.example"]["csv"])
    _decide(good, {1: ("keep", "")})
    result = run("review", "import", str(good), str(path), "--config", str(config))
    assert result.exit_code == 2 and message in result.stderr and str(path) in result.stderr, result.stderr
    assert "Traceback" not in result.output
    # Nothing was stored, not even the good packet given with it.
    from auditor.config import load_config
    from auditor.history import History

    history = History(load_config(config).history_db)
    try:
        assert [d for p in history.review_campaigns()[-1].packets for d in p.decisions] == []
    finally:
        history.close()


def test_by_source_and_by_group(demo: tuple[Path, str], tmp_path: Path) -> None:
    config, run_id = demo
    assert run("review", "create", "--run", run_id, "--config", str(config), "--by", "source",
               "--output", str(tmp_path / "by-source")).exit_code == 0
    assert set(_packets(tmp_path / "by-source")) == {"sales-ops@northwind.example", "cloud-admins@northwind.example"}
    assert run("review", "create", "--run", run_id, "--config", str(config), "--by", "group",
               "--output", str(tmp_path / "by-group")).exit_code == 0
    assert set(_packets(tmp_path / "by-group")) == {"security@northwind.example"}
    existing = run("review", "create", "--run", run_id, "--config", str(config), "--output", str(tmp_path / "by-group"))
    assert existing.exit_code == 2 and "exists" in existing.stderr


@given(st.text(max_size=30).filter(lambda text: not text.startswith("'")))
def test_csv_marks_come_off_on_import(text: str) -> None:
    """Whatever csv_safe marks against formulas (blanks before "=", full-width signs...) reads back as it was,
    so the digest of an unedited packet always matches."""
    from auditor.exports import csv_safe
    from auditor.reviews import _cell

    assert _cell(csv_safe(text)) == text
    assert _cell(text) == text  # a spreadsheet that dropped the mark
