"""Source type ``graph-json``: saved Microsoft Graph responses (``/users``, optionally audits and MFA)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from connectors.base import CollectContext, SourceConfig, SourceError, SourceResult, SourceType
from connectors.graph_users import (
    cloud_password_policies,
    map_directory_audit,
    map_user,
    mfa_registrations,
    sku_names,
)
from connectors.http_json import parse_json
from connectors.values import ValueProblems


class GraphJsonConfig(SourceConfig):
    type: Literal["graph-json"]
    users_file: Path = Field(strict=False)  # GET /users?$select=...,signInActivity: one page or a list of pages
    audits_file: Path | None = Field(default=None, strict=False)  # GET /auditLogs/directoryAudits
    registration_details_file: Path | None = Field(default=None, strict=False)  # userRegistrationDetails
    subscribed_skus_file: Path | None = Field(default=None, strict=False)  # GET /subscribedSkus: licence names


def _objects(path: Path, problems: ValueProblems) -> Iterator[Any]:
    """Yield the items of one Graph page, a list of pages, or a bare list of objects. Items that are not
    objects are listed as unreadable records."""
    try:
        data = parse_json(path.read_bytes())
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SourceError(f"{path}: not valid JSON: {exc}") from None
    pages = data if isinstance(data, list) else [data]
    for number, page in enumerate(pages, start=1):
        if isinstance(page, dict) and isinstance(page.get("value"), list):
            for index, item in enumerate(page["value"]):
                if isinstance(item, dict):
                    yield item
                else:
                    problems.bad_record(f"{path.name} page {number} value[{index}]", f"not an object: {item!r:.40}")
        elif isinstance(page, dict) and "id" in page:
            yield page
        else:
            raise SourceError(f"{path}: expected a Graph response ({{'value': [...]}}) or a list of them")


def collect(config: GraphJsonConfig, context: CollectContext) -> SourceResult:
    problems = ValueProblems()
    users = list(_objects(config.users_file, problems))
    # A response without signInActivity anywhere was taken without P1/P2 or AuditLog.Read.All.
    sign_in_known = any("signInActivity" in u for u in users)
    reason = None if sign_in_known else (
        "export has no signInActivity (needs Entra ID P1/P2 and AuditLog.Read.All)")
    mfa: dict[str, bool] = {}
    if config.registration_details_file:
        mfa = mfa_registrations(_objects(config.registration_details_file, problems), problems)
    names = sku_names(_objects(config.subscribed_skus_file, problems), problems) if config.subscribed_skus_file else {}
    accounts = problems.map_each(users, lambda u: map_user(
        config.name, u, sign_in_known=sign_in_known, unknown_reason=reason, mfa=mfa, problems=problems,
        sku_names=names))
    events = []
    if config.audits_file:
        for record in _objects(config.audits_file, problems):
            event = map_directory_audit(config.name, record, problems)
            if event is not None:
                events.append(event)
    return SourceResult(accounts=accounts, policies=cloud_password_policies(config.name),
                        change_events=events, warnings=problems.warnings(), partial_error=problems.partial_error())


SOURCE_TYPE = SourceType("graph-json", "Saved Microsoft Graph /users (and audit) responses", GraphJsonConfig, collect)
