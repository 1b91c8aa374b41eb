"""Source types by name. A new connector is one module plus one line here.

Modules are imported when their type is first asked for: listing rules or checking a config that names no
live source never loads a vendor SDK (ldap3, msal).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from connectors.base import SourceType

_MODULES = {
    "ldif": "connectors.ldif",
    "ldap": "connectors.ldap",
    "graph-json": "connectors.graph_json",
    "entra": "connectors.entra",
    "csv": "connectors.csv_export",
    "scim": "connectors.scim",
    "okta": "connectors.okta",
    "google": "connectors.google",
    "github": "connectors.github",
    "slack": "connectors.slack",
}


class _SourceTypes(Mapping[str, SourceType]):
    def __getitem__(self, name: str) -> SourceType:
        source_type = importlib.import_module(_MODULES[name]).SOURCE_TYPE
        assert isinstance(source_type, SourceType) and source_type.name == name, name
        return source_type

    def __contains__(self, name: object) -> bool:  # without importing the module
        return isinstance(name, str) and name in _MODULES

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


SOURCE_TYPES: Mapping[str, SourceType] = _SourceTypes()
