"""Source type ``entra``: a live Microsoft Entra ID tenant through Microsoft Graph, authenticated with msal.

get: users (with signInActivity when the tenant and app allow it), MFA registration, directory role
assignments, directory audits for the period; transform: ``graph_users`` (shared with ``graph-json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import Field, model_validator

from auditor.model import ChangeAction, ChangeEvent
from auditor.secrets import Redactor, SecretUnavailable, resolve_secret
from auditor.timeconv import from_iso8601, to_iso
from connectors.base import CollectContext, SourceConfig, SourceError, SourceResult, SourceType, SourceUnreachable
from connectors.graph_client import GraphClient, GraphError, RetryPolicy, TrustedSession
from connectors.graph_users import (
    cloud_password_policies,
    map_directory_audit,
    map_user,
    mfa_registrations,
    sku_names,
)
from connectors.preflight import AccessCheck, Probe, run_probes
from connectors.saas import CANNOT_AUDIT, OptionalReads
from connectors.values import ValueProblems

# Authority host and Graph endpoint per cloud; the token scope must name the same Graph host.
CLOUDS: dict[str, tuple[str, str]] = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov-dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}
# Built-in role template ids (stable across tenants) that make an account privileged.
PRIVILEGED_ROLES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
}
USER_FIELDS = (
    "id,userPrincipalName,mail,displayName,accountEnabled,userType,externalUserState,"
    "externalUserStateChangeDateTime,createdDateTime,onPremisesSyncEnabled,onPremisesSecurityIdentifier,"
    "onPremisesImmutableId,employeeId,passwordPolicies,lastPasswordChangeDateTime,assignedLicenses"
)
DELTA_FIELDS = "id,userPrincipalName,accountEnabled,createdDateTime,displayName,passwordPolicies,userType"
AUDIT_RETENTION_DAYS = 30  # P1/P2; 7 on the free tier: older changes must come from our own history


class EntraConfig(SourceConfig):
    type: Literal["entra"]
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret_env: str | None = None
    client_secret_file: Path | None = Field(default=None, strict=False)
    certificate_file: Path | None = Field(default=None, strict=False)  # PEM (key and certificate) or PFX
    certificate_password_env: str | None = None
    thumbprint: str | None = None  # SHA-1 of the certificate; computed from a PEM certificate when unset
    cloud: Literal["global", "usgov", "usgov-dod", "china"] = "global"
    authority_host: str | None = None  # overrides the cloud's
    graph_endpoint: str | None = None  # overrides the cloud's; the token scope follows it
    ca_bundle: Path | None = Field(default=None, strict=False)  # for networks behind TLS-inspecting proxies
    timeout: int = Field(default=60, ge=1, le=600)
    max_attempts: int = Field(default=6, ge=1, le=20)  # per request, for 429/503/504
    max_throttle_wait: int = Field(default=600, ge=0)  # seconds of Retry-After honoured in one run
    audit_days: int | None = Field(default=None, ge=1, le=365)  # default: [audit] period_days
    # Each user's manager, for access-review packets by manager: one more read of every user ($expand pages
    # hold 100 users), so only when asked.
    read_managers: bool = False

    @model_validator(mode="after")
    def _one_credential(self) -> EntraConfig:
        kinds = [bool(self.client_secret_env), bool(self.client_secret_file), bool(self.certificate_file)]
        if sum(kinds) != 1:
            raise ValueError("set exactly one of client_secret_env, client_secret_file or certificate_file")
        for url in (self.authority_host, self.graph_endpoint):
            if url and urlparse(url).scheme != "https":
                raise ValueError(f"'{url}' must be an https:// URL")
        return self

    def endpoints(self) -> tuple[str, str, str]:
        """(authority host, Graph endpoint, token scope)."""
        authority, graph = CLOUDS[self.cloud]
        authority = (self.authority_host or authority).rstrip("/")
        graph = (self.graph_endpoint or graph).rstrip("/")
        return authority, graph, f"{graph}/.default"


def _credential(config: EntraConfig, redact: Redactor) -> str | dict[str, Any]:
    if config.certificate_file is None:
        secret = resolve_secret("client_secret", config.client_secret_env, config.client_secret_file)
        redact.add(secret)
        return secret
    passphrase = None
    if config.certificate_password_env:
        passphrase = resolve_secret("certificate_password", config.certificate_password_env, None)
        redact.add(passphrase)
    if config.certificate_file.suffix.lower() in (".pfx", ".p12"):
        credential: dict[str, Any] = {"private_key_pfx_path": str(config.certificate_file), "public_certificate": True}
        if passphrase:
            credential["passphrase"] = passphrase
        return credential
    try:
        pem = config.certificate_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read certificate_file {config.certificate_file}: {exc}") from None
    thumbprint = config.thumbprint
    if thumbprint is None:
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        except ValueError:
            raise SourceError("certificate_file has no certificate: set thumbprint") from None
        thumbprint = certificate.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - the thumbprint Entra uses
    credential = {"private_key": pem, "thumbprint": thumbprint}
    if passphrase:
        credential["passphrase"] = passphrase
    return credential


def _token_provider(config: EntraConfig, session: requests.Session, redact: Redactor) -> Any:
    import msal  # loaded only when a tenant is read: listing rules or checking a config never loads it

    authority, _graph, scope = config.endpoints()
    try:
        credential = _credential(config, redact)
    except SecretUnavailable as exc:
        raise SourceError(str(exc)) from None
    known = any(authority == host for host, _ in CLOUDS.values())
    try:
        app = msal.ConfidentialClientApplication(
            config.client_id, client_credential=credential, authority=f"{authority}/{config.tenant_id}",
            http_client=session, instance_discovery=known, timeout=config.timeout,
        )
    except (ValueError, requests.RequestException) as exc:  # msal fetches the OpenID configuration here
        raise SourceUnreachable(f"cannot reach the authority {authority}: {redact(str(exc))}") from None

    def token() -> str:
        try:
            result = app.acquire_token_for_client(scopes=[scope])
        except requests.RequestException as exc:
            raise SourceUnreachable(f"token request to {authority} failed: {redact(str(exc))}") from None
        if "access_token" not in result:
            description = redact(str(result.get("error_description", ""))).split("\r\n")[0].split("\n")[0]
            raise SourceError(f"token request failed: {result.get('error')}: {description}")
        return str(result["access_token"])

    return token


def _delta_events(
    client: GraphClient, source: str, previous_state: Mapping[str, str], as_of: datetime, warnings: list[str],
) -> tuple[list[ChangeEvent], dict[str, str]]:
    """Changes since the previous audit from /users/delta, and the state (delta link) for the next one.

    With ``Prefer: return=minimal`` a changed user carries only the properties that changed, so they say
    what happened. An expired token (HTTP 410) means reading the delta again from the start.
    """
    headers = {"Prefer": "return=minimal"}
    link = previous_state.get("users_delta_link")
    since = from_iso8601(previous_state.get("users_delta_as_of", "")) if previous_state else None
    events: list[ChangeEvent] = []
    try:
        if link:
            try:
                changed = [item for page in client.pages(link, headers=headers) for item in page]
            except GraphError as exc:
                if exc.status != 410 and exc.code != "foreign_link":  # 410 Gone: the token has expired
                    raise
                warnings.append(f"the saved delta token is no longer valid ({exc.code}); the delta was read again "
                                "in full, and changes since the previous audit come from snapshot differences")
                link = None
            else:
                events = [e for item in changed if (e := _delta_event(source, item, since, as_of)) is not None]
        if not link:
            for _ in client.pages("/v1.0/users/delta", {"$select": DELTA_FIELDS}, headers):
                pass  # the first round only establishes the starting point
    except GraphError as exc:
        warnings.append(f"users delta not readable ({exc.code}): changes come from snapshot differences")
        return events, {}
    if client.delta_link is None:
        return events, {}
    return events, {"users_delta_link": client.delta_link, "users_delta_as_of": to_iso(as_of) or ""}


def _delta_event(source: str, item: Mapping[str, Any], since: datetime | None, as_of: datetime) -> ChangeEvent | None:
    user_id = str(item.get("id", ""))
    removed = item.get("@removed")
    if removed is not None:
        reason = removed.get("reason", "") if isinstance(removed, dict) else ""
        return ChangeEvent(source=source, at=as_of, account_id=user_id, action=ChangeAction.DELETED,
                           origin="source", detail=f"users delta @removed ({reason})", approximate_time=True)
    created = from_iso8601(str(item["createdDateTime"])) if item.get("createdDateTime") else None
    if created is not None and (since is None or created > since):
        return ChangeEvent(source=source, at=created, account_id=user_id, action=ChangeAction.CREATED,
                           username=item.get("userPrincipalName"), detail="users delta: new user")
    if "accountEnabled" in item:
        action = ChangeAction.ENABLED if item["accountEnabled"] else ChangeAction.DISABLED
        return ChangeEvent(source=source, at=as_of, account_id=user_id, action=action,
                           detail="users delta: accountEnabled changed", approximate_time=True)
    changed = sorted(k for k in item if k != "id" and not k.startswith("@"))
    if not changed:
        return None
    return ChangeEvent(source=source, at=as_of, account_id=user_id, action=ChangeAction.MODIFIED,
                       detail="users delta: " + ", ".join(changed), approximate_time=True)


def collect(config: EntraConfig, context: CollectContext) -> SourceResult:
    as_of = context.as_of
    previous_state = context.previous_state
    redact = Redactor()
    session = TrustedSession(str(config.ca_bundle) if config.ca_bundle else None)
    token = _token_provider(config, session, redact)
    token()  # fail fast, with the AADSTS message, before any Graph call
    _authority, graph_url, _scope = config.endpoints()
    problems = ValueProblems()
    client = GraphClient(session, graph_url, token, RetryPolicy(config.max_attempts, config.max_throttle_wait),
                         config.timeout, problems)
    warnings: list[str] = []
    optional = OptionalReads(redact, warnings)
    try:
        users = [u for page in client.pages("/v1.0/users", {"$select": USER_FIELDS + ",signInActivity",
                                                            "$top": "500"}) for u in page]
        sign_in_known, reason = True, None
    except GraphError as exc:
        if exc.status != 403:
            raise SourceError(f"reading users failed: {redact(str(exc))}") from None
        # No P1/P2 licence or no AuditLog.Read.All: collect without activity, and say so.
        reason = f"signInActivity not readable ({exc.code}: {exc.message}); needs Entra ID P1/P2 and AuditLog.Read.All"
        warnings.append(reason)
        sign_in_known = False
        try:
            users = [u for page in client.pages("/v1.0/users", {"$select": USER_FIELDS, "$top": "999"}) for u in page]
        except GraphError as retry_exc:
            raise SourceError(f"reading users failed: {redact(str(retry_exc))}") from None

    mfa: dict[str, bool] = {}
    try:
        for page in client.pages("/v1.0/reports/authenticationMethods/userRegistrationDetails"):
            mfa.update(mfa_registrations(page, problems))
    except GraphError as exc:
        if optional.refused(exc, "MFA registration"):
            warnings.append(f"MFA registration not readable ({exc.code}): MFA state unknown")

    roles: dict[str, list[str]] = {}
    try:
        for page in client.pages("/v1.0/roleManagement/directory/roleAssignments"):
            for assignment in page:
                role = PRIVILEGED_ROLES.get(str(assignment.get("roleDefinitionId", "")).lower())
                if role:
                    roles.setdefault(str(assignment.get("principalId")), []).append(role)
    except GraphError as exc:
        if optional.refused(exc, "directory roles"):
            warnings.append(f"directory roles not readable ({exc.code}): privilege from roles unknown")

    managers: dict[str, dict[str, Any]] = {}
    if config.read_managers:
        try:  # a separate read: $expand pages cap at 100 and do not mix with signInActivity's limits
            for page in client.pages("/v1.0/users", {"$select": "id", "$expand": "manager"}):
                managers.update({str(u.get("id")): u for u in page if isinstance(u, dict) and "manager" in u})
        except GraphError as exc:
            if optional.refused(exc, "managers"):
                warnings.append(f"managers not readable ({exc.code}): access-review packets by manager miss them")
    for user in users:
        if (expanded := managers.get(str(user.get("id")))) is not None:
            user["manager"] = expanded["manager"]

    names: dict[str, str] = {}
    try:  # licence names for [sources.cost] per_sku; without them the skuId stands for the licence
        for page in client.pages("/v1.0/subscribedSkus"):
            names.update(sku_names(page, problems))
    except GraphError as exc:
        if optional.refused(exc, "subscribed SKUs"):
            warnings.append(f"subscribed SKUs not readable ({exc.code}): licences are named by skuId")

    accounts = problems.map_each(users, lambda user: map_user(
        config.name, user, sign_in_known=sign_in_known, unknown_reason=reason, mfa=mfa, problems=problems,
        sku_names=names))
    for account in accounts:
        if account.id in roles:
            account.privileged = True
            account.privilege_evidence = [f"directory role {r}" for r in sorted(roles[account.id])]

    events = []
    days = config.audit_days or context.period_days  # the audit's own period unless set
    if days > AUDIT_RETENTION_DAYS:
        warnings.append(f"directory audits are kept {AUDIT_RETENTION_DAYS} days at most (7 without P1/P2): "
                        f"changes older than that come only from the auditor's own history")
    since = to_iso(as_of - timedelta(days=days))
    try:
        for page in client.pages("/v1.0/auditLogs/directoryAudits", {
            "$filter": f"activityDateTime ge {since} and category eq 'UserManagement'"}):
            for record in page:
                event = map_directory_audit(config.name, record, problems)
                if event is not None and event.at <= as_of:
                    events.append(event)
    except GraphError as exc:
        if optional.refused(exc, "directory audits"):
            warnings.append(f"directory audits not readable ({exc.code}): change events only from snapshots")
    delta_events, state = _delta_events(client, config.name, previous_state, as_of, warnings)
    events.extend(delta_events)
    if client.waited:
        warnings.append(f"Graph throttled the reads: waited {client.waited:.0f} s in total, as Retry-After asked")
    warnings += problems.warnings()
    return SourceResult(accounts=accounts, policies=cloud_password_policies(config.name), change_events=events,
                        warnings=warnings, partial_error=problems.partial_error(optional.partial_error()), state=state)


def check_access(config: EntraConfig) -> list[AccessCheck]:
    """The token, then one item of each read: the app's application permissions, proven one by one."""
    redact = Redactor()
    session = TrustedSession(str(config.ca_bundle) if config.ca_bundle else None)
    what = f"token for app {config.client_id} in tenant {config.tenant_id}"
    try:
        token = _token_provider(config, session, redact)
        token()
    except SourceUnreachable as exc:
        return [AccessCheck(what, "unreachable", CANNOT_AUDIT, redact(str(exc)))]
    except SourceError as exc:  # the credential unreadable, or refused by the token endpoint
        return [AccessCheck(what, "missing", CANNOT_AUDIT, redact(str(exc)))]
    _authority, graph_url, _scope = config.endpoints()
    client = GraphClient(session, graph_url, token, RetryPolicy(1, 0), config.timeout)
    probes = [
        Probe("list users (User.Read.All)", "/v1.0/users", {"$top": "1", "$select": "id"}, CANNOT_AUDIT),
        Probe("sign-in activity (AuditLog.Read.All, Entra ID P1/P2)", "/v1.0/users",
              {"$top": "1", "$select": "id,signInActivity"},
              "no AuditLog.Read.All (or no P1/P2 licence): activity will be unknown for every Entra user"),
        Probe("MFA registration (AuditLog.Read.All)", "/v1.0/reports/authenticationMethods/userRegistrationDetails",
              {"$top": "1"}, "MFA registration unknown for every Entra user"),
        Probe("directory role assignments (RoleManagement.Read.Directory)",
              "/v1.0/roleManagement/directory/roleAssignments", {"$top": "1"}, "privileged role holders unknown"),
        Probe("directory audit log (AuditLog.Read.All and Directory.Read.All)", "/v1.0/auditLogs/directoryAudits",
              {"$top": "1"}, "account changes known from snapshots only (no audit log)"),
    ]
    if config.cost is not None and config.cost.per_sku:
        probes.append(Probe("licence names (Organization.Read.All or Directory.Read.All)", "/v1.0/subscribedSkus", {},
                            "licences are named by skuId: per_sku prices by name do not apply"))
    return [AccessCheck(what, "ok"), *run_probes(client, probes, redact)]


PERMISSIONS = (
    "Application permissions (admin consent): User.Read.All; AuditLog.Read.All (sign-in activity, MFA "
    "registration, audit log; sign-in activity also needs Entra ID P1 or P2); Directory.Read.All (with "
    "AuditLog.Read.All for the audit log, and licence names from /subscribedSkus); RoleManagement.Read.Directory "
    "(privileged roles).",
    "Credential: a certificate (preferred) or a client secret, read from a file or an environment variable.",
)
SOURCE_TYPE = SourceType("entra", "Microsoft Entra ID through Microsoft Graph (msal)", EntraConfig, collect,
                         check_access, PERMISSIONS)
