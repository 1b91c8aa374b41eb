from datetime import UTC, datetime, timedelta

from auditor.model import AccountKind, ChangeAction
from connectors.activedirectory import LAST_LOGON_TIMESTAMP_LAG, AdOptions, map_active_directory, sid_to_string
from connectors.ldif_format import read_ldif
from tests.ldif_fixtures import DOMAIN, b64, domain_head, filetime, group, ldif, pso, sid, user

PEOPLE = f"OU=People,{DOMAIN}"
DA = f"CN=Domain Admins,CN=Users,{DOMAIN}"
ADMINS = f"CN=Administrators,CN=Builtin,{DOMAIN}"
IT = f"CN=IT Admins,CN=Users,{DOMAIN}"
CONTRACTORS = f"CN=Contractors,CN=Users,{DOMAIN}"
PSO_CONTAINER = f"CN=Password Settings Container,CN=System,{DOMAIN}"
LOGON = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def mapped(*records: str):
    entries = list(read_ldif(ldif(*records), []))
    result = map_active_directory("ad", entries)
    return result, {a.username: a for a in result.accounts}


def test_sid_conversion_matches_ms_dtyp() -> None:
    assert sid_to_string(sid(21, 111, 222, 333, 500)) == "S-1-5-21-111-222-333-500"
    assert sid_to_string(sid(32, 544)) == "S-1-5-32-544"


def test_user_account_control_and_filetime_sentinels() -> None:
    _, accounts = mapped(
        user("Alice", "alice", 512, 1, f"lastLogonTimestamp: {filetime(LOGON)}", "accountExpires: 0",
             f"pwdLastSet: {filetime(LOGON - timedelta(days=10))}"),
        user("Bob", "bob", 514, 2, "accountExpires: 9223372036854775807"),
        user("Carol", "carol", 66048, 3, f"accountExpires: {filetime(datetime(2026, 1, 1, tzinfo=UTC))}"),
        user("Kiosk", "kiosk", 544, 4),
        user("Legacy", "legacy", 640, 5),
    )
    alice, bob, carol = accounts["alice"], accounts["bob"], accounts["carol"]
    assert alice.enabled and not bob.enabled
    assert alice.expires_at is None and bob.expires_at is None  # 0 and 0x7FFF... both mean never
    assert carol.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert carol.password_never_expires and not alice.password_never_expires
    assert accounts["kiosk"].password_not_required and not alice.password_not_required
    assert accounts["legacy"].reversible_password_encryption
    assert alice.last_activity_at == LOGON
    assert alice.last_activity_attribute == "lastLogonTimestamp"
    assert alice.activity_lag == LAST_LOGON_TIMESTAMP_LAG
    assert alice.last_activity_raw == str(filetime(LOGON))
    assert alice.password_last_set_at == LOGON - timedelta(days=10)
    assert alice.identifiers["sid"] == "S-1-5-21-111-222-333-2001"
    assert alice.raw["userAccountControl_flags"] == "NORMAL_ACCOUNT"
    assert "DONT_EXPIRE_PASSWORD" in carol.raw["userAccountControl_flags"]


def test_groups_configured_as_privileged_count_whatever_their_sid() -> None:
    """Members of groups with ordinary SIDs only are not privileged, and are not looked at group by group
    (settling skips them); a group configured as privileged, by name or by DN, still makes its members so."""
    records = [domain_head(), group("Helpdesk", 1300), group("Backup Operators Team", 1301),
               user("Alice", "alice", 512, 1, member_of=(f"CN=Helpdesk,CN=Users,{DOMAIN}",)),
               user("Bob", "bob", 512, 2, member_of=(f"CN=Backup Operators Team,CN=Users,{DOMAIN}",))]
    entries = list(read_ldif(ldif(*records), []))
    plain = {a.username: a for a in map_active_directory("ad", entries).accounts}
    assert not plain["alice"].privileged and not plain["bob"].privileged
    assert plain["alice"].privilege_evidence == [] and plain["alice"].groups == ["Helpdesk"]
    configured = AdOptions(extra_privileged_groups=("helpdesk", f"cn=backup operators team,cn=users,{DOMAIN}"))
    marked = {a.username: a for a in map_active_directory("ad", entries, configured).accounts}
    assert marked["alice"].privileged and marked["alice"].privilege_evidence == ["member of Helpdesk"]
    assert marked["bob"].privileged and marked["bob"].privilege_evidence == ["member of Backup Operators Team"]


def test_last_logon_newer_than_timestamp_wins_without_lag() -> None:
    newer = LOGON + timedelta(days=9)
    _, accounts = mapped(
        user("A", "a", 512, 1, f"lastLogonTimestamp: {filetime(LOGON)}", f"lastLogon: {filetime(newer)}"),
        user("B", "b", 512, 2),
    )
    assert accounts["a"].last_activity_at == newer
    assert accounts["a"].last_activity_attribute == "lastLogon"
    assert accounts["a"].activity_lag == timedelta(0)
    # B has neither attribute while the export carries them for others: never logged on.
    assert accounts["b"].activity_known and accounts["b"].last_activity_at is None


def test_export_without_logon_attributes_means_activity_unknown() -> None:
    _, accounts = mapped(user("A", "a", 512, 1), user("B", "b", 512, 2))
    assert not accounts["a"].activity_known
    assert "lastLogonTimestamp" in (accounts["a"].activity_unknown_reason or "")


def test_privilege_from_transitive_membership_by_rid_not_name() -> None:
    records = [
        domain_head(),
        group("Domain Admins", 512, members=(IT,)),
        group("IT Admins", 1200, member_of=(DA,)),  # nested: IT Admins is a member of Domain Admins
        group("Administrators", None, builtin=544, container="CN=Builtin"),
        group("Renamed Admins Group", 519),  # Enterprise Admins by RID, whatever its name
        user("Alice", "alice", 512, 1, member_of=(IT,)),
        user("Bob", "bob", 512, 2, "adminCount: 1"),
        user("Carol", "carol", 512, 3, member_of=(f"CN=Renamed Admins Group,CN=Users,{DOMAIN}",)),
        user("Dan", "dan", 512, 4, "primaryGroupID: 512"),
        user("Eve", "eve", 512, 5, member_of=(ADMINS,)),
    ]
    _, accounts = mapped(*records)
    assert accounts["alice"].privileged
    assert "nested member of Domain Admins" in accounts["alice"].privilege_evidence
    # adminCount alone is evidence of past privilege, not proof of current privilege
    assert not accounts["bob"].privileged and accounts["bob"].privilege_evidence == ["adminCount=1"]
    assert accounts["carol"].privileged and "member of Enterprise Admins" in accounts["carol"].privilege_evidence
    assert accounts["dan"].privileged and accounts["dan"].privilege_evidence == ["primary group Domain Admins"]
    assert accounts["eve"].privileged and "member of Administrators" in accounts["eve"].privilege_evidence


def test_resultant_pso_rules() -> None:
    alice = f"CN=Alice,{PEOPLE}"
    records = [
        domain_head(),
        group("Contractors", 1300),
        pso("Direct", 50, 8, True, (alice,), guid_n=9),
        pso("ViaGroupLow", 10, 6, False, (CONTRACTORS,), guid_n=7),
        pso("ViaGroupTieA", 20, 6, False, (f"CN=Other,CN=Users,{DOMAIN}",), guid_n=1),
        user("Alice", "alice", 512, 1, member_of=(CONTRACTORS,)),  # direct link beats a lower-precedence group
        user("Bob", "bob", 512, 2, member_of=(CONTRACTORS,)),
        user("Carol", "carol", 512, 3),
        user("Dan", "dan", 512, 4, f"msDS-ResultantPSO: CN=Unreadable,{PSO_CONTAINER}"),
    ]
    result, _ = mapped(*records)
    policy_id = {a.username: a.password_policy_id for a in result.accounts}
    assert policy_id["alice"].startswith("cn=direct,")
    assert policy_id["bob"].startswith("cn=viagrouplow,")
    assert policy_id["carol"] == DOMAIN.lower()
    unreadable = result.policies[-1]
    assert policy_id["dan"] == unreadable.id and not unreadable.settings_known
    assert "Domain Admins only" in (unreadable.unknown_reason or "")
    domain = next(p for p in result.policies if p.id == DOMAIN.lower())
    assert domain.min_length == 7 and domain.min_character_classes == 3 and domain.max_age == timedelta(days=42)


def test_pso_precedence_tie_goes_to_smallest_guid() -> None:
    records = [
        group("G", 1300),
        pso("Bigger", 10, 9, False, (f"CN=G,CN=Users,{DOMAIN}",), guid_n=200),
        pso("Smaller", 10, 8, False, (f"CN=G,CN=Users,{DOMAIN}",), guid_n=100),
        user("A", "a", 512, 1, member_of=(f"CN=G,CN=Users,{DOMAIN}",)),
    ]
    _, accounts = mapped(*records)
    assert (accounts["a"].password_policy_id or "").startswith("cn=smaller,")


def test_mapping_in_one_pass_does_not_depend_on_where_groups_and_policies_are() -> None:
    # The export is read as a stream, accounts mapped as they come: users written before the groups that make
    # them privileged and the PSOs that govern them, and without the domain head first, map as in file order.
    alice = f"CN=Alice,{PEOPLE}"
    users = [user("Alice", "alice", 512, 1, f"lastLogonTimestamp: {filetime(LOGON)}", member_of=(IT,)),
             user("Bob", "bob", 512, 2, "primaryGroupID: 512", "adminCount: 1", member_of=(CONTRACTORS,)),
             user("Carol", "carol", 512, 3, "pwdLastSet: soon")]
    others = [domain_head(), group("Domain Admins", 512, members=(IT,)), group("IT Admins", 1200, member_of=(DA,)),
              group("Contractors", 1300), pso("Direct", 50, 8, True, (alice,), guid_n=9),
              pso("ViaGroup", 10, 6, False, (CONTRACTORS,), guid_n=7)]
    first, _ = mapped(*others, *users)
    last = map_active_directory("ad", iter(read_ldif(ldif(*users, *others), [])))
    assert last.accounts == first.accounts and last.change_events == first.change_events
    assert last.policies == first.policies
    assert last.warnings == first.warnings and any("carol" in w.lower() for w in last.warnings)
    accounts = {a.username: a for a in last.accounts}
    assert "nested member of Domain Admins" in accounts["alice"].privilege_evidence
    assert accounts["bob"].privilege_evidence == ["primary group Domain Admins", "adminCount=1"]
    assert (accounts["alice"].password_policy_id or "").startswith("cn=direct,")
    assert (accounts["bob"].password_policy_id or "").startswith("cn=viagroup,")
    assert accounts["bob"].activity_known and accounts["bob"].last_activity_at is None  # the export has logons


def test_nesting_through_a_group_the_export_does_not_hold() -> None:
    # Domain Admins lists a group from another part of the forest as a member (and an account too): an account
    # in that group is a nested member, though the group's own entry is not in the export.
    elsewhere = "CN=Tier0,OU=Elsewhere,DC=other,DC=test"
    users = [user("Alice", "alice", 512, 1, member_of=(elsewhere,)), user("Bob", "bob", 512, 2)]
    _, accounts = mapped(domain_head(), group("Domain Admins", 512, members=(elsewhere, f"CN=Bob,{PEOPLE}")), *users)
    assert accounts["alice"].privilege_evidence == ["nested member of Domain Admins"]


def test_kinds_tombstones_and_creation_events() -> None:
    records = [
        user("Svc", "svc-sql", 66048, 1),
        user("App", "webapp", 512, 2, "servicePrincipalName: HTTP/web.corp.test"),
        user("Human", "hana", 512, 3),
        "\n".join(["dn: CN=WS01,OU=Computers,DC=corp,DC=test", "objectClass: computer", "objectClass: user",
                   "sAMAccountName: WS01$", "userAccountControl: 4096", "whenCreated: 20250101000000.0Z"]) + "\n",
        "\n".join([f"dn: CN=Gone\\0ADEL:{'1' * 8},CN=Deleted Objects,{DOMAIN}", "objectClass: user",
                   "isDeleted: TRUE", f"objectGUID:: {b64(bytes(range(16)))}",
                   "whenChanged: 20260620120000.0Z"]) + "\n",
    ]
    result, accounts = mapped(*records)
    assert accounts["svc-sql"].kind == AccountKind.SERVICE
    assert accounts["webapp"].kind == AccountKind.SERVICE
    assert accounts["hana"].kind == AccountKind.HUMAN
    assert accounts["WS01$"].kind == AccountKind.MACHINE and accounts["WS01$"].password_policy_id is None
    assert "Gone" not in {a.username for a in result.accounts}
    deleted = [e for e in result.change_events if e.action == ChangeAction.DELETED]
    assert len(deleted) == 1 and deleted[0].username == "Gone"
    assert deleted[0].at == datetime(2026, 6, 20, 12, tzinfo=UTC)
    created = [e for e in result.change_events if e.action == ChangeAction.CREATED]
    assert {e.username for e in created} == {"svc-sql", "webapp", "hana", "WS01$"}


def test_unreadable_time_values_become_warnings() -> None:
    result, accounts = mapped(user("A", "a", 512, 1, "lastLogonTimestamp: garbage"))
    assert accounts["a"].last_activity_at is None
    assert not accounts["a"].activity_known  # unreadable is unknown, never "never logged on"
    assert any("unreadable value" in w and "CN=A," in w and "lastLogonTimestamp" in w for w in result.warnings)


def test_last_logon_is_the_latest_over_every_dc() -> None:
    from connectors.ldap import _merge_last_logon
    from connectors.ldif_format import DirectoryEntry

    def entry(guid: bytes, last_logon: int | None) -> DirectoryEntry:
        attributes = {"objectguid": [guid]}
        if last_logon is not None:
            attributes["lastlogon"] = [str(last_logon).encode()]
        return DirectoryEntry(dn="CN=x", attributes=attributes)

    primary = [entry(b"a" * 16, 100), entry(b"b" * 16, 500), entry(b"c" * 16, None)]
    dc2 = [entry(b"a" * 16, 300), entry(b"b" * 16, 200), entry(b"c" * 16, 50)]
    dc3 = [entry(b"a" * 16, 250)]
    _merge_last_logon(primary, [dc2, dc3])
    assert [e.text("lastLogon") for e in primary] == ["300", "500", "50"]


def test_membership_from_groups_member_lists_when_accounts_have_no_member_of() -> None:
    # An export taken without memberOf (ldifde -o memberOf, an attribute list that leaves it out) still names the
    # members in each group's member list: privilege and the policy that applies come from those lists too.
    alice, bob, carol = (f"CN={name},{PEOPLE}" for name in ("Alice", "Bob", "Carol"))
    records = [
        domain_head(),
        user("Alice", "alice", 512, 1),
        group("Domain Admins", 512, members=(IT, bob)),
        group("IT Admins", 1200, members=(alice,)),
        group("Contractors", 1300, members=(carol,)),
        pso("ViaGroup", 10, 6, False, (CONTRACTORS,), guid_n=7),
        user("Bob", "bob", 512, 2),
        user("Carol", "carol", 512, 3, member_of=(IT,)),  # both: memberOf and another group's member list
        user("Dan", "dan", 512, 4),
    ]
    _, accounts = mapped(*records)
    assert accounts["alice"].privilege_evidence == ["nested member of Domain Admins"]
    assert accounts["alice"].groups == ["IT Admins"]
    assert accounts["bob"].privilege_evidence == ["member of Domain Admins"] and accounts["bob"].privileged
    assert accounts["carol"].groups == ["Contractors", "IT Admins"]
    assert accounts["carol"].privilege_evidence == ["nested member of Domain Admins"]
    assert (accounts["carol"].password_policy_id or "").startswith("cn=viagroup,")
    assert not accounts["dan"].privileged and accounts["dan"].groups == []


def test_circular_group_nesting_ends_and_reaches_every_group_of_the_circle() -> None:
    # AD does not forbid A in B in A: each group's closure is worked out once, and a circle ends it.
    a, b, c = (f"CN={n},CN=Users,{DOMAIN}" for n in ("A", "B", "C"))
    _, accounts = mapped(domain_head(), group("A", 1401, member_of=(b,)), group("B", 1402, member_of=(a, DA)),
                         group("C", 1403, members=(a,)), group("Domain Admins", 512),
                         user("Alice", "alice", 512, 1, member_of=(a,)), user("Bob", "bob", 512, 2, member_of=(c,)))
    assert accounts["alice"].privilege_evidence == ["nested member of Domain Admins"]
    assert accounts["alice"].groups == ["A"] and accounts["bob"].privilege_evidence == []
