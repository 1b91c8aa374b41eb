"""Source type ``google``: Google Workspace users from the Admin SDK Directory API.

Authentication: a service account with domain-wide delegation impersonates an administrator (``subject``):
a signed JWT is exchanged at the key file's ``token_uri`` for an access token (RFC 7523), renewed before it
expires. get: ``users.list`` paged by ``pageToken``; transform: suspended and archived users are disabled,
``lastLoginTime`` of 1970-01-01 means "never signed in", 2-Step Verification enrolment and enforcement,
administrator flags, aliases and the organisation's employee ID.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

import jwt
import requests
from pydantic import Field, model_validator

from auditor.model import Account, AccountKind
from auditor.secrets import Redactor
from connectors.base import CollectContext, SourceError, SourceResult, SourceType
from connectors.http_json import HttpError, JsonHttpClient, Throttling, parse_json
from connectors.paging import PageRequest, PageToken, pages
from connectors.preflight import AccessCheck, Probe
from connectors.saas import (
    CANNOT_AUDIT,
    HttpsSourceConfig,
    check_url,
    client,
    probe_checks,
    read_error,
    secret,
    throttle_warnings,
)
from connectors.values import ValueProblems

SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class GoogleConfig(HttpsSourceConfig):
    type: Literal["google"]
    base_url: str = "https://admin.googleapis.com"
    credentials_file: Path | None = Field(default=None, strict=False)  # the service account's JSON key
    credentials_env: str | None = None  # or the JSON key's text in an environment variable
    subject: str = Field(min_length=3)  # the administrator the service account acts as (domain-wide delegation)
    customer: str = "my_customer"
    domain: str | None = None  # list one domain instead of the whole customer
    page_size: int = Field(default=500, ge=1, le=500)

    @model_validator(mode="after")
    def _one_key(self) -> GoogleConfig:
        if bool(self.credentials_file) == bool(self.credentials_env):
            raise ValueError("set credentials_file or credentials_env (the service account's JSON key), one of them")
        return self


class GoogleThrottling(Throttling):
    """Google answers rate limits with 429, or 403 whose reason is a rate limit; it sends no Retry-After,
    so the client backs off exponentially, as Google recommends."""

    def throttled(self, response: requests.Response) -> bool:
        if super().throttled(response) or response.status_code == 500:
            return True
        if response.status_code != 403:
            return False
        try:
            errors = parse_json(response.content)["error"]["errors"]
        except (ValueError, KeyError, TypeError):
            return False
        return any(isinstance(e, dict) and e.get("reason") in _RATE_REASONS for e in errors)


class DelegatedToken:
    """Access tokens for the impersonated administrator, renewed a minute before they expire."""

    def __init__(self, config: GoogleConfig, key: Mapping[str, Any], redact: Redactor) -> None:
        self.config, self.redact = config, redact
        try:
            self.issuer, self.private_key = str(key["client_email"]), str(key["private_key"])
            self.key_id, self.token_uri = str(key.get("private_key_id", "")), str(key["token_uri"])
        except KeyError as exc:
            raise SourceError(f"the service account key has no {exc.args[0]!r}: not a service account key") from None
        try:
            check_url(self.token_uri, config.allow_insecure_http)
        except ValueError as exc:
            raise SourceError(f"the service account key's token_uri: {exc}") from None
        self.api = client(config, None, base_url=self.token_uri)
        self.token: str | None = None
        self.expires = 0.0

    def __call__(self) -> str:
        if self.token is None or time.time() > self.expires - 60:
            self._renew()
        return f"Bearer {self.token}"

    def _renew(self) -> None:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": self.config.subject, "scope": SCOPE, "aud": self.token_uri,
                  "iat": now, "exp": now + 3600}
        try:
            assertion = jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.key_id})
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise SourceError(f"the service account's private key cannot sign: {type(exc).__name__}") from None
        try:
            body = self.api.request("POST", self.token_uri, data={"grant_type": JWT_BEARER,
                                                                  "assertion": assertion}).body
        except HttpError as exc:
            hint = (" (is domain-wide delegation granted for this client ID and scope, and is subject an "
                    "administrator?)" if exc.code in ("unauthorized_client", "access_denied", "invalid_grant") else "")
            raise SourceError(f"{self.token_uri}: token request for {self.issuer} as {self.config.subject} "
                              f"refused: {self.redact(str(exc))}{hint}") from None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise SourceError(f"{self.token_uri}: the token response has no access_token")
        self.token = str(body["access_token"])
        self.redact.add(self.token)
        self.expires = time.time() + float(body.get("expires_in") or 3600)


def _key(config: GoogleConfig, redact: Redactor) -> dict[str, Any]:
    text = secret("service account key", config.credentials_env, config.credentials_file, redact)
    try:
        key = json.loads(text)
    except ValueError:
        raise SourceError("the service account key is not JSON") from None
    if not isinstance(key, dict):
        raise SourceError("the service account key is not a JSON object")
    redact.add(str(key.get("private_key", "")))
    return key


def map_user(source: str, user: Mapping[str, Any], problems: ValueProblems) -> Account:
    """A Directory API user. With a ``fields`` projection any key may be missing: absent is unknown."""
    user_id = problems.text(user.get("id"), "user", "id") or ""
    email = problems.text(user.get("primaryEmail"), user_id, "primaryEmail") or user_id
    suspended = problems.boolean(user.get("suspended"), email, "suspended")
    archived = problems.boolean(user.get("archived"), email, "archived")
    enabled: bool | None = False if True in (suspended, archived) else None if None in (suspended, archived) else True
    for flag in ("suspended", "archived"):
        if user.get(flag) is None and enabled is None:
            problems.missing(email, flag, "enabled state unknown")
    admin = problems.boolean(user.get("isAdmin"), email, "isAdmin") is True
    delegated = problems.boolean(user.get("isDelegatedAdmin"), email, "isDelegatedAdmin") is True
    employee = next((str(e["value"]) for e in problems.items(user.get("externalIds"), email, "externalIds")
                     if isinstance(e, dict) and e.get("type") == "organization" and e.get("value")), None)
    # 1970-01-01T00:00:00.000Z means "never signed in"; absent (a projection), null or unreadable: unknown.
    activity = problems.activity(user, "lastLoginTime", email, null_is_never=False, epoch_is_never=True)
    name = problems.mapping(user.get("name"), email, "name") or {}
    raw = {k: str(user[k]) for k in ("suspended", "suspensionReason", "archived", "lastLoginTime", "orgUnitPath",
                                     "isEnforcedIn2Sv", "isEnrolledIn2Sv") if user.get(k) is not None}
    return Account(
        source=source, id=user_id, username=email, email=email, enabled=enabled,
        display_name=problems.text(name.get("fullName"), email, "name.fullName"), kind=AccountKind.HUMAN,
        created_at=problems.moment(user.get("creationTime"), email, "creationTime"), **activity,
        mfa_registered=problems.boolean(user.get("isEnrolledIn2Sv"), email, "isEnrolledIn2Sv"),
        mfa_enforced=problems.boolean(user.get("isEnforcedIn2Sv"), email, "isEnforcedIn2Sv"),
        privileged=admin or delegated,
        privilege_evidence=(["isAdmin (super administrator)"] if admin else [])
        + (["isDelegatedAdmin"] if delegated else []),
        identifiers={"employee_id": employee} if employee else {},
        manager=next((f"ref:{r['value']}" for r in problems.items(user.get("relations"), email, "relations")
                      if isinstance(r, dict) and r.get("type") == "manager" and isinstance(r.get("value"), str)
                      and r["value"]), None),
        email_aliases=[str(a) for a in [*problems.items(user.get("aliases"), email, "aliases"),
                                        *problems.items(user.get("nonEditableAliases"), email, "nonEditableAliases")]],
        raw=raw,
    )


def _users(config: GoogleConfig, api: JsonHttpClient, problems: ValueProblems) -> list[dict[str, Any]]:
    params = {"maxResults": str(config.page_size), "projection": "full", "orderBy": "email"}
    params |= {"domain": config.domain} if config.domain else {"customer": config.customer}
    first = PageRequest(f"{api.base_url}/admin/directory/v1/users", params)
    return [user for page in pages(api, PageToken("users"), first, problems) for user in page]


def collect(config: GoogleConfig, context: CollectContext) -> SourceResult:
    redact = Redactor()
    token = DelegatedToken(config, _key(config, redact), redact)
    api = client(config, token, GoogleThrottling())
    problems = ValueProblems()
    try:
        users = _users(config, api, problems)
    except HttpError as exc:
        raise read_error(config, "listing users", exc, redact) from None
    accounts = problems.map_each(users, partial(map_user, config.name, problems=problems))
    warnings = throttle_warnings(api, "Google's exponential backoff") + problems.warnings()
    return SourceResult(accounts=accounts, warnings=warnings, partial_error=problems.partial_error())


def check_access(config: GoogleConfig) -> list[AccessCheck]:
    scope = {"domain": config.domain} if config.domain else {"customer": config.customer}
    probe = Probe(f"list users (delegated as {config.subject}, scope {SCOPE.rsplit('/', 1)[1]})",
                  "/admin/directory/v1/users", {"maxResults": "1", **scope}, CANNOT_AUDIT)
    return probe_checks(config, lambda redact: DelegatedToken(config, _key(config, redact), redact), [probe],
                        GoogleThrottling())


PERMISSIONS = (
    f"A service account with domain-wide delegation for {SCOPE} (Admin console > Security > API controls), "
    "and `subject` a Workspace administrator allowed to read users.",
)
SOURCE_TYPE = SourceType("google", "Google Workspace users (Admin SDK Directory API, domain-wide delegation)",
                         GoogleConfig, collect, check_access, PERMISSIONS)
