"""[rules.<id>] tables: each rule declares its parameters; the config checks them; the legacy [audit.thresholds]
keys still work; the rule reads what was set."""

from __future__ import annotations

from datetime import timedelta

import pytest

from auditor.config import ConfigError, parse_config
from auditor.model import AccountKind, ChangeAction
from auditor.rules import RULES
from tests.rule_helpers import AS_OF, account, context, events, inventory

SOURCE = '[[sources]]\nname = "ad"\ntype = "ldif"\npath = "u.ldif"\n'


def _config(extra: str) -> str:
    return f'[audit]\norganization = "x"\n{SOURCE}{extra}'


def test_a_rules_table_sets_a_declared_parameter() -> None:
    config = parse_config(_config("[rules.change-volume-spike]\nk = 5\nmin_changes = 3\n"))
    assert config.rule_parameters == {"change-volume-spike": {"k": 5, "min_changes": 3}}


@pytest.mark.parametrize(("table", "message"), [
    ("[rules.no-such-rule]\nk = 1\n", "rules.no-such-rule: unknown rule id"),
    ("[rules.change-volume-spike]\nkk = 1\n", "rules.change-volume-spike.kk: unknown parameter (this rule's: k, "
                                              "baseline_days, min_changes)"),
    ("[rules.change-volume-spike]\nk = \"3\"\n", "rules.change-volume-spike.k: must be a number (got str '3')"),
    ("[rules.change-volume-spike]\nbaseline_days = 2.5\n", "baseline_days: must be an integer"),
    ("[rules.change-volume-spike]\nbaseline_days = 3\n", "baseline_days: must be at least 7"),
    ("[rules.change-volume-spike]\nk = true\n", "k: must be a number (got bool True)"),
    ("[rules.inactive-enabled]\nk = 3\n", "rules.inactive-enabled.k: unknown parameter (this rule's: none)"),
    ("rules = 3\n", "rules: must be a table"),
])
def test_bad_parameters_name_the_key(table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^<config>: ") as raised:
        parse_config(_config(table) if not table.startswith("rules =") else
                     "rules = 3\n" + _config(""))
    assert message in str(raised.value)


def test_the_rule_reads_its_table_then_the_legacy_threshold_then_its_default() -> None:
    rule = RULES["change-volume-spike"]
    daily = dict.fromkeys(range(2, 40), 2)
    daily[1] = 6  # a day with 6 changes against a baseline of 2 a day
    inv = inventory(change_events=events("ad", daily, ChangeAction.MODIFIED))
    assert rule.evaluate(inv, context()) == []  # the default min_changes is 10
    assert len(rule.evaluate(inv, context(thresholds={"spike_min_changes": 5}))) == 1  # [audit.thresholds]
    ctx = context(thresholds={"spike_min_changes": 50})
    tabled = type(ctx)(as_of=ctx.as_of, settings=ctx.settings, inactive_days=ctx.inactive_days, rater=ctx.rater,
                       parameters={"change-volume-spike": {"min_changes": 5}})
    found = rule.evaluate(inv, tabled)  # the rule's own table wins over the legacy key
    assert len(found) == 1 and found[0].evidence["count"] == 6
    # The engine reads change history as far back as the largest baseline any rule declares.
    longer = type(ctx)(as_of=ctx.as_of, settings=ctx.settings, inactive_days=ctx.inactive_days, rater=ctx.rater,
                       parameters={"change-volume-spike": {"baseline_days": 90}})
    assert longer.lookback_days(r.meta for r in RULES.values()) == 90


def test_guest_invitation_days_from_its_table() -> None:
    guest = account("guest", kind=AccountKind.GUEST, invitation_pending_since=AS_OF - timedelta(days=20))
    rule = RULES["guest-invitation-pending"]
    assert rule.evaluate(inventory(guest), context()) == []
    ctx = context()
    short = type(ctx)(as_of=ctx.as_of, settings=ctx.settings, inactive_days=ctx.inactive_days, rater=ctx.rater,
                      parameters={"guest-invitation-pending": {"days": 10}})
    assert len(rule.evaluate(inventory(guest), short)) == 1


def test_every_parameter_default_is_valid_and_listed() -> None:
    for rule in RULES.values():
        for parameter in rule.meta.parameters:
            assert parameter.problem(parameter.default) is None, (rule.meta.id, parameter.name)
