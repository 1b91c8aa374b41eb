"""Source type ``scim``: any SCIM 2.0 service provider's ``/Users`` (RFC 7643 / RFC 7644).

Many SaaS applications expose SCIM, so this covers the long tail. SCIM has no standard last-login
attribute, so activity is "unknown" here: inactivity for these accounts must come from the vendor's own
audit API (or from the person's other accounts, once identities are correlated).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from auditor.model import Account, AccountKind
from auditor.secrets import Redactor
from connectors.base import CollectContext, SourceResult, SourceType
from connectors.http_json import HttpError
from connectors.paging import PageRequest, StartIndex, pages
from connectors.preflight import AccessCheck, Probe
from connectors.saas import (
    CANNOT_AUDIT,
    HttpsSourceConfig,
    client,
    probe_checks,
    read_error,
    secret,
    throttle_warnings,
)
from connectors.values import ValueProblems

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class ScimConfig(HttpsSourceConfig):
    type: Literal["scim"]
    base_url: str  # e.g. https://app.example.com/scim/v2
    token_env: str | None = None  # bearer token
    token_file: Path | None = Field(default=None, strict=False)
    username: str | None = None  # basic authentication
    password_env: str | None = None
    password_file: Path | None = Field(default=None, strict=False)
    page_size: int = Field(default=100, ge=1, le=1000)

    @model_validator(mode="after")
    def _one_authentication(self) -> ScimConfig:
        bearer = bool(self.token_env or self.token_file)
        basic = bool(self.username)
        if bearer == basic:
            raise ValueError("set a bearer token (token_env or token_file) or basic authentication (username), "
                             "not both and not neither")
        if basic and not (self.password_env or self.password_file):
            raise ValueError("username needs password_env or password_file")
        return self


def _authorization(config: ScimConfig, redact: Redactor) -> str:
    if config.username:
        password = secret("password", config.password_env, config.password_file, redact)
        encoded = base64.b64encode(f"{config.username}:{password}".encode()).decode("ascii")
        redact.add(encoded)
        return f"Basic {encoded}"
    return f"Bearer {secret('token', config.token_env, config.token_file, redact)}"


def map_user(source: str, user: Mapping[str, Any], problems: ValueProblems) -> Account:
    user_id = problems.text(user.get("id"), "user", "id") or ""
    record = problems.text(user.get("userName"), user_id, "userName") or user_id
    meta = problems.mapping(user.get("meta"), record, "meta") or {}
    emails = [e for e in problems.items(user.get("emails"), record, "emails")
              if isinstance(e, dict) and isinstance(e.get("value"), str) and e["value"]]
    email = next((e["value"] for e in emails if e.get("primary") is True), emails[0]["value"] if emails else None)
    name = problems.mapping(user.get("name"), record, "name") or {}
    enterprise = problems.mapping(user.get(ENTERPRISE), record, ENTERPRISE) or {}
    created = problems.moment(meta.get("created"), record, "meta.created")
    # RFC 7643 4.1.1 leaves "active" optional and its meaning to the provider: unsaid is unknown.
    active = problems.boolean(user.get("active"), record, "active")
    if user.get("active") is None:
        problems.missing(record, "active", "enabled state unknown")
    identifiers = {k: str(v) for k, v in (("external_id", user.get("externalId")),
                                          ("employee_id", enterprise.get("employeeNumber"))) if v}
    user_type = str(user.get("userType") or "").lower()
    return Account(
        source=source, id=user_id, username=record, enabled=active, email=email,
        display_name=problems.text(user.get("displayName"), record, "displayName")
        or problems.text(name.get("formatted"), record, "name.formatted"),
        kind=AccountKind.GUEST if user_type == "guest" else AccountKind.HUMAN, created_at=created,
        activity_known=False,
        activity_unknown_reason="SCIM has no standard last-login attribute; use the application's audit log",
        identifiers=identifiers,
        raw={k: str(v) for k, v in (("active", active), ("meta.lastModified", meta.get("lastModified")),
                                    ("userType", user.get("userType"))) if v is not None},
    )


def collect(config: ScimConfig, context: CollectContext) -> SourceResult:
    redact = Redactor()
    api = client(config, _authorization(config, redact))
    accounts: list[Account] = []
    problems = ValueProblems()
    first = PageRequest(f"{api.base_url}/Users", {"startIndex": "1", "count": str(config.page_size)})
    try:
        for page in pages(api, StartIndex(), first, problems, {"Accept": "application/scim+json"}):
            accounts += problems.map_each(page, partial(map_user, config.name, problems=problems))
    except HttpError as exc:
        raise read_error(config, "reading /Users", exc, redact) from None
    warnings = throttle_warnings(api, "Retry-After") + problems.warnings()
    return SourceResult(accounts=accounts, warnings=warnings, partial_error=problems.partial_error())


def check_access(config: ScimConfig) -> list[AccessCheck]:
    probe = Probe("read /Users", "/Users", {"startIndex": "1", "count": "1"}, CANNOT_AUDIT,
                  headers={"Accept": "application/scim+json"})
    return probe_checks(config, lambda redact: _authorization(config, redact), [probe])


PERMISSIONS = ("Read access to the service provider's /Users endpoint (RFC 7644 3.4.2) for the token or account.",)
SOURCE_TYPE = SourceType("scim", "Any SCIM 2.0 service provider's /Users", ScimConfig, collect, check_access,
                         PERMISSIONS)
