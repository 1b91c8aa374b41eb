"""Distinguished names compared the way a directory compares them, not as raw strings.

``cn=Standard Policy, ou=Policies, dc=example, dc=com`` and ``CN=standard\\20policy,OU=Policies,DC=example,DC=com``
name the same entry. :func:`dn_key` gives both the same key:

- syntax of RFC 4514 section 3, with the spaces around separators and the ``;`` separator that RFC 2253
  section 4 told parsers to accept, and quoted values;
- escapes decoded (``\\,`` = ``\\2C`` = ``\\2c``; UTF-8 escaped byte by byte), ``#`` hex values BER-decoded;
- attribute types compared case-insensitively, with descriptors and OIDs of the RFC 4514 table as one type;
- values prepared as caseIgnoreMatch does (RFC 4518: NFKC, case folding, insignificant spaces), which is
  the equality rule of every naming attribute seen in practice (cn, ou, o, l, st, dc, uid; RFC 4519);
- the AVAs of a multi-valued RDN compared in any order (RFC 4517 section 4.2.15).

ldap3's ``parse_dn`` is not used: it rejects spaces after commas and OID types and leaves values escaped.
A string that is not a DN at all still gets a key (its lower-cased text), so matching never raises.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_TYPE_ALIASES = {
    "commonname": "cn", "2.5.4.3": "cn", "localityname": "l", "2.5.4.7": "l",
    "stateorprovincename": "st", "2.5.4.8": "st", "organizationname": "o", "2.5.4.10": "o",
    "organizationalunitname": "ou", "2.5.4.11": "ou", "countryname": "c", "2.5.4.6": "c",
    "streetaddress": "street", "2.5.4.9": "street", "domaincomponent": "dc", "0.9.2342.19200300.100.1.25": "dc",
    "userid": "uid", "0.9.2342.19200300.100.1.1": "uid",
}
_HEX = set("0123456789abcdefABCDEF")
_KEY_SPECIALS = str.maketrans({c: "\\" + c for c in '\\,+="<>;#'})


class DnSyntaxError(ValueError):
    pass


_SPECIAL = frozenset('\\"+;')


def _split_avas(dn: str) -> list[list[tuple[str, str, bool]]]:
    """RDNs of (raw type, raw value, value was quoted), split on unescaped, unquoted separators."""
    if _SPECIAL.isdisjoint(dn):  # no escapes, quotes, multi-valued RDNs or ';': most DNs, read by split
        parts = dn.split(",")
        if "=" not in parts[-1] and not parts[-1].strip():
            parts.pop()  # nothing after the last comma, as the general reader reads it
        rdns = []
        for part in parts:
            kind, equals, value = part.partition("=")
            if not equals:
                raise DnSyntaxError(f"no '=' in an attribute of {dn!r}")
            rdns.append([(kind, value, False)])
        return rdns
    return _split_avas_escaped(dn)


def _split_avas_escaped(dn: str) -> list[list[tuple[str, str, bool]]]:
    """The general reader, character by character: escapes, quoted values, '+' and ';'."""
    rdns: list[list[tuple[str, str, bool]]] = []
    avas: list[tuple[str, str, bool]] = []
    kind: list[str] = []
    value: list[str] = []
    in_value = quoted = was_quoted = False
    i = 0
    while i < len(dn):
        char = dn[i]
        if not in_value:
            if char == "=":
                in_value = True
            elif char in ",;+":
                raise DnSyntaxError(f"no '=' in an attribute of {dn!r}")
            else:
                kind.append(char)
        elif quoted:
            if char == "\\" and i + 1 < len(dn):
                value.append(dn[i:i + 2])
                i += 1
            elif char == '"':
                quoted = False
            else:
                value.append("\\" + char if char in '\\,+="<>;#' else char)
        elif char == "\\":
            if i + 1 >= len(dn):
                raise DnSyntaxError(f"{dn!r} ends in an escape")
            step = 3 if dn[i + 1] in _HEX and i + 2 < len(dn) and dn[i + 2] in _HEX else 2
            value.append(dn[i:i + step])
            i += step - 1
        elif char == '"' and not "".join(value).strip():
            quoted = was_quoted = True
            value.clear()
        elif char in ",;+":
            avas.append(("".join(kind), "".join(value), was_quoted))
            kind, value, in_value, was_quoted = [], [], False, False
            if char != "+":
                rdns.append(avas)
                avas = []
        else:
            value.append(char)
        i += 1
    if quoted:
        raise DnSyntaxError(f"unterminated quote in {dn!r}")
    if in_value:
        avas.append(("".join(kind), "".join(value), was_quoted))
        rdns.append(avas)
    elif kind and "".join(kind).strip():
        raise DnSyntaxError(f"no '=' in the last attribute of {dn!r}")
    return rdns


def _unescape(raw: str) -> str:
    """RFC 4514 escapes to text; hex pairs are UTF-8 octets."""
    if "\\" not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == "\\":
            pair = raw[i + 1:i + 3]
            if len(pair) == 2 and all(c in _HEX for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += raw[i + 1:i + 2].encode("utf-8")
            i += 2
            continue
        out += raw[i].encode("utf-8")
        i += 1
    return out.decode("utf-8", "replace")


def _ber_string(hex_text: str) -> str | None:
    """``#`` + the BER encoding of a string value (RFC 4514 section 2.4); None when it is not one."""
    try:
        data = bytes.fromhex(hex_text)
    except ValueError:
        return None
    if len(data) < 2:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            return None
        length, offset = int.from_bytes(data[2:2 + count], "big"), 2 + count
    if len(data) != offset + length:
        return None
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _prepare(value: str) -> str:
    """caseIgnoreMatch preparation (RFC 4518): NFKC, case fold, insignificant spaces removed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _type(raw: str) -> str:
    name = raw.strip().lower()
    if name.startswith("oid."):
        name = name[4:]
    if not name:
        raise DnSyntaxError("empty attribute type")
    return _TYPE_ALIASES.get(name, name)


def _value(raw: str, quoted: bool) -> str:
    text = raw if quoted else raw.strip(" ")
    if not quoted and text.startswith("#"):
        decoded = _ber_string(text[1:])
        return _prepare(decoded) if decoded is not None else "#" + text[1:].lower()  # distinct, never equal text
    return _prepare(_unescape(text))


# A DN of the common naming types whose values are printable ASCII with single inner spaces and nothing to
# escape: its key is its lower-cased text (every step below leaves such a DN as it is, except the case).
_PLAIN_VALUE = r"[!$-*\--:?-\[\]-~]+(?: [!$-*\--:?-\[\]-~]+)*"
_PLAIN_DN = re.compile(rf"(?i:cn|ou|dc|o|l|c|st|uid|street)={_PLAIN_VALUE}"
                       rf"(?:,(?i:cn|ou|dc|o|l|c|st|uid|street)={_PLAIN_VALUE})*")


def dn_key_uncached(dn: str) -> str:
    """The comparison key of a DN: equal keys, same entry. Never raises."""
    if _PLAIN_DN.fullmatch(dn):
        return dn.lower()
    return _general_key(dn)


def _general_key(dn: str) -> str:
    try:
        rdns = _split_avas(dn)
        parts = []
        for rdn in rdns:
            avas = sorted(f"{_type(kind)}={_value(value, quoted).translate(_KEY_SPECIALS)}"
                          for kind, value, quoted in rdn)
            parts.append("+".join(avas))
        return ",".join(parts)
    except DnSyntaxError:
        return _prepare(dn)


# member and memberOf values repeat the same group DNs many times
dn_key = functools.lru_cache(maxsize=1 << 17)(dn_key_uncached)


@functools.lru_cache(maxsize=1 << 16)  # group DNs: the same few thousand, once per member
def first_rdn_value(dn: str) -> str:
    """The first RDN's value as text (``CN=Smith\\, Jo,OU=x`` -> ``Smith, Jo``): a readable name."""
    try:
        rdns = _split_avas(dn)
    except DnSyntaxError:
        return dn
    if not rdns:
        return dn
    _kind, value, quoted = rdns[0][0]
    text = value if quoted else value.strip(" ")
    if not quoted and text.startswith("#"):
        return _ber_string(text[1:]) or text
    return _unescape(text)
