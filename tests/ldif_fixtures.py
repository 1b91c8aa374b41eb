"""Hand-built directory fixtures shared by the connector and rule tests."""

from __future__ import annotations

import base64
import struct
import uuid
from datetime import UTC, datetime

DOMAIN = "DC=corp,DC=test"
DOMAIN_SUBS = (21, 111, 222, 333)
AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


def sid(*subs: int, authority: int = 5) -> bytes:
    return bytes([1, len(subs)]) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode("utf-8") if isinstance(data, str) else data).decode("ascii")


def filetime(moment: datetime) -> int:
    return (int(moment.timestamp()) + 11644473600) * 10**7


def guid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def user(cn: str, sam: str, uac: int, n: int, *extra: str, member_of: tuple[str, ...] = ()) -> str:
    lines = [
        f"dn: CN={cn},OU=People,{DOMAIN}",
        "objectClass: top", "objectClass: person", "objectClass: organizationalPerson", "objectClass: user",
        f"sAMAccountName: {sam}", f"userAccountControl: {uac}",
        f"objectGUID:: {b64(guid(n).bytes_le)}", f"objectSid:: {b64(sid(*DOMAIN_SUBS, 2000 + n))}",
        "whenCreated: 20240101000000.0Z",
        *extra, *(f"memberOf: {g}" for g in member_of),
    ]
    return "\n".join(lines) + "\n"


def group(cn: str, rid: int | None, *, builtin: int | None = None, members: tuple[str, ...] = (),
          member_of: tuple[str, ...] = (), container: str = "CN=Users") -> str:
    group_sid = sid(32, builtin) if builtin else sid(*DOMAIN_SUBS, rid or 0)
    lines = [f"dn: CN={cn},{container},{DOMAIN}", "objectClass: top", "objectClass: group",
             f"objectSid:: {b64(group_sid)}", *(f"member: {m}" for m in members),
             *(f"memberOf: {g}" for g in member_of)]
    return "\n".join(lines) + "\n"


def domain_head(min_length: int = 7, props: int = 1, max_age: int = -36288000000000) -> str:
    return "\n".join([
        f"dn: {DOMAIN}", "objectClass: domainDNS", f"objectSid:: {b64(sid(*DOMAIN_SUBS))}",
        f"minPwdLength: {min_length}", f"pwdProperties: {props}", f"maxPwdAge: {max_age}",
        "pwdHistoryLength: 24", "lockoutThreshold: 0",
    ]) + "\n"


def pso(cn: str, precedence: int, min_length: int, complexity: bool, applies_to: tuple[str, ...],
        guid_n: int, reversible: bool = False) -> str:
    return "\n".join([
        f"dn: CN={cn},CN=Password Settings Container,CN=System,{DOMAIN}",
        "objectClass: msDS-PasswordSettings", f"objectGUID:: {b64(guid(guid_n).bytes_le)}",
        f"msDS-PasswordSettingsPrecedence: {precedence}", f"msDS-MinimumPasswordLength: {min_length}",
        f"msDS-PasswordComplexityEnabled: {'TRUE' if complexity else 'FALSE'}",
        f"msDS-PasswordReversibleEncryptionEnabled: {'TRUE' if reversible else 'FALSE'}",
        "msDS-PasswordHistoryLength: 12", "msDS-MaximumPasswordAge: -9223372036854775808",
        "msDS-LockoutThreshold: 5", *(f"msDS-PSOAppliesTo: {a}" for a in applies_to),
    ]) + "\n"


def ldif(*records: str) -> bytes:
    return ("version: 1\n\n" + "\n".join(records)).encode("utf-8")
