"""The TOML config: one ``[audit]`` table, ``[[sources]]`` and ``[[exclusions]]``.

Every problem becomes a :class:`ConfigError` whose one-line message names the file, the key and
what is wrong; the CLI prints it and exits 2 without a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors import SOURCE_TYPES
from connectors.base import SourceConfig, StrList, config_path

if TYPE_CHECKING:
    from auditor.model import Account

_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "private_key", "passphrase")


class ConfigError(Exception):
    """A config problem, already phrased for the user: ``FILE: KEY: what is wrong``."""


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    strong_policy_score: int = Field(default=3, ge=0, le=4)
    spike_k: float = Field(default=3.0, gt=0)
    spike_baseline_days: int = Field(default=28, ge=7, le=365)
    spike_min_changes: int = Field(default=10, ge=1)
    guest_invitation_days: int = Field(default=30, ge=1, le=3650)


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    organization: str = "Example Org"
    inactive_days: int = Field(default=90, ge=1, le=3650)
    new_account_grace_days: int = Field(default=14, ge=0, le=3650)
    period_days: int = Field(default=30, ge=1, le=3650)
    history_db: Path | None = Field(default=None, strict=False)  # default: auditor-history.sqlite beside the config
    # Retention: after each run, older runs are pruned from the history (``auditor history prune``). A run is
    # kept while either setting keeps it; unset, every run is kept.
    history_keep_runs: int | None = Field(default=None, ge=1)
    history_keep_days: int | None = Field(default=None, ge=1)
    disabled_rules: StrList = ()
    thresholds: Thresholds = Thresholds()


CORRELATION_KEYS = ("sid", "immutable_id", "employee_id", "email")


class EvidenceSettings(BaseModel):
    """How evidence bundles are signed (``[evidence]``). The Ed25519 private key (PKCS#8 PEM, e.g. from
    ``openssl genpkey -algorithm ed25519``) comes from a file or an environment variable, never the config."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    signing_key_file: Path | None = Field(default=None, strict=False)
    signing_key_env: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> EvidenceSettings:
        if self.signing_key_file and self.signing_key_env:
            raise ValueError("set signing_key_file or signing_key_env, not both")
        return self


class IdentitySettings(BaseModel):
    """How accounts in different sources are linked to one person (``[identity]``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    authoritative_source: str  # the directory that says who works here (normally AD or Entra ID)
    # Tried in this order; the first key that names exactly one person makes the link.
    keys: StrList = CORRELATION_KEYS
    # Groups of mail domains that are one organisation: [["example.com", "example.co.uk"]]; the first is canonical.
    domain_aliases: tuple[StrList, ...] = Field(default=(), strict=False)
    # Usernames (globs, case-insensitive) of declared service accounts: never "unmanaged", never offboarded.
    service_accounts: StrList = ()

    @model_validator(mode="after")
    def _known_keys(self) -> IdentitySettings:
        for key in self.keys:
            if key not in CORRELATION_KEYS:
                raise ValueError(f"unknown correlation key {key!r} (one of: {', '.join(CORRELATION_KEYS)})")
        if not self.keys:
            raise ValueError("keys: name at least one correlation key")
        return self


class Exclusion(BaseModel):
    """An account that a rule must not count, with why and until when."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    reason: str = Field(min_length=3)
    username: str | None = None  # glob, case-insensitive
    group: str | None = None  # group name or DN, case-insensitive
    id: str | None = None
    source: str | None = None
    rules: StrList = ()  # empty: every account rule
    expires: date | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> Exclusion:
        if not (self.username or self.group or self.id):
            raise ValueError("needs one of 'username', 'group' or 'id'")
        return self

    @property
    def label(self) -> str:
        selector = (
            f"username={self.username}" if self.username else f"group={self.group}" if self.group
            else f"id={self.id}"
        )
        return selector + (f" in {self.source}" if self.source else "")


class AcceptedRisk(Exclusion):
    """A finding the organisation knowingly accepts: who owns the decision, why, and until when."""

    owner: str = Field(min_length=2)
    expires: date  # required here: an accepted risk is always reviewed again

    @property
    def label(self) -> str:
        return f"{super().label}, owner {self.owner}, until {self.expires}"


class ReviewOwner(BaseModel):
    """``[[review.owners]]``: who reviews a source's or a group's accounts when no manager does."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    owner: str = Field(min_length=3)  # the reviewer: an address or a username
    source: str | None = None
    group: str | None = None  # a group name or DN, case-insensitive (with `source`: only in that source)

    @model_validator(mode="after")
    def _scope(self) -> ReviewOwner:
        if not self.source and not self.group:
            raise ValueError("needs 'source' or 'group': what this owner reviews")
        return self

    def covers(self, account: Account, by: str) -> bool:
        """Whether this owner reviews the account in a campaign ``by`` manager (any owner: for accounts without
        a manager), source (owners of a whole source) or group (owners of a group)."""
        if (self.source and self.source != account.source) or (by == "source" and self.group) or (
                by == "group" and not self.group):
            return False
        return not self.group or account.in_group(self.group)


class ReviewSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    owners: tuple[ReviewOwner, ...] = Field(default=(), strict=False)


class NotifyTarget(BaseModel):
    """A ``[[notify]]`` table: where to say how a run went (auditor.notify). The webhook URL and the SMTP password
    are secrets (a chat webhook URL carries its signature), so they come from ``*_env`` / ``*_file`` only."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal["email", "teams", "slack", "webhook"]
    name: str | None = None  # shown in warnings; default "notify[N] (type)"
    # always: after every run; changes: new findings, or a KPI moved by at least its kpi_thresholds value;
    # failing: the run exits 1 (--fail-on met) or 3 (incomplete).
    when: Literal["always", "changes", "failing"] = "always"
    # counts: figures only, no username, name or message; names: the top new findings with their subjects.
    include: Literal["counts", "names"] = "counts"
    top: int = Field(default=10, ge=0, le=100)
    kpi_thresholds: dict[str, float] = Field(default_factory=dict, strict=False)
    report_location: str | None = None  # a URL or path readers open; default: the run's report.html
    retries: int = Field(default=3, ge=0, le=10)
    retry_delay: float = Field(default=5.0, ge=0, le=60, strict=False)  # seconds, doubled per retry
    timeout: int = Field(default=30, ge=1, le=300)
    # type = "email"
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)  # default: 587 (starttls), 465 (tls)
    security: Literal["starttls", "tls"] = "starttls"  # never plain text: the message describes your weak spots
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = Field(default=None, strict=False)
    sender: str | None = None
    recipients: StrList = ()
    # type = "teams" | "slack" | "webhook": the URL the service gave (or an apprise URL for it)
    url_env: str | None = None
    url_file: Path | None = Field(default=None, strict=False)

    @model_validator(mode="after")
    def _complete(self) -> NotifyTarget:
        chat = ("url_env", "url_file")
        mail = ("smtp_host", "smtp_port", "username", "password_env", "password_file", "sender")
        if self.type == "email":
            missing = [k for k in ("smtp_host", "sender") if not getattr(self, k)] + (
                [] if self.recipients else ["recipients"])
            if missing:
                raise ValueError(f"email needs {', '.join(missing)}")
            if (self.password_env or self.password_file) and not self.username:
                raise ValueError("a password needs a username")
            if self.password_env and self.password_file:
                raise ValueError("set password_env or password_file, not both")
            wrong = [k for k in chat if getattr(self, k) is not None]
        else:
            if (self.url_env is None) == (self.url_file is None):
                raise ValueError(f"{self.type} needs url_env or url_file (the URL is a secret), exactly one")
            wrong = [k for k in mail if getattr(self, k) is not None] + (["recipients"] if self.recipients else [])
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: not a setting of type {self.type!r}")
        from auditor.kpis import KPI_IDS  # late: kpis imports the model, not the config

        for kpi in self.kpi_thresholds:
            if kpi not in KPI_IDS:
                raise ValueError(f"kpi_thresholds: unknown KPI {kpi!r} (one of: {', '.join(KPI_IDS)})")
        return self

    def secret_references(self) -> dict[str, str | Path]:
        return {key: value for key in ("password_env", "password_file", "url_env", "url_file")
                if (value := getattr(self, key)) is not None}


@dataclass(frozen=True)
class Config:
    path: Path | None
    audit: AuditSettings
    sources: tuple[SourceConfig, ...]
    exclusions: tuple[Exclusion, ...]
    history_db: Path
    accepted_risks: tuple[AcceptedRisk, ...] = ()
    identity: IdentitySettings | None = None  # None: accounts are not correlated across sources
    evidence: EvidenceSettings = field(default_factory=EvidenceSettings)
    # [rules.<id>] tables: parameter values by rule id, validated against each rule's declared parameters
    rule_parameters: Mapping[str, Mapping[str, int | float]] = field(default_factory=dict)
    notify: tuple[NotifyTarget, ...] = ()
    review: ReviewSettings = field(default_factory=ReviewSettings)

    def inactive_days_for(self, source: str) -> int:
        for cfg in self.sources:
            if cfg.name == source and cfg.inactive_days is not None:
                return cfg.inactive_days
        return self.audit.inactive_days


def _key_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(file: str, prefix: str, error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    loc = tuple(p for p in first["loc"] if p not in ("tagged-union",))
    key = _key_path(prefix, loc)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        last = str(loc[-1]) if loc else ""
        if any(word in last.lower() for word in _SECRET_WORDS):
            message = f"secrets are not allowed in the config; use '{last}_env' or '{last}_file'"
        else:
            message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif "input" in first and first["type"].endswith("_type"):
        message = f"{message} (got {type(first['input']).__name__} {first['input']!r})"
    return ConfigError(f"{file}: {key}: {message}" if key else f"{file}: {message}")


def parse_config(text: str, *, path: Path | None = None) -> Config:
    file = str(path) if path else "<config>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{file}: not valid TOML: arrays or tables nested too deeply") from None
    base_dir = path.resolve().parent if path else Path.cwd()
    known = {"audit", "sources", "exclusions", "accepted_risks", "identity", "evidence", "rules", "notify", "review"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{file}: {key}: unknown key (expected one of: {', '.join(sorted(known))})")
    try:
        audit = AuditSettings.model_validate(data.get("audit", {}))
    except ValidationError as exc:
        raise _describe(file, "audit", exc) from None

    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{file}: sources: must be an array of tables ([[sources]])")
    sources: list[SourceConfig] = []
    for index, raw in enumerate(raw_sources):
        where = f"sources[{index}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{file}: {where}: must be a table")
        source_type = raw.get("type")
        if not isinstance(source_type, str) or source_type not in SOURCE_TYPES:
            choices = ", ".join(sorted(SOURCE_TYPES))
            raise ConfigError(f"{file}: {where}.type: unknown source type {source_type!r} (one of: {choices})")
        try:
            model = SOURCE_TYPES[source_type].config_model
            sources.append(model.model_validate(raw, context={"base_dir": base_dir}))
        except ValidationError as exc:
            raise _describe(file, where, exc) from None
    names = [s.name for s in sources]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"{file}: sources[{index}].name: duplicate source name {name!r}")

    identity = None
    if "identity" in data:
        try:
            identity = IdentitySettings.model_validate(data["identity"])
        except ValidationError as exc:
            raise _describe(file, "identity", exc) from None
        if identity.authoritative_source not in names:
            raise ConfigError(f"{file}: identity.authoritative_source: no source named "
                              f"{identity.authoritative_source!r}")
    try:
        evidence = EvidenceSettings.model_validate(data.get("evidence", {}))
    except ValidationError as exc:
        raise _describe(file, "evidence", exc) from None
    if evidence.signing_key_file:
        key_file = _path(file, "evidence.signing_key_file", evidence.signing_key_file, base_dir)
        evidence = evidence.model_copy(update={"signing_key_file": key_file})
    exclusions = _entries(file, data, "exclusions", Exclusion, names)
    accepted = _entries(file, data, "accepted_risks", AcceptedRisk, names)
    _check_rule_ids(file, audit)
    if not any(s.enabled for s in sources):
        raise ConfigError(f"{file}: sources: no enabled source: an audit of nothing would report "
                          "'complete, 0 accounts'")
    history = _path(file, "audit.history_db", audit.history_db or Path("auditor-history.sqlite"), base_dir)
    parameters = _rule_parameters(file, data.get("rules", {}))
    notify = tuple(_notify_target(file, index, raw, base_dir)
                   for index, raw in enumerate(_tables(file, data, "notify")))
    try:
        review = ReviewSettings.model_validate(data.get("review", {}))
    except ValidationError as exc:
        raise _describe(file, "review", exc) from None
    for index, owner in enumerate(review.owners):
        if owner.source and owner.source not in names:
            raise ConfigError(f"{file}: review.owners[{index}].source: no source named {owner.source!r}")
    return Config(path, audit, tuple(sources), tuple(exclusions), history, tuple(accepted), identity, evidence,
                  parameters, notify, review)


def _tables(file: str, data: dict[str, Any], key: str) -> list[Any]:
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise ConfigError(f"{file}: {key}: must be an array of tables ([[{key}]])")
    return entries


def _notify_target(file: str, index: int, raw: Any, base_dir: Path) -> NotifyTarget:
    where = f"notify[{index}]"
    try:
        target = NotifyTarget.model_validate(raw)
    except ValidationError as exc:
        raise _describe(file, where, exc) from None
    for key in ("password_file", "url_file"):
        value = getattr(target, key)
        if value is not None:
            target = target.model_copy(update={key: _path(file, f"{where}.{key}", value, base_dir)})
    return target


def _path(file: str, key: str, value: Path, base_dir: Path) -> Path:
    try:
        return config_path(value, base_dir)
    except ValueError as exc:
        raise ConfigError(f"{file}: {key}: {exc}") from None


def _entries(file: str, data: dict[str, Any], key: str, model: type[E], sources: list[str]) -> list[E]:
    entries = []
    for index, raw in enumerate(_tables(file, data, key)):
        try:
            entry = model.model_validate(raw)
        except ValidationError as exc:
            raise _describe(file, f"{key}[{index}]", exc) from None
        if entry.source and entry.source not in sources:
            raise ConfigError(f"{file}: {key}[{index}].source: no source named {entry.source!r}")
        for rule_id in entry.rules:
            if rule_id not in _rule_ids():
                raise ConfigError(f"{file}: {key}[{index}].rules: unknown rule id {rule_id!r}")
        entries.append(entry)
    return entries


E = TypeVar("E", bound=Exclusion)


def _rule_ids() -> set[str]:
    from auditor.rules import RULES  # late: rules import config types

    return set(RULES)


def _rule_parameters(file: str, tables: object) -> dict[str, dict[str, int | float]]:
    """``[rules.<id>]`` tables, each key checked against the parameters the rule declares (its type and
    bounds): a misspelt rule or parameter is an error, never a silently ignored setting."""
    from auditor.rules import RULES  # late: rules import config types

    if not isinstance(tables, dict):
        raise ConfigError(f"{file}: rules: must be a table of [rules.<rule id>] tables")
    checked: dict[str, dict[str, int | float]] = {}
    for rule_id, values in tables.items():
        rule = RULES.get(rule_id)
        if rule is None:
            raise ConfigError(f"{file}: rules.{rule_id}: unknown rule id (see 'auditor rules')")
        if not isinstance(values, dict):
            raise ConfigError(f"{file}: rules.{rule_id}: must be a table of parameters")
        declared = {p.name: p for p in rule.meta.parameters}
        for name, value in values.items():
            parameter = declared.get(name)
            if parameter is None:
                known = ", ".join(declared) or "none"
                raise ConfigError(f"{file}: rules.{rule_id}.{name}: unknown parameter (this rule's: {known})")
            problem = parameter.problem(value)
            if problem:
                raise ConfigError(f"{file}: rules.{rule_id}.{name}: {problem}")
            checked.setdefault(rule_id, {})[name] = value
    return checked


def _check_rule_ids(file: str, audit: AuditSettings) -> None:
    for rule_id in audit.disabled_rules:
        if rule_id not in _rule_ids():
            raise ConfigError(f"{file}: audit.disabled_rules: unknown rule id {rule_id!r} (see 'auditor rules')")


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(text, path=path)


def redacted_config(config: Config) -> dict[str, Any]:
    """The effective config as data, for evidence: secret references are kept, no secret values exist."""
    return {
        "audit": config.audit.model_dump(mode="json"),
        "sources": [s.model_dump(mode="json") for s in config.sources],
        "exclusions": [e.model_dump(mode="json") for e in config.exclusions],
        "accepted_risks": [e.model_dump(mode="json") for e in config.accepted_risks],
        "identity": config.identity.model_dump(mode="json") if config.identity else None,
        "evidence": config.evidence.model_dump(mode="json"),  # the key's file or variable name, never the key
        "notify": [t.model_dump(mode="json") for t in config.notify],  # where the URL or password is, never them
    }


def unavailable_secrets(config: Config) -> list[str]:
    """Secret references (``*_env``, ``*_file``) of enabled sources and of the evidence key that point at
    nothing: an unset or empty environment variable, a missing or unreadable file. Read locally only; nothing is
    contacted, no value shown."""
    problems = []
    file = str(config.path) if config.path else "<config>"
    references: list[tuple[str, str | Path]] = [
        (f"evidence.{name}", value) for name in ("signing_key_env", "signing_key_file")
        if (value := getattr(config.evidence, name)) is not None]
    for index, source in enumerate(config.sources):
        if source.enabled:
            references += [(f"sources[{index}].{key} ({source.name})", value)
                           for key, value in source.secret_references().items()]
    for index, target in enumerate(config.notify):
        references += [(f"notify[{index}].{key}", value) for key, value in target.secret_references().items()]
    for where, reference in references:
        if isinstance(reference, str) and not os.environ.get(reference):
            problems.append(f"{file}: {where}: environment variable {reference} is not set or empty")
        elif isinstance(reference, Path) and not os.access(reference, os.R_OK):
            problems.append(f"{file}: {where}: {reference} does not exist or is not readable")
    return problems
