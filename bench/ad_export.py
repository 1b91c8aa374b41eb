"""A deterministic, AD-shaped LDIF export for the scale benchmarks (issue 13's data).

    python -m bench.ad_export OUT.ldif --accounts 1000000 [--drift 0.05] [--seed 1]

Shaped like an ``ldifde`` export of a large domain: the domain head with its password settings, three
fine-grained password policies (PSOs), groups (2,000 at full scale) with about 8 memberships a user, and users
with ~25 attributes each (GUID and SID, UAC, FILETIME logon and password times, GeneralizedTime creation,
UPN, mail, employeeID, servicePrincipalName on service accounts). The same arguments write the same bytes.

``--drift F`` writes the next audit's export of the same organisation: a share F of the accounts changed
(a new logon, disabled, a password reset, or gone, plus as many new accounts), everything else identical.
Written as a stream: memory does not grow with ``--accounts``.
"""

from __future__ import annotations

import argparse
import base64
import random
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

DOMAIN = "DC=scale,DC=test"
DOMAIN_SUBS = (21, 1004336348, 1177238915, 682003330)
AS_OF = datetime(2026, 6, 30, tzinfo=UTC)
MEMBERSHIPS = 8
PSO_NAMES = ("PSO-Admins", "PSO-Service", "PSO-Staff")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sid(rid: int) -> bytes:
    return bytes([1, len(DOMAIN_SUBS) + 1]) + (5).to_bytes(6, "big") + struct.pack("<5I", *DOMAIN_SUBS, rid)


def _filetime(moment: datetime) -> int:
    return int((moment - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10**7


def _generalized(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S.0Z")


def group_count(accounts: int) -> int:
    return max(10, min(2_000, accounts // 50))


def _head(accounts: int) -> Iterator[str]:
    yield (f"dn: {DOMAIN}\nobjectClass: top\nobjectClass: domain\nobjectClass: domainDNS\n"
           f"objectSid:: {_b64(_sid(0)[:-4])}\nminPwdLength: 7\npwdProperties: 1\nmaxPwdAge: -36288000000000\n"
           "minPwdAge: -864000000000\npwdHistoryLength: 24\nlockoutThreshold: 0\n"
           "msDS-LogonTimeSyncInterval: 14\n")
    groups = group_count(accounts)
    for n, name in enumerate(PSO_NAMES):
        yield (f"dn: CN={name},CN=Password Settings Container,CN=System,{DOMAIN}\nobjectClass: top\n"
               f"objectClass: msDS-PasswordSettings\nobjectGUID:: {_b64(uuid.UUID(int=10 + n).bytes_le)}\n"
               f"msDS-PasswordSettingsPrecedence: {10 * (n + 1)}\nmsDS-MinimumPasswordLength: {(15, 24, 10)[n]}\n"
               "msDS-PasswordComplexityEnabled: TRUE\nmsDS-PasswordReversibleEncryptionEnabled: FALSE\n"
               "msDS-PasswordHistoryLength: 24\nmsDS-MaximumPasswordAge: -78624000000000\n"
               "msDS-MinimumPasswordAge: -864000000000\nmsDS-LockoutThreshold: 10\n"
               f"msDS-PSOAppliesTo: CN=Group {n:04d},OU=Groups,{DOMAIN}\n")
    for g in range(groups):
        admins = g == 0
        name = "Domain Admins" if admins else f"Group {g:04d}"
        rid = 512 if admins else 100_000 + g
        yield (f"dn: CN={name},OU=Groups,{DOMAIN}\nobjectClass: top\nobjectClass: group\ncn: {name}\n"
               f"objectSid:: {_b64(_sid(rid))}\n")


def _user(n: int, rng: random.Random, groups: int, drift: float, drift_rng: random.Random) -> str | None:
    """One user; ``drift_rng`` decides (independently of the base data) whether and how it changed."""
    kind = "svc" if n % 97 == 0 else "adm" if n % 991 == 0 else "usr"
    sam = f"{kind}{n:07d}"
    created = AS_OF - timedelta(days=30 + rng.randrange(3_000), seconds=rng.randrange(86_400))
    idle = rng.choice((0, 1, 2, 5, 12, 30, 60, 120, 200, 400, 900))
    last_logon = None if n % 41 == 0 else AS_OF - timedelta(days=idle, seconds=rng.randrange(86_400))
    password_set = AS_OF - timedelta(days=rng.randrange(700), seconds=rng.randrange(86_400))
    uac = 512 | (0x10000 if kind == "svc" else 0) | (2 if n % 13 == 0 else 0)
    member_of = sorted({rng.randrange(1, groups) for _ in range(MEMBERSHIPS)})
    if kind == "adm":
        member_of = [0, *member_of]
    change = drift_rng.random() < drift
    if change:
        what = drift_rng.randrange(4)
        if what == 0:
            return None  # gone (a new account takes its place at the end)
        if what == 1:
            last_logon = AS_OF - timedelta(hours=drift_rng.randrange(1, 48))
        elif what == 2:
            uac |= 2
        else:
            password_set = AS_OF - timedelta(hours=drift_rng.randrange(1, 48))
    lines = [
        f"dn: CN=User {n:07d},OU=People,{DOMAIN}", "objectClass: top", "objectClass: person",
        "objectClass: organizationalPerson", "objectClass: user", f"cn: User {n:07d}", f"sAMAccountName: {sam}",
        f"userPrincipalName: {sam}@scale.test", f"displayName: User {n:07d}", f"mail: {sam}@scale.test",
        f"employeeID: E{n:08d}", f"userAccountControl: {uac}",
        f"objectGUID:: {_b64(uuid.UUID(int=(1 << 64) + n).bytes_le)}", f"objectSid:: {_b64(_sid(200_000 + n))}",
        f"whenCreated: {_generalized(created)}", f"whenChanged: {_generalized(AS_OF - timedelta(days=idle))}",
        f"pwdLastSet: {_filetime(password_set)}", "accountExpires: 9223372036854775807",
        f"uSNChanged: {1_000_000 + n}", "primaryGroupID: 513",
    ]
    if last_logon is not None:
        lines.append(f"lastLogonTimestamp: {_filetime(last_logon)}")
    if kind == "svc":
        lines.append(f"servicePrincipalName: HTTP/app{n}.scale.test")
    if kind == "adm":
        lines.append("adminCount: 1")
    lines += [f"memberOf: CN={'Domain Admins' if g == 0 else f'Group {g:04d}'},OU=Groups,{DOMAIN}" for g in member_of]
    return "\n".join(lines) + "\n"


def records(accounts: int, *, seed: int = 1, drift: float = 0.0) -> Iterator[str]:
    """The export's records, in order. The base data depends on ``seed`` only; drift on its own stream."""
    yield from _head(accounts)
    groups = group_count(accounts)
    rng, drift_rng = random.Random(seed), random.Random(seed * 7919 + 1)
    gone = 0
    for n in range(accounts):
        record = _user(n, rng, groups, drift, drift_rng)
        if record is None:
            gone += 1
        else:
            yield record
    new_rng = random.Random(seed * 104_729 + 3)
    for n in range(accounts, accounts + gone):  # the newcomers that replace the leavers
        record = _user(n, new_rng, groups, 0.0, new_rng)
        if record is not None:
            yield record


def write(path: Path, accounts: int, *, seed: int = 1, drift: float = 0.0) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("version: 1\n\n")
        for record in records(accounts, seed=seed, drift=drift):
            out.write(record)
            out.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--drift", type=float, default=0.0, help="share of accounts changed (0.05: 5%%)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write(args.output, args.accounts, seed=args.seed, drift=args.drift)
    print(f"{args.output}: {args.accounts} accounts, drift {args.drift:g}, {args.output.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
