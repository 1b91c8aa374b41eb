from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from auditor.secrets import forget_secrets
from tests.ldif_fixtures import AS_OF, b64, domain_head, filetime, group, ldif, pso, user
from tests.servers.harness import Pki

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

HOSTILE_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.test","click")'
HOSTILE_LOGIN = "<svg onload=alert(1)>"


def _logon(days: int) -> str:
    return f"lastLogonTimestamp: {filetime(AS_OF - timedelta(days=days))}"


def write_small_org(directory: Path) -> Path:
    """A small organisation across three sources, with every rule firing somewhere and hostile values."""
    directory.mkdir(parents=True, exist_ok=True)
    admins = "CN=Domain Admins,CN=Users,DC=corp,DC=test"
    records = [
        domain_head(min_length=7, props=1),
        group("Domain Admins", 512),
        pso("Weak", 5, 6, False, ("CN=Contractors,CN=Users,DC=corp,DC=test",), guid_n=3),
        user("Active", "active", 512, 1, _logon(3)),
        user("Stale", "stale", 512, 2, _logon(200)),
        user("Stale Admin", "stale-admin", 512, 3, _logon(150), member_of=(admins,)),
        user("Never", "never", 512, 4),
        user("Svc", "svc-app", 66048, 5, _logon(1)),
        user("Kiosk", "kiosk", 544, 6, _logon(2)),
        user("Hostile", "hostile", 512, 7, _logon(300), f"displayName:: {b64(HOSTILE_NAME)}",
             f"description:: {b64(FORMULA)}"),
        user("Formula", "=cmd|' /C calc'!A0", 512, 8, _logon(400)),
        user("Leaver", "leaver", 514, 9, _logon(250)),
        user("bg", "bg-admin", 512, 10, _logon(500), member_of=(admins,)),
    ]
    (directory / "ad.ldif").write_bytes(ldif(*records))
    (directory / "users.json").write_text(json.dumps({"value": [
        {"id": "e1", "userPrincipalName": "cloud@corp.test", "accountEnabled": True,
         "displayName": "javascript:alert(document.cookie)", "createdDateTime": "2025-01-01T00:00:00Z",
         "signInActivity": {"lastSuccessfulSignInDateTime": "2026-01-01T00:00:00Z"}},
    ]}))
    (directory / "saas.csv").write_text(
        "ID,Login,Status,Last Login\n1,@SUM(1+1)*cmd,Active,2026-06-29T00:00:00Z\n2,+bob,Active,\n"
        f"3,{HOSTILE_LOGIN},Active,2025-01-01T00:00:00Z\n")
    config = directory / "audit.toml"
    config.write_text(f"""
[audit]
organization = "Corp Test"
history_db = "history.sqlite"

[[sources]]
name = "ad"
type = "ldif"
path = "ad.ldif"

[[sources]]
name = "entra"
type = "graph-json"
users_file = "users.json"

[[sources]]
name = "saas"
type = "csv"
path = "saas.csv"
[sources.columns]
id = "ID"
username = "Login"
enabled = "Status"
last_activity_at = "Last Login"

[[exclusions]]
username = "bg-*"
reason = "Break-glass, sealed envelope"
expires = {(AS_OF + timedelta(days=30)).date().isoformat()}
""")
    return config


@pytest.fixture
def small_org(tmp_path: Path) -> Path:
    return write_small_org(tmp_path / "org")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA and a server certificate for 127.0.0.1, shared by every HTTPS simulator."""
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.create()
    return pki


@pytest.fixture(autouse=True)
def _secrets_of_one_test_only() -> Iterator[None]:
    """Each test's secrets are its own: one test's token must not redact text in another test's outputs."""
    yield
    forget_secrets()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium (tests/browser.py), one per test module."""
    from tests import browser

    problem = browser.available()
    if problem:
        pytest.fail(problem)
    chrome = browser.start(str(tmp_path_factory.mktemp("chromium-profile")))
    try:
        yield chrome
    finally:
        chrome.quit()
