"""After a run: tell the people who asked (``[[notify]]``), by email or chat, through apprise.

apprise (https://github.com/caronc/apprise) already speaks SMTP with STARTTLS or implicit TLS, Teams
workflows, Slack and JSON webhooks, each with its vendor's quirks; we build its URL from the config and the
secrets, and the message from the scored result. A notification is news about the audit, never part of it: a
failure is retried with bounded backoff, then becomes a warning, and the exit code stays the audit's.

TLS is verified against the system's trust store (apprise has no per-target CA setting): a private CA goes
into that store, or ``SSL_CERT_FILE`` (SMTP) and ``REQUESTS_CA_BUNDLE`` (webhooks) name a bundle holding it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode, urlsplit

from auditor.config import NotifyTarget
from auditor.engine import AuditResult
from auditor.kpis import Kpi
from auditor.model import Finding, Severity, SourceState
from auditor.secrets import SecretUnavailable, register, resolve_secret, scrub_text
from auditor.timeconv import to_iso

MAX_DELAY = 60.0  # seconds between two attempts, however many retries are configured
_SCHEMES = {"teams": ("workflows", "https"), "slack": ("slack", "https"), "webhook": ("jsons", "https")}


@dataclass(frozen=True)
class Message:
    title: str
    body: str


@dataclass(frozen=True)
class RunOutcome:
    """What the notification reports beside the result: how the run ended and where its report is."""

    exit_code: int
    report_location: str


def label(target: NotifyTarget, index: int) -> str:
    return target.name or f"notify[{index}] ({target.type})"


def due(target: NotifyTarget, result: AuditResult, outcome: RunOutcome) -> bool:
    if target.when == "always":
        return True
    if target.when == "failing":
        return outcome.exit_code in (1, 3)
    return bool(_new_findings(result)) or any(_kpi_moved(target, result, kpi) for kpi in result.kpis)


def _new_findings(result: AuditResult) -> list[Finding]:
    """Open findings not open in the previous audit; on a first audit, every open finding."""
    open_findings = result.open_findings()
    if result.previous_run is None:
        return open_findings
    new = set(result.new_findings)
    return [f for f in open_findings if f.key in new]


def _previous_value(result: AuditResult, kpi: Kpi) -> float | int | None:
    if result.previous_run is None:
        return None
    value = result.previous_run.kpis.get(kpi.id, {}).get("value")
    return value if isinstance(value, int | float) else None


def _kpi_moved(target: NotifyTarget, result: AuditResult, kpi: Kpi) -> bool:
    threshold = target.kpi_thresholds.get(kpi.id)
    before = _previous_value(result, kpi)
    if threshold is None or before is None or kpi.value is None:
        return False
    return abs(kpi.value - before) >= threshold


def _figure(value: float | int | None, unit: str) -> str:
    if value is None:
        return "unknown"
    return f"{value:.1%}" if unit == "ratio" else f"{value:,.2f}" if unit == "money" else f"{value:,}"


def _change(kpi: Kpi, before: float | int | None) -> str:
    if before is None or kpi.value is None:
        return ""
    delta = kpi.value - before
    if kpi.unit == "ratio":
        return f" ({delta * 100:+.1f} points)"
    return f" ({delta:+,.2f})" if kpi.unit == "money" else f" ({delta:+,})"


def _by_severity(findings: list[Finding]) -> str:
    counts = Counter(f.severity for f in findings)
    return ", ".join(f"{counts[s]} {s.value}" for s in reversed(Severity) if counts[s]) or "none"


def compose(target: NotifyTarget, result: AuditResult, outcome: RunOutcome) -> Message:
    """The one-line summary, the KPIs with their change, the new findings by severity (the top ``top`` listed:
    by rule with counts, or with ``include = "names"`` by subject), incomplete sources, and where the report
    is. Everything a directory returned is hostile text: names are only ever quoted, never markup."""
    open_findings = result.open_findings()
    new = _new_findings(result)
    state = "complete" if result.complete else "INCOMPLETE"
    title = (f"Identity audit {result.organization}: {state}, {len(open_findings)} open finding(s), "
             f"{len(new)} new")
    lines = [
        f"Audit of {result.organization} as of {to_iso(result.as_of)}: {state} (exit code {outcome.exit_code}).",
        f"{len(result.inventory.accounts):,} accounts; {len(open_findings)} open findings "
        f"({_by_severity(open_findings)}).",
    ]
    if result.previous_run is not None:
        lines.append(f"Since the previous audit ({to_iso(result.previous_run.as_of)}): "
                     f"{result.since_previous.get('new', len(new))} new, "
                     f"{result.since_previous.get('resolved', 0)} resolved.")
    lines += ["", "Key figures" + (" (change since the previous audit):" if result.previous_run else ":")]
    lines += [f"- {kpi.label}: {_figure(kpi.value, kpi.unit)}{_change(kpi, _previous_value(result, kpi))}"
              for kpi in result.kpis]
    lines += ["", f"New findings: {len(new)} ({_by_severity(new)})"]
    lines += [f"- {line}" for line in _top(target, new)]
    incomplete = [s for s in result.inventory.sources if s.state != SourceState.OK]
    if incomplete:
        lines += ["", "Incomplete sources:"]
        for status in incomplete:
            detail = f": {status.error}" if target.include == "names" and status.error else ""
            lines.append(f"- {status.name} ({status.type}): {status.state.value}{detail}")
    lines += ["", f"Report: {target.report_location or outcome.report_location}", f"Run: {result.run_id}"]
    return Message(title, "\n".join(lines))


def _top(target: NotifyTarget, new: list[Finding]) -> Iterator[str]:
    ranked = sorted(new, key=lambda f: -f.severity.rank)
    if target.include == "names":
        for finding in ranked[:target.top]:
            yield f"[{finding.severity.value}] {finding.rule} in {finding.source}: {finding.subject.name}"
        rest = len(ranked) - target.top
    else:  # counts: which rules, how many, where; no subject
        groups = Counter((f.severity, f.rule, f.source) for f in ranked)
        ordered = sorted(groups.items(), key=lambda item: (-item[0][0].rank, -item[1], item[0][1], item[0][2]))
        for (severity, rule, source), count in ordered[:target.top]:
            yield f"[{severity.value}] {rule} in {source}: {count}"
        rest = len(ordered) - target.top
    if rest > 0:
        yield f"... and {rest} more in the report"


class NotifyError(Exception):
    """The target cannot be used as configured (its secret unreadable, its URL not one apprise knows)."""


def apprise_url(target: NotifyTarget) -> str:
    """The target as an apprise URL, secrets in it registered with the redaction boundary first."""
    if target.type == "email":
        port = target.smtp_port or (587 if target.security == "starttls" else 465)
        credentials = ""
        if target.username:
            credentials = quote(target.username, safe="")
            if target.password_env or target.password_file:
                password = _secret(target, "password")
                credentials += ":" + quote(password, safe="")
            credentials += "@"
        query = {"mode": "starttls" if target.security == "starttls" else "ssl", "from": target.sender or "",
                 "to": ",".join(target.recipients), "timeout": str(target.timeout)}
        assert target.smtp_host is not None  # the config model requires it for email
        return f"mailtos://{credentials}{target.smtp_host}:{port}/?{urlencode(query)}"
    url = _secret(target, "url")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES[target.type]:
        schemes = " or ".join(f"{name}://" for name in _SCHEMES[target.type])
        raise NotifyError(f"the {target.type} URL must start with {schemes} (plain http is refused: the message "
                          "describes your weak spots)")
    values = [pair.partition("=")[2] for pair in parts.query.split("&")]
    for part in [*parts.path.split("/"), *values]:
        if len(part) >= 8 and any(c.isdigit() for c in part):  # ids, tokens, signatures; not "services"
            register(unquote(part))  # they travel on their own in apprise's log lines
    if target.type == "webhook" and scheme == "https":
        return "jsons" + url[len("https"):]
    return url


def _secret(target: NotifyTarget, what: str) -> str:
    env, path = ((target.password_env, target.password_file) if what == "password"
                 else (target.url_env, target.url_file))
    try:
        return resolve_secret(f"{target.type} {what}", env, path)
    except SecretUnavailable as exc:
        raise NotifyError(str(exc)) from None


class _Capture(logging.Handler):
    """apprise explains a failure only in its log (the cause at debug level): kept for our warning."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reasons: list[str] = []
        self.causes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.reasons.append(text)
        elif "Exception" in text or "Response Details" in text:
            self.causes.append(text)

    def why(self) -> str:
        reason = self.reasons[-1] if self.reasons else "no reason given"
        return f"{reason} ({self.causes[-1][:300]})" if self.causes else reason


def send(target: NotifyTarget, message: Message, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Deliver ``message``; None when delivered, else why not (scrubbed of every secret)."""
    import apprise

    try:
        url = apprise_url(target)
    except NotifyError as exc:
        return scrub_text(str(exc))
    logger = logging.getLogger("apprise")
    capture = _Capture()
    logger.addHandler(capture)
    propagate, logger.propagate = logger.propagate, False  # apprise's own lines never reach stderr unscrubbed
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return f"apprise does not accept this {target.type} URL"
        attempts = target.retries + 1
        for attempt in range(attempts):
            if notifier.notify(title=message.title, body=message.body, body_format=apprise.NotifyFormat.TEXT):
                return None
            if attempt + 1 < attempts:
                sleep(min(target.retry_delay * 2 ** attempt, MAX_DELAY))
        return scrub_text(f"not delivered after {attempts} attempt(s): {capture.why()}")
    finally:
        logger.removeHandler(capture)
        logger.propagate = propagate
        logger.setLevel(level)


def notify_all(targets: tuple[NotifyTarget, ...], result: AuditResult, outcome: RunOutcome,
               warn: Callable[[str], None]) -> int:
    """Send to every target whose condition holds; returns how many were delivered. Never raises for a
    target: the audit is done and its outputs written whatever happens here."""
    delivered = 0
    for index, target in enumerate(targets):
        if not due(target, result, outcome):
            continue
        try:
            problem = send(target, compose(target, result, outcome))
        except Exception as exc:  # a notifier's bug must not turn a finished audit into a crash
            problem = scrub_text(f"{type(exc).__name__}: {exc}")
        if problem:
            warn(f"{label(target, index)}: {problem}")
        else:
            delivered += 1
    return delivered
