"""``auditor check-access`` for the ``ldap`` source: bind, then one-entry reads of what the audit needs."""

from __future__ import annotations

from auditor.secrets import Redactor, SecretUnavailable, resolve_secret
from connectors.base import SourceError, SourceUnreachable
from connectors.ldap import AD_CAPABILITY, BASE, LEVEL, LdapConfig
from connectors.ldap_client import Directory
from connectors.preflight import AccessCheck

_DENIED = (50, 53)  # insufficientAccessRights, unwillingToPerform


def check_access(config: LdapConfig) -> list[AccessCheck]:
    redact = Redactor()
    who = f"bind as {config.bind_dn or 'anonymous'} to {config.url}"
    password = None
    if config.bind_dn:
        try:
            password = resolve_secret("password", config.password_env, config.password_file)
        except SecretUnavailable as exc:
            return [AccessCheck(who, "missing", "the source cannot be audited", str(exc))]
        redact.add(password)
    bound, directory = _bind(config, config.url, password, redact, who, "the source cannot be audited")
    if directory is None:
        return [bound]
    checks = [bound]
    try:
        root = directory.root_dse()
        base = config.base_dn or root.text("defaultNamingContext") or next(iter(root.texts("namingContexts")), "")
        active_directory = config.flavor == "active_directory" or (
            config.flavor == "auto" and AD_CAPABILITY in root.texts("supportedCapabilities"))
        checks += (_active_directory(config, directory, base, password, redact) if active_directory
                   else _openldap(config, directory, base))
    except SourceError as exc:
        checks.append(AccessCheck("read the directory", "unreachable", "the source cannot be audited", str(exc)))
    finally:
        directory.close()
    return checks


def _bind(config: LdapConfig, url: str, password: str | None, redact: Redactor, what: str,
          impact: str) -> tuple[AccessCheck, Directory | None]:
    """A bound connection to ``url``, or why not: unreachable (network, TLS) or missing (the bind refused)."""
    try:
        return AccessCheck(what, "ok"), Directory(config, url, password, redact)
    except SourceUnreachable as exc:
        return AccessCheck(what, "unreachable", impact, str(exc)), None
    except SourceError as exc:
        return AccessCheck(what, "missing", impact, str(exc)), None


def _read(directory: Directory, what: str, impact: str, base: str, search_filter: str, attributes: list[str],
          scope: str = "SUBTREE", needs: str | None = None) -> AccessCheck:
    """One entry: ok when it came back (with ``needs`` among its attributes), missing when refused or empty."""
    code, entries = directory.probe(base, search_filter, attributes, scope=scope)
    if code in _DENIED or code == 32:
        return AccessCheck(what, "missing", impact, f"the server answered result code {code}")
    if not entries:
        return AccessCheck(what, "missing", impact, "nothing visible to this account")
    if needs and not entries[0].texts(needs):
        return AccessCheck(what, "missing", impact, f"{needs} is not readable by this account")
    return AccessCheck(what, "ok")


def _active_directory(config: LdapConfig, directory: Directory, base: str, password: str | None,
                      redact: Redactor) -> list[AccessCheck]:
    checks = [
        _read(directory, "read user accounts (userAccountControl, lastLogonTimestamp, pwdLastSet)",
              "the source cannot be audited", base, "(&(objectCategory=person)(objectClass=user))",
              ["userAccountControl", "lastLogonTimestamp", "pwdLastSet"], needs="userAccountControl"),
        _read(directory, "read the domain password policy (minPwdLength, pwdProperties)",
              "the domain password policy is unknown: every account's policy strength is unknown", base,
              "(objectClass=*)", ["minPwdLength", "pwdProperties"], scope=BASE, needs="minPwdLength"),
    ]
    container = f"CN=Password Settings Container,CN=System,{base}"
    # msDS-ResultantPSO is constructed (no filter on it): the first account a PSO governs, found page by page.
    named = directory.first_value(base, "(&(objectCategory=person)(objectClass=user))", "msDS-ResultantPSO")
    what = "read fine-grained password policies (Password Settings Container)"
    impact = "cannot read the Password Settings Container: fine-grained policies unknown"
    if named:  # a PSO applies to someone: this account must be able to read it
        checks.append(_read(directory, what, impact, named, "(objectClass=msDS-PasswordSettings)",
                            ["msDS-MinimumPasswordLength"], scope=BASE, needs="msDS-MinimumPasswordLength"))
    else:
        code, _ = directory.probe(container, "(objectClass=*)", ["cn"], scope=LEVEL)
        checks.append(AccessCheck(what, "ok") if code not in (*_DENIED, 32) else
                      AccessCheck(what, "missing", impact, f"the server answered result code {code}"))
    for url in config.urls:
        bound, other = _bind(config, url, password, redact, f"bind to {url} (lastLogon is kept per DC)",
                             f"lastLogon from {url} unknown: activity may look older")
        checks.append(bound)
        if other is not None:
            other.close()
    return checks


def _openldap(config: LdapConfig, directory: Directory, base: str) -> list[AccessCheck]:
    people = "(|(objectClass=inetOrgPerson)(objectClass=posixAccount)(objectClass=account))"
    checks = [
        _read(directory, "read user accounts", "the source cannot be audited", base, people, ["uid", "cn"]),
        _read(directory, "read operational attributes (createTimestamp, pwdChangedTime, authTimestamp)",
              "account age and activity unknown for every account", base, people,
              ["createTimestamp", "pwdChangedTime", "authTimestamp", "pwdLastSuccess"], needs="createTimestamp"),
    ]
    impact = "password policy settings unknown: every account's policy strength is unknown"
    if config.default_policy_dn:
        checks.append(_read(directory, f"read the default password policy ({config.default_policy_dn})", impact,
                            config.default_policy_dn, "(objectClass=pwdPolicy)", ["pwdMinLength"], scope=BASE))
    else:
        checks.append(_read(directory, "read password policies (objectClass=pwdPolicy)", impact, base,
                            "(objectClass=pwdPolicy)", ["pwdMinLength"]))
    return checks
