from datetime import date, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from auditor.changes import deduplicate, diff_snapshots, merge_events
from auditor.config import Exclusion
from auditor.exclusions import apply_exclusions
from auditor.history import History, RunRecord
from auditor.model import ChangeAction, ChangeEvent
from auditor.rules import RULES
from tests.rule_helpers import AS_OF, account, context, inventory


def findings_for(*accounts):
    return RULES["inactive-enabled"].evaluate(inventory(*accounts), context())


def test_exclusions_by_glob_group_id_and_expiry() -> None:
    accounts = [account("bg-admin", days_idle=300), account("svc-x", days_idle=300, groups=["Service Accounts"]),
                account("joe", days_idle=300), account("old", days_idle=300), account("amy", days_idle=300)]
    findings = findings_for(*accounts)
    exclusions = (
        Exclusion(username="BG-*", reason="break-glass", expires=date(2027, 1, 1)),
        Exclusion(group="service accounts", reason="reviewed quarterly"),
        Exclusion(id="id-joe", reason="on sabbatical", rules=("never-used-enabled",)),  # other rule: no match
        Exclusion(username="old", reason="was needed", expires=date(2026, 6, 1)),  # expired before AS_OF
    )
    statuses = apply_exclusions(findings, accounts, exclusions, AS_OF)
    excluded = {f.subject.name: f.excluded_by for f in findings}
    assert excluded == {"bg-admin": "username=BG-*", "svc-x": "group=service accounts", "joe": None,
                        "old": None, "amy": None}
    assert [s.expired for s in statuses] == [False, False, False, True]
    assert statuses[3].findings == ["inactive-enabled|ad|account|id-old"]  # still reported, and said so


def test_exclusion_source_scope() -> None:
    accounts = [account("bg-admin", days_idle=300, source="ad"), account("bg-admin", days_idle=300, source="saas")]
    accounts[1].id = "id-saas"
    findings = findings_for(*accounts)
    apply_exclusions(findings, accounts, (Exclusion(username="bg-*", source="ad", reason="sealed"),), AS_OF)
    assert {(f.source, f.excluded_by is not None) for f in findings} == {("ad", True), ("saas", False)}


def test_snapshot_diff() -> None:
    before_time = AS_OF - timedelta(days=7)
    previous = [account("stays", password_last_set_at=AS_OF - timedelta(days=100)), account("gone"),
                account("flip"), account("regroup", groups=["a"]), account("renamed")]
    current = [account("stays", password_last_set_at=AS_OF - timedelta(days=2)),
               account("new", created_days=3), account("flip", enabled=False), account("regroup", groups=["b"]),
               account("renamed", display_name="New Name")]
    current[-1].id = previous[-1].id
    events = diff_snapshots("ad", previous, current, before_time, AS_OF)
    got = {(e.username, e.action) for e in events}
    assert got == {("stays", ChangeAction.PASSWORD_RESET), ("new", ChangeAction.CREATED),
                   ("flip", ChangeAction.DISABLED), ("regroup", ChangeAction.GROUP_CHANGED),
                   ("renamed", ChangeAction.MODIFIED), ("gone", ChangeAction.DELETED)}
    by_name = {e.username: e for e in events}
    # Record timestamps inside the window date the change precisely; otherwise it is approximate.
    assert by_name["new"].at == AS_OF - timedelta(days=3) and not by_name["new"].approximate_time
    assert by_name["stays"].at == AS_OF - timedelta(days=2)
    assert by_name["flip"].at == AS_OF and by_name["flip"].approximate_time
    assert all(e.origin == "snapshot" for e in events)


def test_logged_events_explain_snapshot_differences() -> None:
    logged = [ChangeEvent("ad", AS_OF - timedelta(days=1), "id-a", ChangeAction.DISABLED)]
    derived = [ChangeEvent("ad", AS_OF, "id-a", ChangeAction.DISABLED, origin="snapshot"),
               ChangeEvent("ad", AS_OF, "id-b", ChangeAction.DISABLED, origin="snapshot")]
    merged = merge_events(logged, derived, AS_OF - timedelta(days=30))
    assert [(e.account_id, e.origin) for e in merged] == [("id-a", "source"), ("id-b", "snapshot")]


def test_history_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "history.sqlite"
    history = History(path)
    assert path.stat().st_mode & 0o777 == 0o600
    run = RunRecord("r1", AS_OF - timedelta(days=7), AS_OF, "0.1.0", True, [], {"k": {"value": 1}},
                    [{"key": "x"}])
    event = ChangeEvent("ad", AS_OF - timedelta(days=8), "id-a", ChangeAction.CREATED, username="a")
    history.record_run(run, {"ad": [account("a")]}, [event, event])
    history.close()
    reopened = History(path)
    assert reopened.previous_snapshot("ad", AS_OF)[1][0].username == "a"  # type: ignore[index]
    assert reopened.previous_snapshot("ad", AS_OF - timedelta(days=7)) is None  # only strictly earlier
    assert reopened.previous_snapshot("other", AS_OF) is None
    assert [e.account_id for e in reopened.events_between(AS_OF - timedelta(days=30), AS_OF)] == ["id-a"]
    assert [r.id for r in reopened.runs()] == ["r1"]


def test_history_refuses_a_corrupt_file(tmp_path: Path) -> None:
    import pytest

    from auditor.history import HistoryError

    path = tmp_path / "history.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="cannot open the history database"):
        History(path)


def test_synced_cloud_accounts_inherit_the_directory_policy() -> None:
    from auditor.identity import inherit_on_premises_policies
    from auditor.model import Inventory, PasswordPolicy

    ad_user = account("alice", source="ad", identifiers={"sid": "S-1-5-21-1-2-3-1105"}, password_policy_id="dom")
    synced = account("alice@corp.test", source="entra", identifiers={"on_prem_sid": "S-1-5-21-1-2-3-1105"})
    cloud_only = account("bob@corp.test", source="entra", password_policy_id="cloud")
    orphan = account("carol@corp.test", source="entra", identifiers={"on_prem_sid": "S-1-5-21-9-9-9-9"})
    policies = [PasswordPolicy("ad", "dom", "Domain policy"), PasswordPolicy("entra", "cloud", "Cloud")]
    inventory = Inventory(accounts=[ad_user, synced, cloud_only, orphan], policies=policies)
    assert inherit_on_premises_policies(inventory) == 1
    governing = inventory.policy_for(synced)
    assert governing is not None and governing.name == "Domain policy"
    assert inventory.policy_for(cloud_only).name == "Cloud"  # type: ignore[union-attr]
    assert inventory.policy_for(orphan) is None  # its directory is not audited: unknown


def test_accepted_risks_show_as_accepted_and_reappear_when_expired(small_org: Path, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from auditor.cli import main

    small_org.write_text(small_org.read_text() + (
        '\n[[accepted_risks]]\nusername = "kiosk"\nrules = ["password-not-required"]\nowner = "Facilities lead"\n'
        'reason = "Lobby kiosk has no keyboard; network-isolated"\nexpires = 2026-12-31\n'
        '\n[[accepted_risks]]\nusername = "svc-app"\nowner = "App owner"\nreason = "Vendor constraint"\n'
        'expires = 2026-03-31\n'))

    def audit(as_of: str, out: str) -> dict[str, object]:
        result = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(tmp_path / out),
                                           "--as-of", as_of, "--fail-on", "high"])
        assert result.exit_code in (0, 1), result.output
        return json.loads((tmp_path / out / "findings.json").read_text())

    document = audit("2026-06-30", "now")
    kiosk = next(f for f in document["findings"] if f["subject"]["name"] == "kiosk")  # type: ignore[attr-defined]
    assert kiosk["status"] == "accepted" and "owner Facilities lead, until 2026-12-31" in kiosk["accepted_by"]
    svc = next(f for f in document["findings"] if f["subject"]["name"] == "svc-app")  # type: ignore[attr-defined]
    assert svc["status"] == "open"  # its acceptance expired in March: reported again, and said so
    assert any("accepted risk username=svc-app" in n and "expired on 2026-03-31" in n
               for n in document["notes"])  # type: ignore[attr-defined]
    assert [(r["owner"], r["expired"]) for r in document["accepted_risks"]] == [  # type: ignore[attr-defined]
        ("Facilities lead", False), ("App owner", True)]
    html = (tmp_path / "now" / "report.html").read_text()
    assert "Accepted risks" in html and "Facilities lead" in html
    later = audit("2027-01-15", "later")
    kiosk = next(f for f in later["findings"] if f["subject"]["name"] == "kiosk")  # type: ignore[attr-defined]
    assert kiosk["status"] == "open"


_EVENTS = st.builds(
    lambda source, account, action, days, origin: ChangeEvent(source, AS_OF - timedelta(days=days), account, action,
                                                              origin=origin),
    st.sampled_from(["ad", "okta"]), st.sampled_from(["id-a", "id-b", "id-c"]),
    st.sampled_from([ChangeAction.CREATED, ChangeAction.DISABLED, ChangeAction.MODIFIED]), st.integers(0, 40),
    st.sampled_from(["source", "snapshot"]))


@given(st.lists(_EVENTS, max_size=25), st.lists(_EVENTS, max_size=12))
def test_merged_events_are_the_deduplicated_union_of_logged_and_unexplained_derived(
        logged: list[ChangeEvent], derived: list[ChangeEvent]) -> None:
    # The merge keeps the logged events' order and adds the rest in place: what deduplicating both again gave.
    window = AS_OF - timedelta(days=30)
    logged = deduplicate(logged)
    explained = {(e.source, e.account_id, e.action.value) for e in logged if e.at > window}
    again = deduplicate([*logged, *(e for e in derived if (e.source, e.account_id, e.action.value) not in explained)])
    assert merge_events(logged, derived, window) == again


@given(st.lists(_EVENTS, max_size=40))
def test_deduplicated_events_are_the_first_met_of_each_key_in_time_order(events: list[ChangeEvent]) -> None:
    # Made by sorting, not by a dict of every key: the same events, the first met of each (its origin tells).
    first: dict[tuple[str, str, str, str], ChangeEvent] = {}
    for event in events:
        first.setdefault((event.source, event.account_id, event.action.value, event.at.isoformat()), event)
    expected = sorted(first.values(), key=lambda e: (e.at, e.source, e.account_id, e.action.value))
    assert [(e, e.origin) for e in deduplicate(events)] == [(e, e.origin) for e in expected]
    assert all(a is b for a, b in zip(deduplicate(events), expected, strict=True))
