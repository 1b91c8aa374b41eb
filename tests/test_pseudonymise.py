"""A pseudonymised bundle: every file made from the pseudonymised result, no real identifier in any of them,
and records still join inside the bundle."""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.model import Account, Inventory

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


def _forms(value: str) -> set[str]:
    """How a value can appear in a file: as is, HTML-escaped, JSON-escaped."""
    return {value.lower(), html.escape(value).lower(), json.dumps(value, ensure_ascii=False)[1:-1].lower(),
            json.dumps(value)[1:-1].lower()}


def _as_a_word(form: str, text: str) -> bool:
    """Found as itself, not inside a longer word ("Administrator" in "administrators" of a rule's text)."""
    return re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text) is not None


def _real_identifiers(inventory: Inventory) -> dict[str, str]:
    """Every username, display name, address, id and DN of the un-pseudonymised inventory -> what it is."""
    accounts: list[Account] = list(inventory.accounts)
    if inventory.identity is not None:
        accounts += [link.account for p in inventory.identity.people for link in p.links]
    found: dict[str, str] = {}
    for account in accounts:
        values = {"username": account.username, "display_name": account.display_name, "email": account.email,
                  "id": account.id, "dn": account.raw.get("dn"), **{f"identifier {k}": v
                                                                    for k, v in account.identifiers.items()},
                  **{f"alias {n}": v for n, v in enumerate(account.email_aliases)}}
        for what, value in values.items():
            if value and not (value.isdigit() and len(value) < 6):  # a short number is a count as often as an id
                found[value] = f"{account.source}:{account.username} {what}"
    return found


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], dict[str, str], Any]:
    from auditor.demo import prepare_demo
    from auditor.engine import run_audit
    from auditor.evidence import RESULT_FILES, context_files, write_past_bundle
    from auditor.history import History
    from auditor.outputs import output_names

    workdir = tmp_path_factory.mktemp("demo")
    config = prepare_demo(workdir, AS_OF)
    history = History(config.history_db)
    try:
        result = run_audit(config, AS_OF, history)
    finally:
        history.close()
    # The bundle `auditor evidence --run --pseudonymise` writes: every file made again from the pseudonymised result.
    bundle = workdir / "pseudonymised.zip"
    write_past_bundle(bundle, context_files(result, config), [*output_names(result, jsonl=True), *RESULT_FILES],
                      result, signing_key=None, pseudonymise=True)
    with zipfile.ZipFile(bundle) as archive:
        files = {name: archive.read(name) for name in archive.namelist() if name != "manifest.json"}
    return files, _real_identifiers(result.inventory), result


def test_no_file_of_a_pseudonymised_bundle_holds_a_real_identifier(
        demo_bundle: tuple[dict[str, bytes], dict[str, str], Any]) -> None:
    files, real, result = demo_bundle
    assert set(files) == {"report.html", "findings.json", "findings.csv", "findings.jsonl", "accounts.csv",
                          "people.csv", "inventory.json", "controls.json", "config.json", "run.json"}
    assert len(real) > 500 and any(k.startswith("CN=") for k in real)  # DNs are among what is looked for
    leaks = []
    for name, data in files.items():
        text = data.decode("utf-8").lower()
        leaks += [f"{name}: {what} {value!r}" for value, what in real.items()
                  if any(form in text and _as_a_word(form, text) for form in _forms(value))]
    assert leaks == []
    # The un-pseudonymised outputs do hold them: the check can fail.
    assert result.inventory.accounts[0].username.lower() in render_outputs_text(result)


def render_outputs_text(result: Any) -> str:
    from auditor.outputs import render_outputs

    return b"".join(render_outputs(result).values()).decode("utf-8").lower()


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_records_still_join_inside_the_bundle(demo_bundle: tuple[dict[str, bytes], dict[str, str], Any]) -> None:
    files, _, result = demo_bundle
    accounts = _csv(files["accounts.csv"])
    people = _csv(files["people.csv"])
    findings = json.loads(files["findings.json"])["findings"]
    inventory = json.loads(files["inventory.json"])
    controls = json.loads(files["controls.json"])
    assert inventory["pseudonymised"] is True and len(accounts) == len(result.inventory.accounts)

    by_id = {(a["source"], a["id"]): a for a in accounts}
    assert len(by_id) == len(accounts)  # pseudonyms stay distinct
    assert {(a["source"], a["id"]) for a in inventory["accounts"]} == set(by_id)
    for finding in findings:  # every account finding names an account of accounts.csv, and it lists the rule
        if finding["subject"]["type"] == "account":
            row = by_id[(finding["source"], finding["subject"]["id"])]
            assert row["username"] == finding["subject"]["name"]
            if finding["status"] == "open":
                assert finding["rule"] in row["findings"].split(";")
    person_ids = {p["person"] for p in people}
    gaps = [f for f in findings if f["rule"] == "offboarding-gap"]
    assert gaps and all(f["evidence"]["person"] in person_ids for f in gaps)
    assert all(f["subject"]["id"] in person_ids for f in findings if f["subject"]["type"] == "person")
    policies = {p["id"] for p in inventory["password_policies"]}
    assert {a["password_policy_id"] for a in inventory["accounts"] if a["password_policy_id"]} <= policies
    subjects = {f["subject"]["name"] for f in findings}
    assert {f["subject"] for c in controls for f in c["open_findings"]} <= subjects
    # The report shows the same pseudonyms as the exports.
    report = files["report.html"].decode("utf-8")
    assert all(row["username"] in report for row in accounts[:20])
    # Counts and verdicts do not change under pseudonyms.
    real = json.loads(render_real(result)["findings.json"])
    assert real["kpis"] == json.loads(files["findings.json"])["kpis"]
    assert [(f["rule"], f["severity"], f["status"]) for f in real["findings"]] == \
        [(f["rule"], f["severity"], f["status"]) for f in findings]


def render_real(result: Any) -> dict[str, bytes]:
    from auditor.outputs import render_outputs

    return render_outputs(result)


def test_pseudonyms_are_keyed_and_stable_within_a_bundle_only() -> None:
    from auditor.pseudonymise import Pseudonymiser
    from tests.rule_helpers import account, context, inventory

    inv = inventory(account("jdoe", email="jdoe@example.com", email_aliases=["john.doe@example.co.uk"],
                            identifiers={"upn": "jd@x"}, raw={"mail": "jdoe@example.com"}, display_name="John Doe"))
    result = _bare_result(inv, context())
    first, second = Pseudonymiser(result), Pseudonymiser(result)
    assert first.alias("jdoe") == first.alias("JDOE") != second.alias("jdoe")
    masked = first.result()
    text = json.dumps([dataclasses.asdict(a) for a in masked.inventory.accounts], default=str)
    # Every address of the account, and its join keys, are replaced; raw values are dropped.
    assert "example" not in text and "jd@x" not in text and "jdoe" not in text and "John" not in text
    assert first.text("John Doe (jdoe@example.com) and jdoe-admin, not jdoes") == \
        f"{first.alias('John Doe')} ({first.alias('jdoe@example.com')}) and {first.alias('jdoe')}-admin, not jdoes"


def _bare_result(inv: Inventory, ctx: Any) -> Any:
    from auditor.engine import AuditResult

    return AuditResult(run_id="r", as_of=ctx.as_of, generated_at=ctx.as_of, organization="o", period_days=30,
                       strong_policy_score=3, inventory=inv, verdicts=ctx.scorer.verdicts(inv), findings=[], kpis=[],
                       exclusions=[], accepted_risks=[], previous_run=None, past_runs=[])


def test_the_cli_bundle_is_pseudonymised_in_every_file_and_verifies(small_org: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out), "--as-of", "2026-06-30",
                                    "--evidence", "--pseudonymise", "-q"])
    assert run.exit_code == 0, run.output
    bundle = next(out.glob("evidence-*.zip"))
    assert CliRunner().invoke(main, ["verify", str(bundle)]).exit_code == 0
    with zipfile.ZipFile(bundle) as archive:
        everything = b"".join(archive.read(n) for n in archive.namelist()).decode("utf-8", "replace")
    assert "stale-admin" not in everything and "bg-admin" not in everything  # a finding's and an exclusion's
    # The outputs beside the bundle are the real ones: only the bundle is for handing out.
    assert "stale-admin" in (out / "findings.json").read_text()
