"""Source type ``ldap``: a live Active Directory or OpenLDAP directory, read with ldap3.

get: paged searches (users, groups, policies, deleted objects) with bounded retry on dropped connections;
transform: the same AD / OpenLDAP mapping the LDIF source uses. Referrals are not followed; a size-limit
answer makes the source partial, never silently short.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

from pydantic import Field, model_validator

from auditor.secrets import Redactor, SecretUnavailable, resolve_secret
from connectors.activedirectory import AdOptions, map_active_directory
from connectors.base import CollectContext, SourceConfig, SourceError, SourceResult, SourceType, StrList
from connectors.ldif_format import DirectoryEntry
from connectors.openldap import OpenLdapOptions, map_openldap

if TYPE_CHECKING:
    from connectors.ldap_client import Directory
    from connectors.preflight import AccessCheck

BASE, LEVEL = "BASE", "LEVEL"  # LDAP search scopes (RFC 4511 4.5.1.2), as ldap3 names them

AD_CAPABILITY = "1.2.840.113556.1.4.800"  # LDAP_CAP_ACTIVE_DIRECTORY_OID in supportedCapabilities
SHOW_DELETED = ("1.2.840.113556.1.4.417", True, None)
_AD_ACCOUNT_ATTRIBUTES = [
    "objectClass", "sAMAccountName", "userPrincipalName", "mail", "displayName", "cn", "userAccountControl",
    "msDS-User-Account-Control-Computed", "lastLogonTimestamp", "lastLogon", "pwdLastSet", "accountExpires",
    "whenCreated", "whenChanged", "uSNChanged", "objectSid", "objectGUID", "adminCount", "memberOf",
    "primaryGroupID", "msDS-ResultantPSO", "servicePrincipalName", "employeeID", "manager",
]
_AD_DOMAIN_ATTRIBUTES = [
    "objectClass", "objectSid", "minPwdLength", "pwdProperties", "maxPwdAge", "minPwdAge", "pwdHistoryLength",
    "lockoutThreshold", "lockoutDuration", "msDS-LogonTimeSyncInterval",
]
_PSO_ATTRIBUTES = [
    "objectClass", "objectGUID", "msDS-PasswordSettingsPrecedence", "msDS-MinimumPasswordLength",
    "msDS-PasswordComplexityEnabled", "msDS-PasswordReversibleEncryptionEnabled", "msDS-PasswordHistoryLength",
    "msDS-MaximumPasswordAge", "msDS-MinimumPasswordAge", "msDS-LockoutThreshold", "msDS-PSOAppliesTo",
]
# What the OpenLDAP mapping reads: asking for "*" and "+" costs ldap3 a decode of every other value too.
_OPENLDAP_USER_ATTRIBUTES = [
    "objectClass", "uid", "cn", "displayName", "mail", "entryUUID", "createTimestamp", "pwdAccountLockedTime",
    "authTimestamp", "pwdLastSuccess", "pwdChangedTime", "pwdPolicySubentry", "loginShell", "nsAccountLock",
    "shadowExpire", "memberOf", "employeeNumber",
]



class LdapConfig(SourceConfig):
    type: Literal["ldap"]
    url: str  # ldaps://dc1.example.com or ldap://...; several DCs: list the others in `urls`
    urls: StrList = ()  # more servers: failover, and (AD) the DCs whose per-DC lastLogon is read
    start_tls: bool = False
    bind_dn: str | None = None  # DN or UPN; unset: anonymous
    password_env: str | None = None
    password_file: Path | None = Field(default=None, strict=False)
    base_dn: str | None = None  # default: the rootDSE's defaultNamingContext
    tls_ca_file: Path | None = Field(default=None, strict=False)
    tls_verify: bool = True
    tls_server_name: str | None = None  # the certificate's name when `url` names the server by address
    allow_insecure_bind: bool = False
    page_size: int = Field(default=500, ge=1, le=1000)  # AD's MaxPageSize is 1000
    timeout: int = Field(default=30, ge=1, le=600)
    retries: int = Field(default=2, ge=0, le=5)  # re-reads of a search after a dropped connection
    flavor: Literal["auto", "active_directory", "openldap"] = "auto"
    service_account_patterns: StrList | None = None
    privileged_groups: StrList = ()
    default_policy_dn: str | None = None

    def insecure_settings(self) -> list[str]:
        return ["TLS CERTIFICATE VERIFICATION IS DISABLED (tls_verify = false): the server was not "
                "authenticated and the data may not come from it"] if not self.tls_verify else []

    @model_validator(mode="after")
    def _safe_transport(self) -> LdapConfig:
        for url in (self.url, *self.urls):
            parsed = urlparse(url)
            if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
                raise ValueError(f"'{url}' is not an ldap:// or ldaps:// URL")
            if parsed.scheme == "ldap" and self.bind_dn and not self.start_tls and not self.allow_insecure_bind:
                raise ValueError(
                    f"a password bind over unencrypted {url} would expose the password; use ldaps://, "
                    "start_tls = true, or set allow_insecure_bind = true")
            if parsed.scheme == "ldaps" and self.start_tls:
                raise ValueError("start_tls is for ldap:// URLs; ldaps:// is already encrypted")
        if self.password_env and self.password_file:
            raise ValueError("set password_env or password_file, not both")
        if self.bind_dn and not (self.password_env or self.password_file):
            raise ValueError("bind_dn needs password_env or password_file")
        return self


def _flavor(config: LdapConfig, root: DirectoryEntry) -> str:
    if config.flavor != "auto":
        return config.flavor
    if AD_CAPABILITY in root.texts("supportedCapabilities"):
        return "active_directory"
    return "openldap"


def _merge_last_logon(entries: list[DirectoryEntry], others: list[list[DirectoryEntry]]) -> None:
    """lastLogon is kept per DC and never replicated: the latest value over every DC is the real one."""
    by_guid = {e.first("objectGUID"): e for e in entries if e.first("objectGUID")}
    for dc_entries in others:
        for other in dc_entries:
            mine = by_guid.get(other.first("objectGUID"))
            value = other.text("lastLogon")
            if mine is None or value is None:
                continue
            if int(value) > int(mine.text("lastLogon") or 0):
                mine.attributes["lastlogon"] = [value.encode()]


def _read_active_directory(config: LdapConfig, directory: Directory, password: str | None, base: str,
                           redact: Redactor, warnings: list[str]) -> list[DirectoryEntry]:
    from connectors.ldap_client import Directory

    entries = directory.search(base, "(objectClass=*)", _AD_DOMAIN_ATTRIBUTES, scope=BASE)
    accounts = directory.search(base, "(objectClass=user)", _AD_ACCOUNT_ATTRIBUTES)
    groups = directory.search(base, "(objectClass=group)", ["objectClass", "objectSid", "memberOf", "member", "cn"])
    psos = directory.search(f"CN=Password Settings Container,CN=System,{base}", "(objectClass=msDS-PasswordSettings)",
                            _PSO_ATTRIBUTES, scope=LEVEL, optional=True)
    if not psos:
        warnings.append("no fine-grained password policies readable (none exist, or the bind account may not "
                        "read the Password Settings Container); policies named by msDS-ResultantPSO are 'unknown'")
    deleted = directory.search(base, "(&(isDeleted=TRUE)(objectClass=user))",
                               ["objectClass", "isDeleted", "whenChanged", "objectGUID", "sAMAccountName"],
                               controls=[SHOW_DELETED], optional=True)
    others = []
    for url in config.urls:
        if url == directory.url:
            continue
        try:
            dc = Directory(config, url, password, redact)
        except SourceError as exc:
            warnings.append(f"lastLogon not read from {url}: {exc}")
            continue
        others.append(dc.search(base, "(objectClass=user)", ["objectGUID", "lastLogon"]))
        dc.close()
    _merge_last_logon(accounts, others)
    return entries + accounts + groups + psos + deleted


def collect(config: LdapConfig, context: CollectContext) -> SourceResult:
    from connectors.ldap_client import open_first  # ldap3 is loaded only when a directory is read

    redact = Redactor()
    password = None
    if config.bind_dn:
        try:
            password = resolve_secret("password", config.password_env, config.password_file)
        except SecretUnavailable as exc:
            raise SourceError(str(exc)) from None
        redact.add(password)
    warnings: list[str] = []
    directory = open_first(config, password, redact)
    try:
        root = directory.root_dse()
        base = config.base_dn or root.text("defaultNamingContext") or next(iter(root.texts("namingContexts")), None)
        if not base:
            raise SourceError(f"{directory.url}: no base_dn configured and the rootDSE names no naming context")
        flavor = _flavor(config, root)
        if flavor == "active_directory":
            entries = _read_active_directory(config, directory, password, base, redact, warnings)
            ad = AdOptions(extra_privileged_groups=config.privileged_groups)
            if config.service_account_patterns is not None:
                ad.service_account_patterns = config.service_account_patterns
            mapped = map_active_directory(config.name, entries, ad)
        else:
            entries = directory.search(
                base, "(|(objectClass=inetOrgPerson)(objectClass=posixAccount)(objectClass=account))",
                _OPENLDAP_USER_ATTRIBUTES)
            entries += directory.search(
                base, "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
                ["cn", "member", "uniqueMember", "memberUid", "objectClass"])
            entries += directory.search(base, "(objectClass=pwdPolicy)", ["*"], optional=True)
            options = OpenLdapOptions(default_policy_dn=config.default_policy_dn,
                                      privileged_groups=config.privileged_groups)
            if config.service_account_patterns is not None:
                options.service_account_patterns = config.service_account_patterns
            mapped = map_openldap(config.name, entries, options)
        partial = None
        if directory.size_limited:
            partial = (f"the server's size limit cut results under {', '.join(directory.size_limited)}: "
                       "accounts beyond it are missing")
        return SourceResult(accounts=mapped.accounts, policies=mapped.policies, change_events=mapped.change_events,
                            warnings=warnings + mapped.warnings,
                            partial_error="; ".join(p for p in (partial, mapped.partial_error) if p) or None)
    finally:
        directory.close()


def check_access(config: LdapConfig) -> list[AccessCheck]:
    from connectors.ldap_access import check_access as check  # ldap3 is loaded only when a directory is read

    return check(config)


def _permissions() -> tuple[str, ...]:
    return (
        "Active Directory: a domain user (no admin group) can read users, groups and the domain password policy; "
        "grant Read on 'CN=Password Settings Container,CN=System,<domain>' and its msDS-PasswordSettings objects "
        "for fine-grained policies. Use ldaps:// or StartTLS: a password bind in clear is refused.",
        "Active Directory: every DC listed in `urls` must accept the bind (lastLogon is kept per DC).",
        "OpenLDAP: read on the people entries and their operational attributes (createTimestamp, pwdChangedTime, "
        "authTimestamp or pwdLastSuccess, pwdAccountLockedTime) and on the ppolicy entries (objectClass=pwdPolicy); "
        "a `limits` size above the number of accounts for the bind DN.",
    )


SOURCE_TYPE = SourceType("ldap", "Live Active Directory or OpenLDAP directory (ldap3)", LdapConfig, collect,
                         check_access, _permissions())
