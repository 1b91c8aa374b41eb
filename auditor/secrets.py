"""Secrets come from environment variables or files, never from the config text or the command line."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

from markupsafe import escape


class SecretUnavailable(Exception):
    """Raised with a message that names where the secret was expected, never the secret itself."""


def resolve_secret(what: str, env_name: str | None, file_path: Path | None) -> str:
    """Read a secret from ``env_name`` or ``file_path`` (trailing newline stripped)."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise SecretUnavailable(f"{what}: environment variable {env_name} is not set or empty")
        register(value)
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
        register(value)
        return value
    raise SecretUnavailable(f"{what}: no secret configured (set {what}_env or {what}_file)")


# Every secret this process has read, in every form it may travel in. One registry for the whole process:
# whatever field a server echoes a credential into, the boundary (scrub_text / scrub_bytes) removes it from
# everything that leaves: outputs, evidence files, the history, stderr.
_REGISTERED: set[str] = set()
# The forms longest first (a form inside a longer one must not break it up first), as text and as UTF-8: made
# when the registry changes, not on every scrub (the history scrubs each change event on its own).
_LONGEST_FIRST: list[tuple[str, bytes]] = []
_MARK = "[redacted]"
# A JWS compact serialisation (RFC 7515 7.1): signed client assertions msal builds inside itself, and access
# tokens. No output has a reason to carry one.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")


def encodings(secret: str) -> set[str]:
    """The forms a secret takes on the way out: URL-encoded (form bodies), JSON-, HTML- and CSV-escaped,
    base64 (Basic credentials are registered whole as well), with and without padding."""
    raw = secret.encode("utf-8")
    forms = {
        secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret), html.escape(secret, quote=False),
        secret.replace('"', '""'), str(escape(secret)),
    }
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms |= {text, text.rstrip("=")}
    return {form for form in forms if len(form) >= 4}


def register(secret: str) -> None:
    """Remember ``secret`` (and its encodings) for the process-wide boundary."""
    if len(secret) >= 4:  # shorter strings would shred ordinary text
        _REGISTERED.update(encodings(secret))
        _order()


def forget_secrets() -> None:
    """Empty the registry: for a process that runs one audit after another (and for tests), so one audit's
    secrets do not redact another's outputs. The CLI runs one audit per process and never needs it."""
    _REGISTERED.clear()
    _order()



def _order() -> None:
    _LONGEST_FIRST[:] = [(form, form.encode("utf-8")) for form in sorted(_REGISTERED, key=len, reverse=True)]


def scrub_text(text: str) -> str:
    """``text`` with every registered secret form, and any JWT, replaced."""
    for form, _ in _LONGEST_FIRST:
        if form in text:
            text = text.replace(form, _MARK)
    return _JWT.sub(_MARK, text) if "eyJ" in text else text


def scrub_bytes(data: bytes) -> bytes:
    """The same, on bytes as written (UTF-8 text files; zip files are scrubbed before they are built)."""
    for _, encoded in _LONGEST_FIRST:
        if encoded in data:
            data = data.replace(encoded, _MARK.encode())
    if b"eyJ" in data:
        data = _JWT.sub(_MARK, data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return data


_JWT_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."


def scrub_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """:func:`scrub_bytes` over a stream, without the whole of it in memory: a secret split between two chunks
    is still found. A trailing run of token characters is kept back unread (a JWT has no length bound, and its
    start alone would match); what comes before it is scrubbed, and its last bytes (one short of the longest
    form, which a form could still be completing) are kept back with it, to be scrubbed again with the next
    chunk."""
    longest = max((len(encoded) for _, encoded in _LONGEST_FIRST), default=1)
    held = b""
    for chunk in chunks:
        data = held + chunk
        run = len(data.rstrip(_JWT_ALPHABET))
        scrubbed = scrub_bytes(data[:run])
        cut = max(len(scrubbed) - (longest - 1), 0)
        if cut:
            yield scrubbed[:cut]
        held = scrubbed[cut:] + data[run:]
    if held:
        yield scrub_bytes(held)


class Redactor:
    """Removes known secret values from any text that is about to be shown, logged or written. Everything it
    is given also joins the process-wide registry that :func:`scrub_text` and :func:`scrub_bytes` use."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 4:  # shorter strings would shred ordinary text
            self._secrets.update(encodings(secret))
            register(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, _MARK)
        return _JWT.sub(_MARK, text)
