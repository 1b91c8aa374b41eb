"""Notifications after a run, delivered to a real SMTP server (aiosmtpd, STARTTLS and implicit TLS with a test
CA and authentication) and a real HTTPS webhook receiver on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.conftest import HOSTILE_LOGIN
from tests.servers.harness import Pki
from tests.simulators.https import HttpsSimulator, Reply, Request
from tests.test_cli import audit, run

SMTP_USER, SMTP_PASSWORD = "auditor@corp.test", "sm:tp p@ss/w0rd"
HOOK_PATH = "/hooks/T0123456789/B0123456789/s3cr3tT0k3nV4lu3"


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    tls: bool


@dataclass
class MailServer:
    mails: list[Mail] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)
    port: int = 0

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (SMTP_USER.encode(),
                                                                                 SMTP_PASSWORD.encode())
        if ok:
            self.logins.append(data.login)
        return AuthResult(success=ok)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message, session.ssl is not None))
        return "250 OK"

    def body(self, index: int = 0) -> str:
        part = self.mails[index].message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["starttls", "tls"])
def smtp(request: pytest.FixtureRequest, pki: Pki) -> Iterator[tuple[MailServer, str]]:
    """A mail server that demands TLS (STARTTLS on submission, or implicit TLS) and a login."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pki.cert), str(pki.key))
    server = MailServer(port=_free_port())
    # aiosmtpd offers AUTH only once it saw STARTTLS; on an implicit-TLS port the whole session is TLS.
    tls = {"tls_context": context, "require_starttls": True} if request.param == "starttls" else {
        "ssl_context": context, "auth_require_tls": False}
    controller = Controller(server, hostname="127.0.0.1", port=server.port, authenticator=server.authenticate,
                            auth_required=True, **tls)
    controller.start()
    try:
        yield server, request.param
    finally:
        controller.stop()


class WebhookReceiver(HttpsSimulator):
    def route(self, request: Request) -> Reply:
        return Reply(200, {})


@pytest.fixture
def receiver(pki: Pki) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(pki.cert, pki.key) as server:
        yield server


@pytest.fixture
def trusted(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Pki:
    """The machine trusts the test CA, as an admin's would trust their private CA (apprise reads the system's
    trust store: SSL_CERT_FILE for SMTP, REQUESTS_CA_BUNDLE for HTTPS)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    return pki


def _with_notify(config: Path, table: str) -> None:
    config.write_text(config.read_text() + "\n" + table)


def _email(port: int, security: str, **extra: str) -> str:
    lines = [f'{key} = {value}' for key, value in extra.items()]
    return "\n".join(["[[notify]]", 'type = "email"', 'smtp_host = "127.0.0.1"', f"smtp_port = {port}",
                      f'security = "{security}"', f'username = "{SMTP_USER}"', 'password_env = "AUDITOR_SMTP"',
                      'sender = "auditor@corp.test"', 'recipients = ["identity-team@corp.test"]', *lines]) + "\n"


def test_email_over_tls_with_login(small_org: Path, tmp_path: Path, smtp: tuple[MailServer, str], trusted: Pki,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server, security = smtp
    monkeypatch.setenv("AUDITOR_SMTP", SMTP_PASSWORD)
    _with_notify(small_org, _email(server.port, security, report_location='"https://audit.corp.test/r.html"'))
    result = audit(small_org, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert len(server.mails) == 1
    mail = server.mails[0]
    assert server.logins == [SMTP_USER.encode()]  # auth_required: no login, no mail
    assert mail.tls or security == "tls"  # STARTTLS was used (an implicit-TLS port speaks nothing else)
    assert mail.recipients == ["identity-team@corp.test"] and mail.sender == "auditor@corp.test"
    assert mail.message["Subject"].startswith("Identity audit Corp Test: complete, ")
    body = server.body()
    assert "Audit of Corp Test as of 2026-06-30T00:00:00Z: complete (exit code 0)." in body
    assert "Key figures:" in body and "Report: https://audit.corp.test/r.html" in body
    assert "[high] inactive-enabled in ad: " in body or "inactive-enabled in ad:" in body
    # include = "counts": figures only, no account named
    for name in ("stale-admin", "kiosk", "svc-app", HOSTILE_LOGIN, "cloud@corp.test"):
        assert name not in body
    assert SMTP_PASSWORD not in mail.message.as_string()


def test_names_are_listed_only_when_asked(small_org: Path, tmp_path: Path, receiver: WebhookReceiver,
                                          trusted: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_HOOK", f"{receiver.base_url}{HOOK_PATH}")
    _with_notify(small_org, '[[notify]]\ntype = "webhook"\nurl_env = "AUDITOR_HOOK"\ninclude = "names"\ntop = 50\n')
    assert audit(small_org, tmp_path / "out").exit_code == 0
    body = receiver.paths(HOOK_PATH)[-1].json["message"]
    assert f"in saas: {HOSTILE_LOGIN}" in body  # plain text: quoted, never markup
    assert "in ad: stale-admin" in body
    report = tmp_path / "out" / "runs"
    assert f"Report: {report.resolve()}/" in body  # no report_location: the run's own report.html


def test_untrusted_certificate_is_a_warning_not_a_failure(small_org: Path, tmp_path: Path,
                                                          smtp: tuple[MailServer, str],
                                                          monkeypatch: pytest.MonkeyPatch, pki: Pki) -> None:
    server, security = smtp
    monkeypatch.setenv("AUDITOR_SMTP", SMTP_PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_ca))  # trusts some other CA, not the server's
    _with_notify(small_org, _email(server.port, security, retries="1", retry_delay="0"))
    result = audit(small_org, tmp_path / "out", "--quiet")
    assert result.exit_code == 0  # the audit's own exit code
    assert server.mails == []  # nothing sent in clear or to an unverified server
    assert "warning: notification notify[0] (email): not delivered after 2 attempt(s)" in result.stderr
    assert SMTP_PASSWORD not in result.output and "sm%3Atp" not in result.output
    assert (tmp_path / "out" / "report.html").exists()


def test_webhook_retried_then_delivered(small_org: Path, tmp_path: Path, receiver: WebhookReceiver,
                                        trusted: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_HOOK", f"{receiver.base_url}{HOOK_PATH}")
    receiver.faults[HOOK_PATH] = [Reply(503, {"error": "busy"}), Reply(500, {})]
    _with_notify(small_org, '[[notify]]\ntype = "webhook"\nurl_env = "AUDITOR_HOOK"\nretry_delay = 0\n')
    result = audit(small_org, tmp_path / "out")
    assert result.exit_code == 0 and "warning: notification" not in result.stderr
    posts = receiver.paths(HOOK_PATH)
    assert len(posts) == 3 and posts[-1].method == "POST"
    payload = posts[-1].json
    assert payload["title"].startswith("Identity audit Corp Test: complete")
    assert "open findings" in payload["message"] and "Run: " in payload["message"]


def test_webhook_that_never_answers_well(small_org: Path, tmp_path: Path, receiver: WebhookReceiver,
                                         trusted: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_HOOK", f"{receiver.base_url}{HOOK_PATH}")
    receiver.faults[HOOK_PATH] = [Reply(500, {})] * 3
    _with_notify(small_org, '[[notify]]\ntype = "webhook"\nname = "siem"\nurl_env = "AUDITOR_HOOK"\n'
                            'retries = 2\nretry_delay = 0.05\n')
    result = audit(small_org, tmp_path / "out", "--fail-on", "high")
    assert result.exit_code == 1  # --fail-on's verdict, whatever the notification did
    assert len(receiver.paths(HOOK_PATH)) == 3  # bounded: one try and two retries
    assert "warning: notification siem: not delivered after 3 attempt(s)" in result.stderr
    assert "s3cr3tT0k3nV4lu3" not in result.output and "T0123456789" not in result.output


def test_teams_workflow(small_org: Path, tmp_path: Path, receiver: WebhookReceiver, trusted: Pki,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    monkeypatch.setenv("AUDITOR_TEAMS", f"workflows://127.0.0.1:{port}/a1b2c3d4e5f60718293a4b5c6d7e8f90/"
                                        "Sig0123456789abcdefSIGNATURE")
    _with_notify(small_org, '[[notify]]\ntype = "teams"\nurl_env = "AUDITOR_TEAMS"\n')
    result = audit(small_org, tmp_path / "out")
    assert result.exit_code == 0 and "warning: notification" not in result.stderr, result.stderr
    post = receiver.requests[-1]
    assert "/workflows/a1b2c3d4e5f60718293a4b5c6d7e8f90/" in post.path and post.query.get("sig")
    assert "Identity audit Corp Test" in str(post.json)  # an Adaptive Card carrying the summary


def test_conditions(small_org: Path, tmp_path: Path, receiver: WebhookReceiver, trusted: Pki,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_HOOK", f"{receiver.base_url}{HOOK_PATH}")
    _with_notify(small_org, '[[notify]]\ntype = "webhook"\nname = "changes"\nwhen = "changes"\n'
                            'url_env = "AUDITOR_HOOK"\n\n[[notify]]\ntype = "webhook"\nname = "failing"\n'
                            'when = "failing"\nurl_env = "AUDITOR_HOOK"\n')
    assert audit(small_org, tmp_path / "one").exit_code == 0
    assert len(receiver.paths(HOOK_PATH)) == 1  # a first audit's findings are all new: "changes" sends
    assert run("run", "--config", str(small_org), "--output", str(tmp_path / "two"), "--as-of", "2026-07-01"
               ).exit_code == 0
    assert len(receiver.paths(HOOK_PATH)) == 1, receiver.paths(HOOK_PATH)[-1].json  # nothing new: silence
    small_org.write_text(small_org.read_text().replace('path = "saas.csv"', 'path = "gone.csv"'))
    assert run("run", "--config", str(small_org), "--output", str(tmp_path / "three"), "--as-of", "2026-07-02"
               ).exit_code == 3
    messages = [r.json["message"] for r in receiver.paths(HOOK_PATH)[1:]]
    assert len(messages) == 1  # only "failing": the incomplete run resolved findings, it created none
    assert "Incomplete sources:\n- saas (csv): failed" in messages[0], messages[0]
    assert "gone.csv" not in messages[0]  # include = "counts": the error's text stays in the report


def test_kpi_threshold_makes_a_change(small_org: Path, tmp_path: Path, receiver: WebhookReceiver,
                                      trusted: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITOR_HOOK", f"{receiver.base_url}{HOOK_PATH}")
    # The change-volume rule off: an account gone is then a moved KPI and no new finding.
    small_org.write_text(small_org.read_text().replace(
        'history_db = "history.sqlite"', 'history_db = "history.sqlite"\ndisabled_rules = ["account-change-volume"]'))
    _with_notify(small_org, '[[notify]]\ntype = "webhook"\nwhen = "changes"\nurl_env = "AUDITOR_HOOK"\n'
                            '[notify.kpi_thresholds]\ninactive_enabled_accounts = 1\n\n'
                            '[[notify]]\ntype = "webhook"\nwhen = "changes"\nurl_env = "AUDITOR_HOOK"\n'
                            '[notify.kpi_thresholds]\ninactive_enabled_accounts = 2\n')
    assert audit(small_org, tmp_path / "one").exit_code == 0
    assert len(receiver.paths(HOOK_PATH)) == 2  # a first audit: every finding is new
    ldif = small_org.parent / "ad.ldif"
    text = ldif.read_bytes()
    stale = text[text.index(b"dn: CN=Stale,"):].split(b"\n\n", 1)[0]
    ldif.write_bytes(text.replace(stale + b"\n\n", b"", 1))  # one inactive account gone: no new finding
    assert run("run", "--config", str(small_org), "--output", str(tmp_path / "two"), "--as-of", "2026-07-01"
               ).exit_code == 0
    [_, _, second] = receiver.paths(HOOK_PATH)  # moved by 1: only the target whose threshold is 1 speaks
    assert "New findings: 0 (none)" in second.json["message"], second.json["message"]
    assert "- Inactive or never-used accounts still enabled: " in second.json["message"]
    assert "(-1)" in second.json["message"]


@pytest.mark.parametrize(("table", "message"), [
    ('type = "email"\nsmtp_host = "mx"\nsender = "a@b.c"\n', "notify[0]: Value error, email needs recipients"),
    ('type = "email"\nsmtp_host = "mx"\nsender = "a@b.c"\nrecipients = ["x@b.c"]\npassword = "hunter22"\n',
     "notify[0].password: secrets are not allowed in the config; use 'password_env' or 'password_file'"),
    ('type = "slack"\nurl = "https://hooks.slack.com/services/T/B/C"\n',
     "notify[0].url: unknown key"),
    ('type = "teams"\n', "notify[0]: Value error, teams needs url_env or url_file"),
    ('type = "webhook"\nurl_env = "X"\nwhen = "sometimes"\n', "notify[0].when"),
    ('type = "webhook"\nurl_env = "X"\nsmtp_host = "mx"\n', "smtp_host: not a setting of type 'webhook'"),
    ('type = "webhook"\nurl_env = "X"\n[notify.kpi_thresholds]\naccounts = 1\n',
     "kpi_thresholds: unknown KPI 'accounts'"),
])
def test_bad_notify_tables(small_org: Path, tmp_path: Path, table: str, message: str) -> None:
    _with_notify(small_org, "[[notify]]\n" + table)
    result = run("check-config", str(small_org))
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_slack_and_plain_http_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    import apprise

    from auditor.config import NotifyTarget
    from auditor.notify import Message, apprise_url, send

    monkeypatch.setenv("AUDITOR_SLACK", "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghij0123456789ABCD")
    slack = NotifyTarget(type="slack", url_env="AUDITOR_SLACK")
    assert apprise.Apprise().add(apprise_url(slack))  # the URL Slack gives is understood as it is
    monkeypatch.setenv("AUDITOR_HOOK", "http://127.0.0.1:9/hook")
    problem = send(NotifyTarget(type="webhook", url_env="AUDITOR_HOOK"), Message("t", "b"))
    assert problem and "plain http is refused" in problem


def test_readme_notify_example_is_a_valid_config(small_org: Path, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running on a schedule", 1)[1].split("\n## ", 1)[0]
    example = next(block for block in section.split("```toml\n")[1:] if "[[notify]]" in block).split("```")[0]
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in ("smtp-password", "teams-webhook"):
        (credentials / name).write_text("secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    _with_notify(small_org, "\n".join(line[3:] for line in example.splitlines()))
    result = run("check-config", str(small_org))
    assert result.exit_code == 0, result.output
