"""Source type ``github``: a GitHub organization's members and outside collaborators.

get: the organization (is two-factor authentication required?), members (all, and admins), outside
collaborators, the ``2fa_disabled`` filter (organization owners only), and, where the organization uses SAML
SSO, the SAML identities (GraphQL ``externalIdentities``) that link a login to a directory address, plus
credential authorizations; REST lists are paged by ``Link`` headers. transform: memberships into accounts.
GitHub reports no last activity for members, so activity is "unknown" here. Rate limits: 403 or 429 with
``x-ratelimit-remaining: 0`` waits until ``x-ratelimit-reset`` (an epoch time); secondary limits send
``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

import requests
from pydantic import Field

from auditor.model import Account, AccountKind
from auditor.secrets import Redactor
from connectors.base import CollectContext, SourceResult, SourceType
from connectors.http_json import EpochResetThrottling, HttpError, JsonHttpClient
from connectors.paging import MAX_PAGES
from connectors.preflight import AccessCheck, Probe
from connectors.saas import (
    CANNOT_AUDIT,
    OptionalReads,
    TokenSourceConfig,
    client,
    link_pages,
    probe_checks,
    read_error,
    secret,
    throttle_warnings,
)
from connectors.values import ValueProblems

API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
SAML_QUERY = """query($org: String!, $after: String) {
  organization(login: $org) {
    samlIdentityProvider {
      externalIdentities(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { node { samlIdentity { nameId } scimIdentity { username } user { login } } }
      }
    }
  }
}"""


class GitHubConfig(TokenSourceConfig):
    type: Literal["github"]
    base_url: str = "https://api.github.com"  # GitHub Enterprise Server: https://HOST/api/v3
    graphql_url: str | None = None  # default: beside base_url (api.github.com/graphql, HOST/api/graphql)
    organization: str = Field(min_length=1)  # the token: an owner's (the 2FA filter needs one), read:org
    page_size: int = Field(default=100, ge=1, le=100)
    read_saml_identities: bool = True

    @property
    def graphql(self) -> str:
        if self.graphql_url:
            return self.graphql_url
        base = self.base_url.rstrip("/")
        return base[: -len("/v3")] + "/graphql" if base.endswith("/api/v3") else base + "/graphql"


class GitHubThrottling(EpochResetThrottling):
    """Primary rate limits answer 403 or 429 with x-ratelimit-remaining 0; secondary ones send Retry-After."""

    def __init__(self) -> None:
        super().__init__("x-ratelimit-reset")

    def throttled(self, response: requests.Response) -> bool:
        if response.status_code in (403, 429):
            return response.headers.get("x-ratelimit-remaining") == "0" or "Retry-After" in response.headers
        return super().throttled(response)


def _items(api: JsonHttpClient, path: str, params: Mapping[str, str], problems: ValueProblems,
           ) -> Iterator[dict[str, Any]]:
    for page in link_pages(api, path, params, problems, API_HEADERS):
        yield from page


def _saml_identities(config: GitHubConfig, api: JsonHttpClient) -> dict[str, str] | None:
    """login -> the directory address its SAML (or SCIM) identity carries; None: no SAML SSO."""
    identities: dict[str, str] = {}
    after: str | None = None
    for _ in range(MAX_PAGES):  # GraphQL connection paging: pageInfo.endCursor into the query's variables
        response = api.request("POST", config.graphql, headers=API_HEADERS,
                               json_body={"query": SAML_QUERY, "variables": {"org": config.organization,
                                                                             "after": after}})
        body = response.body if isinstance(response.body, dict) else {}
        if body.get("errors"):
            first = body["errors"][0] if isinstance(body["errors"], list) else {}
            kind = str(first.get("type", "graphql"))
            raise HttpError(403 if kind == "FORBIDDEN" else 200, kind, str(first.get("message", "")), config.graphql)
        provider = ((body.get("data") or {}).get("organization") or {}).get("samlIdentityProvider")
        if provider is None:
            return None
        connection = provider.get("externalIdentities") or {}
        for edge in connection.get("edges") or []:
            node = (edge or {}).get("node") or {}
            login = (node.get("user") or {}).get("login")
            address = (node.get("samlIdentity") or {}).get("nameId") or (node.get("scimIdentity") or {}).get("username")
            if login and address:
                identities[str(login)] = str(address)
        page = connection.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            return identities
        after = page.get("endCursor")
    return identities


def map_member(
    source: str, member: Mapping[str, Any], *, outside: bool, admin: bool, two_factor_off: set[str] | None,
    required: bool | None, saml_address: str | None, credential_used: str | None,
) -> Account:
    login = str(member.get("login"))
    kind = AccountKind.BOT if member.get("type") == "Bot" else AccountKind.GUEST if outside else AccountKind.HUMAN
    raw = {"relationship": "outside collaborator" if outside else "member", "role": "admin" if admin else "member"}
    if credential_used:
        raw["credential_accessed_at"] = credential_used
    if required is not None:
        raw["mfa_enforcement_scope"] = "organization"
    return Account(
        source=source, id=str(member.get("id") or login), username=login, enabled=True, kind=kind,
        email=saml_address if saml_address and "@" in saml_address else None,
        activity_known=False,
        activity_unknown_reason="GitHub reports no last activity for organization members",
        mfa_registered=None if two_factor_off is None else login not in two_factor_off,
        mfa_enforced=required, privileged=admin,
        privilege_evidence=["organization owner"] if admin else [],
        identifiers={"saml_name_id": saml_address} if saml_address else {}, raw=raw,
    )


def collect(config: GitHubConfig, context: CollectContext) -> SourceResult:
    redact = Redactor()
    token = secret("token", config.token_env, config.token_file, redact)
    api = client(config, f"Bearer {token}", GitHubThrottling())
    org = f"/orgs/{config.organization}"
    paging = {"per_page": str(config.page_size)}
    warnings: list[str] = []
    problems = ValueProblems()
    optional = OptionalReads(redact, warnings)
    try:
        details = api.request("GET", f"{api.base_url}{org}", None, API_HEADERS).body
        members = list(_items(api, f"{org}/members", paging | {"role": "all"}, problems))
        admins = {str(m.get("login")) for m in _items(api, f"{org}/members", paging | {"role": "admin"}, problems)}
        outside = list(_items(api, f"{org}/outside_collaborators", paging, problems))
    except HttpError as exc:
        raise read_error(config, f"reading organization {config.organization}", exc, redact) from None
    # Absent unless the token belongs to an owner: then the requirement is unknown, not "off".
    required = details.get("two_factor_requirement_enabled") if isinstance(details, dict) else None
    two_factor_off: set[str] | None
    try:
        two_factor_off = {str(m.get("login")) for path in (f"{org}/members", f"{org}/outside_collaborators")
                          for m in _items(api, path, paging | {"filter": "2fa_disabled"}, problems)}
    except HttpError as exc:
        two_factor_off = None
        # GitHub answers 422 "Only owners can use this filter" to other tokens (REST "List organization members").
        if optional.refused(exc, "2FA state", refused=(401, 403, 422)):
            warnings.append(f"2FA state unknown (the 2fa_disabled filter needs an organization owner): "
                            f"{redact(str(exc))}")
    saml: dict[str, str] | None = None
    credentials: dict[str, str] = {}
    if config.read_saml_identities:
        try:
            saml = _saml_identities(config, api)
        except HttpError as exc:
            if optional.refused(exc, "SAML identities"):
                warnings.append(f"SAML identities not read, so members cannot be linked to people: "
                                f"{redact(str(exc))}")
        if saml is None:
            warnings.append("the organization does not use SAML SSO: GitHub logins carry no directory address "
                            "to link them to people")
        else:
            credentials = _credential_use(api, org, paging, warnings, problems, optional)
    accounts = [
        map_member(config.name, m, outside=is_outside, admin=login in admins, two_factor_off=two_factor_off,
                   required=required if isinstance(required, bool) else None,
                   saml_address=(saml or {}).get(login), credential_used=credentials.get(login))
        for is_outside, group in ((False, members), (True, outside)) for m in group
        for login in (str(m.get("login")),)
    ]
    warnings += throttle_warnings(api, "x-ratelimit-reset or Retry-After") + problems.warnings()
    return SourceResult(accounts=accounts, warnings=warnings,
                        partial_error=problems.partial_error(optional.partial_error()))


def _credential_use(api: JsonHttpClient, org: str, paging: dict[str, str], warnings: list[str],
                    problems: ValueProblems, optional: OptionalReads) -> dict[str, str]:
    """login -> the latest use of any SAML-authorized credential (evidence; not sign-in activity)."""
    latest: dict[str, str] = {}
    try:
        for grant in _items(api, f"{org}/credential-authorizations", paging, problems):
            used = grant.get("credential_accessed_at")
            login = str(grant.get("login"))
            if problems.moment(used, login, "credential_accessed_at") and str(used) > latest.get(login, ""):
                latest[login] = str(used)
    except HttpError as exc:
        if optional.refused(exc, "credential authorizations"):
            warnings.append(f"credential authorizations not read: {optional.redact(str(exc))}")
    return latest


def check_access(config: GitHubConfig) -> list[AccessCheck]:
    org = f"/orgs/{config.organization}"
    probes = [
        Probe("list members", f"{org}/members", {"per_page": "1"}, CANNOT_AUDIT, headers=API_HEADERS),
        Probe("list outside collaborators", f"{org}/outside_collaborators", {"per_page": "1"}, CANNOT_AUDIT,
              headers=API_HEADERS),
        # "Only owners can use this filter" (422) for any other token.
        Probe("members without 2FA (organization owner)", f"{org}/members", {"per_page": "1", "filter": "2fa_disabled"},
              "GitHub token is not an owner: 2FA state unknown", refused=(401, 403, 422), headers=API_HEADERS),
    ]
    return probe_checks(config, lambda redact: f"Bearer {secret('token', config.token_env, config.token_file, redact)}",
                        probes, GitHubThrottling())


PERMISSIONS = (
    "A token of an organization owner: a classic PAT with read:org (admin:org for the 2FA requirement setting), or "
    "a fine-grained token with Members: read and Administration: read. Not an owner: 2FA state is unknown.",
    "SAML identities (GraphQL) need read:org from an owner (since 2023-03-30; admin:org before).",
)
SOURCE_TYPE = SourceType("github", "A GitHub organization: members, outside collaborators, 2FA, SAML identities",
                         GitHubConfig, collect, check_access, PERMISSIONS)
