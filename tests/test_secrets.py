from pathlib import Path

import pytest

from auditor.secrets import Redactor, SecretUnavailable, resolve_secret


def test_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_TEST_SECRET", "from-env")
    assert resolve_secret("password", "AUDITOR_TEST_SECRET", None) == "from-env"
    (tmp_path / "secret").write_text("from-file\n")
    assert resolve_secret("password", None, tmp_path / "secret") == "from-file"


def test_missing_secret_messages_do_not_leak(tmp_path: Path) -> None:
    with pytest.raises(SecretUnavailable, match="AUDITOR_NOT_SET is not set"):
        resolve_secret("password", "AUDITOR_NOT_SET", None)
    with pytest.raises(SecretUnavailable, match="cannot read"):
        resolve_secret("password", None, tmp_path / "nope")
    with pytest.raises(SecretUnavailable, match="password_env or password_file"):
        resolve_secret("password", None, None)


def test_redactor() -> None:
    redact = Redactor()
    redact.add("hunter2-secret")
    redact.add("ab")  # too short to redact safely
    assert redact("bind failed for hunter2-secret at ab") == "bind failed for [redacted] at ab"
