"""Secrets come from environment variables or files, never from the config text or the command line."""

from __future__ import annotations

import os
from pathlib import Path


class SecretUnavailable(Exception):
    """Raised with a message that names where the secret was expected, never the secret itself."""


def resolve_secret(what: str, env_name: str | None, file_path: Path | None) -> str:
    """Read a secret from ``env_name`` or ``file_path`` (trailing newline stripped)."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise SecretUnavailable(f"{what}: environment variable {env_name} is not set or empty")
        return value
    if file_path is not None:
        try:
            value = file_path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretUnavailable(f"{what}: cannot read {file_path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise SecretUnavailable(f"{what}: {file_path} is not UTF-8 text (a binary file?)") from None
        if not value:
            raise SecretUnavailable(f"{what}: {file_path} is empty")
        return value
    raise SecretUnavailable(f"{what}: no secret configured (set {what}_env or {what}_file)")


class Redactor:
    """Removes known secret values from any text that is about to be shown, logged or written."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 4:  # shorter strings would shred ordinary text
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text
