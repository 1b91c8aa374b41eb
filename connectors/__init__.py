"""Source types by name. A new connector is one module plus one line here."""

from __future__ import annotations

from connectors import csv_export, entra, github, google, graph_json, ldap, ldif, okta, scim, slack
from connectors.base import SourceType

SOURCE_TYPES: dict[str, SourceType] = {
    t.name: t
    for t in (
        ldif.SOURCE_TYPE,
        ldap.SOURCE_TYPE,
        graph_json.SOURCE_TYPE,
        entra.SOURCE_TYPE,
        csv_export.SOURCE_TYPE,
        scim.SOURCE_TYPE,
        okta.SOURCE_TYPE,
        google.SOURCE_TYPE,
        github.SOURCE_TYPE,
        slack.SOURCE_TYPE,
    )
}
