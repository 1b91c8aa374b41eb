"""The embedded demo: a fictional organisation's exports, config and history, built on the fly.

Everything goes through the real code paths: the exports are real LDIF (base64, binary SIDs, folded
lines), Graph JSON pages and CSV; the config is TOML parsed by the real loader; the history is built by
auditing the organisation as it was 12, 8 and 4 weeks earlier. Deterministic for a given ``as_of``.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from auditor.config import Config, load_config
from auditor.engine import AuditResult, record, run_audit
from auditor.history import History
from auditor.model import ReviewDecision
from auditor.policy_rating import PolicyRater
from auditor.timeconv import FILETIME_NEVER, to_filetime, to_iso

ORGANIZATION = "Northwind Traders"
DOMAIN_DN = "DC=northwind,DC=example"
DOMAIN_SID = (1004336348, 1177238915, 682003330)
MAIL_DOMAIN = "northwind.example"
ALIAS_DOMAIN = "northwind-traders.example"  # the old brand: some SaaS logins still use it
_USERS = f"OU=Staff,{DOMAIN_DN}"
_PSO_CONTAINER = f"CN=Password Settings Container,CN=System,{DOMAIN_DN}"
_NON_ASCII = ["Zoë Müller", "José Núñez", "Ærin Østergaard", "Björk Guðmundsdóttir", "Łukasz Wąsik", "李雷"]


# ---------- LDIF writing (RFC 2849: base64 for unsafe values, folding at 76 columns) ----------


def _safe(value: bytes) -> bool:
    if not value:
        return True
    if value[0] in b" :<" or value.endswith(b" "):
        return False
    return all(0x01 <= b <= 0x7F and b not in (0x0A, 0x0D) for b in value)


def ldif_line(attribute: str, value: str | bytes) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    line = f"{attribute}: {data.decode('ascii')}" if _safe(data) else f"{attribute}:: {base64.b64encode(data).decode()}"
    if len(line) <= 76:
        return line
    parts = [line[:76]] + [" " + line[i : i + 75] for i in range(76, len(line), 75)]
    return "\n".join(parts)


def ldif_entry(dn: str, attributes: list[tuple[str, str | bytes]]) -> str:
    return "\n".join([ldif_line("dn", dn), *(ldif_line(a, v) for a, v in attributes)]) + "\n"


def binary_sid(rid: int | None, builtin: int | None = None) -> bytes:
    subs = (32, builtin) if builtin is not None else (21, *DOMAIN_SID, *((rid,) if rid is not None else ()))
    return bytes([1, len(subs)]) + (5).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def _gt(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S.0Z")


# ---------- the organisation ----------


@dataclass
class Person:
    index: int
    username: str
    display_name: str
    hired: datetime
    left: datetime | None = None
    disabled: datetime | None = None  # directory account disabled (None: never, even if they left)
    deleted: datetime | None = None
    dormant_since: datetime | None = None  # stopped signing in without leaving
    never_signs_in: bool = False
    groups: list[str] = field(default_factory=list)
    in_cloud: bool = True
    in_saas: bool = False
    saas_deactivated: datetime | None = None
    uac_extra: int = 0
    expires: datetime | None = None

    @property
    def guid(self) -> uuid.UUID:
        return uuid.UUID(int=0x6E77 << 112 | self.index)

    def last_sign_in(self, at: datetime) -> datetime | None:
        if self.never_signs_in or self.hired > at:
            return None
        end = min(t for t in (at, self.left, self.dormant_since) if t is not None)
        jitter = random.Random(f"{self.index}-{at.date()}").uniform(0, 6 * 86_400)
        return max(self.hired + timedelta(hours=2), end - timedelta(seconds=jitter))

    def enabled_at(self, at: datetime) -> bool:
        return self.disabled is None or self.disabled > at


def _people(as_of: datetime) -> list[Person]:
    rng = random.Random(20261122)
    given = [n.capitalize() for n in FREQUENCY_LISTS["female_names"][:120] + FREQUENCY_LISTS["male_names"][:120]]
    surnames = [n.capitalize() for n in FREQUENCY_LISTS["surnames"][:300]]
    people: list[Person] = []
    used: set[str] = set()
    for index in range(240):
        first, last = rng.choice(given), rng.choice(surnames)
        display = _NON_ASCII[index // 40] if index % 40 == 7 else f"{first} {last}"
        base = (first[0] + last).lower() if index % 40 != 7 else f"intl{index}"
        username = base if base not in used else f"{base}{index}"
        used.add(username)
        hired = as_of - timedelta(days=rng.randint(130, 2400), hours=rng.randint(0, 23))
        person = Person(index, username, display, hired, groups=["Staff"])
        if index < 14:  # recent joiners; the last four are still inside the grace period and never signed in
            person.hired = as_of - timedelta(days=[110, 100, 92, 80, 66, 52, 40, 33, 25, 20, 10, 6, 4, 2][index])
            person.never_signs_in = index >= 10
        elif index < 44:  # leavers
            person.left = as_of - timedelta(days=rng.randint(5, 300))
            if index < 38:  # most are disabled within days of leaving; six never are
                person.disabled = person.left + timedelta(days=rng.randint(0, 5))
                if index % 7 == 0:
                    person.deleted = person.disabled + timedelta(days=30)
            person.saas_deactivated = person.left + timedelta(days=rng.randint(3, 40)) if index % 3 else None
        elif index < 59:  # dormant but enabled
            person.dormant_since = as_of - timedelta(days=rng.randint(100, 500))
        elif index < 65:  # never signed in, long past the grace period
            person.never_signs_in = True
            person.hired = as_of - timedelta(days=rng.randint(30, 200))
        if 80 <= index < 105:
            person.groups.append("Contractors")
            if index == 81:
                person.expires = as_of - timedelta(days=12)  # contract ended, account expired but enabled
        if 105 <= index < 125:
            person.groups.append("Finance")
        person.in_cloud = index % 10 < 7
        person.in_saas = index % 2 == 0
        people.append(person)
    return people


def _special_accounts(as_of: datetime) -> list[Person]:
    """Administrators, service and odd accounts: where the interesting findings live."""
    long_ago = as_of - timedelta(days=1500)
    specials = [
        Person(1000, "Administrator", "Administrator", long_ago, dormant_since=as_of - timedelta(days=220),
               groups=["Domain Admins"], in_cloud=False),
        Person(1001, "bg-admin", "Break-glass administrator", long_ago, dormant_since=as_of - timedelta(days=400),
               groups=["Domain Admins"], in_cloud=False),
        Person(1002, "adm-jsmith", "John Smith (admin)", long_ago, groups=["Domain Admins"], in_cloud=False),
        Person(1003, "adm-mchen", "Mei Chen (admin)", long_ago, groups=["Domain Admins"], in_cloud=False),
        Person(1004, "adm-old", "Former admin account", long_ago, dormant_since=as_of - timedelta(days=160),
               groups=["Domain Admins"], in_cloud=False),
        Person(1005, "kiosk", "Lobby kiosk", long_ago, uac_extra=0x20, in_cloud=False),
        Person(1006, "legacy-app", "Legacy app login", long_ago, uac_extra=0x80, in_cloud=False),
    ]
    for offset, name in enumerate(["svc-backup", "svc-sql", "svc-web", "svc-legacy", "svc-scan"]):
        specials.append(Person(
            1010 + offset, name, f"Service account {name[4:]}", long_ago, uac_extra=0x10000, in_cloud=False,
            dormant_since=as_of - timedelta(days=300) if name == "svc-legacy" else None,
        ))
    return specials


# ---------- exports at a point in time ----------


def _ad_export(people: list[Person], at: datetime) -> str:
    entries = [ldif_entry(DOMAIN_DN, [
        ("objectClass", "top"), ("objectClass", "domain"), ("objectClass", "domainDNS"),
        ("dc", "northwind"), ("objectSid", binary_sid(None)),
        ("minPwdLength", "7"), ("pwdProperties", "1"), ("maxPwdAge", str(-42 * 864_000_000_000)),
        ("minPwdAge", str(-864_000_000_000)), ("pwdHistoryLength", "24"), ("lockoutThreshold", "0"),
    ])]
    psos = [
        ("PSO-Contractors", "20", "6", "FALSE", str(-(2**63)), [f"CN=Contractors,{_USERS}"]),
        ("PSO-Admins", "10", "24", "TRUE", str(-90 * 864_000_000_000), [f"CN=Domain Admins,CN=Users,{DOMAIN_DN}"]),
    ]
    for number, (name, precedence, length, complexity, max_age, targets) in enumerate(psos):
        entries.append(ldif_entry(f"CN={name},{_PSO_CONTAINER}", [
            ("objectClass", "msDS-PasswordSettings"), ("objectGUID", uuid.UUID(int=0xB5 << 112 | number).bytes_le),
            ("msDS-PasswordSettingsPrecedence", precedence), ("msDS-MinimumPasswordLength", length),
            ("msDS-PasswordComplexityEnabled", complexity), ("msDS-PasswordReversibleEncryptionEnabled", "FALSE"),
            ("msDS-PasswordHistoryLength", "12"), ("msDS-MaximumPasswordAge", max_age),
            ("msDS-MinimumPasswordAge", "0"), ("msDS-LockoutThreshold", "10"),
            ("msDS-LockoutDuration", str(-18_000_000_000)), ("msDS-LockoutObservationWindow", str(-18_000_000_000)),
            *(("msDS-PSOAppliesTo", t) for t in targets),
        ]))
    group_dns = {
        "Domain Admins": (f"CN=Domain Admins,CN=Users,{DOMAIN_DN}", 512),
        "Staff": (f"CN=Staff,{_USERS}", 1101), "Contractors": (f"CN=Contractors,{_USERS}", 1102),
        "Finance": (f"CN=Finance,{_USERS}", 1103),
    }
    for name, (dn, rid) in group_dns.items():
        entries.append(ldif_entry(dn, [
            ("objectClass", "top"), ("objectClass", "group"), ("cn", name), ("objectSid", binary_sid(rid)),
            ("groupType", "-2147483646"),
        ]))
    used: set[str] = set()
    dns: dict[int, str] = {}
    for person in people:
        if person.hired > at:
            continue
        # CN is unique within a container: a second "Robin Santiago" is named as an admin would name them.
        cn = person.display_name if person.display_name not in used else f"{person.display_name} ({person.username})"
        used.add(cn)
        if not (person.deleted and person.deleted <= at):
            dns[person.index] = f"CN={cn},{_USERS}"
    for person in people:
        if person.hired > at:
            continue
        dn = dns.get(person.index, "")
        if person.deleted and person.deleted <= at:
            entries.append(ldif_entry(f"CN={person.display_name}\\0ADEL:{person.guid},CN=Deleted Objects,{DOMAIN_DN}", [
                ("objectClass", "user"), ("isDeleted", "TRUE"), ("objectGUID", person.guid.bytes_le),
                ("sAMAccountName", person.username), ("whenChanged", _gt(person.deleted)),
            ]))
            continue
        uac = 0x200 | person.uac_extra | (0 if person.enabled_at(at) else 0x2)
        last = person.last_sign_in(at)
        attrs: list[tuple[str, str | bytes]] = [
            ("objectClass", "top"), ("objectClass", "person"), ("objectClass", "organizationalPerson"),
            ("objectClass", "user"), ("cn", person.display_name), ("displayName", person.display_name),
            ("sAMAccountName", person.username), ("userPrincipalName", f"{person.username}@{MAIL_DOMAIN}"),
            ("mail", f"{person.username}@{MAIL_DOMAIN}"), ("objectGUID", person.guid.bytes_le),
            ("objectSid", binary_sid(5000 + person.index)), ("userAccountControl", str(uac)),
            ("whenCreated", _gt(person.hired)), ("primaryGroupID", "513"),
            ("pwdLastSet", str(to_filetime(max(person.hired, (last or person.hired) - timedelta(days=30))))),
            ("accountExpires", str(to_filetime(person.expires) if person.expires else
                                   (FILETIME_NEVER if person.index % 2 else 0))),
        ]
        if last is not None:
            attrs.append(("lastLogonTimestamp", str(to_filetime(last))))
        if person.username.startswith("svc-") and person.username != "svc-legacy":
            attrs.append(("servicePrincipalName", f"MSSQLSvc/{person.username[4:]}.{MAIL_DOMAIN}:1433"))
        if "Domain Admins" in person.groups:
            attrs.append(("adminCount", "1"))
        attrs.extend(("memberOf", group_dns[g][0]) for g in person.groups)
        lead = person.index - person.index % 12  # teams of twelve, each led by its first member
        if lead != person.index and lead in dns and not person.username.startswith(("svc-", "bg-")):
            attrs.append(("manager", dns[lead]))
        entries.append(ldif_entry(dn, attrs))
    for number in range(8):
        created = at - timedelta(days=900 - number)
        entries.append(ldif_entry(f"CN=WS{number:03d},OU=Workstations,{DOMAIN_DN}", [
            ("objectClass", "computer"), ("objectClass", "user"), ("sAMAccountName", f"WS{number:03d}$"),
            ("userAccountControl", "4096"), ("objectGUID", uuid.UUID(int=0xC0 << 112 | number).bytes_le),
            ("whenCreated", _gt(created)), ("lastLogonTimestamp", str(to_filetime(at - timedelta(days=number * 3)))),
        ]))
    return "version: 1\n\n# Northwind Traders: ldifde export (demo data)\n" + "\n".join(entries)


# Microsoft 365 E3 and E5, as GET /subscribedSkus names them (Microsoft's "Product names and service plan
# identifiers for licensing" lists these skuIds).
_SKUS = {"SPE_E3": "05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E5": "06ebc4ee-1bb5-47dd-8120-11324bc54e06"}


def _licence(part_number: str) -> list[dict[str, object]]:
    return [{"disabledPlans": [], "skuId": _SKUS[part_number]}]


def _subscribed_skus() -> dict[str, object]:
    return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscribedSkus", "value": [
        {"capabilityStatus": "Enabled", "consumedUnits": 0, "id": f"00000000-0000-0000-0000-000000000000_{sku_id}",
         "prepaidUnits": {"enabled": 500, "suspended": 0, "warning": 0}, "skuId": sku_id, "skuPartNumber": part,
         "appliesTo": "User", "servicePlans": []} for part, sku_id in _SKUS.items()]}


def _graph_users(people: list[Person], at: datetime) -> list[dict[str, object]]:
    pages: list[dict[str, object]] = []
    users: list[dict[str, object]] = []
    for person in people:
        if not person.in_cloud or person.hired > at or (person.deleted and person.deleted <= at):
            continue
        last = person.last_sign_in(at)
        sid = "S-1-5-21-" + "-".join(map(str, DOMAIN_SID)) + f"-{5000 + person.index}"
        users.append({
            "id": str(uuid.UUID(int=0xE0 << 112 | person.index)),
            "userPrincipalName": f"{person.username}@{MAIL_DOMAIN}", "mail": f"{person.username}@{MAIL_DOMAIN}",
            "displayName": person.display_name, "accountEnabled": person.enabled_at(at), "userType": "Member",
            "createdDateTime": to_iso(person.hired), "onPremisesSyncEnabled": True,
            "onPremisesSecurityIdentifier": sid, "passwordPolicies": "None",
            "assignedLicenses": _licence("SPE_E5" if person.index % 9 == 0 else "SPE_E3"),
            "signInActivity": {"lastSuccessfulSignInDateTime": to_iso(last),
                               "lastSignInDateTime": to_iso(last), "lastNonInteractiveSignInDateTime": None},
        })
    rng = random.Random(99)
    for number in range(40):  # cloud-only members and guests
        guest = number >= 22
        created = at - timedelta(days=60 + number * 11)
        if created > at:
            continue
        pending = guest and number % 6 == 0
        last = None if pending or number == 5 else at - timedelta(days=rng.choice([1, 3, 9, 40, 130, 210]))
        name = f"guest{number}" if guest else f"cloud{number}"
        no_expiry = "DisablePasswordExpiration"
        policies = {3: "DisableStrongPassword", 1: no_expiry, 2: no_expiry}.get(number)
        users.append({
            "id": str(uuid.UUID(int=0xE1 << 112 | number)),
            "userPrincipalName": (f"{name}_partner.example#EXT#@northwind.onmicrosoft.com" if guest
                                  else f"{name}@{MAIL_DOMAIN}"),
            "mail": f"{name}@partner.example" if guest else f"{name}@{MAIL_DOMAIN}",
            "displayName": f"Partner user {number}" if guest else f"Cloud user {number}",
            "accountEnabled": True, "userType": "Guest" if guest else "Member",
            "externalUserState": ("PendingAcceptance" if pending else "Accepted") if guest else None,
            "createdDateTime": to_iso(created), "onPremisesSyncEnabled": None, "passwordPolicies": policies,
            "assignedLicenses": [] if guest else _licence("SPE_E3"),
            "signInActivity": {"lastSuccessfulSignInDateTime": to_iso(last), "lastSignInDateTime": to_iso(last)},
        })
    for start in range(0, len(users), 100):
        page: dict[str, object] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
                                   "value": users[start : start + 100]}
        if start + 100 < len(users):
            page["@odata.nextLink"] = f"https://graph.microsoft.com/v1.0/users?$skiptoken=demo{start + 100}"
        pages.append(page)
    return pages


def _graph_audits(users: list[dict[str, object]], at: datetime, as_of: datetime) -> dict[str, object]:
    """30 days of directory audits before ``at`` (the P1/P2 retention), with a mass reset 9 days before as_of."""
    records = []
    ids = [(str(u["id"]), str(u["userPrincipalName"])) for u in users]
    day = at - timedelta(days=30)
    activities = ["Update user", "Reset password (self-service)", "Change user license", "Add member to group",
                  "Add user", "Disable account", "Change password (self-service)"]
    while day < at:
        rng = random.Random(f"audit-{day.date()}")
        count = rng.randint(0, 2) if day.weekday() >= 5 else rng.randint(2, 6)
        if day.date() == (as_of - timedelta(days=9)).date():
            count = 0
            for n in range(38):
                target = ids[(n * 7) % len(ids)]
                records.append(_audit(f"{day.date()}-spike-{n}", day + timedelta(minutes=9 * 60 + n), target,
                                      "Reset password (by admin)", "helpdesk-automation@northwind.example"))
        for n in range(count):
            target = ids[rng.randrange(len(ids))]
            records.append(_audit(f"{day.date()}-{n}", day + timedelta(hours=rng.randint(8, 18), minutes=n),
                                  target, rng.choice(activities), "it-ops@northwind.example"))
        day += timedelta(days=1)
    return {"value": [r for r in records if str(r["activityDateTime"]) <= (to_iso(at) or "")]}


def _audit(ident: str, when: datetime, target: tuple[str, str], activity: str, actor: str) -> dict[str, object]:
    return {
        "id": f"Directory_{ident}", "category": "UserManagement", "result": "success",
        "activityDisplayName": activity, "activityDateTime": to_iso(when), "loggedByService": "Core Directory",
        "initiatedBy": {"user": {"userPrincipalName": actor}},
        "targetResources": [{"id": target[0], "type": "User", "userPrincipalName": target[1]}],
    }


def _saas_csv(people: list[Person], at: datetime) -> str:
    lines = ["User ID,Login,Full Name,Status,Last Login,Created,Type,Is Admin,MFA,MFA Enforced"]
    for person in people:
        if not person.in_saas or person.hired > at:
            continue
        active = person.saas_deactivated is None or person.saas_deactivated > at
        last = person.last_sign_in(at)
        if person.left and not person.saas_deactivated and person.index % 4 == 2:
            last = at - timedelta(days=2)  # a leaver's SaaS login still in use
        name = person.display_name.replace('"', "")
        login = (f"{person.username.upper()}@{ALIAS_DOMAIN}" if person.index % 4 == 0
                 else f"{person.username}@{MAIL_DOMAIN}")
        lines.append(",".join([
            f"U{person.index:05d}", login, f'"{name}"',
            "Active" if active else "Deactivated", to_iso(last) or "", to_iso(person.hired) or "", "User",
            "yes" if person.index % 50 == 0 else "no", "yes" if person.index % 3 else "no",
            "no" if person.index % 11 == 0 else "yes",
        ]))
    for number, name in enumerate(["api-bot", "sync-bot"]):
        lines.append(f"B{number:04d},{name}@{MAIL_DOMAIN},{name},Active,{to_iso(at - timedelta(hours=3))},"
                     f"{to_iso(at - timedelta(days=700))},Bot,no,no,no")
    # Signed in through the SSO bridge, which the app does not log: their activity is unknown, never "unused".
    for number in range(2):
        lines.append(f"S{number:04d},sso-kiosk{number}@{MAIL_DOMAIN},SSO kiosk {number},Active,not tracked (SSO),"
                     f"{to_iso(at - timedelta(days=300))},User,no,no,no")
    # Accounts nobody in the directory owns: a private address, and an agency login.
    for number, (login, name) in enumerate([("kim.tempwork@gmail.example", "Kim (temp)"),
                                            ("events-agency@partner.example", "Events agency")]):
        lines.append(f"X{number:04d},{login},{name},Active,{to_iso(at - timedelta(days=9 + number))},"
                     f"{to_iso(at - timedelta(days=200))},User,no,no,no")
    return "\n".join(lines) + "\n"


def _write_exports(directory: Path, people: list[Person], at: datetime, as_of: datetime) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "corp-ad.ldif").write_text(_ad_export(people, at), encoding="utf-8")
    pages = _graph_users(people, at)
    (directory / "entra-users.json").write_text(json.dumps(pages, indent=1), encoding="utf-8")
    users = [u for page in pages for u in page["value"]]  # type: ignore[attr-defined]
    (directory / "entra-audits.json").write_text(json.dumps(_graph_audits(users, at, as_of)), encoding="utf-8")
    mfa = {"value": [{"id": u["id"], "isMfaRegistered": int(str(u["id"])[-2:], 16) % 7 != 0} for u in users]}
    (directory / "entra-mfa.json").write_text(json.dumps(mfa), encoding="utf-8")
    (directory / "entra-skus.json").write_text(json.dumps(_subscribed_skus(), indent=1), encoding="utf-8")
    (directory / "salesapp-users.csv").write_text(_saas_csv(people, at), encoding="utf-8")


def _config_text(directory: Path, history: Path, as_of: datetime) -> str:
    exclusion_ok = (as_of + timedelta(days=180)).date().isoformat()
    exclusion_expired = (as_of - timedelta(days=20)).date().isoformat()
    return f"""
[audit]
organization = "{ORGANIZATION}"
inactive_days = 90
new_account_grace_days = 14
period_days = 30
history_db = "{history.as_posix()}"

[[sources]]
name = "corp-ad"
type = "ldif"
path = "{(directory / 'corp-ad.ldif').as_posix()}"

[[sources]]
name = "entra"
type = "graph-json"
users_file = "{(directory / 'entra-users.json').as_posix()}"
audits_file = "{(directory / 'entra-audits.json').as_posix()}"
registration_details_file = "{(directory / 'entra-mfa.json').as_posix()}"
subscribed_skus_file = "{(directory / 'entra-skus.json').as_posix()}"
[sources.cost]
currency = "EUR"
per_sku = {{ SPE_E3 = 33.75, SPE_E5 = 54.75 }}  # per licence and month; unlicensed guests cost nothing

[[sources]]
name = "salesapp"
type = "csv"
path = "{(directory / 'salesapp-users.csv').as_posix()}"
inactive_days = 60
activity_attribute = "Last Login"
kind_map = {{ User = "human", Bot = "bot" }}
[sources.cost]
currency = "EUR"
per_account_month = 25.0
per_kind = {{ bot = 0.0 }}
[sources.columns]
id = "User ID"
username = "Login"
display_name = "Full Name"
enabled = "Status"
last_activity_at = "Last Login"
created_at = "Created"
kind = "Type"
privileged = "Is Admin"
mfa_registered = "MFA"
mfa_enforced = "MFA Enforced"

[identity]
authoritative_source = "corp-ad"
keys = ["sid", "immutable_id", "employee_id", "email"]
domain_aliases = [["{MAIL_DOMAIN}", "{ALIAS_DOMAIN}"]]
service_accounts = ["svc-*"]

[[review.owners]]
owner = "security@{MAIL_DOMAIN}"
group = "Domain Admins"

[[review.owners]]
owner = "cloud-admins@{MAIL_DOMAIN}"
source = "entra"

[[review.owners]]
owner = "sales-ops@{MAIL_DOMAIN}"
source = "salesapp"

[[exclusions]]
username = "bg-*"
source = "corp-ad"
reason = "Break-glass account: sealed-envelope procedure, reviewed quarterly"
expires = {exclusion_ok}

[[exclusions]]
username = "svc-legacy"
source = "corp-ad"
rules = ["inactive-enabled"]
reason = "Legacy ERP interface, decommissioning planned"
expires = {exclusion_expired}
"""


def _seed_review(history: History, config: Config, result: AuditResult, at: datetime) -> None:
    """An access review of the audit 8 weeks ago: half the reviewers answered within a week, revoking the
    inactive accounts they were shown (which nobody has disabled since) and keeping the rest."""
    from auditor.reviews import plan

    campaign = plan(result, "manager", config.review.owners, at + timedelta(days=1)).campaign
    history.record_campaign(campaign)
    inactive = {(f.source, f.subject.id) for f in result.open_findings() if f.rule == "inactive-enabled"}
    accounts = {(a.source, a.id): a for a in result.inventory.accounts}
    for packet in campaign.packets[::2]:
        history.record_decisions(campaign.id, packet.id, [
            ReviewDecision(source, account_id, accounts[(source, account_id)].username,
                           "revoke" if (source, account_id) in inactive else "keep",
                           "not used for months" if (source, account_id) in inactive else "",
                           at + timedelta(days=7))
            for source, account_id, _username in packet.accounts])


def prepare_demo(workdir: Path, as_of: datetime) -> Config:
    """Write the demo exports and config under ``workdir``, seed history, return the config to audit."""
    as_of_people = _people(as_of) + _special_accounts(as_of)
    history_path = workdir / "history.sqlite"
    rater = PolicyRater(ORGANIZATION, 3, as_of.year)
    history = History(history_path)
    try:
        for weeks in (12, 8, 4):
            at = as_of - timedelta(weeks=weeks)
            directory = workdir / f"exports-{at:%Y%m%d}"
            _write_exports(directory, as_of_people, at, as_of)
            (directory / "demo.toml").write_text(_config_text(directory, history_path, as_of), encoding="utf-8")
            config = load_config(directory / "demo.toml")
            result = run_audit(config, at, history, rater=rater)
            record(history, result)
            if weeks == 8:
                _seed_review(history, config, result, at)
    finally:
        history.close()
    directory = workdir / f"exports-{as_of:%Y%m%d}"
    _write_exports(directory, as_of_people, as_of, as_of)
    (directory / "demo.toml").write_text(_config_text(directory, history_path, as_of), encoding="utf-8")
    return load_config(directory / "demo.toml")
