"""Real directory servers on loopback for the LDAP tests: a Samba AD DC and an OpenLDAP slapd.

Used by the pytest fixtures, and by hand: ``python -m tests.servers.harness start DIR`` / ``stop DIR``.
Everything lives under one directory; only processes started from it are ever stopped. Install the
packages first with ``tests/servers/install.sh`` (the test command does).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap3
from ldap3 import MODIFY_ADD, MODIFY_REPLACE, Connection, Server, Tls

REALM = "AUDIT.TEST"
DOMAIN_DN = "DC=audit,DC=test"
ADMIN_PASSWORD = "Adm1n!Audit-Test-2026"  # test-only directory, loopback only
USER_PASSWORD = "Us3r!Audit-Test-2026"
OU = f"OU=Audit,{DOMAIN_DN}"
PSO_CONTAINER = f"CN=Password Settings Container,CN=System,{DOMAIN_DN}"
LARGE_GROUP_MEMBERS = 1600


def _run(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def _wait_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def filetime(moment: datetime) -> int:
    return (int(moment.timestamp()) + 11644473600) * 10**7


def _gt(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S.0Z")


@dataclass
class Pki:
    """A test CA with a server certificate for 127.0.0.1 / dc1.audit.test, and an unrelated CA."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def other_ca(self) -> Path:
        return self.root / "other-ca.pem"

    @property
    def cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def key(self) -> Path:
        return self.root / "server.key"

    def create(self) -> None:
        if self.cert.exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        for name in ("ca", "other-ca"):
            _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                 "-subj", f"/CN=Audit Test {name}", "-keyout", str(self.root / f"{name}.key"),
                 "-out", str(self.root / f"{name}.pem"))
        (self.root / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:dc1.audit.test,DNS:localhost\n")
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=dc1.audit.test",
             "-keyout", str(self.key), "-out", str(self.root / "server.csr"))
        _run("openssl", "x509", "-req", "-in", str(self.root / "server.csr"), "-CA", str(self.ca),
             "-CAkey", str(self.root / "ca.key"), "-CAcreateserial", "-days", "30",
             "-extfile", str(self.root / "ext.cnf"), "-out", str(self.cert))
        os.chmod(self.key, 0o600)


@dataclass
class SambaDC:
    root: Path
    pki: Pki
    started: bool = False
    seeded: dict[str, str] = field(default_factory=dict)

    @property
    def smb_conf(self) -> Path:
        return self.root / "etc" / "smb.conf"

    def provision(self) -> None:
        if self.smb_conf.exists():
            return
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / "run").mkdir(parents=True)
        (self.root / "log").mkdir()
        empty = self.root / "empty.conf"
        empty.write_text("")
        run = self.root / "run"
        _run(
            "samba-tool", "domain", "provision", "-s", str(empty), f"--targetdir={self.root}", f"--realm={REALM}",
            "--domain=AUDIT", "--server-role=dc", "--dns-backend=SAMBA_INTERNAL", "--use-rfc2307",
            f"--adminpass={ADMIN_PASSWORD}", "--host-name=dc1", "--host-ip=127.0.0.1",
            "--option=interfaces=lo", "--option=bind interfaces only=yes", f"--option=pid directory={run}",
            f"--option=ncalrpc dir={run}/ncalrpc", f"--option=winbindd socket directory={run}/winbindd",
            f"--option=ntp signd socket directory={run}/ntp_signd", f"--option=log file={self.root}/log/samba.log",
        )
        text = self.smb_conf.read_text()
        tls = (f"\ttls enabled = yes\n\ttls keyfile = {self.pki.key}\n\ttls certfile = {self.pki.cert}\n"
               f"\ttls cafile = {self.pki.ca}\n")
        self.smb_conf.write_text(text.replace("[global]\n", "[global]\n" + tls, 1))

    def start(self) -> None:
        self.pki.create()
        self.provision()
        for port in (389, 636):
            if not _port_free(port):
                raise RuntimeError(f"port {port} is taken on 127.0.0.1: Samba needs it (stop the other LDAP server)")
        _run("samba", "-s", str(self.smb_conf), "-l", str(self.root / "log"))
        self.started = True
        _wait_port(636, 30)
        deadline = time.monotonic() + 30
        while True:  # the port opens before the directory answers binds
            try:
                self.admin().unbind()
                return
            except ldap3.core.exceptions.LDAPException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        pid_file = self.root / "run" / "samba.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split()[0])
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        self.started = False

    def admin(self) -> Connection:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.pki.ca))
        server = Server("127.0.0.1", port=636, use_ssl=True, tls=tls, get_info=ldap3.NONE, connect_timeout=5)
        return Connection(server, f"Administrator@{REALM.lower()}", ADMIN_PASSWORD, auto_bind=True,
                          raise_exceptions=True, receive_timeout=30)

    def seed(self, now: datetime) -> None:
        """Every rule's firing and non-firing cases, a PSO each way, and a group past the 1,500-value range."""
        marker = self.root / "seeded"
        if marker.exists():
            return
        conn = self.admin()
        conn.add(OU, ["top", "organizationalUnit"])
        group_type = "-2147483646"  # global security group: the only kind PSOs apply to

        def group(cn: str) -> str:
            dn = f"CN={cn},{OU}"
            conn.add(dn, ["top", "group"], {"sAMAccountName": cn.replace(" ", ""), "groupType": group_type})
            return dn

        contractors, tier0, large = group("Contractors"), group("Tier0 Ops"), group("Large Group")
        domain_admins = f"CN=Domain Admins,CN=Users,{DOMAIN_DN}"
        conn.modify(domain_admins, {"member": [(MODIFY_ADD, [tier0])]})

        def user(sam: str, uac: int, display: str | None = None, logon_days: int | None = None,
                 groups: tuple[str, ...] = (), spn: str | None = None) -> str:
            dn = f"CN={sam},{OU}"
            attrs: dict[str, object] = {
                "sAMAccountName": sam, "userPrincipalName": f"{sam}@audit.test",
                "unicodePwd": f'"{USER_PASSWORD}"'.encode("utf-16-le"), "userAccountControl": str(uac),
                "mail": f"{sam}@audit.test",
            }
            if display:
                attrs["displayName"] = display
            if spn:
                attrs["servicePrincipalName"] = spn
            conn.add(dn, ["top", "person", "organizationalPerson", "user"], attrs)
            if logon_days is not None:
                logon = str(filetime(now - timedelta(days=logon_days)))
                conn.modify(dn, {"lastLogonTimestamp": [(MODIFY_REPLACE, [logon])]})
            for group_dn in groups:
                conn.modify(group_dn, {"member": [(MODIFY_ADD, [dn])]})
            return dn

        user("active.user", 512, "Active User", logon_days=2)
        user("stale.user", 512, "Stale User", logon_days=200)
        user("never.user", 512, "Never User")
        user("new.user", 512, "New User")
        user("disabled.user", 514, "Disabled User", logon_days=300)
        user("svc-backup", 66048, "Backup service", logon_days=1, spn="backup/dc1.audit.test")
        user("kiosk", 544, "Lobby kiosk", logon_days=3)
        user("legacy.app", 640, "Legacy app", logon_days=4)
        user("stale.admin", 512, "Stale Admin", logon_days=150, groups=(domain_admins,))
        user("nested.admin", 512, "Nested Admin", logon_days=1, groups=(tier0,))
        user("zoe", 512, "Zoë Müller-Łukasiewicz <b>", logon_days=5)
        user("contractor1", 512, "Contractor One", logon_days=10, groups=(contractors,))
        user("reader", 512, "Audit reader", logon_days=1)
        user("big.member", 512, "Member of a large group", logon_days=1, groups=(large,))
        gone = user("deleted.user", 512, "Deleted User", logon_days=30)
        conn.delete(gone)
        # Managers, for access reviews by manager (AD's manager attribute holds the manager's DN).
        for report, manager in (("stale.user", "active.user"), ("never.user", "active.user"),
                                ("contractor1", "stale.admin")):
            conn.modify(f"CN={report},{OU}", {"manager": [(MODIFY_REPLACE, [f"CN={manager},{OU}"])]})
        conn.add(f"CN=WS01,{OU}", ["top", "computer"], {"sAMAccountName": "WS01$", "userAccountControl": "4096"})
        contacts = []
        for n in range(LARGE_GROUP_MEMBERS):
            dn = f"CN=contact{n:04d},{OU}"
            conn.add(dn, ["top", "person", "organizationalPerson", "contact"])
            contacts.append(dn)
        for start in range(0, len(contacts), 400):
            conn.modify(large, {"member": [(MODIFY_ADD, contacts[start : start + 400])]})
        for name, precedence, length, complexity, target in (
            ("PSO-Weak", "20", "6", "FALSE", contractors), ("PSO-Admins", "10", "24", "TRUE", domain_admins),
        ):
            conn.add(f"CN={name},{PSO_CONTAINER}", ["msDS-PasswordSettings"], {
                "msDS-PasswordSettingsPrecedence": precedence, "msDS-MinimumPasswordLength": length,
                "msDS-PasswordComplexityEnabled": complexity, "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
                "msDS-PasswordHistoryLength": "12", "msDS-MaximumPasswordAge": str(-90 * 864_000_000_000),
                "msDS-MinimumPasswordAge": "0", "msDS-LockoutThreshold": "10",
                "msDS-LockoutDuration": "-18000000000", "msDS-LockoutObservationWindow": "-18000000000",
                "msDS-PSOAppliesTo": target,
            })
        conn.unbind()
        # whenCreated and pwdLastSet are system-owned: set them locally on the database, as an old domain has them.
        changes = []
        for sam in ("active.user", "stale.user", "disabled.user", "svc-backup", "kiosk", "legacy.app", "stale.admin",
                    "nested.admin", "zoe", "contractor1", "reader", "big.member"):
            changes.append(f"dn: CN={sam},{OU}\nchangetype: modify\nreplace: whenCreated\nwhenCreated: "
                           f"{_gt(now - timedelta(days=400))}\n")
        changes.append(f"dn: CN=never.user,{OU}\nchangetype: modify\nreplace: whenCreated\n"
                       f"whenCreated: {_gt(now - timedelta(days=60))}\n")
        changes.append(f"dn: CN=svc-backup,{OU}\nchangetype: modify\nreplace: pwdLastSet\n"
                       f"pwdLastSet: {filetime(now - timedelta(days=900))}\n")
        changes_file = self.root / "backdate.ldif"
        changes_file.write_text("\n".join(changes))
        _run("ldbmodify", "-H", str(self.root / "private" / "sam.ldb"),
             "--controls=local_oid:1.3.6.1.4.1.7165.4.3.20:0", str(changes_file))
        marker.write_text(now.isoformat())


NO_POLICY_DN = "cn=auditor-no-policy,dc=example,dc=org"
SLAPD_CONF = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
database mdb
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw {password}
directory {root}/data
maxsize 1073741824
lastbind on
overlay ppolicy
ppolicy_default "cn=default,ou=policies,dc=example,dc=org"
access to attrs=userPassword by self write by anonymous auth by * none
access to dn.subtree="ou=policies,dc=example,dc=org" by dn.exact="uid=reader,ou=people,dc=example,dc=org" read
  by dn.exact="uid=limited,ou=people,dc=example,dc=org" read by * none
access to * by dn.exact="uid=reader,ou=people,dc=example,dc=org" read
  by dn.exact="uid=limited,ou=people,dc=example,dc=org" read
  by dn.exact="{no_policy_dn}" read by * none
limits dn.exact="uid=reader,ou=people,dc=example,dc=org" size=unlimited
limits dn.exact="uid=limited,ou=people,dc=example,dc=org" size=3 size.pr=3 size.prtotal=3
"""


@dataclass
class Slapd:
    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    bulk_people: int = 0  # extra generated users, for benchmarks

    def seed_ldif(self, now: datetime) -> str:
        def person(uid: str, *extra: str, created_days: int = 400) -> str:
            return "\n".join([
                f"dn: uid={uid},ou=people,dc=example,dc=org", "objectClass: inetOrgPerson", f"uid: {uid}",
                f"cn: {uid}", "sn: Test", f"mail: {uid}@example.org", f"userPassword: {USER_PASSWORD}",
                f"createTimestamp: {_gt(now - timedelta(days=created_days))[:-3]}Z", *extra,
            ]) + "\n"

        def success(days: int) -> str:
            return f"pwdLastSuccess: {_gt(now - timedelta(days=days))[:-3]}Z"

        return "\n".join([
            "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
            "dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n",
            "dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n",
            "dn: ou=policies,dc=example,dc=org\nobjectClass: organizationalUnit\nou: policies\n",
            "dn: cn=default,ou=policies,dc=example,dc=org\nobjectClass: pwdPolicy\nobjectClass: device\ncn: default\n"
            "pwdAttribute: userPassword\npwdMinLength: 6\npwdCheckQuality: 2\npwdMaxAge: 0\npwdLockout: TRUE\n"
            "pwdMaxFailure: 5\n",
            "dn: cn=strong,ou=policies,dc=example,dc=org\nobjectClass: pwdPolicy\nobjectClass: device\ncn: strong\n"
            "pwdAttribute: userPassword\npwdMinLength: 30\npwdCheckQuality: 2\npwdMaxAge: 7776000\n",
            person("ol.active", success(3)),
            person("ol.stale", success(180)),
            person("ol.never", created_days=90),
            person("ol.locked", success(400), "pwdAccountLockedTime: 000001010000Z"),
            person("ol.admin", success(200), "pwdPolicySubentry: cn=strong,ou=policies,dc=example,dc=org"),
            person("reader", success(1)),
            person("limited", success(1)),
            # A service account that may read people but not the password policies: check-access's "missing".
            f"dn: {NO_POLICY_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
            f"cn: auditor-no-policy\nuserPassword: {USER_PASSWORD}\n",
            "dn: cn=admins,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: admins\n"
            "member: uid=ol.admin,ou=people,dc=example,dc=org\n",
            *(person(f"bulk{n:06d}", success(n % 365), f"employeeNumber: {n}") for n in range(self.bulk_people)),
        ])

    def start(self, now: datetime) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        conf = self.root / "slapd.conf"
        conf.write_text(SLAPD_CONF.format(root=self.root, password=ADMIN_PASSWORD, no_policy_dn=NO_POLICY_DN))
        if not (self.root / "data" / "data.mdb").exists():
            seed = self.root / "seed.ldif"
            seed.write_text(self.seed_ldif(now))
            _run("slapadd", "-f", str(conf), "-l", str(seed))
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            ["slapd", "-d", "0", "-f", str(conf), "-h", f"ldap://127.0.0.1:{self.port}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        _wait_port(self.port, 10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        raise SystemExit("usage: python -m tests.servers.harness start|stop DIR")
    root = Path(sys.argv[2]).resolve()
    samba = SambaDC(root / "samba", Pki(root / "pki"))
    if sys.argv[1] == "start":
        samba.start()
        samba.seed(datetime.now(UTC))
        print(f"Samba AD DC: ldaps://127.0.0.1:636 (CA {samba.pki.ca}), Administrator@audit.test")
    else:
        samba.stop()


if __name__ == "__main__":
    main()
