"""Source type ``graph-json``: saved Microsoft Graph responses (``/users``, optionally audits and MFA)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from connectors.base import NO_STATE, SourceConfig, SourceError, SourceResult, SourceType
from connectors.graph_users import cloud_password_policies, map_directory_audit, map_user


class GraphJsonConfig(SourceConfig):
    type: Literal["graph-json"]
    users_file: Path = Field(strict=False)  # GET /users?$select=...,signInActivity: one page or a list of pages
    audits_file: Path | None = Field(default=None, strict=False)  # GET /auditLogs/directoryAudits
    registration_details_file: Path | None = Field(default=None, strict=False)  # userRegistrationDetails


def _objects(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of one Graph page, a list of pages, or a bare list of objects."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SourceError(f"{path}: not valid JSON: {exc}") from None
    pages = data if isinstance(data, list) else [data]
    for page in pages:
        if isinstance(page, dict) and isinstance(page.get("value"), list):
            yield from (item for item in page["value"] if isinstance(item, dict))
        elif isinstance(page, dict) and "id" in page:
            yield page
        else:
            raise SourceError(f"{path}: expected a Graph response ({{'value': [...]}}) or a list of them")


def collect(config: GraphJsonConfig, as_of: datetime, previous_state: Mapping[str, str] = NO_STATE) -> SourceResult:
    users = list(_objects(config.users_file))
    problems: list[str] = []
    # A response without signInActivity anywhere was taken without P1/P2 or AuditLog.Read.All.
    sign_in_known = any("signInActivity" in u for u in users)
    reason = None if sign_in_known else (
        "export has no signInActivity (needs Entra ID P1/P2 and AuditLog.Read.All)")
    mfa: dict[str, bool] = {}
    if config.registration_details_file:
        mfa = {str(r.get("id")): bool(r.get("isMfaRegistered")) for r in _objects(config.registration_details_file)}
    accounts = [
        map_user(config.name, u, sign_in_known=sign_in_known, unknown_reason=reason, mfa=mfa, problems=problems)
        for u in users
    ]
    events = []
    if config.audits_file:
        for record in _objects(config.audits_file):
            event = map_directory_audit(config.name, record, problems)
            if event is not None:
                events.append(event)
    warnings = [f"{len(problems)} unreadable value(s); first: {problems[0]}"] if problems else []
    return SourceResult(accounts=accounts, policies=cloud_password_policies(config.name),
                        change_events=events, warnings=warnings)


SOURCE_TYPE = SourceType("graph-json", "Saved Microsoft Graph /users (and audit) responses", GraphJsonConfig, collect)
