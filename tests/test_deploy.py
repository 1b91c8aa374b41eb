"""deploy/: the systemd units pass Debian's systemd-analyze, and the documented server layout (config in
/etc/auditor, secrets as systemd credentials, state in /var/lib/auditor) works with the config loader."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.cli import run as run_command
from auditor.config import load_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNIT, TIMER = DEPLOY / "systemd" / "auditor.service", DEPLOY / "systemd" / "auditor.timer"
INSTALLED_AT = "/opt/auditor/bin/auditor"  # where the README ("Running on a schedule") installs the tool


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units as shipped, with ExecStart pointing at this machine's auditor (verify checks it is executable)."""
    auditor = shutil.which("auditor") or str(Path(sys.executable).parent / "auditor")
    (tmp_path / UNIT.name).write_text(UNIT.read_text().replace(INSTALLED_AT, auditor))
    shutil.copy(TIMER, tmp_path / TIMER.name)
    return tmp_path


def test_units_verify_cleanly(units: Path) -> None:
    checked = _analyze("verify", "--man=no", UNIT.name, TIMER.name, cwd=units)
    # An unknown or misspelt key only warns (and exits 0): nothing at all may be said.
    assert (checked.returncode, checked.stderr, checked.stdout) == (0, "", "")


def test_a_misspelt_key_would_be_caught(units: Path) -> None:
    unit = units / UNIT.name
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    checked = _analyze("verify", "--man=no", UNIT.name, TIMER.name, cwd=units)
    assert "Unknown key" in checked.stderr and "ProtectSytem" in checked.stderr


def test_service_is_hardened(units: Path) -> None:
    # Exposure is rated 0.0 (locked down) to 10.0; the threshold is given in tenths.
    checked = _analyze("security", "--offline=true", "--threshold=20", UNIT.name, cwd=units)
    assert checked.returncode == 0, checked.stdout[-2000:]
    score = re.search(r"Overall exposure level for auditor.service: ([0-9.]+)", checked.stdout)
    assert score and float(score.group(1)) <= 2.0
    text = UNIT.read_text()
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/auditor", "UMask=0077"):
        assert setting in text.splitlines()


def test_timer_fires_monthly(units: Path) -> None:
    calendar = re.search(r"^OnCalendar=(.+)$", TIMER.read_text(), re.M)
    assert calendar
    checked = _analyze("calendar", calendar.group(1), "--iterations=2", cwd=units)
    assert checked.returncode == 0 and "-01 03:00:00" in checked.stdout


def _credentials() -> set[str]:
    return {line.split("=", 1)[1].split(":", 1)[0] for line in UNIT.read_text().splitlines()
            if line.startswith("LoadCredential=")}


def _exec_start() -> list[str]:
    line = next(line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_config_reads_the_credentials_systemd_hands_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_text = (DEPLOY / "audit.toml").read_text()
    referenced = set(re.findall(r"\$\{CREDENTIALS_DIRECTORY\}/([\w.-]+)", config_text))
    assert referenced == _credentials()  # every secret the config reads is loaded by the unit, and no other
    credentials = tmp_path / "run-credentials-auditor.service"  # what /run/credentials/auditor.service is
    credentials.mkdir(mode=0o700)
    for name in referenced:
        (credentials / name).write_text(f"secret-{name}\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = load_config(DEPLOY / "audit.toml")
    assert config.history_db == Path("/var/lib/auditor/history.sqlite")
    files = {str(path) for source in config.sources for path in source.secret_references().values()}
    assert files == {str(credentials / "ldap-bind-password"), str(credentials / "entra-client-secret")}
    checked = subprocess.run([sys.executable, "-m", "auditor.cli", "check-config", str(DEPLOY / "audit.toml")],
                             capture_output=True, text=True, timeout=120, env=os.environ)
    assert checked.returncode == 0, checked.stderr
    assert "History: /var/lib/auditor/history.sqlite" in checked.stdout


def test_config_outside_systemd_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    checked = subprocess.run([sys.executable, "-m", "auditor.cli", "check-config", str(DEPLOY / "audit.toml")],
                             capture_output=True, text=True, timeout=120, env=os.environ)
    assert checked.returncode == 2 and "Traceback" not in checked.stderr
    assert "sources[0].password_file" in checked.stderr and "CREDENTIALS_DIRECTORY" in checked.stderr


def test_exec_start_and_cron_run_the_same_valid_command() -> None:
    command = _exec_start()
    assert command[0] == INSTALLED_AT and command[1] == "run"
    context = run_command.make_context("run", command[2:])  # parsed by the real CLI: every option exists
    assert context.params["quiet"] and context.params["evidence"]
    assert str(context.params["output_dir"]).startswith("/var/lib/auditor/")
    cron = next(line for line in (DEPLOY / "cron" / "auditor").read_text().splitlines()
                if line and not line.startswith("#") and "=" not in line.split()[0])
    assert " ".join(command) in cron
