"""What unused accounts cost: prices per source, kind and Entra licence; the spend KPI on the demo and across
audits; Graph licence mapping on real-shaped payloads."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from auditor.cost import Price, price_of
from auditor.model import Account, AccountKind
from connectors.base import CostSettings
from connectors.graph_users import map_user, sku_names
from connectors.values import ValueProblems
from tests.test_cli import audit, run

GRAPH = Path(__file__).parent / "data" / "graph"


def _demo(tmp_path: Path) -> tuple[dict[str, object], Path]:
    out = tmp_path / "out"
    result = run("run", "--demo", "--output", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    return json.loads((out / "findings.json").read_text()), out


def test_demo_spend_on_unused_accounts(tmp_path: Path) -> None:
    document, out = _demo(tmp_path)
    kpi = document["kpis"]["unused_account_spend"]  # type: ignore[index]
    detail = kpi["detail"]
    assert kpi["unit"] == "money" and detail["currency"] == "EUR" and kpi["value"] > 0
    assert kpi["value"] == detail["monthly"] == pytest.approx(sum(detail["per_source"].values()))
    assert kpi["value"] == pytest.approx(sum(detail["by_reason"].values()))
    assert detail["yearly"] == pytest.approx(kpi["value"] * 12)
    assert set(detail["per_source"]) == {"entra", "salesapp"}  # corp-ad has no price: never a 0 pretending
    assert set(detail["by_reason"]) == {"inactive", "never_used", "left", "unmanaged"}
    # The two SSO kiosks (25 EUR each) are enabled, unowned and their activity is unknown: not waste, said apart.
    assert (detail["unknown_activity_monthly"], detail["unknown_activity_accounts"]) == (50.0, 2)
    assert detail["unused_accounts_without_price"] > 0  # unused corp-ad accounts: no price configured
    priced = [f for f in document["findings"] if "monthly_cost" in f["evidence"]]  # type: ignore[attr-defined]
    assert {f["evidence"]["monthly_cost"]["basis"] for f in priced} >= {"licences SPE_E3", "per account"}
    assert all(f["source"] in ("entra", "salesapp") for f in priced)
    rows = list(csv.DictReader(io.StringIO((out / "accounts.csv").read_text("utf-8-sig"))))
    by_name = {(r["source"], r["username"]): r for r in rows}
    assert by_name[("corp-ad", "glucas")]["monthly_cost"] == ""  # no price for the source: empty, not 0
    guest = next(r for r in rows if r["source"] == "entra" and r["kind"] == "guest")
    assert (guest["monthly_cost"], guest["currency"]) == ("0.00", "EUR")  # no licence held
    assert next(r for r in rows if r["kind"] == "bot")["monthly_cost"] == "0.00"
    html = (out / "report.html").read_text()
    assert f"{kpi['value']:,.2f} EUR" in html and 'id="spend-chart"' in html
    # The demo's history was audited with the same prices: the figure has a trend over past audits.
    assert 'class="spark"' in _tile(html, "unused_account_spend")


def _tile(html: str, kpi: str) -> str:
    return html.split(f'id="kpi-{kpi}"', 1)[1].split('<div class="kpi"', 1)[0].split("</section>", 1)[0]


def test_trend_across_two_audits(small_org: Path, tmp_path: Path) -> None:
    small_org.write_text(small_org.read_text().replace('path = "saas.csv"\n', 'path = "saas.csv"\n'
                                                       '[sources.cost]\nper_account_month = 10.0\ncurrency = "GBP"\n'))
    assert audit(small_org, tmp_path / "one").exit_code == 0
    first = json.loads((tmp_path / "one" / "findings.json").read_text())["kpis"]["unused_account_spend"]
    saas = small_org.parent / "saas.csv"
    saas.write_text(saas.read_text() + "4,late,Active,2025-02-01T00:00:00Z\n")  # one more inactive account
    result = run("run", "--config", str(small_org), "--output", str(tmp_path / "two"), "--as-of", "2026-07-01")
    assert result.exit_code == 0, result.output
    second = json.loads((tmp_path / "two" / "findings.json").read_text())["kpis"]["unused_account_spend"]
    assert second["value"] == first["value"] + 10.0 and second["detail"]["currency"] == "GBP"
    html = (tmp_path / "two" / "report.html").read_text()
    assert 'class="spark"' in _tile(html, "unused_account_spend")


def test_mixed_currencies_have_no_single_total(small_org: Path, tmp_path: Path) -> None:
    text = small_org.read_text().replace('path = "saas.csv"\n', 'path = "saas.csv"\n[sources.cost]\n'
                                         'per_account_month = 10.0\ncurrency = "GBP"\n')
    text = text.replace('users_file = "users.json"\n', 'users_file = "users.json"\n[sources.cost]\n'
                        'per_account_month = 20.0\ncurrency = "EUR"\n')
    small_org.write_text(text)
    assert audit(small_org, tmp_path / "out").exit_code == 0
    kpi = json.loads((tmp_path / "out" / "findings.json").read_text())["kpis"]["unused_account_spend"]
    assert kpi["value"] is None and set(kpi["detail"]["currencies"]) == {"EUR", "GBP"}


def _account(kind: AccountKind = AccountKind.HUMAN, licences: tuple[str, ...] | None = None) -> Account:
    return Account(source="s", id="1", username="u", enabled=True, kind=kind, licences=licences)


def test_price_rules() -> None:
    cost = CostSettings(per_account_month=5.0, currency="EUR", per_kind={"guest": 0.0},
                        per_sku={"SPE_E3": 33.75, "EMS": 10.0})
    assert price_of(_account(licences=("SPE_E3", "EMS", "FREE")), cost) == Price(43.75, "EUR",
                                                                                 "licences SPE_E3, EMS")
    assert price_of(_account(licences=()), cost) == Price(0.0, "EUR", "no priced licence")
    assert price_of(_account(AccountKind.GUEST), cost) == Price(0.0, "EUR", "kind guest")  # licences unknown
    assert price_of(_account(), cost) == Price(5.0, "EUR", "per account")
    assert price_of(_account(), CostSettings(per_sku={"SPE_E3": 1.0})) is None  # unknown licences: unknown price


@pytest.mark.parametrize(("table", "message"), [
    ("[sources.cost]\ncurrency = \"EUR\"\n", "set per_account_month, per_kind or per_sku"),
    ("[sources.cost]\nper_kind = { robot = 0.0 }\n", "unknown account kind 'robot'"),
    ("[sources.cost]\nper_account_month = -1.0\n", "sources[0].cost.per_account_month"),
    ("[sources.cost]\nper_account_month = 1.0\ncurrency = \"euro\"\n", "sources[0].cost.currency"),
])
def test_bad_cost_tables(small_org: Path, table: str, message: str) -> None:
    small_org.write_text(small_org.read_text().replace('path = "ad.ldif"\n', f'path = "ad.ldif"\n{table}'))
    result = run("check-config", str(small_org))
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_graph_licences_on_real_shapes() -> None:
    problems = ValueProblems()
    skus = json.loads((GRAPH / "subscribed_skus.json").read_text())["value"]
    names = sku_names(skus, problems)
    assert names == {"c7df2760-2c81-4ef7-b578-5b5392b571df": "ENTERPRISEPREMIUM",
                     "b05e124f-c7cc-45a0-a6aa-8cf78c946968": "EMSPREMIUM"}  # skuId case folded
    users = json.loads((GRAPH / "users_licences_select.json").read_text())["value"]
    held = {u["userPrincipalName"]: map_user("entra", u, sign_in_known=False, unknown_reason=None, mfa={},
                                             problems=problems, sku_names=names).licences for u in users}
    assert held == {
        "two@contoso.com": ("EMSPREMIUM", "ENTERPRISEPREMIUM"), "none@contoso.com": (),
        "unlisted@contoso.com": ("6fd2c87f-b296-42f0-b197-1e91e994b900",),  # not in the SKU list: its id
        "nulled@contoso.com": None, "odd@contoso.com": None, "broken@contoso.com": None,  # unknown, never ()
        "notselected@contoso.com": None,
    }
    warnings = " ".join(problems.warnings())
    assert "assignedLicenses" in warnings and "odd@contoso.com" in warnings
