"""Shape of the code: rules and config checking load no vendor SDK; a rule or connector is one module plus one
registration line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import main

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("ldap3", "msal")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {SDKS!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.split()


def test_rules_and_check_config_load_no_vendor_sdk(tmp_path: Path) -> None:
    assert _loaded_after("import auditor.rules") == []
    assert _loaded_after("from click.testing import CliRunner\nfrom auditor.cli import main\n"
                         "CliRunner().invoke(main, ['rules', '--json'])") == []
    config = tmp_path / "live.toml"
    config.write_text('[audit]\norganization = "x"\n[[sources]]\nname = "dc"\ntype = "ldap"\n'
                      'url = "ldaps://dc.example.test"\n[[sources]]\nname = "tenant"\ntype = "entra"\n'
                      'tenant_id = "t"\nclient_id = "c"\nclient_secret_env = "NOT_SET_HERE"\n')
    result = CliRunner().invoke(main, ["check-config", str(config)])
    assert "NOT_SET_HERE" in result.output  # the config was read and checked
    assert _loaded_after(f"from click.testing import CliRunner\nfrom auditor.cli import main\n"
                         f"CliRunner().invoke(main, ['check-config', {str(config)!r}])") == []


def test_every_registered_source_type_resolves_to_its_own_module() -> None:
    from connectors import SOURCE_TYPES

    assert len(SOURCE_TYPES) == 10 and all(SOURCE_TYPES[name].name == name for name in SOURCE_TYPES)
    assert "nope" not in SOURCE_TYPES and ["ldap"] not in SOURCE_TYPES


def test_a_rule_is_one_module_plus_one_registration_line() -> None:
    import importlib

    from auditor.rules import RULES

    modules = sorted(p.stem for p in (ROOT / "auditor" / "rules").glob("*.py") if p.stem not in ("__init__", "base"))
    assert len(modules) == len(RULES)
    for name in modules:
        rule = importlib.import_module(f"auditor.rules.{name}").RULE
        assert RULES[rule.meta.id] is rule and rule.meta.id == name.replace("_", "-")
    init = (ROOT / "auditor" / "rules" / "__init__.py").read_text()
    assert all(init.count(f"{name}.RULE") == 1 for name in modules)  # the one registration line


def test_rules_read_no_vendor_attribute() -> None:
    import re

    for path in (ROOT / "auditor" / "rules").glob("*.py"):
        assert not re.search(r"\.raw(\.get)?[\[(]", path.read_text()), path.name  # quoted via source_values()
