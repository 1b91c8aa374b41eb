"""An access-review packet's HTML in real headless Chromium: offline, decisions visible, hostile names inert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests import browser
from tests.conftest import HOSTILE_LOGIN, HOSTILE_NAME
from tests.test_cli import audit, run


def test_packet_page(small_org: Path, tmp_path: Path, driver: WebDriver) -> None:
    small_org.write_text(small_org.read_text() + '\n[[review.owners]]\nowner = "it@corp.test"\nsource = "ad"\n\n'
                         '[[review.owners]]\nowner = "saas-owner@corp.test"\nsource = "saas"\n')
    assert audit(small_org, tmp_path / "out").exit_code == 0
    run_id = json.loads((tmp_path / "out" / "findings.json").read_text())["run_id"]
    result = run("review", "create", "--run", run_id, "--config", str(small_org), "--by", "source",
                 "--output", str(tmp_path / "packets"))
    assert result.exit_code == 0, result.output
    campaign = json.loads((tmp_path / "packets" / "campaign.json").read_text())
    pages = {p["reviewer"]: tmp_path / "packets" / p["html"] for p in campaign["packets"]}
    for reviewer, path in pages.items():
        browser.requested_urls(driver)  # drain
        driver.get(path.as_uri())
        assert browser.requested_urls(driver) == [path.as_uri()]  # nothing fetched
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []  # no CSP violation
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018 - raises when no script ran
        assert driver.find_elements(By.CSS_SELECTOR, "img, script, svg, [onload], [onerror], a") == []
        assert reviewer in driver.find_element(By.TAG_NAME, "h1").text
        assert driver.find_element(By.ID, "digest").text == next(
            p["digest"] for p in campaign["packets"] if p["reviewer"] == reviewer)
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        choices = [[span.text for span in r.find_elements(By.CSS_SELECTOR, "td.decision span")] for r in rows]
        assert rows and all(c == ["keep", "revoke", "modify"] for c in choices)  # every account: what to decide
    ad_cells = [td.text for td in _cells(driver, pages["it@corp.test"])]
    assert HOSTILE_NAME in ad_cells  # shown as text
    assert HOSTILE_LOGIN in [td.text for td in _cells(driver, pages["saas-owner@corp.test"])]


def _cells(driver: WebDriver, path: Path) -> list[object]:
    driver.get(path.as_uri())
    return list(driver.find_elements(By.CSS_SELECTOR, "tbody td"))
