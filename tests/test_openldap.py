from datetime import UTC, datetime, timedelta

from connectors.ldif_format import read_ldif
from connectors.openldap import OpenLdapOptions, map_openldap

BASE = "dc=example,dc=org"


def person(uid: str, *extra: str) -> str:
    return "\n".join([f"dn: uid={uid},ou=people,{BASE}", "objectClass: inetOrgPerson", f"uid: {uid}",
                      f"cn: {uid.title()}", "sn: X", f"entryUUID: 00000000-0000-0000-0000-{len(uid):012d}",
                      "createTimestamp: 20250101000000Z", *extra]) + "\n"


POLICY = "\n".join([f"dn: cn=default,ou=policies,{BASE}", "objectClass: pwdPolicy", "objectClass: namedPolicy",
                    "cn: default", "pwdAttribute: userPassword", "pwdMinLength: 12", "pwdCheckQuality: 2",
                    "pwdMaxAge: 7776000", "pwdInHistory: 5", "pwdLockout: TRUE", "pwdMaxFailure: 5"]) + "\n"
UNCHECKED = "\n".join([f"dn: cn=unchecked,ou=policies,{BASE}", "objectClass: pwdPolicy", "cn: unchecked",
                       "pwdAttribute: userPassword", "pwdMinLength: 12"]) + "\n"
ADMINS = "\n".join([f"dn: cn=admins,ou=groups,{BASE}", "objectClass: groupOfNames", "cn: admins",
                    f"member: uid=root1,ou=people,{BASE}"]) + "\n"


def mapped(*records: str, default_policy: str | None = None):
    entries = list(read_ldif("\n".join(records).encode(), []))
    options = OpenLdapOptions(default_policy_dn=default_policy, privileged_groups=("admins",))
    result = map_openldap("ol", entries, options)
    return result, {a.username: a for a in result.accounts}


def test_lock_states_and_activity() -> None:
    _, accounts = mapped(
        person("locked", "pwdAccountLockedTime: 000001010000Z", "authTimestamp: 20260101000000Z"),
        person("templock", "pwdAccountLockedTime: 20260620000000Z"),
        person("nologin", "objectClass: posixAccount", "loginShell: /usr/sbin/nologin"),
        person("active", "authTimestamp: 20260601120000Z", "pwdLastSuccess: 20260610120000Z"),
        person("never"),
    )
    assert not accounts["locked"].enabled
    assert "permanent lock" in accounts["locked"].raw["disabled_by"]
    assert accounts["templock"].enabled  # a timed lockout ends by itself
    assert not accounts["nologin"].enabled
    assert accounts["active"].last_activity_at == datetime(2026, 6, 10, 12, tzinfo=UTC)
    assert accounts["active"].last_activity_attribute == "pwdLastSuccess"
    assert accounts["never"].activity_known and accounts["never"].last_activity_at is None


def test_no_lastbind_data_means_unknown() -> None:
    _, accounts = mapped(person("a"), person("b"))
    assert not accounts["a"].activity_known
    assert "lastbind" in (accounts["a"].activity_unknown_reason or "")


def test_policies_privilege_and_default_policy() -> None:
    result, accounts = mapped(
        POLICY, UNCHECKED, ADMINS,
        person("root1", "authTimestamp: 20260601000000Z"),
        person("plain", "authTimestamp: 20260601000000Z", f"pwdPolicySubentry: cn=unchecked,ou=policies,{BASE}"),
        default_policy=f"cn=default,ou=policies,{BASE}",
    )
    policies = {p.name: p for p in result.policies}
    assert policies["ppolicy default"].min_length == 12
    assert policies["ppolicy default"].max_age == timedelta(days=90)
    assert policies["ppolicy default"].lockout_threshold == 5
    assert policies["ppolicy unchecked"].min_length == 0  # pwdMinLength is not enforced without pwdCheckQuality
    assert accounts["root1"].password_policy_id == f"cn=default,ou=policies,{BASE}"
    assert accounts["plain"].password_policy_id == f"cn=unchecked,ou=policies,{BASE}"
    assert accounts["plain"].password_never_expires is True
    assert accounts["root1"].privileged and accounts["root1"].groups == ["admins"]
    assert not accounts["plain"].privileged


def test_policy_unknown_without_default_or_entry() -> None:
    result, accounts = mapped(person("a", "authTimestamp: 20260601000000Z", f"pwdPolicySubentry: cn=gone,{BASE}"),
                              person("b", "authTimestamp: 20260601000000Z"))
    assert accounts["b"].password_policy_id is None
    gone = next(p for p in result.policies if p.id == f"cn=gone,{BASE}")
    assert not gone.settings_known
