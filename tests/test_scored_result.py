"""Score once: every output reads the scored result; a past run renders again from history, byte for byte."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from auditor import jsonio
from auditor.activity import ActivityState
from auditor.cli import main
from auditor.config import load_config
from auditor.engine import run_audit
from auditor.history import History
from auditor.model import to_jsonable
from auditor.result_store import decode_result, encode_result
from auditor.scoring import AccountVerdict, AccountVerdicts, verdict_key

ROOT = Path(__file__).resolve().parents[1]
JUDGES = {"classify_activity", "rate"}  # the activity classifier and the policy rater
SCORING = ROOT / "auditor" / "scoring.py"
# What renders and measures: none may reach the classifier or the rater, even through a rule context.
READERS = ("views", "report_html", "exports", "evidence", "kpis", "charts", "outputs", "pseudonymise",
           "result_store", "controls")
FORBIDDEN_IMPORTS = {"auditor.activity": {"classify_activity"}, "auditor.policy_rating": {"PolicyRater"},
                     "auditor.rules.base": {"RuleContext"}}


def _calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else "")
    return names


def test_only_the_scoring_module_calls_the_classifier_or_the_rater() -> None:
    callers = []
    for path in sorted([*(ROOT / "auditor").rglob("*.py"), *(ROOT / "connectors").rglob("*.py")]):
        if path != SCORING and _calls(ast.parse(path.read_text(encoding="utf-8"))) & JUDGES:
            callers.append(str(path.relative_to(ROOT)))
    assert callers == []


def test_outputs_and_kpis_read_verdicts_not_judges() -> None:
    for name in READERS:
        path = ROOT / "auditor" / f"{name}.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN_IMPORTS:
                assert not {a.name for a in node.names} & FORBIDDEN_IMPORTS[node.module], (name, node.module)
        # A rule context's activity()/rating() would judge on demand: outputs read result.verdicts instead.
        assert not {"activity", "rating"} & {
            n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name) and n.func.value.id in ("ctx", "context")}, name


def test_a_past_run_renders_again_byte_for_byte(small_org: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out), "--as-of", "2026-06-30",
                                    "--jsonl", "-q"])
    assert run.exit_code == 0, run.output
    run_id = json.loads((out / "findings.json").read_text())["run_id"]
    # A later audit must not change how the earlier one renders.
    later = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out), "--as-of",
                                      "2026-07-30", "-q"])
    assert later.exit_code == 0, later.output
    again = tmp_path / "again"
    rendered = CliRunner().invoke(main, ["render", "--run", run_id, "--config", str(small_org), "--output", str(again)])
    assert rendered.exit_code == 0, rendered.output
    first = out / "runs" / run_id
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert "findings.jsonl" in names and "report.html" in names
    for name in names:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    assert (again / "report.html").stat().st_mode & 0o777 == 0o600
    # The output directory is written whole or not at all: an existing one is refused.
    refused = CliRunner().invoke(main, ["render", "--run", run_id, "--config", str(small_org), "--output", str(again)])
    assert refused.exit_code == 2 and "exists" in refused.output


def test_the_demo_with_people_and_departures_round_trips_through_history(tmp_path: Path) -> None:
    from auditor.demo import prepare_demo
    from auditor.engine import record, run_audit
    from auditor.history import History
    from auditor.outputs import render_outputs
    from auditor.result_store import decode_result, encode_result

    as_of = datetime(2026, 6, 30, tzinfo=UTC)
    config = prepare_demo(tmp_path, as_of)
    history = History(config.history_db)
    try:
        result = run_audit(config, as_of, history)
        assert result.inventory.identity is not None and result.inventory.identity.people
        assert any(p.departure for p in result.inventory.identity.people)
        outputs = render_outputs(result, jsonl=True)
        assert b"built-in method" not in outputs["report.html"]  # the linking keys are named, not a dict method
        # A rule that declares a mark emits the evidence fields the mark promises (views read them by mark).
        from auditor.rules import RULES
        from auditor.rules.base import MARKS

        marked = [f for f in result.findings for mark in RULES[f.rule].meta.marks]
        assert {f.rule for f in marked} == {"offboarding-gap", "change-volume-spike"}
        assert all(set(MARKS[m]) <= set(f.evidence) for f in marked for m in RULES[f.rule].meta.marks)
        record(history, result, outputs)
        stored = history.run_result(result.run_id)
    finally:
        history.close()
    assert stored is not None
    restored = decode_result(stored)
    assert encode_result(restored) == stored
    again = render_outputs(restored, jsonl=True)
    assert set(again) == set(outputs) and "people.csv" in again
    for name in outputs:
        assert again[name] == outputs[name], name


def test_a_run_recorded_without_its_result_says_so(small_org: Path, tmp_path: Path) -> None:
    import sqlite3

    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out), "-q"])
    assert run.exit_code == 0, run.output
    run_id = json.loads((out / "findings.json").read_text())["run_id"]
    history = next(small_org.parent.rglob("*.sqlite"))
    with sqlite3.connect(history) as db:
        db.execute("DELETE FROM run_results")
    result = CliRunner().invoke(main, ["render", "--run", run_id, "--config", str(small_org), "--output",
                                       str(tmp_path / "again")])
    assert result.exit_code == 2 and "without its scored result" in result.output
    assert result.output.count("\n") == 1


_VERDICT = AccountVerdict(ActivityState.ACTIVE, 3, "enabled", "Default Domain Policy", "strong")
_OTHER = AccountVerdict(ActivityState.INACTIVE, 400, "enabled", None, "unknown")
_PARTS = st.text(alphabet="ab:1\\0é١", max_size=6)


@given(st.lists(st.tuples(_PARTS, _PARTS, st.booleans()), max_size=12), st.text(alphabet="ab:01\\é١", max_size=10))
def test_accounts_verdicts_read_as_the_mapping_of_keys_the_history_stores(
        pairs: list[tuple[str, str, bool]], probe: str) -> None:
    """Kept by source and by the account's own id (no key text made to look one up), read as the mapping of
    ``verdict_key`` texts the stored result writes: whatever a source or an id holds, colons and digits too."""
    verdicts = AccountVerdicts()
    flat: dict[str, AccountVerdict] = {}
    for source, account_id, other in pairs:
        verdicts.put(source, account_id, _OTHER if other else _VERDICT)
        flat[verdict_key(source, account_id)] = _OTHER if other else _VERDICT
    assert dict(verdicts.items()) == flat and len(verdicts) == len(flat) and verdicts == flat
    assert AccountVerdicts(flat) == verdicts and json.loads(jsonio.dumps({"v": verdicts}))["v"] == to_jsonable(flat)
    for source, account_id, _ in pairs:
        assert verdicts.of(source, account_id) is flat[verdict_key(source, account_id)]
    assert verdicts.get(probe) is flat.get(probe)  # any other text is a missing key, never another error


def test_accounts_verdicts_round_trip_through_the_stored_result(small_org: Path, tmp_path: Path) -> None:
    config = load_config(small_org)
    history = History(tmp_path / "history.db")
    result = run_audit(config, datetime(2026, 6, 30, tzinfo=UTC), history)
    history.close()
    again = decode_result(encode_result(result))
    assert isinstance(again.verdicts.accounts, AccountVerdicts)
    assert again.verdicts == result.verdicts and len(result.verdicts.accounts) == len(result.inventory.accounts)
    assert all(again.verdicts.of(a) == result.verdicts.of(a) for a in result.inventory.accounts)
