"""The self-contained HTML report: one file, no network, inline CSS/JS admitted by hash only."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import timedelta
from importlib.resources import files
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from auditor import __version__, jsonio
from auditor.activity import ActivityState
from auditor.change_volume import per_action, per_day
from auditor.charts import Bar, bar_chart, sparkline
from auditor.controls import FRAMEWORKS
from auditor.deflate import Deflater
from auditor.engine import AuditResult
from auditor.kpis import Kpi
from auditor.model import AccountKind, Finding, Severity, SourceState
from auditor.review_outcomes import completion
from auditor.rules import RULES, marked
from auditor.rules.base import AREAS
from auditor.timeconv import to_iso
from auditor.views import account_rows, person_rows


def _asset(name: str) -> str:
    return files("report_templates").joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def script_json(value: Any) -> Markup:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' can close or open a tag."""
    text = jsonio.dumps(value).decode("utf-8")
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return Markup(text)  # noqa: S704 - escaped just above for the script-data context


def _kpi_display(kpi: Kpi) -> str:
    if kpi.value is None:
        return "n/a"
    if kpi.unit == "ratio":
        return f"{kpi.value * 100:.1f}%"
    if kpi.unit == "money":
        return f"{kpi.value:,.2f} {kpi.detail.get('currency', '')}".rstrip()
    return f"{kpi.value:,}"


def _detail_text(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "none"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def _evidence_text(evidence: dict[str, Any]) -> str:
    lines = []
    for key, value in evidence.items():
        if value is None or value == [] or value == {}:
            continue
        shown = value if isinstance(value, str | int | float | bool) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {shown}")
    return "\n".join(lines)


ACCOUNT_COLUMNS = ("source", "username", "display_name", "email", "kind", "enabled", "privileged", "activity",
                   "days_since_activity", "last_activity_attribute", "policy_strength", "mfa_registered", "groups",
                   "findings")
# Columns with few distinct values are sent once as a list and referenced by position: at 100,000 accounts
# the difference is tens of megabytes. A tuple, not a set: the page's bytes must not depend on hash order.
_DICTIONARY_COLUMNS = ("source", "kind", "activity", "last_activity_attribute", "policy_strength", "groups",
                       "findings")


_REMEMBERED_VALUES = 100_000  # distinct values a column's list looks up again (at most some 20 MB of them)


class _ColumnValues:
    """A dictionary column's list of values, in the order they first came, and the position of each.

    The list's text is kept compressed as it grows. Up to ``_REMEMBERED_VALUES`` distinct values are looked up
    again (a value that comes again gets its first position); past that a new value is given a new position each
    time it comes. A column whose values rarely repeat (a million accounts' groups) was held twice, every value
    as a key and in the list: some 200 MB at the peak of a million-account run. The page reads the list by
    position either way; below that many values its bytes are what they were."""

    __slots__ = ("_compressor", "_new", "_parts", "positions", "size")

    def __init__(self) -> None:
        self.positions: dict[Any, int] = {}
        self.size = 0
        self._new: list[Any] = []  # values given a position since the last batch was compressed
        self._compressor: Any = zlib.compressobj(1)  # None once the list is complete
        self._parts: list[bytes] = []

    def position(self, value: Any) -> int:
        known = self.positions.get(value)
        if known is None:
            known, self.size = self.size, self.size + 1
            if len(self.positions) < _REMEMBERED_VALUES:
                self.positions[value] = known
            self._new.append(value)
            if len(self._new) >= jsonio.BATCH:
                self._compress()
        return known

    def _compress(self) -> None:
        text = script_json(self._new)[1:-1]
        self._new = []
        self._parts.append(self._compressor.compress(f"{',' if self._parts else ''}{text}".encode()))

    def text(self) -> Iterator[bytes]:
        """The list as ``script_json`` writes it, in pieces (UTF-8). Once asked for, the list is complete."""
        if self._compressor is not None:
            if self._new:
                self._compress()
            self._parts.append(self._compressor.flush())
            self._compressor = None
        yield b"["
        reader = zlib.decompressobj()
        for part in self._parts:
            yield reader.decompress(part)
        yield reader.flush()
        yield b"]"


class _EncodedAccounts:
    """The accounts table as the page reads it: rows of values, some columns as positions in a per-column list
    of values. The rows are encoded a batch at a time; the lists are complete once every row is."""

    def __init__(self, result: AuditResult) -> None:
        self.result = result
        self.dictionaries: dict[str, _ColumnValues] = {c: _ColumnValues() for c in _DICTIONARY_COLUMNS}

    def row_batches(self) -> Iterator[list[list[Any]]]:
        dictionaries = self.dictionaries
        for rows in jsonio.batched(account_rows(self.result)):
            yield [[dictionaries[column].position(row[column]) if column in dictionaries else row[column]
                    for column in ACCOUNT_COLUMNS] for row in rows]

    def lists(self) -> Iterator[bytes]:
        """The lists as ``script_json`` writes ``{column: [value, ...], ...}``, in pieces (UTF-8)."""
        for number, (column, values) in enumerate(self.dictionaries.items()):
            yield f"{',' if number else '{'}{script_json(column)}:".encode()
            yield from values.text()
        yield b"}"


def _common_evidence(findings: list[Finding]) -> dict[str, Any]:
    """Evidence every finding of a rule shares (thresholds, caveats): shown once; each row keeps only its own."""
    if len(findings) < 2:
        return {}
    first = findings[0].evidence
    return {k: v for k, v in first.items() if all(f.evidence.get(k, object()) == v for f in findings[1:])}


def _finding_rows(findings: list[Finding], common: dict[str, Any]) -> Iterator[list[Any]]:
    for f in findings:
        yield [f.severity.value, f.source, f.subject.name, f.message,
               _evidence_text({k: v for k, v in f.evidence.items() if k not in common}), f.status_note]


class _FindingsData:
    """The findings' data, ``{"<rule>": [row, ...], ...}`` as :func:`script_json` writes it, made a batch of rows
    at a time: held as text while small, compressed as it comes once it passes the size (every row and its
    text at once were a gigabyte at a million findings). The same bytes as the whole written and compressed."""

    def __init__(self, compress_above: int) -> None:
        self.compress_above = compress_above
        self.size = 0
        self._pieces: list[str] = []
        self.packer: _Packer | None = None

    def _add(self, text: str) -> None:
        self.size += len(text)
        if self.packer is not None:
            self.packer.add(text)
            return
        self._pieces.append(text)
        if self.size > self.compress_above:
            self.packer, self._pieces = _Packer("".join(self._pieces)), []

    def add_rule(self, rule_id: str, rows: Iterable[list[Any]]) -> None:
        self._add(("{" if not self.size else ",") + script_json(rule_id) + ":")
        for piece in _list_pieces(rows):
            self._add(piece)

    def text(self) -> str:
        """The whole text (only while it was not compressed)."""
        return "".join(self._pieces) + ("}" if self.size else "{}")


_ZXCVBN_LOG10_FOR_SCORE = {0: 0.0, 1: 3.0, 2: 6.0, 3: 8.0, 4: 10.0}
_AGE_BUCKETS = ((30, "0-30 d"), (90, "31-90 d"), (180, "91-180 d"), (365, "181-365 d"), (None, "> 1 year"))


def _posture(result: AuditResult) -> list[dict[str, Any]]:
    """One row per summary area, from each rule's declared area: no rule's findings can miss the summary.
    Informational findings (counts, not problems) do not change an area's state."""
    rows = []
    problems = [f for f in result.open_findings() if f.severity != Severity.INFO]
    for area in AREAS:
        rules = [r.meta for r in RULES.values() if r.meta.area == area]
        mine = [f for f in problems if RULES[f.rule].meta.area == area]
        unevaluated = [m for m in rules if (m.needs_identity and result.inventory.identity is None)
                       or (m.needs_reviews and not result.inventory.reviews)]
        if not mine and result.inventory.identity is None and len(unevaluated) == len(rules):
            rows.append({"area": area, "state": "not evaluated", "css": "attention",
                         "summary": "accounts are not linked to people: configure [identity]"})
            continue
        worst = max((f.severity.rank for f in mine), default=-1)
        state = "at risk" if worst >= 3 else "attention" if mine else "good"
        rows.append({"area": area, "state": state, "css": state.replace(" ", "-"),
                     "summary": f"{len(mine)} open finding(s)" if mine else "no open findings"})
    gaps = len(result.gaps)
    kpi = {k.id: k.value or 0 for k in result.kpis}
    unknown = [f"activity unknown for {n} enabled account(s)" for n in (kpi.get("activity_unknown_accounts"),) if n]
    unknown += [f"enabled state unknown for {n} account(s)" for n in (kpi.get("enabled_unknown_accounts"),) if n]
    rows.append({"area": "Coverage", "state": "at risk" if gaps else "attention" if unknown else "good",
                 "css": "at-risk" if gaps else "attention" if unknown else "good",
                 "summary": f"{gaps} source(s) or rule(s) missing" if gaps else
                 "; ".join(unknown) if unknown else "every source read in full"})
    return rows


def _access_review(result: AuditResult) -> dict[str, Any] | None:
    """The latest access-review campaign: how far each reviewer got."""
    if not result.inventory.reviews:
        return None
    campaign = result.inventory.reviews[-1]
    done = completion(campaign)
    return {"campaign": campaign.id, "run": campaign.run_id, "by": campaign.by,
            "created_at": to_iso(campaign.created_at), "accounts": done["accounts"], "decided": done["decided"],
            "unassigned": done["unassigned"],
            "reviewers": [{"reviewer": r, "decided": d, "accounts": n, "share": f"{d / n:.0%}" if n else "n/a"}
                          for r, (d, n) in done["per_reviewer"].items()]}


def _kpi_trends(result: AuditResult) -> dict[str, Markup]:
    trends = {}
    for kpi in result.kpis:
        values: list[float | None] = [r.kpis.get(kpi.id, {}).get("value") for r in result.past_runs[-11:]]
        trends[kpi.id] = sparkline([*values, kpi.value])
    return trends


def _since_previous(result: AuditResult) -> dict[str, Any] | None:
    previous = result.previous_run
    if previous is None:
        return None
    changes = per_action(e for e in result.inventory.change_events if previous.as_of < e.at <= result.as_of)
    return {"as_of": to_iso(previous.as_of), "new": result.since_previous["new"],
            "resolved": result.since_previous["resolved"],
            "created": changes.get("created", 0), "disabled": changes.get("disabled", 0),
            "deleted": changes.get("deleted", 0)}


def _charts(result: AuditResult) -> dict[str, Markup]:
    start, end = result.period_start, result.as_of
    counts = per_day(e for e in result.inventory.change_events if start < e.at <= end and not e.approximate_time)
    spike_rules = marked("change_spike")
    spikes = {f.evidence.get("day") for f in result.findings if f.rule in spike_rules}
    days = [(start + timedelta(days=n)).date() for n in range(1, (end - start).days + 1)]
    volume = bar_chart([
        Bar(day.isoformat()[5:], counts.get(day, 0), "bar spike" if day.isoformat() in spikes else "bar",
            f"{day.isoformat()}: {counts.get(day, 0)} change(s)" + (" (spike)" if day.isoformat() in spikes else ""))
        for day in days], title="Account changes per day")
    ages: Counter[str] = Counter()
    for account in result.inventory.accounts:
        verdict = result.verdicts.of(account)
        if not verdict.usable:
            continue
        since = verdict.days_since_activity
        if since is None:
            ages["never" if verdict.activity.value in ("never_used", "new") else "unknown"] += 1
            continue
        ages[next(label for limit, label in _AGE_BUCKETS if limit is None or since <= limit)] += 1
    labels = [label for _, label in _AGE_BUCKETS] + ["never", "unknown"]
    age = bar_chart([Bar(label, ages[label]) for label in labels], title="Enabled accounts by days since last use",
                    width=700)
    strong_at = _ZXCVBN_LOG10_FOR_SCORE[result.strong_policy_score]
    policy_bars = []
    for policy in result.inventory.policies:
        rating = result.verdicts.rating(policy)
        if rating.strong is None:
            continue
        value = rating.guesses_log10 if rating.guesses_log10 is not None else 12.0
        short = policy.name.replace("Fine-grained policy ", "").replace("Default domain policy", "Domain default")
        policy_bars.append(Bar(short[:22], value, "bar strong" if rating.strong else "bar weak",
                               f"{policy.name}: weakest admitted guess ~10^{value:g} guesses"))
    strength = bar_chart(policy_bars, title="Policy strength: log10 guesses of the weakest admitted password",
                         width=700, threshold=strong_at, threshold_label=f"strong from 10^{strong_at:g}")
    charts = {"volume": volume, "age": age, "strength": strength}
    spend = next((k for k in result.kpis if k.id == "unused_account_spend"), None)
    if spend is not None and spend.detail.get("currency"):  # one currency: bars are comparable
        currency = spend.detail["currency"]
        charts["spend"] = bar_chart(
            [Bar(source, amount, "bar weak", f"{source}: {amount:,.2f} {currency} a month on unused accounts")
             for source, amount in spend.detail["per_source"].items()],
            title=f"Monthly spend on unused accounts per source ({currency})", width=700)
    return charts


def _policy_rows(result: AuditResult) -> list[dict[str, Any]]:
    governed = Counter(
        a.policy_key for a in result.inventory.accounts
        if result.verdicts.of(a).usable and a.kind != AccountKind.MACHINE
    )
    rows = []
    for policy in result.inventory.policies:
        rating = result.verdicts.rating(policy)
        if not policy.settings_known:
            rules, label = "unknown", f"unknown: {rating.reason}"
        else:
            rules = (
                f"min length {policy.min_length or 0}; "
                + (f"{policy.min_character_classes} of 4 character classes; " if policy.min_character_classes else "")
                + ("banned-password list; " if policy.banned_list else "")
                + ("max age unknown" if "max_age" in policy.unknown_settings
                   else f"max age {policy.max_age.days} days" if policy.max_age else "never expires")
                + "".join(f"; {name.replace('_', ' ')} unknown" for name in policy.unknown_settings
                          if name != "max_age")
            )
            label = f"{'strong' if rating.strong else 'weak'} (zxcvbn score {rating.score})"
        rows.append({
            "source": policy.source, "name": policy.name, "rules": rules, "rating": label,
            "example": rating.weakest_example or "", "governed": governed[(policy.source, policy.id)],
        })
    return rows


def _source_rows(result: AuditResult) -> list[dict[str, Any]]:
    rows = []
    for status in result.inventory.sources:
        unknown = Counter(
            a.activity_unknown_reason or "source does not report activity"
            for a in result.inventory.accounts if a.source == status.name and not a.activity_known
        )
        lags = {a.last_activity_attribute: a.activity_lag for a in result.inventory.accounts
                if a.source == status.name and a.activity_known and a.activity_lag}
        gaps = [f"activity unknown for {n} account(s): {reason}" for reason, n in unknown.items()]
        gaps += [f"{attr} may lag real use by up to {lag.total_seconds() / 86400:g} days"
                 for attr, lag in lags.items() if attr]
        unreadable = sum(1 for p in result.inventory.policies if p.source == status.name and not p.settings_known)
        if unreadable:
            gaps.append(f"{unreadable} password policy/policies with unreadable settings (strength unknown)")
        gaps += status.warnings
        rows.append({
            "name": status.name, "type": status.type, "state": status.state.value, "accounts": status.accounts,
            "policies": status.policies, "change_events": status.change_events,
            "error": status.error if status.state != SourceState.OK else None, "gaps": gaps,
        })
    return rows


def _identity_summary(result: AuditResult) -> dict[str, Any] | None:
    graph = result.inventory.identity
    if graph is None:
        return None
    linked = Counter(link.key for person in graph.people for link in person.links[1:])
    unlinked = Counter(u.reason for u in graph.unlinked)
    return {"authority": graph.authoritative_source, "people": len(graph.people), "keys": ", ".join(graph.keys),
            "linked": ", ".join(f"{n} by {key}" for key, n in linked.most_common()) or "none",
            "unlinked": ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in unlinked.most_common()) or "none",
            "departed": sum(1 for p in graph.people if p.departure)}


# Table data above this many bytes of JSON is embedded gzip-compressed: at a million accounts the page would
# be 150 MB. Below it, the JSON as it is (readable with view-source, and the same bytes as earlier versions).
COMPRESS_ABOVE = 4_000_000


def _report_data(accounts: _EncodedAccounts, findings: _FindingsData, compress_above: int,
                 ) -> tuple[Markup | _Compressed, _Compressed | None]:
    """The page's data elements' content: one, the accounts and the findings as JSON; or, above the size, each
    compressed on its own (the page reads the accounts first and the findings once the table is usable).

    The accounts' rows are written a batch at a time and, once they alone pass the size, straight into the
    compressor: at a million accounts the rows and their text were gigabytes. Compressed, the per-column lists
    come after the rows (they are complete only then); the page reads the keys by name."""
    columns = script_json(list(ACCOUNT_COLUMNS))
    rows: list[str] = []  # the rows' text, a batch a piece, while the data may still be small

    def packed_so_far() -> _Packer:
        return _Packer(f'{{"accounts":{{"columns":{columns},"rows":[{",".join(rows)}')

    def findings_packed() -> _Compressed:
        if findings.packer is None:
            return _Packer(findings.text()).compressed()
        findings.packer.add("}")
        return findings.packer.compressed()

    size, packer = findings.size + 1, None
    for batch in accounts.row_batches():
        text = script_json(batch)[1:-1]
        size += len(text) + 1
        if packer is not None:
            packer.add(f",{text}")
            continue
        rows.append(text)
        if size > compress_above:
            packer, rows = packed_so_far(), []
    if packer is None:
        lists = b"".join(accounts.lists()).decode()  # small: the rows that refer to them were
        whole = f'{{"accounts":{{"columns":{columns},"dictionaries":{lists},"rows":[{",".join(rows)}]}},'
        if findings.packer is None and len(whole) - len('{"accounts":,') + findings.size + 1 <= compress_above:
            return Markup(f'{whole}"findings":{findings.text()}}}'), None  # noqa: S704 - script_json parts
        packer = packed_so_far()
    packer.add('],"dictionaries":')
    # A piece at a time: as one text (then its bytes) the lists were 200 MB at a million accounts, whose groups
    # rarely repeat.
    for piece in accounts.lists():
        packer.add_bytes(piece)
    packer.add("}}")
    return packer.compressed(), findings_packed()


def _list_pieces(items: Iterable[Any]) -> Iterator[str]:
    """``script_json(list(items))`` a batch of items a piece."""
    yield "["
    first = True
    for batch in jsonio.batched(items):
        yield ("" if first else ",") + script_json(batch)[1:-1]
        first = False
    yield "]"


class _Packer:
    """Text gzip-compressed as it comes (see auditor.deflate): the bytes ``gzip.compress`` makes of the whole."""

    def __init__(self, text: str = "") -> None:
        # gzip's format with mtime 0, as gzip.compress(text, 4, mtime=0). Level 4: at 6 the page waited on the
        # compressing thread (100,000 accounts: 1.69 s against 1.46 s) for 1% fewer bytes (5.00 MB against 5.06).
        self._deflater = Deflater(4, wbits=31)
        self.add(text)

    def add(self, text: str) -> None:
        self._deflater.add(text.encode("utf-8"))

    def add_bytes(self, data: bytes) -> None:
        self._deflater.add(data)

    def compressed(self) -> _Compressed:
        return _Compressed(self._deflater.finish_parts())


class _Compressed:
    """A data element's gzip bytes in the pieces they were made in, written into the page as base64 a piece at a
    time (:func:`_spliced`): at a million accounts the accounts' data was 50 MB of base64 made at once beside its
    compressed bytes, at the end of the run where memory peaks. Written once: each piece goes as it is written."""

    __slots__ = ("_parts",)

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts[::-1]

    def base64_pieces(self) -> Iterator[str]:
        """``base64.b64encode`` of the whole, in pieces: each cut at a multiple of three bytes."""
        carry = b""
        while self._parts:
            data = carry + self._parts.pop()
            cut = len(data) - len(data) % 3
            yield base64.b64encode(data[:cut]).decode("ascii")
            carry = data[cut:]
        yield base64.b64encode(carry).decode("ascii")


def _spliced(pieces: Iterable[str], data: dict[str, _Compressed]) -> Iterator[str]:
    """The template's output with each token of ``data`` replaced by its data's base64. The tokens are random:
    no value in the page can spell one."""
    for piece in pieces:
        while found := [(at, token) for token in data if (at := piece.find(token)) >= 0]:
            at, token = min(found)
            yield piece[:at]
            yield from data.pop(token).base64_pieces()
            piece = piece[at + len(token):]
        yield piece


def render_report(result: AuditResult, *, compress_above: int = COMPRESS_ABOVE) -> bytes:
    return b"".join(report_chunks(result, compress_above=compress_above))


_CHUNK = 1 << 20  # characters encoded at a time: the page's data is one piece of tens of megabytes


def report_chunks(result: AuditResult, *, compress_above: int = COMPRESS_ABOVE) -> Iterator[bytes]:
    """The page as UTF-8, a megabyte at a time: the template's output is encoded as it is made, never held whole
    as text and again as bytes (150 MB at a million accounts). The same bytes as rendering it whole."""
    gathered: list[str] = []
    size = 0
    for piece in _page(result, compress_above):
        for start in range(0, len(piece), _CHUNK):
            part = piece[start:start + _CHUNK]  # the piece itself when it is shorter (a whole slice is no copy)
            gathered.append(part)
            size += len(part)
            if size >= _CHUNK:
                yield "".join(gathered).encode("utf-8")
                gathered, size = [], 0
    if gathered:
        yield "".join(gathered).encode("utf-8")


def _page(result: AuditResult, compress_above: int) -> Iterator[str]:
    css, js = _asset("report.css"), _asset("report.js")
    csp = (
        "default-src 'none'; "
        f"style-src {_csp_hash(css)}; script-src {_csp_hash(js)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    env = Environment(
        loader=FileSystemLoader(str(files("report_templates"))),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
    )
    sections = []
    findings_data = _FindingsData(compress_above)
    for rule_id, rule in RULES.items():
        mine = [f for f in result.findings if f.rule == rule_id]
        mine.sort(key=lambda f: f.status != "open")  # open first, then excluded and accepted
        common = _common_evidence(mine)
        findings_data.add_rule(rule_id, _finding_rows(mine, common))
        sections.append({
            "id": rule_id, "title": rule.meta.title, "severity": rule.meta.severity.value,
            "description": rule.meta.description, "remediation": rule.meta.remediation,
            "controls": "; ".join(f"{c.framework} {c.control}" for c in rule.meta.controls),
            "frameworks": "|".join(sorted({c.framework for c in rule.meta.controls})),
            "open": sum(1 for f in mine if f.status == "open"), "excluded": sum(1 for f in mine if f.excluded_by),
            "accepted": sum(1 for f in mine if f.accepted_by),
            "common_evidence": _evidence_text(common),
        })
    since_previous = _since_previous(result)
    trends = _kpi_trends(result)
    report_data, findings_packed = _report_data(_EncodedAccounts(result), findings_data, compress_above)
    compressed: dict[str, _Compressed] = {}

    def placed(data: Markup | _Compressed | None) -> Markup | None:
        """Where compressed data goes, a random token in its place (spliced in by :func:`_spliced`)."""
        if not isinstance(data, _Compressed):
            return data
        token = secrets.token_hex(16)
        compressed[token] = data
        return Markup(token)  # noqa: S704 - hex digits

    template = env.get_template("report.html.j2")
    return _spliced(template.generate(
        csp=csp, css=Markup(css), js=Markup(js),  # noqa: S704 - our own package files, hashed into the CSP
        organization=result.organization, as_of=to_iso(result.as_of), as_of_day=result.as_of.date().isoformat(),
        generated_at=to_iso(result.generated_at), run_id=result.run_id, version=__version__,
        complete=result.complete, gaps=result.gaps, notes=result.notes,
        kpis=[{"id": k.id, "label": k.label, "display": _kpi_display(k), "detail_text": _detail_text(k.detail),
               "trend": trends[k.id]} for k in result.kpis],
        posture=_posture(result), charts=_charts(result), access_review=_access_review(result),
        since_previous=since_previous, rule_sections=sections, policies=_policy_rows(result),
        sources=_source_rows(result), people=person_rows(result), identity=_identity_summary(result),
        exclusions=result.exclusions, accepted_risks=result.accepted_risks,
        activity_states=[s.value for s in ActivityState],
        frameworks=FRAMEWORKS,
        report_data=placed(report_data), findings_data=placed(findings_packed),
        report_compressed=findings_packed is not None,
    ), compressed)
