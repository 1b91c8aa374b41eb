"""The scale benchmarks' AD-shaped export: deterministic, drifts by the share asked, and audits cleanly."""

from __future__ import annotations

from pathlib import Path

from bench.ad_export import AS_OF, records, write
from connectors.base import CollectContext
from connectors.ldif import LdifConfig, collect


def test_the_same_arguments_give_the_same_records_and_drift_changes_the_share_asked() -> None:
    base = list(records(2_000))
    assert base == list(records(2_000))
    drifted = list(records(2_000, drift=0.05))
    changed = set(base) ^ set(drifted)
    users = [r for r in base if "objectClass: user" in r]
    assert len(users) == 2_000
    share = len([r for r in changed if r in set(base)]) / len(users)
    assert 0.03 < share < 0.07  # about 5% of the accounts changed or left
    assert len([r for r in drifted if "objectClass: user" in r]) == 2_000  # leavers replaced by newcomers


def test_the_export_audits_with_every_account_and_no_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "scale.ldif"
    write(path, 1_500)
    result = collect(LdifConfig(name="ad", type="ldif", path=path), CollectContext(AS_OF))
    assert len(result.accounts) == 1_500 and result.partial_error is None
    assert len(result.policies) == 4  # the domain's and three PSOs
    assert sum(a.privileged for a in result.accounts) >= 1
    assert all(a.activity_known for a in result.accounts)
