"""The ldap connector against a real Samba AD DC and a real OpenLDAP slapd on loopback."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auditor.cli import main
from connectors.base import CollectContext, SourceError
from connectors.ldap import LdapConfig, collect
from tests.servers.harness import ADMIN_PASSWORD, LARGE_GROUP_MEMBERS, OU, USER_PASSWORD, Pki, SambaDC, Slapd

OL_BASE = "dc=example,dc=org"


@dataclass
class Directories:
    samba: SambaDC
    slapd: Slapd
    now: datetime
    root: Path


@pytest.fixture(scope="module")
def directories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directories]:
    missing = [tool for tool in ("samba", "samba-tool", "ldbmodify", "slapd", "slapadd", "openssl")
               if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"directory servers not installed ({', '.join(missing)}): run tests/servers/install.sh")
    root = tmp_path_factory.mktemp("directories")
    now = datetime.now(UTC).replace(microsecond=0)
    samba = SambaDC(root / "samba", Pki(root / "pki"))
    slapd = Slapd(root / "slapd")
    try:
        samba.start()
        samba.seed(now)
        slapd.start(now)
        yield Directories(samba, slapd, now, root)
    finally:
        slapd.stop()
        samba.stop()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("AUDIT_USER_PASSWORD", USER_PASSWORD)


def ad_source(d: Directories, name: str = "ad", **overrides: object) -> str:
    settings: dict[str, object] = {
        "url": "ldaps://127.0.0.1", "bind_dn": "Administrator@audit.test", "password_env": "AUDIT_ADMIN_PASSWORD",
        "tls_ca_file": str(d.samba.pki.ca), **overrides,
    }
    return _table(name, settings)


def ol_source(d: Directories, name: str = "openldap", **overrides: object) -> str:
    settings: dict[str, object] = {
        "url": f"ldap://127.0.0.1:{d.slapd.port}", "bind_dn": f"uid=reader,ou=people,{OL_BASE}",
        "password_env": "AUDIT_USER_PASSWORD", "allow_insecure_bind": True,
        "default_policy_dn": f"cn=default,ou=policies,{OL_BASE}", "privileged_groups": ["admins"], **overrides,
    }
    return _table(name, settings)


def _table(name: str, settings: dict[str, object]) -> str:
    lines = ["[[sources]]", f'name = "{name}"', 'type = "ldap"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def audit(tmp_path: Path, *sources: str) -> tuple[Result, dict[str, object]]:
    config = tmp_path / "audit.toml"
    config.write_text('[audit]\norganization = "Audit Test"\nhistory_db = "history.sqlite"\n' + "".join(sources))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(out)])
    document = json.loads((out / "findings.json").read_text()) if (out / "findings.json").exists() else {}
    return result, document


def by_rule(document: dict[str, object], source: str) -> dict[str, set[str]]:
    rules: dict[str, set[str]] = {}
    for finding in document["findings"]:  # type: ignore[attr-defined]
        if finding["source"] == source:
            rules.setdefault(finding["rule"], set()).add(finding["subject"]["name"])
    return rules


def test_audit_of_samba_and_slapd(directories: Directories, secrets: None, tmp_path: Path) -> None:
    result, document = audit(tmp_path, ad_source(directories), ol_source(directories))
    assert result.exit_code == 0, result.output
    kpis = {k: (v["value"], v["detail"]) for k, v in document["kpis"].items()}  # type: ignore[attr-defined]
    # AD: stale.user, stale.admin inactive, never.user never used; OpenLDAP: ol.stale, ol.admin, ol.never.
    assert kpis["inactive_enabled_accounts"] == (6, {"inactive": 4, "never_used": 2, "inactive_within_lag": 0,
                                                     "excluded": 0})
    # disabled.user and the permanently locked ol.locked are the stale accounts already deactivated.
    assert kpis["inactive_deactivated_share"][0] == 0.25
    # PSO-Admins (3 admins) and cn=strong (ol.admin) are strong; the domain policy, PSO-Weak and the
    # ppolicy default govern the other 16 enabled non-machine accounts.
    assert kpis["strong_policy_share"] == (0.2, {"strong": 4, "weak": 16, "unknown": 0})
    assert kpis["account_changes"][1]["per_action"]["deleted"] == 1
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<td>Fine-grained policy PSO-Admins</td><td>min length 24; 3 of 4 character classes; max age 90 days</td>" \
        "<td>strong (zxcvbn score 3)</td>" in html
    rules = by_rule(document, "ad")
    assert rules["inactive-enabled"] == {"stale.user", "stale.admin"}
    assert rules["never-used-enabled"] == {"never.user"}  # new.user is inside the grace period
    assert rules["password-never-expires"] == {"svc-backup"}
    assert rules["password-not-required"] == {"kiosk"}
    assert rules["reversible-password-encryption"] == {"legacy.app"}
    assert rules["weak-password-policy"] == {"Default domain policy (audit)", "Fine-grained policy PSO-Weak"}
    findings = {(f["rule"], f["subject"]["name"]): f for f in document["findings"]}  # type: ignore[attr-defined]
    stale_admin = findings[("inactive-enabled", "stale.admin")]
    assert stale_admin["severity"] == "high"
    assert "member of Domain Admins" in stale_admin["evidence"]["privilege_evidence"]
    assert stale_admin["evidence"]["attribute"] == "lastLogonTimestamp"
    assert stale_admin["evidence"]["source_lag_days"] == 14
    assert findings[("password-never-expires", "svc-backup")]["evidence"]["password_age_days"] == 900


def test_account_details_from_a_live_dc(directories: Directories, secrets: None) -> None:
    config = LdapConfig.model_validate({
        "name": "ad", "type": "ldap", "url": "ldaps://127.0.0.1", "bind_dn": "Administrator@audit.test",
        "password_env": "AUDIT_ADMIN_PASSWORD", "tls_ca_file": str(directories.samba.pki.ca), "page_size": 5,
    })
    result = collect(config, CollectContext(directories.now))
    accounts = {a.username: a for a in result.accounts}
    assert accounts["zoe"].display_name == "Zoë Müller-Łukasiewicz <b>"
    assert accounts["nested.admin"].privileged
    assert "nested member of Domain Admins" in accounts["nested.admin"].privilege_evidence
    assert accounts["Administrator"].privileged
    assert not accounts["active.user"].privileged and not accounts["disabled.user"].enabled
    assert accounts["WS01$"].kind.value == "machine" and accounts["svc-backup"].kind.value == "service"
    assert (accounts["contractor1"].password_policy_id or "").startswith("cn=pso-weak,")
    assert (accounts["stale.admin"].password_policy_id or "").startswith("cn=pso-admins,")
    assert accounts["active.user"].identifiers["sid"].startswith("S-1-5-21-")
    # Paged at 5 per page, and the 1,600-member group read through ranged retrieval, all came back.
    assert len(result.accounts) >= 19
    assert "Large Group" in accounts["big.member"].groups
    deleted = [e for e in result.change_events if e.action.value == "deleted"]
    assert [e.username for e in deleted] == ["deleted.user"]


def test_ranged_retrieval_of_a_large_group(directories: Directories, secrets: None) -> None:
    from auditor.secrets import Redactor
    from connectors.ldap_client import Directory

    config = LdapConfig.model_validate({
        "name": "ad", "type": "ldap", "url": "ldaps://127.0.0.1", "bind_dn": "Administrator@audit.test",
        "password_env": "AUDIT_ADMIN_PASSWORD", "tls_ca_file": str(directories.samba.pki.ca),
    })
    directory = Directory(config, config.url, ADMIN_PASSWORD, Redactor())
    [group] = directory.search(f"CN=Large Group,{OU}", "(objectClass=group)", ["member"], scope="BASE")
    directory.close()
    assert len(group.values("member")) == LARGE_GROUP_MEMBERS + 1  # over the 1,500-value range limit


def test_non_admin_reader_sees_unknown_pso_strength(directories: Directories, secrets: None, tmp_path: Path) -> None:
    source = ad_source(directories, url="ldap://127.0.0.1", start_tls=True, bind_dn="reader@audit.test",
                       password_env="AUDIT_USER_PASSWORD")
    result, document = audit(tmp_path, source)
    assert result.exit_code == 0, result.output
    assert "Fine-grained policy PSO-Weak" not in by_rule(document, "ad")["weak-password-policy"]
    strength = document["kpis"]["strong_policy_share"]["detail"]  # type: ignore[index]
    assert strength["unknown"] >= 3  # contractor1 and the admins: their PSOs cannot be read, so "unknown"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "unreadable settings (strength unknown)" in html
    [status] = document["sources"]  # type: ignore[misc]
    assert any("Password Settings Container" in w for w in status["warnings"])


def test_wrong_ca_fails_that_source_only(directories: Directories, secrets: None, tmp_path: Path) -> None:
    result, document = audit(tmp_path, ad_source(directories, tls_ca_file=str(directories.samba.pki.other_ca)),
                             ol_source(directories))
    assert result.exit_code == 3
    status = {s["name"]: s for s in document["sources"]}  # type: ignore[attr-defined]
    assert status["ad"]["status"] == "failed" and "certificate verify failed" in status["ad"]["error"]
    assert status["openldap"]["status"] == "ok"
    assert by_rule(document, "openldap")["inactive-enabled"]


def test_bind_failure_shows_diagnostic_not_password(directories: Directories, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_ADMIN_PASSWORD", "Wrong-Secret-Value-123")
    result, document = audit(tmp_path, ad_source(directories))
    assert result.exit_code == 3
    [status] = document["sources"]  # type: ignore[misc]
    assert "bind as Administrator@audit.test failed: invalidCredentials" in status["error"]
    for path in (p for p in (tmp_path / "out").rglob("*") if p.is_file()):  # every file of every run
        assert "Wrong-Secret-Value-123" not in path.read_text("utf-8-sig")
    assert "Wrong-Secret-Value-123" not in result.output


def test_unencrypted_password_bind_is_refused(directories: Directories, secrets: None, tmp_path: Path) -> None:
    config = tmp_path / "plain.toml"
    config.write_text(ad_source(directories, url="ldap://127.0.0.1"))
    result = CliRunner().invoke(main, ["check-config", str(config)])
    assert result.exit_code == 2
    assert "would expose the password" in result.output and "allow_insecure_bind" in result.output
    # Explicitly allowed, the client binds in the clear and Samba itself refuses: its diagnostic is shown.
    run, document = audit(tmp_path, ad_source(directories, url="ldap://127.0.0.1", allow_insecure_bind=True))
    assert run.exit_code == 3
    assert "strongerAuthRequired" in document["sources"][0]["error"]  # type: ignore[index]


def test_tls_verify_off_is_loud(directories: Directories, secrets: None, tmp_path: Path) -> None:
    result, document = audit(tmp_path, ad_source(directories, tls_ca_file=str(directories.samba.pki.other_ca),
                                                 tls_verify=False))
    assert result.exit_code == 0
    assert any("VERIFICATION IS DISABLED" in w for w in document["sources"][0]["warnings"])  # type: ignore[index]
    assert "VERIFICATION IS DISABLED" in (tmp_path / "out" / "report.html").read_text()


def test_openldap_audit(directories: Directories, secrets: None, tmp_path: Path) -> None:
    result, document = audit(tmp_path, ol_source(directories))
    assert result.exit_code == 0, result.output
    rules = by_rule(document, "openldap")
    assert rules["inactive-enabled"] == {"ol.stale", "ol.admin"}  # ol.locked is permanently locked: disabled
    assert rules["never-used-enabled"] == {"ol.never"}
    assert rules["weak-password-policy"] == {"ppolicy default"}  # cn=strong (30 characters) is strong
    admin = next(f for f in document["findings"] if f["subject"]["name"] == "ol.admin")  # type: ignore[attr-defined]
    assert admin["severity"] == "high" and admin["evidence"]["attribute"] == "pwdLastSuccess"


def test_size_limit_makes_the_source_partial(directories: Directories, secrets: None, tmp_path: Path) -> None:
    result, document = audit(tmp_path, ol_source(directories, bind_dn=f"uid=limited,ou=people,{OL_BASE}",
                                                 page_size=2))
    assert result.exit_code == 3
    [status] = document["sources"]  # type: ignore[misc]
    assert status["status"] == "partial" and "size limit" in status["error"]
    assert document["complete"] is False
    # What a partial read returned is reported as findings, but kept out of the headline figures.
    assert by_rule(document, "openldap")["inactive-enabled"] == {"ol.stale"}
    kpi = document["kpis"]["inactive_enabled_accounts"]  # type: ignore[index]
    assert kpi["value"] == 0 and kpi["detail"]["not_counted_partial_sources"] == 3


class DroppingProxy:
    """A loopback TCP proxy that cuts the first ``drops`` connections after ``after_bytes`` from the server."""

    def __init__(self, target_port: int, drops: int, after_bytes: int) -> None:
        self.target_port, self.drops, self.after_bytes = target_port, drops, after_bytes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.after_bytes if self.connections <= self.drops else None
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, limit), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(4096):
                if limit is not None and sent + len(data) > limit:
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self.listener.close()


def test_connection_dropped_mid_paging_is_retried(directories: Directories, secrets: None) -> None:
    def config(port: int, retries: int) -> LdapConfig:
        return LdapConfig.model_validate({
            "name": "ol", "type": "ldap", "url": f"ldap://127.0.0.1:{port}",
            "bind_dn": f"uid=reader,ou=people,{OL_BASE}",
            "password_env": "AUDIT_USER_PASSWORD", "allow_insecure_bind": True, "page_size": 2, "retries": retries,
            "timeout": 5,
        })
    proxy = DroppingProxy(directories.slapd.port, drops=1, after_bytes=1500)
    try:
        result = collect(config(proxy.port, retries=2), CollectContext(directories.now))
        assert len(result.accounts) == 7 and proxy.connections == 2  # one dropped, one complete re-read
    finally:
        proxy.close()
    proxy = DroppingProxy(directories.slapd.port, drops=5, after_bytes=1500)
    try:
        with pytest.raises(SourceError, match=r"connection lost .* \(2 attempts\)"):
            collect(config(proxy.port, retries=1), CollectContext(directories.now))
    finally:
        proxy.close()


def check_access(tmp_path: Path, *sources: str) -> Result:
    config = tmp_path / "audit.toml"
    config.write_text('[audit]\norganization = "Audit Test"\n' + "".join(sources))
    return CliRunner().invoke(main, ["check-access", str(config)])


def _rows(output: str) -> dict[str, str]:
    """Check -> the rest of its row (status and meaning)."""
    rows = {}
    for line in output.splitlines()[1:]:
        for status in ("  ok", "  MISSING", "  UNREACHABLE"):
            if status in line:
                check, rest = line.split(status, 1)
                rows[check.split("  ", 1)[1].strip()] = status.strip() + rest
    return rows


def test_check_access_with_every_right(directories: Directories, secrets: None, tmp_path: Path) -> None:
    result = check_access(tmp_path, ad_source(directories), ol_source(directories))
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert rows["bind as Administrator@audit.test to ldaps://127.0.0.1"] == "ok"
    assert rows["read fine-grained password policies (Password Settings Container)"] == "ok"
    assert rows[f"read the default password policy (cn=default,ou=policies,{OL_BASE})"] == "ok"
    assert all(value == "ok" for value in rows.values())


def test_check_access_names_each_gap(directories: Directories, secrets: None, tmp_path: Path) -> None:
    from tests.servers.harness import NO_POLICY_DN

    reader = ad_source(directories, url="ldap://127.0.0.1", start_tls=True, bind_dn="reader@audit.test",
                       password_env="AUDIT_USER_PASSWORD")
    no_policy = ol_source(directories, name="ol-service", bind_dn=NO_POLICY_DN)
    result = check_access(tmp_path, reader, no_policy)
    assert result.exit_code == 3, result.output
    rows = _rows(result.output)
    assert rows["bind as reader@audit.test to ldap://127.0.0.1"] == "ok"
    assert rows["read user accounts (userAccountControl, lastLogonTimestamp, pwdLastSet)"] == "ok"
    assert rows["read fine-grained password policies (Password Settings Container)"].startswith(
        "MISSING  cannot read the Password Settings Container: fine-grained policies unknown")
    policy = rows[f"read the default password policy (cn=default,ou=policies,{OL_BASE})"]
    assert policy.startswith("MISSING  password policy settings unknown")
    assert rows["read user accounts"] == "ok"


def test_check_access_wrong_password_and_no_server(directories: Directories, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_ADMIN_PASSWORD", "Wrong-Passw0rd-42")
    monkeypatch.setenv("AUDIT_USER_PASSWORD", USER_PASSWORD)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = check_access(tmp_path, ad_source(directories),
                          ol_source(directories, name="gone", url=f"ldap://127.0.0.1:{closed}"))
    assert result.exit_code == 3
    rows = _rows(result.output)
    assert rows["bind as Administrator@audit.test to ldaps://127.0.0.1"].startswith("MISSING")
    assert rows[f"bind as uid=reader,ou=people,{OL_BASE} to ldap://127.0.0.1:{closed}"].startswith("UNREACHABLE")
    assert "Wrong-Passw0rd-42" not in result.output


def test_access_review_end_to_end(directories: Directories, secrets: None, tmp_path: Path, pki: Pki,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit Samba AD and the Entra simulator, create packets from their manager data, fill them in, import
    them (a tampered one refused), and see the next audit report the revocations nobody carried out."""
    import csv
    import io

    from tests.simulators.graph import GraphSimulator, make_tenant

    tenant = make_tenant(6, directories.now, client_secret="entra-secret-0123456789")
    tenant.managers = {tenant.users[3]["id"]: tenant.users[1]["id"]}
    monkeypatch.setenv("ENTRA_SECRET", "entra-secret-0123456789")
    with GraphSimulator(tenant, pki.cert, pki.key) as graph:
        settings = {"tenant_id": tenant.tenant_id, "client_id": tenant.client_id, "client_secret_env": "ENTRA_SECRET",
                    "authority_host": graph.base_url, "graph_endpoint": graph.base_url, "ca_bundle": str(pki.ca),
                    "read_managers": True}
        entra = '[[sources]]\nname = "entra"\ntype = "entra"\n' + "".join(
            f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
        config = tmp_path / "audit.toml"
        config.write_text('[audit]\norganization = "Audit Test"\nhistory_db = "history.sqlite"\n'
                          + ad_source(directories) + entra
                          + "[rules.review-revocation-not-applied]\ngrace_days = 0\n")

        def cli(*args: str) -> Result:
            return CliRunner().invoke(main, [*args])

        first = cli("run", "--config", str(config), "--output", str(tmp_path / "one"), "--quiet")
        assert first.exit_code == 0, first.output
        run_id = json.loads((tmp_path / "one" / "findings.json").read_text())["run_id"]
        made = cli("review", "create", "--run", run_id, "--config", str(config), "--by", "manager",
                   "--output", str(tmp_path / "packets"))
        assert made.exit_code == 0, made.output
        campaign = json.loads((tmp_path / "packets" / "campaign.json").read_text())
        packets = {p["reviewer"]: p for p in campaign["packets"]}
        assert set(packets) == {"active.user@audit.test", "stale.admin@audit.test", "user1@contoso.test"}

        def fill(reviewer: str, decisions: dict[str, str]) -> Path:
            path = tmp_path / "packets" / packets[reviewer]["csv"]
            table = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline="")))
            for row in table[1:]:
                row[13] = decisions.get(row[5], "")
            buffer = io.StringIO(newline="")
            csv.writer(buffer, lineterminator="\r\n").writerows(table)
            path.write_text(buffer.getvalue(), encoding="utf-8-sig")
            return path

        ad_packet = fill("active.user@audit.test", {"stale.user": "revoke", "never.user": "keep"})
        entra_packet = fill("user1@contoso.test", {"user3@contoso.test": "revoke"})
        tampered = tmp_path / "tampered.csv"
        tampered.write_text(ad_packet.read_text("utf-8-sig").replace("stale.user", "stale.admin"),
                            encoding="utf-8-sig")  # the reviewer "moved" a decision to another account
        refused = cli("review", "import", str(tampered), "--config", str(config))
        assert refused.exit_code == 2 and re.search(r"tampered\.csv: row \d+: the account list differs", refused.stderr)
        imported = cli("review", "import", str(ad_packet), str(entra_packet), "--config", str(config))
        assert imported.exit_code == 0, imported.output
        assert "imported 3 decision(s) from 2 packet(s)" in imported.output

        second = cli("run", "--config", str(config), "--output", str(tmp_path / "two"), "--quiet")
        assert second.exit_code == 0, second.output
    document = json.loads((tmp_path / "two" / "findings.json").read_text())
    unapplied = {(f["source"], f["subject"]["name"]) for f in document["findings"]
                 if f["rule"] == "review-revocation-not-applied"}
    assert unapplied == {("ad", "stale.user"), ("entra", "user3@contoso.test")}
    completion = document["kpis"]["review_completion"]["detail"]
    assert completion["decided"] == 3 and completion["reviewers_done"] == 2  # stale.admin has not answered
    assert document["kpis"]["revocations_carried_out"]["detail"] == {"revocations_decided": 2,
                                                                      "not_carried_out": 2}
