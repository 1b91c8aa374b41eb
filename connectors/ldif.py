"""Source type ``ldif``: an Active Directory (ldifde, ldapsearch) or OpenLDAP export file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from connectors.activedirectory import AdOptions, is_active_directory, map_active_directory
from connectors.base import CollectContext, SourceConfig, SourceError, SourceResult, SourceType, StrList
from connectors.ldif_format import LdifError, read_ldif
from connectors.openldap import OpenLdapOptions, map_openldap


class LdifConfig(SourceConfig):
    type: Literal["ldif"]
    path: Path = Field(strict=False)
    flavor: Literal["auto", "active_directory", "openldap"] = "auto"
    service_account_patterns: StrList | None = None
    privileged_groups: StrList = ()  # in addition to AD's protected groups; all of them for OpenLDAP
    default_policy_dn: str | None = None  # OpenLDAP: the ppolicy overlay's ppolicy_default


def collect(config: LdifConfig, context: CollectContext) -> SourceResult:
    try:
        data = config.path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {config.path}: {exc.strerror}") from None
    warnings: list[str] = []
    incomplete: list[str] = []
    try:
        entries = list(read_ldif(data, warnings, incomplete))
    except LdifError as exc:
        raise SourceError(f"{config.path}: {exc}") from None
    if not entries:
        raise SourceError(f"{config.path}: no LDIF content records" + (f" ({incomplete[0]})" if incomplete else ""))
    flavor = config.flavor
    if flavor == "auto":
        flavor = "active_directory" if is_active_directory(entries) else "openldap"
    if flavor == "active_directory":
        ad = AdOptions(extra_privileged_groups=config.privileged_groups)
        if config.service_account_patterns is not None:
            ad.service_account_patterns = config.service_account_patterns
        mapped = map_active_directory(config.name, entries, ad)
    else:
        ol = OpenLdapOptions(default_policy_dn=config.default_policy_dn, privileged_groups=config.privileged_groups)
        if config.service_account_patterns is not None:
            ol.service_account_patterns = config.service_account_patterns
        mapped = map_openldap(config.name, entries, ol)
    return SourceResult(
        accounts=mapped.accounts, policies=mapped.policies, change_events=mapped.change_events,
        warnings=warnings + mapped.warnings, partial_error=_incomplete(incomplete, mapped.partial_error),
    )


def _incomplete(records: list[str], mapping: str | None) -> str | None:
    """Why the source is partial: records not read (20 listed, the rest counted), records not mapped."""
    parts = records[:20] + ([f"and {len(records) - 20} more record(s) not read"] if len(records) > 20 else [])
    return "; ".join([*parts, *([mapping] if mapping else [])]) or None


SOURCE_TYPE = SourceType("ldif", "Active Directory or OpenLDAP LDIF export", LdifConfig, collect)
