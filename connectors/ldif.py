"""Source type ``ldif``: an Active Directory (ldifde, ldapsearch) or OpenLDAP export file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from connectors.activedirectory import AdOptions, is_active_directory, map_active_directory
from connectors.base import CollectContext, SourceConfig, SourceError, SourceResult, SourceType, StrList
from connectors.ldif_format import DirectoryEntry, LdifError, read_ldif
from connectors.openldap import OpenLdapOptions, map_openldap


class LdifConfig(SourceConfig):
    type: Literal["ldif"]
    path: Path = Field(strict=False)
    flavor: Literal["auto", "active_directory", "openldap"] = "auto"
    service_account_patterns: StrList | None = None
    privileged_groups: StrList = ()  # in addition to AD's protected groups; all of them for OpenLDAP
    default_policy_dn: str | None = None  # OpenLDAP: the ppolicy overlay's ppolicy_default


def collect(config: LdifConfig, context: CollectContext) -> SourceResult:
    warnings: list[str] = []
    incomplete: list[str] = []
    try:
        with config.path.open("rb") as stream:  # read as a stream: an export of a million accounts is a gigabyte
            entries = read_ldif(stream, warnings, incomplete)
            flavor, head = _flavor(config.flavor, entries)
            if not head:
                raise SourceError(
                    f"{config.path}: no LDIF content records" + (f" ({incomplete[0]})" if incomplete else ""))
            if flavor == "active_directory":
                ad = AdOptions(extra_privileged_groups=config.privileged_groups)
                if config.service_account_patterns is not None:
                    ad.service_account_patterns = config.service_account_patterns
                mapped = map_active_directory(config.name, itertools.chain(head, entries), ad)
            else:
                ol = OpenLdapOptions(default_policy_dn=config.default_policy_dn,
                                     privileged_groups=config.privileged_groups)
                if config.service_account_patterns is not None:
                    ol.service_account_patterns = config.service_account_patterns
                mapped = map_openldap(config.name, [*head, *entries], ol)
    except OSError as exc:
        raise SourceError(f"cannot read {config.path}: {exc.strerror}") from None
    except LdifError as exc:
        raise SourceError(f"{config.path}: {exc}") from None
    return SourceResult(
        accounts=mapped.accounts, policies=mapped.policies, change_events=mapped.change_events,
        warnings=warnings + mapped.warnings, partial_error=_incomplete(incomplete, mapped.partial_error),
    )


def _flavor(configured: str, entries: Iterator[DirectoryEntry]) -> tuple[str, list[DirectoryEntry]]:
    """The export's flavour, and the entries read to decide it: with "auto", up to the first entry only Active
    Directory writes (every entry when there is none); otherwise the first entry, to know there is one."""
    if configured != "auto":
        return configured, list(itertools.islice(entries, 1))
    head = []
    for entry in entries:
        head.append(entry)
        if is_active_directory((entry,)):
            return "active_directory", head
    return "openldap", head


def _incomplete(records: list[str], mapping: str | None) -> str | None:
    """Why the source is partial: records not read (20 listed, the rest counted), records not mapped."""
    parts = records[:20] + ([f"and {len(records) - 20} more record(s) not read"] if len(records) > 20 else [])
    return "; ".join([*parts, *([mapping] if mapping else [])]) or None


SOURCE_TYPE = SourceType("ldif", "Active Directory or OpenLDAP LDIF export", LdifConfig, collect)
