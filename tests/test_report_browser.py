"""report.html in a real headless Chromium: offline, error-free, sortable, filterable, and inert to
hostile directory values."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from auditor.cli import main
from tests import browser
from tests.conftest import HOSTILE_LOGIN, HOSTILE_NAME, write_small_org


@pytest.fixture(scope="module", params=["json", "gzip"])
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small organisation's report as the run writes it, and with its tables compressed (as a large
    directory's are): every test below runs on both."""
    root = tmp_path_factory.mktemp("report")
    config = write_small_org(root / "org")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(root / "out"),
                                       "--as-of", "2026-06-30", "--quiet"])
    assert result.exit_code == 0, result.output
    if request.param == "json":
        return root / "out" / "report.html"
    import json

    from auditor.config import load_config
    from auditor.history import History
    from auditor.report_html import render_report
    from auditor.result_store import decode_result

    history = History(load_config(config).history_db)
    try:
        stored = history.run_result(json.loads((root / "out" / "findings.json").read_text())["run_id"])
    finally:
        history.close()
    assert stored is not None
    page = render_report(decode_result(stored), compress_above=0)
    assert b'data-encoding="gzip"' in page and HOSTILE_LOGIN.encode() not in page
    compressed = root / "compressed.html"
    compressed.write_bytes(page)
    return compressed


@pytest.fixture
def page(driver: WebDriver, report: Path) -> WebDriver:
    browser.requested_urls(driver)  # drain: the log also holds what the browser loaded before this page
    driver.get(report.as_uri())
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
    return driver


def column(driver: WebDriver, name: str) -> list[str]:
    """One column of the accounts table, read in a single script call (no stale elements mid-render)."""
    return list(driver.execute_script(
        "const keys = Array.from(document.querySelectorAll('#accounts thead th')).map(th => th.dataset.key);"
        "const i = keys.indexOf(arguments[0]);"
        "return Array.from(document.querySelectorAll('#accounts tbody tr')).map(tr => tr.children[i].textContent);",
        name))


def test_offline_and_error_free(page: WebDriver, report: Path) -> None:
    assert browser.requested_urls(page) == [report.as_uri()]  # the file itself, nothing else
    errors = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # includes Content-Security-Policy violations
    # 10 directory accounts, 1 cloud account, 3 SaaS accounts: no row cap, no row lost.
    assert "14 of 14 matching accounts shown" in page.find_element(By.ID, "accounts-count").text


def test_hostile_values_render_as_inert_text(page: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018 - raises when no script ran
    # No element the payloads could have created: no images, no scripts, no event-handler attributes,
    # and the only SVG is the report's own charts.
    assert page.find_elements(By.CSS_SELECTOR, "main img, main script, [onload], [onerror]") == []
    assert {e.get_attribute("class") for e in page.find_elements(By.CSS_SELECTOR, "main svg")} <= {"spark", "chart"}
    assert page.find_elements(By.CSS_SELECTOR, "a[href^='javascript']") == []
    assert HOSTILE_NAME in column(page, "display_name")
    assert "javascript:alert(document.cookie)" in column(page, "display_name")
    subjects = [td.text for td in page.find_elements(By.CSS_SELECTOR, "#rule-inactive-enabled tbody td:nth-child(3)")]
    assert HOSTILE_LOGIN in subjects


def test_sorting(page: WebDriver) -> None:
    header = page.find_element(By.CSS_SELECTOR, "#accounts th[data-key='username']")
    header.click()
    ascending = column(page, "username")
    assert len(ascending) == 14
    words = [u for u in ascending if u[0].isalnum()]  # collation of symbols differs between JS and Python
    assert words == sorted(words, key=str.lower) and len(words) >= 8
    header.click()
    assert column(page, "username") == list(reversed(ascending))
    assert header.get_attribute("aria-sort") == "descending"


def test_filtering(page: WebDriver) -> None:
    Select(page.find_element(By.ID, "filter-activity")).select_by_value("inactive")
    activity = column(page, "activity")
    assert activity and set(activity) == {"inactive"}
    Select(page.find_element(By.ID, "filter-activity")).select_by_value("")
    search = page.find_element(By.ID, "filter-text")
    search.send_keys("stale")
    WebDriverWait(page, 5).until(lambda d: len(column(d, "username")) == 2)
    assert sorted(column(page, "username")) == ["stale", "stale-admin"]


def test_framework_filter_and_lazy_findings(page: WebDriver) -> None:
    Select(page.find_element(By.ID, "filter-framework")).select_by_value("PCI DSS 4.0")
    never = page.find_element(By.ID, "rule-never-used-enabled")
    assert not never.is_displayed()  # no PCI DSS control is mapped to never-used accounts
    assert page.find_element(By.ID, "rule-inactive-enabled").is_displayed()
    Select(page.find_element(By.ID, "filter-framework")).select_by_value("")
    section = page.find_element(By.ID, "rule-password-never-expires")
    rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1 and "svc-app" in rows[0].text
