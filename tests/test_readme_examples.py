"""The README's development examples (a new rule, a new API connector) run as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

from auditor.model import Account
from connectors.values import ValueProblems
from tests.rule_helpers import account, context, inventory

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README.split("## Development", 1)[1], re.S)


def _run(code: str) -> dict[str, Any]:
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module  # pydantic resolves a model's annotations through its module
    exec(compile(code, "README.md", "exec"), module.__dict__)  # noqa: S102 - our own README
    return module.__dict__


def test_the_rule_example_runs() -> None:
    rule = _run(BLOCKS[0])["RULE"]
    admin = account("root", privileged=True, mfa_registered=False, created_days=30)
    fresh = account("new-admin", privileged=True, mfa_registered=False, created_days=2)
    found = rule.evaluate(inventory(admin, fresh), context())
    assert [f.subject.name for f in found] == ["root"] and found[0].evidence == {"grace_days": 7}
    assert rule.meta.parameters[0].problem(3) is None


def test_the_connector_example_maps_and_configures() -> None:
    example = _run(BLOCKS[1])
    problems = ValueProblems()
    mapped: Account = example["transform"]("acme", {"id": 7, "login": "jdoe"}, problems)
    assert mapped.username == "jdoe" and mapped.enabled is None  # "active" absent: unknown, never False
    config = example["AcmeConfig"].model_validate({"name": "acme", "type": "acme",
                                                   "base_url": "https://acme.example", "token_env": "ACME_TOKEN"})
    assert example["SOURCE_TYPE"].config_model is example["AcmeConfig"] and config.timeout == 60
