from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import ConfigError, load_config, parse_config

GOOD = """
[audit]
organization = "Acme"
inactive_days = 60

[[sources]]
name = "ad"
type = "ldif"
path = "exports/ad.ldif"
inactive_days = 45

[[exclusions]]
username = "bg-*"
reason = "break-glass"
expires = 2027-01-01
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path=Path("/etc/auditor/audit.toml"))
    return str(info.value)


def test_good_config_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "audit.toml").write_text(GOOD)
    config = load_config(tmp_path / "audit.toml")
    assert config.sources[0].path == tmp_path / "exports/ad.ldif"  # type: ignore[attr-defined]
    assert config.history_db == tmp_path / "auditor-history.sqlite"
    assert config.inactive_days_for("ad") == 45 and config.inactive_days_for("other") == 60
    assert config.exclusions[0].expires is not None


@pytest.mark.parametrize(("text", "expected"), [
    ("[audit\n", "not valid TOML"),
    ("[reports]\nx = 1\n", "reports: unknown key"),
    ("[audit]\ninactive_dayz = 3\n", "audit.inactive_dayz: unknown key"),
    ('[audit]\ninactive_days = "90"\n', "audit.inactive_days: Input should be a valid integer (got str '90')"),
    ("[audit]\ninactive_days = 0\n", "audit.inactive_days: Input should be greater than or equal to 1"),
    ("[audit.thresholds]\nspike_k = -1\n", "audit.thresholds.spike_k:"),
    ('[[sources]]\nname = "a"\ntype = "ldif"\n', "sources[0].path: required key is missing"),
    ('[[sources]]\nname = "a"\ntype = "nope"\n', "sources[0].type: unknown source type 'nope'"),
    ('[[sources]]\nname = "a"\n', "sources[0].type: unknown source type None"),
    ('[[sources]]\nname = "a b"\ntype = "ldif"\npath = "x"\n', "sources[0].name: String should match pattern"),
    ('[[sources]]\nname = "a"\ntype = "ldif"\npath = "x"\n[[sources]]\nname = "a"\ntype = "ldif"\npath = "y"\n',
     "sources[1].name: duplicate source name 'a'"),
    ('[[sources]]\nname = "a"\ntype = "ldif"\npath = "x"\npassword = "hunter2"\n',
     "sources[0].password: secrets are not allowed in the config; use 'password_env' or 'password_file'"),
    ('[[sources]]\nname = "c"\ntype = "csv"\npath = "x"\n[sources.columns]\nid = "ID"\nusername = "U"\n',
     "sources[0].columns.enabled: required key is missing"),
    ('[[exclusions]]\nreason = "because"\n', "exclusions[0]: Value error, needs one of 'username', 'group' or 'id'"),
    ('[[exclusions]]\nusername = "x"\nreason = "because"\nsource = "ghost"\n', "exclusions[0].source: no source named"),
    ('[[exclusions]]\nusername = "x"\nreason = "because"\nrules = ["no-such-rule"]\n',
     "exclusions[0].rules: unknown rule id 'no-such-rule'"),
    ('[audit]\ndisabled_rules = ["nope"]\n', "audit.disabled_rules: unknown rule id 'nope'"),
    ('[[accepted_risks]]\nusername = "x"\nreason = "because"\nexpires = 2027-01-01\n',
     "accepted_risks[0].owner: required key is missing"),
    ('[[accepted_risks]]\nusername = "x"\nreason = "because"\nowner = "CISO"\n',
     "accepted_risks[0].expires: required key is missing"),
    ("sources = 3\n", "sources: must be an array of tables"),
])
def test_every_error_names_file_key_and_problem(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith("/etc/auditor/audit.toml: ")
    assert expected in message
    assert "\n" not in message


def test_secret_values_never_echoed() -> None:
    message = error_of('[[sources]]\nname = "a"\ntype = "ldif"\npath = "x"\napi_token = "s3cr3t-value"\n')
    assert "s3cr3t-value" not in message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "latin1.toml").write_bytes(b"[audit]\norganization = \"Caf\xe9\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "latin1.toml")


def test_check_config_command(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "good.toml").write_text(GOOD)
    ok = runner.invoke(main, ["check-config", str(tmp_path / "good.toml")])
    assert ok.exit_code == 0 and "OK" in ok.output
    (tmp_path / "bad.toml").write_text("[audit]\ninactive_days = 'x'\n")
    bad = runner.invoke(main, ["check-config", str(tmp_path / "bad.toml")])
    assert bad.exit_code == 2
    assert f"{tmp_path / 'bad.toml'}: audit.inactive_days:" in bad.output
    assert "Traceback" not in bad.output


def test_deeply_nested_config_is_a_clear_error(tmp_path: Path) -> None:
    from auditor.config import ConfigError, load_config

    path = tmp_path / "deep.toml"
    path.write_text("[audit]\norganization = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


def test_as_of_out_of_range_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from auditor.cli import main

    for value in ("0001-01-01", "9999-12-31"):
        result = CliRunner().invoke(main, ["run", "--demo", "--as-of", value, "--output", str(tmp_path / "o")])
        assert result.exit_code == 2 and "out of range" in result.output and "Traceback" not in result.output


def test_binary_secret_file_names_the_file(tmp_path: Path) -> None:
    from auditor.secrets import SecretUnavailable, resolve_secret

    path = tmp_path / "token.bin"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SecretUnavailable, match=r"token\.bin is not UTF-8 text"):
        resolve_secret("token", None, path)


def test_check_config_names_an_unset_secret_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_UNSET_TOKEN", raising=False)
    path = tmp_path / "audit.toml"
    path.write_text('[[sources]]\nname = "okta"\ntype = "okta"\nbase_url = "https://acme.okta.example"\n'
                    'token_env = "AUDIT_UNSET_TOKEN"\n[[sources]]\nname = "scim"\ntype = "scim"\n'
                    f'base_url = "https://scim.example/v2"\ntoken_file = "{tmp_path / "missing.token"}"\n')
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sources[0].token_env (okta): environment variable AUDIT_UNSET_TOKEN is not set" in result.output
    assert "sources[1].token_file (scim)" in result.output and "missing.token does not exist" in result.output
    monkeypatch.setenv("AUDIT_UNSET_TOKEN", "00abc")
    (tmp_path / "missing.token").write_text("secret-token\n")
    assert CliRunner().invoke(main, ["check-config", str(path)]).exit_code == 0


def test_insecure_settings_are_said_even_when_the_source_fails(tmp_path: Path) -> None:
    import json

    path = tmp_path / "audit.toml"
    path.write_text("[audit]\nhistory_db = 'h.sqlite'\n[[sources]]\nname = 'files'\ntype = 'csv'\n"
                    f"path = '{tmp_path / 'users.csv'}'\ncolumns = {{ id = 'id', username = 'u', enabled = 'e' }}\n"
                    "[[sources]]\nname = 'dc'\ntype = 'ldap'\nurl = 'ldaps://127.0.0.1:1'\ntls_verify = false\n"
                    "timeout = 1\nretries = 0\n")
    (tmp_path / "users.csv").write_text("id,u,e\n1,ann,true\n")
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--output", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 3  # the directory is unreachable
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    dc = next(s for s in document["sources"] if s["name"] == "dc")
    assert dc["status"] == "failed" and any("TLS CERTIFICATE VERIFICATION IS DISABLED" in w for w in dc["warnings"])
