"""The ldap3 side of the ``ldap`` source: one bound connection per server, paged reads that survive a dropped
connection. Imported only when a directory is read, so listing rules or checking a config never loads ldap3."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import ldap3
from ldap3.core import exceptions as ldap_errors

from auditor.secrets import Redactor
from connectors.base import SourceError, SourceUnreachable
from connectors.ldap import LdapConfig
from connectors.ldif_format import DirectoryEntry

# Aliases are not followed (ldapsearch's default; ldap3's is "always"): an audit reads entries as they are stored,
# and an alias to an account would read it twice. Asked to follow them, slapd searches the scope for aliases
# again for every page: 45 ms a page at 100,000 entries, half of the whole read (bench.ldap_read).
_ALIASES = ldap3.DEREF_NEVER
_CONNECTION_ERRORS = (ldap_errors.LDAPCommunicationError, ldap_errors.LDAPSessionTerminatedByServerError,
                      ldap_errors.LDAPSocketOpenError, ldap_errors.LDAPSocketReceiveError)


class Directory:
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
            # An attribute the entry lacks stays absent (unknown to the mapping), not an empty list ldap3 adds
            # under the requested name's spelling, once per entry and attribute.
            return_empty_attributes=False,
            authentication=ldap3.SIMPLE if self.config.bind_dn else ldap3.ANONYMOUS,
        )
        _decode_entries_raw(conn)
        try:
            conn.open()
            if self.config.start_tls and not conn.start_tls():
                raise SourceUnreachable(f"{self.url}: StartTLS failed: {self._diagnostic(conn)}")
            if not conn.bind():
                raise SourceError(f"{self.url}: bind as {self.config.bind_dn or 'anonymous'} failed: "
                                  f"{self._diagnostic(conn)}")
        except ldap_errors.LDAPException as exc:
            raise SourceUnreachable(f"{self.url}: cannot connect: {self.redact(str(exc))}") from None
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
                             dereference_aliases=_ALIASES,
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
                attributes_raw: dict[str, list[bytes]] = item["raw_attributes"]
                if any(";" in name or not name.islower() for name in attributes_raw):  # options, or ldap3's case
                    attributes_raw = {}
                    for name, values in item["raw_attributes"].items():
                        attributes_raw.setdefault(name.lower().split(";", 1)[0], []).extend(values)
                yield DirectoryEntry(dn=item["dn"], attributes=attributes_raw)
            control = (result.get("controls") or {}).get("1.2.840.113556.1.4.319") or {}
            cookie = (control.get("value") or {}).get("cookie")
            if not cookie:
                return

    def probe(self, base: str, search_filter: str, attributes: list[str],
              scope: str = ldap3.SUBTREE) -> tuple[int, list[DirectoryEntry]]:
        """At most one entry and the result code, for ``auditor check-access``: proves a read, reads nothing."""
        try:
            self.conn.search(base, search_filter, search_scope=scope, attributes=attributes, size_limit=1,
                             dereference_aliases=_ALIASES)
        except ldap_errors.LDAPException as exc:
            raise SourceError(f"{self.url}: search of {base} failed: {self.redact(str(exc))}") from None
        entries = [DirectoryEntry(dn=item["dn"], attributes={k.lower(): list(v) for k, v in
                                                             item["raw_attributes"].items()})
                   for item in self.conn.response or [] if item.get("type") == "searchResEntry"]
        return int((self.conn.result or {}).get("result", 0)), entries

    def first_value(self, base: str, search_filter: str, attribute: str) -> str | None:
        """The first value of ``attribute`` among the entries found, reading page by page and stopping there."""
        for entry in self._paged(base, search_filter, [attribute], ldap3.SUBTREE, None, optional=True):
            value = entry.text(attribute)
            if value:
                return value
        return None

    def root_dse(self) -> DirectoryEntry:
        try:
            self.conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=[
                "defaultNamingContext", "namingContexts", "supportedCapabilities", "vendorName", "objectClass",
                "dsServiceName", "highestCommittedUSN", "dnsHostName"])
        except ldap_errors.LDAPException as exc:
            raise SourceError(f"{self.url}: reading the rootDSE failed: {self.redact(str(exc))}") from None
        for item in self.conn.response or []:
            if item.get("type") == "searchResEntry":
                attributes: dict[str, list[bytes]] = {}
                for name, values in item["raw_attributes"].items():  # ldap3 may add an empty "namingContexts"
                    attributes.setdefault(name.lower(), []).extend(values)
                return DirectoryEntry(dn="", attributes=attributes)
        raise SourceError(f"{self.url}: the server returned no rootDSE: {self._diagnostic(self.conn)}")

    def close(self) -> None:
        self.conn.unbind()


_SEARCH_RESULT_ENTRY = 4  # LDAPMessage protocolOp of a searchResEntry (RFC 4511 4.5.2)


def _decode_entries_raw(conn: ldap3.Connection) -> None:
    """Decode this connection's search entries as raw bytes only. ldap3 builds every entry twice (raw values,
    and formatted values in case-insensitive dictionaries) with a configuration lookup per value; the mapping
    reads raw bytes and converts them itself (auditor.timeconv, connectors.values), so the second copy is pure
    cost: most of the client's time on a large directory. Every other response is decoded by ldap3 as before.
    Replaced on this connection's strategy object only, never in ldap3 itself."""
    strategy = conn.strategy
    decode = strategy.decode_response_fast

    def decode_fast(message: dict[str, Any]) -> dict[str, Any]:
        if message["protocolOp"] != _SEARCH_RESULT_ENTRY:
            return decode(message)  # type: ignore[no-any-return]
        payload = message["payload"]  # [objectName, attributes]; each value a (class, constructed, tag, bytes)
        attributes: dict[str, list[bytes]] = {}
        for attribute in payload[1][3]:
            name = attribute[3][0][3].decode("utf-8", "replace").lower()  # ";range=" stays for ldap3
            attributes.setdefault(name, []).extend([bytes(value[3]) for value in attribute[3][1][3]])
        raw_dn = payload[0][3]
        # ldap3's ranged retrieval (auto_range) edits "member;range=0-1499" in both dictionaries: those keys only.
        return {"type": "searchResEntry", "raw_dn": raw_dn, "dn": raw_dn.decode("utf-8", "replace"),
                "raw_attributes": attributes, "attributes": {k: [] for k in attributes if ";range=" in k}}

    strategy.decode_response_fast = decode_fast


def open_first(config: LdapConfig, password: str | None, redact: Redactor) -> Directory:
    errors = []
    for url in (config.url, *config.urls):
        try:
            return Directory(config, url, password, redact)
        except SourceError as exc:
            errors.append(str(exc))
    raise SourceError("; ".join(errors))
