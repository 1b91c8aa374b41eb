"""Source type ``ldap``: a live Active Directory or OpenLDAP directory, read with ldap3.

get: paged searches (users, groups, policies, deleted objects) with bounded retry on dropped connections;
transform: the same AD / OpenLDAP mapping the LDIF source uses. Referrals are not followed; a size-limit
answer makes the source partial, never silently short.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import ldap3
from ldap3.core import exceptions as ldap_errors
from pydantic import Field, model_validator

from auditor.secrets import Redactor, SecretUnavailable, resolve_secret
from connectors.activedirectory import AdOptions, map_active_directory
from connectors.base import NO_STATE, SourceConfig, SourceError, SourceResult, SourceType, StrList
from connectors.ldif_format import DirectoryEntry
from connectors.openldap import OpenLdapOptions, map_openldap

AD_CAPABILITY = "1.2.840.113556.1.4.800"  # LDAP_CAP_ACTIVE_DIRECTORY_OID in supportedCapabilities
SHOW_DELETED = ("1.2.840.113556.1.4.417", True, None)
_AD_ACCOUNT_ATTRIBUTES = [
    "objectClass", "sAMAccountName", "userPrincipalName", "mail", "displayName", "cn", "userAccountControl",
    "msDS-User-Account-Control-Computed", "lastLogonTimestamp", "lastLogon", "pwdLastSet", "accountExpires",
    "whenCreated", "whenChanged", "uSNChanged", "objectSid", "objectGUID", "adminCount", "memberOf",
    "primaryGroupID", "msDS-ResultantPSO", "servicePrincipalName", "employeeID",
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
_CONNECTION_ERRORS = (ldap_errors.LDAPCommunicationError, ldap_errors.LDAPSessionTerminatedByServerError,
                      ldap_errors.LDAPSocketOpenError, ldap_errors.LDAPSocketReceiveError)


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


class _Directory:
    """One bound connection to one server, with paged reads that survive a dropped connection."""

    def __init__(self, config: LdapConfig, url: str, password: str | None, redact: Redactor) -> None:
        self.config, self.url, self.password, self.redact = config, url, password, redact
        self.size_limited: list[str] = []
        self.conn = self._connect()

    def _connect(self) -> ldap3.Connection:
        parsed = urlparse(self.url)
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if self.config.tls_verify else ssl.CERT_NONE,
            ca_certs_file=str(self.config.tls_ca_file) if self.config.tls_ca_file else None,
            valid_names=[self.config.tls_server_name] if self.config.tls_server_name else None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        server = ldap3.Server(
            parsed.hostname or "", port=parsed.port, use_ssl=parsed.scheme == "ldaps", tls=tls,
            get_info=ldap3.NONE, connect_timeout=self.config.timeout,
        )
        conn = ldap3.Connection(
            server, user=self.config.bind_dn, password=self.password, auto_referrals=False, read_only=True,
            raise_exceptions=False, receive_timeout=self.config.timeout, auto_range=True,
            # We read raw values and convert them ourselves (auditor.timeconv): skip ldap3's formatting pass.
            check_names=False,
            authentication=ldap3.SIMPLE if self.config.bind_dn else ldap3.ANONYMOUS,
        )
        try:
            conn.open()
            if self.config.start_tls and not conn.start_tls():
                raise SourceError(f"{self.url}: StartTLS failed: {self._diagnostic(conn)}")
            if not conn.bind():
                raise SourceError(f"{self.url}: bind as {self.config.bind_dn or 'anonymous'} failed: "
                                  f"{self._diagnostic(conn)}")
        except ldap_errors.LDAPException as exc:
            raise SourceError(f"{self.url}: cannot connect: {self.redact(str(exc))}") from None
        return conn

    def _diagnostic(self, conn: ldap3.Connection) -> str:
        result = conn.result or {}
        text = f"{result.get('description', 'error')}: {result.get('message', '')}".strip(": ")
        return self.redact(text or str(conn.last_error))

    def search(
        self, base: str, search_filter: str, attributes: list[str], scope: str = ldap3.SUBTREE,
        controls: list[tuple[str, bool, Any]] | None = None, optional: bool = False,
    ) -> list[DirectoryEntry]:
        for attempt in range(self.config.retries + 1):
            try:
                return list(self._paged(base, search_filter, attributes, scope, controls, optional))
            except _CONNECTION_ERRORS as exc:
                if attempt == self.config.retries:
                    raise SourceError(f"{self.url}: connection lost while reading {base} "
                                      f"({attempt + 1} attempts): {self.redact(str(exc))}") from None
                self.conn = self._connect()  # start the whole search again: paging cookies die with the connection
        raise AssertionError("unreachable")

    def _paged(
        self, base: str, search_filter: str, attributes: list[str], scope: str,
        controls: list[tuple[str, bool, Any]] | None, optional: bool,
    ) -> Iterator[DirectoryEntry]:
        cookie: bytes | None = None
        while True:
            self.conn.search(base, search_filter, search_scope=scope, attributes=attributes,
                             paged_size=self.config.page_size, paged_cookie=cookie, controls=controls)
            result = self.conn.result or {}
            code = result.get("result", 0)
            if code == 4:  # sizeLimitExceeded: keep what came, and say the source is partial
                self.size_limited.append(base)
            elif code in (10, 9):  # referral: not followed by design
                pass
            elif code == 32 and optional:  # noSuchObject for an optional container
                return
            elif code not in (0, 4):
                if optional and code in (50, 53):  # insufficientAccessRights / unwillingToPerform
                    return
                raise SourceError(f"{self.url}: search of {base} failed: {self._diagnostic(self.conn)}")
            for item in self.conn.response or []:
                if item.get("type") != "searchResEntry":
                    continue
                attributes_raw: dict[str, list[bytes]] = {}
                for name, values in item["raw_attributes"].items():
                    attributes_raw.setdefault(name.lower().split(";", 1)[0], []).extend(values)
                yield DirectoryEntry(dn=item["dn"], attributes=attributes_raw)
            control = (result.get("controls") or {}).get("1.2.840.113556.1.4.319") or {}
            cookie = (control.get("value") or {}).get("cookie")
            if not cookie:
                return

    def root_dse(self) -> DirectoryEntry:
        try:
            self.conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=[
                "defaultNamingContext", "namingContexts", "supportedCapabilities", "vendorName", "objectClass",
                "dsServiceName", "highestCommittedUSN", "dnsHostName"])
        except ldap_errors.LDAPException as exc:
            raise SourceError(f"{self.url}: reading the rootDSE failed: {self.redact(str(exc))}") from None
        for item in self.conn.response or []:
            if item.get("type") == "searchResEntry":
                return DirectoryEntry(dn="", attributes={k.lower(): list(v) for k, v in item["raw_attributes"].items()})
        raise SourceError(f"{self.url}: the server returned no rootDSE: {self._diagnostic(self.conn)}")

    def close(self) -> None:
        self.conn.unbind()


def _open_first(config: LdapConfig, password: str | None, redact: Redactor) -> _Directory:
    errors = []
    for url in (config.url, *config.urls):
        try:
            return _Directory(config, url, password, redact)
        except SourceError as exc:
            errors.append(str(exc))
    raise SourceError("; ".join(errors))


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


def _read_active_directory(config: LdapConfig, directory: _Directory, password: str | None, base: str,
                           redact: Redactor, warnings: list[str]) -> list[DirectoryEntry]:
    entries = directory.search(base, "(objectClass=*)", _AD_DOMAIN_ATTRIBUTES, scope=ldap3.BASE)
    accounts = directory.search(base, "(objectClass=user)", _AD_ACCOUNT_ATTRIBUTES)
    groups = directory.search(base, "(objectClass=group)", ["objectClass", "objectSid", "memberOf", "member", "cn"])
    psos = directory.search(f"CN=Password Settings Container,CN=System,{base}", "(objectClass=msDS-PasswordSettings)",
                            _PSO_ATTRIBUTES, scope=ldap3.LEVEL, optional=True)
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
            dc = _Directory(config, url, password, redact)
        except SourceError as exc:
            warnings.append(f"lastLogon not read from {url}: {exc}")
            continue
        others.append(dc.search(base, "(objectClass=user)", ["objectGUID", "lastLogon"]))
        dc.close()
    _merge_last_logon(accounts, others)
    return entries + accounts + groups + psos + deleted


def collect(config: LdapConfig, as_of: datetime, previous_state: Mapping[str, str] = NO_STATE) -> SourceResult:
    redact = Redactor()
    password = None
    if config.bind_dn:
        try:
            password = resolve_secret("password", config.password_env, config.password_file)
        except SecretUnavailable as exc:
            raise SourceError(str(exc)) from None
        redact.add(password)
    warnings: list[str] = []
    directory = _open_first(config, password, redact)
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


SOURCE_TYPE = SourceType("ldap", "Live Active Directory or OpenLDAP directory (ldap3)", LdapConfig, collect)
