"""check-access on export sources (files only) and ``auditor permissions``; the live sources' checks are tested
against their servers: tests/test_ldap_live.py (Samba, slapd) and each API connector's simulator tests."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run


def test_file_sources_are_checked_for_readability(small_org: Path) -> None:
    result = run("check-access", str(small_org))
    assert result.exit_code == 0, result.output
    assert "read path (" in result.output and "read users_file (" in result.output
    (small_org.parent / "saas.csv").unlink()
    result = run("check-access", "--json", str(small_org))
    assert result.exit_code == 3
    [saas] = [s for s in json.loads(result.output) if s["source"] == "saas"]
    assert saas["ok"] is False and saas["checks"][0]["status"] == "missing"
    assert saas["checks"][0]["impact"] == "the source cannot be audited"


def test_config_error_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text('[[sources]]\nname = "x"\ntype = "okta"\n')
    result = run("check-access", str(config))
    assert result.exit_code == 2 and "sources[0]" in result.stderr and "Traceback" not in result.output


def test_permissions_per_source_type() -> None:
    result = run("permissions", "entra", "github")
    assert result.exit_code == 0
    assert "User.Read.All" in result.output and "AuditLog.Read.All" in result.output
    assert "RoleManagement.Read.Directory" in result.output and "organization owner" in result.output
    every = run("permissions").output
    for source_type in ("ldap", "entra", "okta", "google", "github", "slack", "scim", "ldif", "csv"):
        assert f"\n{source_type}: " in "\n" + every
    assert "okta.logs.read" in every and "Password Settings Container" in every
    unknown = run("permissions", "ldapx")
    assert unknown.exit_code == 2 and "unknown source type 'ldapx'" in unknown.stderr
