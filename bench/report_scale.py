"""Benchmark: report.html for a large directory, in real headless Chromium.

    python -m bench.report_scale [--accounts 100000]

Builds an audit of N generated accounts (a CSV source: a quarter dormant, some never used, so findings
are plentiful), renders the report, and measures its size and the time from navigation until the
accounts table is interactive (a large report's findings are read after it), against the targets (25 MB
and 2 s; 60 MB and 3 s above 100,000 accounts) and against a plain page of the same bytes with no script
(what the browser needs just to read the file).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from selenium.webdriver.support.ui import WebDriverWait

from auditor.config import parse_config
from auditor.engine import run_audit
from auditor.history import History
from auditor.report_html import render_report
from tests import browser

TARGET_MB, TARGET_SECONDS = 25.0, 2.0  # at 100,000 accounts
TARGET_MB_1M, TARGET_SECONDS_1M = 60.0, 3.0  # above it (issue 13: a million accounts)


def write_export(path: Path, count: int, now: datetime) -> None:
    rng = random.Random(7)
    lines = ["id,login,name,email,status,last_login,created,groups"]
    for n in range(count):
        idle = rng.choice([1, 3, 10, 20, 45, 120, 200, 400]) if n % 37 else None
        last = "" if idle is None else (now - timedelta(days=idle)).strftime("%Y-%m-%dT%H:%M:%SZ")
        created = (now - timedelta(days=400 + n % 900)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"u{n},user{n:06d},User Number {n},user{n}@example.test,{'active' if n % 13 else 'disabled'},"
                     f"{last},{created},staff;{['sales', 'ops', 'eng', 'hr'][n % 4]}")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()
    problem = browser.available()
    if problem:
        raise SystemExit(problem)
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        root = Path(scratch)
        write_export(root / "users.csv", args.accounts, now)
        config = parse_config(
            f"[audit]\nhistory_db = '{root / 'h.sqlite'}'\n[[sources]]\nname = 'app'\ntype = 'csv'\n"
            f"path = '{root / 'users.csv'}'\n[sources.columns]\nid = 'id'\nusername = 'login'\n"
            "display_name = 'name'\nemail = 'email'\nenabled = 'status'\nlast_activity_at = 'last_login'\n"
            "created_at = 'created'\ngroups = 'groups'\n")
        start = time.perf_counter()
        history = History(config.history_db)
        result = run_audit(config, now, history)
        history.close()
        html = render_report(result)
        build = time.perf_counter() - start
        report = root / "report.html"
        report.write_bytes(html)
        plain = root / "plain.html"  # the same bytes as inert text: the cost of reading the file at all
        plain.write_bytes(b"<!DOCTYPE html><title>baseline</title><pre>" + html.replace(b"<", b"&lt;") + b"</pre>")
        driver = browser.start(str(root / "profile"))
        try:
            timings = {}
            for name, page in (("baseline", plain), ("report", report)):
                driver.get(page.as_uri())
                if name == "report":
                    WebDriverWait(driver, 60).until(
                        lambda d: d.execute_script("return document.documentElement.dataset.ready"))
                    marks = driver.execute_script("return document.documentElement.dataset")
                    timings[name] = int(marks["interactive"]) / 1000  # the summary and the accounts table
                    timings["complete"] = int(marks["ready"]) / 1000  # and every rule's findings read
                else:
                    timings[name] = driver.execute_script(
                        "return performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
            shown = driver.execute_script("return document.getElementById('accounts-count').textContent")
        finally:
            driver.quit()
    size_mb = len(html) / 1e6
    print(f"{args.accounts:,} accounts, {len(result.findings):,} findings; audit and render took {build:.1f} s")
    print(f"{'measure':<44}{'value':>10}{'target':>10}{'ratio':>8}")
    target_mb, target_s = (TARGET_MB, TARGET_SECONDS) if args.accounts <= 100_000 else (TARGET_MB_1M, TARGET_SECONDS_1M)
    print(f"{'report.html size (MB)':<44}{size_mb:>10.1f}{target_mb:>10.1f}{size_mb / target_mb:>8.2f}")
    print(f"{'interactive after (s), from navigation':<44}{timings['report']:>10.2f}{target_s:>10.1f}"
          f"{timings['report'] / target_s:>8.2f}")
    print(f"{'findings read too (s), from navigation':<44}{timings['complete']:>10.2f}")
    print(f"{'baseline: same bytes as plain text, loaded (s)':<44}{timings['baseline']:>10.2f}{'':>10}"
          f"{timings['report'] / timings['baseline']:>8.2f}")
    print(f"table: {shown}")


if __name__ == "__main__":
    main()
