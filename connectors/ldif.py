"""Source type ``ldif``: an Active Directory (ldifde, ldapsearch) or OpenLDAP export file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import Field

from connectors.activedirectory import AdOptions, AdScan, is_active_directory
from connectors.base import CollectContext, SourceConfig, SourceError, SourceResult, SourceType, StrList
from connectors.ldif_format import DirectoryEntry, LdifError, ReadState, export_encoding, read_ldif
from connectors.ldif_split import SPLIT_ABOVE, SecondHalf, parts, scan_in_two
from connectors.openldap import OpenLdapOptions, map_openldap


class LdifConfig(SourceConfig):
    type: Literal["ldif"]
    path: Path = Field(strict=False)
    flavor: Literal["auto", "active_directory", "openldap"] = "auto"
    service_account_patterns: StrList | None = None
    privileged_groups: StrList = ()  # in addition to AD's protected groups; all of them for OpenLDAP
    default_policy_dn: str | None = None  # OpenLDAP: the ppolicy overlay's ppolicy_default


def collect(config: LdifConfig, context: CollectContext, *, split_above: int = SPLIT_ABOVE) -> SourceResult:
    """``split_above``: the size (bytes) from which an Active Directory export is read on two cores."""
    warnings: list[str] = []
    incomplete: list[str] = []
    state = ReadState()  # shared by the export's parts
    try:
        with config.path.open("rb") as stream:  # read as a stream: an export of a million accounts is a gigabyte
            first, second = parts(stream, export_encoding(stream, warnings), split_above)
            entries: Iterator[DirectoryEntry] = read_ldif(stream, warnings, incomplete, part=first, state=state)
            flavor, head = _flavor(config.flavor, entries)
            if second is not None and not (head and flavor == "active_directory"):
                # The first half holds nothing, or nothing only Active Directory writes: the export is read here
                # in one pass, and its flavour decided as one pass decides it.
                entries = itertools.chain(head, entries, _rest(stream, second, warnings, incomplete, state))
                flavor, head = _flavor(config.flavor, entries)
                second = None
            if not head:
                raise SourceError(
                    f"{config.path}: no LDIF content records" + (f" ({incomplete[0]})" if incomplete else ""))
            if flavor == "active_directory":
                ad = AdOptions(extra_privileged_groups=config.privileged_groups)
                if config.service_account_patterns is not None:
                    ad.service_account_patterns = config.service_account_patterns
                scan = AdScan(config.name, ad)
                if second is None:
                    for entry in itertools.chain(head, entries):
                        scan.add(entry)
                else:
                    scan_in_two(stream, config.path, itertools.chain(head, entries), second, scan, warnings,
                                incomplete, state)
                mapped = scan.settle()
            else:
                ol = OpenLdapOptions(default_policy_dn=config.default_policy_dn,
                                     privileged_groups=config.privileged_groups)
                if config.service_account_patterns is not None:
                    ol.service_account_patterns = config.service_account_patterns
                mapped = map_openldap(config.name, [*head, *entries], ol)
            warnings += state.skipped_warning()
    except OSError as exc:
        raise SourceError(f"cannot read {config.path}: {exc.strerror}") from None
    except LdifError as exc:
        raise SourceError(f"{config.path}: {exc}") from None
    return SourceResult(
        accounts=mapped.accounts, policies=mapped.policies, change_events=mapped.change_events,
        warnings=warnings + mapped.warnings, partial_error=_incomplete(incomplete, mapped.partial_error),
    )


def _rest(stream: BinaryIO, second: SecondHalf, warnings: list[str], incomplete: list[str],
          state: ReadState) -> Iterator[DirectoryEntry]:
    """The second half's entries, read here once the first half's are (where it starts is counted only then)."""
    yield from read_ldif(stream, warnings, incomplete, part=second.part(stream), state=state)


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
