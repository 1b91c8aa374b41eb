"""``auditor check-access``: the smallest reads that prove each permission an audit needs, and what a gap means.

A connector declares its checks beside its code (``SourceType.check_access``) and the rights it needs
(``SourceType.permissions``, printed by ``auditor permissions``). A check reads one item at most; nothing is
mapped, scored or stored. Every message passes the connector's redactor: servers echo credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from auditor.secrets import Redactor
from connectors.base import SourceConfig, SourceError
from connectors.http_json import HttpError, JsonHttpClient

Status = Literal["ok", "missing", "unreachable"]


@dataclass(frozen=True)
class AccessCheck:
    what: str  # the permission or read checked, in the admin's words
    status: Status
    impact: str = ""  # what the gap means for the audit (empty when ok)
    detail: str = ""  # the server's answer, scrubbed


@dataclass(frozen=True)
class Probe:
    """One GET that proves one permission. ``refused``: the statuses meaning "not allowed" for this read
    (GitHub answers a non-owner's 2FA filter with 422); ``check`` raises HttpError for APIs that answer errors
    with HTTP 200 (Slack)."""

    what: str
    path: str
    params: dict[str, str]
    impact: str
    refused: tuple[int, ...] = (401, 403)
    check: Callable[[Any, str], None] | None = None
    headers: dict[str, str] | None = None


def run_probes(api: JsonHttpClient, probes: Iterable[Probe], redact: Redactor) -> list[AccessCheck]:
    """Each probe in order; once the service cannot be reached, the rest are unreachable too (not "missing":
    nothing was refused)."""
    checks: list[AccessCheck] = []
    network_down = False
    for probe in probes:
        if network_down:
            checks.append(AccessCheck(probe.what, "unreachable", probe.impact, "not tried: the service is unreachable"))
            continue
        try:
            body = api.request("GET", f"{api.base_url}{probe.path}", probe.params, probe.headers).body
            if probe.check is not None:
                probe.check(body, probe.path)
        except SourceError as exc:  # the credential itself was refused (a token endpoint said no)
            checks.append(AccessCheck(probe.what, "missing", probe.impact, redact(str(exc))))
            continue
        except HttpError as exc:
            network_down = exc.status == 0
            detail = redact(f"HTTP {exc.status} {exc.code}: {exc.message}" if exc.status else exc.message)
            refused = exc.status in probe.refused or (exc.status == 200 and probe.check is not None)
            checks.append(AccessCheck(probe.what, "missing" if refused else "unreachable", probe.impact, detail))
            continue
        checks.append(AccessCheck(probe.what, "ok"))
    return checks


def files_readable(config: SourceConfig) -> list[AccessCheck]:
    """File sources (exports): every configured file exists and can be read by this user."""
    checks = []
    for name in type(config).model_fields:
        path = getattr(config, name)
        if name in ("path",) or name.endswith(("_file", "_path")):
            if path is None or name in config.secret_references():
                continue
            try:
                with open(path, "rb") as handle:
                    handle.read(1)
            except OSError as exc:
                checks.append(AccessCheck(f"read {name} ({path})", "missing",
                                          "the source cannot be audited", exc.strerror or str(exc)))
                continue
            checks.append(AccessCheck(f"read {name} ({path})", "ok"))
    return checks
