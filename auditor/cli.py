"""Command line: ``auditor run``, ``auditor check-config``, ``auditor rules``.

Exit codes (stable, for schedulers): 0 complete audit; 1 ``--fail-on`` threshold met; 2 usage, config
or environment error (nothing written); 3 the audit is incomplete: a source failed or was read only
in part (the others were audited and reported). 3 wins over 1: an incomplete audit is the bigger news.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from auditor import __version__
from auditor.config import Config, ConfigError, load_config, unavailable_secrets
from auditor.model import Severity, to_jsonable
from auditor.secrets import scrub_bytes, scrub_text
from auditor.timeconv import TimeFormatError, check_plausible, from_iso8601, to_iso

if TYPE_CHECKING:
    from auditor.engine import AuditResult

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERNAL = 0, 1, 2, 3, 4


class Fatal(click.ClickException):
    """A one-line error on stderr and exit 2, never a traceback."""

    exit_code = EXIT_USAGE

    def show(self, file: object = None) -> None:
        say(f"auditor: error: {self.message}", err=True)


def say(text: str, *, err: bool = False) -> None:
    """Everything the CLI prints passes the redaction boundary: a server may have echoed a secret anywhere."""
    click.echo(scrub_text(text), err=err)


def _parse_as_of(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = from_iso8601(value)
    except TimeFormatError:
        moment = None
    if moment is None:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time", param_hint="--as-of")
    try:
        return check_plausible(moment)
    except TimeFormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from None


def _progress(quiet: bool) -> Callable[[str], None]:
    def emit(message: str) -> None:
        if not quiet:
            say(f"[{datetime.now(UTC):%H:%M:%S}] {message}", err=True)
    return emit


class InternalError(click.ClickException):
    """A fault of the auditor itself: exit 4, one scrubbed line (the traceback too with AUDITOR_TRACEBACK=1).
    Python's own exit code for it is 1, which schedulers are told means "findings" (README, deploy/)."""

    exit_code = EXIT_INTERNAL

    def __init__(self, error: Exception) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error

    def show(self, file: object = None) -> None:
        if os.environ.get("AUDITOR_TRACEBACK") == "1":
            say("".join(traceback.format_exception(self.error)).rstrip(), err=True)
        say(f"auditor: internal error: {self.message}", err=True)
        say("auditor: this is a bug in the auditor: please report it (AUDITOR_TRACEBACK=1 prints where it "
            "happened). A run it stops before publishing leaves the previous outputs and history as they were.",
            err=True)


class _AuditorGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # any other is ours: named, scrubbed, and given its own code
            raise InternalError(exc) from exc


@click.group(cls=_AuditorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
def main() -> None:
    """Identity and account-hygiene auditor: inactive accounts, weak password policies, change volume."""


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config file (default: ./auditor.toml).")
@click.option("--demo", is_flag=True, help="Audit the built-in fictional organisation (no config, no network).")
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("audit-output"), show_default=True,
              help="Directory for report.html, findings.json, findings.csv, accounts.csv.")
@click.option("--as-of", "as_of_text", metavar="DATE",
              help="Audit as if run at this time (YYYY-MM-DD is 00:00 UTC): reproduces audits of old exports.")
@click.option("--fail-on", type=click.Choice([s.value for s in Severity]), default=None,
              help="Exit 1 when an open finding has this severity or higher.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or summary; errors only.")
@click.option("--evidence", is_flag=True, help="Also write evidence-RUN_ID.zip for auditors.")
@click.option("--jsonl", is_flag=True, help="Also write findings.jsonl (one finding per line, for SIEMs).")
@click.option("--format", "formats", multiple=True, type=click.Choice(["jsonl", "ocsf"]),
              help="Also write findings.jsonl (jsonl) or findings.ocsf.jsonl (ocsf: OCSF 1.5 Detection and "
                   "Compliance Finding events). Repeatable.")
@click.option("--pseudonymise", is_flag=True,
              help="In the evidence bundle, replace every username, name, address, id and DN with a pseudonym.")
def run(config_path: Path | None, demo: bool, output_dir: Path, as_of_text: str | None,
        fail_on: str | None, quiet: bool, evidence: bool, jsonl: bool, formats: tuple[str, ...],
        pseudonymise: bool) -> None:
    """Run an audit and write the report and exports."""
    from auditor.demo import prepare_demo
    from auditor.engine import prune_history, record, run_audit
    from auditor.evidence import RESULT_FILES, SigningKeyError, context_files, load_signing_key, write_evidence
    from auditor.fileio import publish_run
    from auditor.gctuning import bulk_allocation
    from auditor.history import History, HistoryError
    from auditor.outputs import output_names, write_outputs, written_each

    if demo and config_path:
        raise click.UsageError("--demo and --config cannot be combined")
    as_of = _parse_as_of(as_of_text)
    progress = _progress(quiet)
    # Only the demo needs a scratch directory: a scheduled run killed mid-way leaves nothing behind in /tmp.
    scratch_dir = tempfile.TemporaryDirectory(prefix="auditor-demo-") if demo else contextlib.nullcontext("")
    with scratch_dir as scratch:
        try:
            if demo:
                progress("building the demo organisation")
                config: Config = prepare_demo(Path(scratch), as_of)
            else:
                config = load_config(config_path or Path("auditor.toml"))
            signing_key = load_signing_key(config.evidence) if evidence else None  # before any source is read
            history = History(config.history_db)
        except (ConfigError, HistoryError, SigningKeyError) as exc:
            raise Fatal(str(exc)) from None
        try:
            # One audit per process, every object it builds kept to the end: see auditor.gctuning.
            with bulk_allocation(until_exit=True):
                result = run_audit(config, as_of, history, progress)
                progress("writing outputs")
                names = output_names(result, jsonl=jsonl or "jsonl" in formats, ocsf="ocsf" in formats)
                # The redaction boundary: no byte that leaves carries a secret, whatever field it arrived in. Every
                # output is streamed through it to its file; the bundle is made from those files.
                context = {name: scrub_bytes(data) for name, data in context_files(result, config).items()}

                def write(directory: Path) -> list[str]:
                    if evidence:  # each output zipped into the bundle as soon as it is written, in name order
                        bundle = write_evidence(directory, result, written_each(directory, result, sorted(names)),
                                                context, signing_key=signing_key, pseudonymise=pseudonymise)
                        return [*names, bundle.name]
                    return list(write_outputs(directory, result, names))

                # One set: written aside, the run recorded, then published with one atomic switch.
                # The history keeps the result, and what is rendered from it only by name.
                publish_run(output_dir, result.run_id, write,
                            lambda: record(history, result, context, [*names, *RESULT_FILES]))
                if config.audit.history_keep_runs or config.audit.history_keep_days:
                    prune_history(config, history, datetime.now(UTC))  # retention; the run is already recorded
        except HistoryError as exc:
            raise Fatal(str(exc)) from None
        except OSError as exc:
            raise Fatal(f"cannot write to {output_dir}: {exc.strerror}") from None
        finally:
            history.close()

    open_findings = result.open_findings()
    if not quiet:
        counts = Counter(f.severity.value for f in open_findings)
        summary = ", ".join(f"{counts[s.value]} {s.value}" for s in reversed(Severity) if counts[s.value])
        state = "complete" if result.complete else "INCOMPLETE"
        say(f"Audit {state} as of {to_iso(as_of)}: {len(result.inventory.accounts)} accounts, "
                   f"{len(open_findings)} open findings ({summary or 'none'}). Outputs in {output_dir}/")
        for gap in result.gaps:
            say(f"  MISSING: {gap}", err=True)
        for note in result.notes:
            say(f"  note: {note}", err=True)
        for status in result.inventory.sources:
            for warning in status.warnings[:5]:
                say(f"  warning: {status.name}: {warning}", err=True)
            if len(status.warnings) > 5:
                say(f"  warning: {status.name}: {len(status.warnings) - 5} more in findings.json", err=True)
    exit_code = (EXIT_INCOMPLETE if not result.complete
                 else EXIT_FINDINGS if fail_on and any(f.severity.rank >= Severity(fail_on).rank for f in open_findings)
                 else EXIT_OK)
    if config.notify:  # after the outputs and history are written: a notification never changes them
        from auditor.notify import RunOutcome, notify_all

        progress("notifying")
        report = output_dir.resolve() / "runs" / result.run_id / "report.html"
        notify_all(config.notify, result, RunOutcome(exit_code, str(report)),
                   lambda problem: say(f"  warning: notification {problem}", err=True))  # shown even with -q
    sys.exit(exit_code)


@main.command("evidence")
@click.option("--run", "run_id", required=True, help="The run's id (in findings.json and the report).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("auditor.toml"), show_default=True, help="The config whose history holds the run.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Bundle file (default: evidence-RUN_ID.zip).")
@click.option("--pseudonymise", is_flag=True,
              help="Replace every username, name, address, id and DN with a pseudonym, in every file.")
def evidence_command(run_id: str, config_path: Path, output_path: Path | None, pseudonymise: bool) -> None:
    """Write the evidence bundle of a past run from the history."""
    from auditor.evidence import SigningKeyError, load_signing_key, write_past_bundle

    try:
        config = load_config(config_path)
        signing_key = load_signing_key(config.evidence)
    except (ConfigError, SigningKeyError) as exc:
        raise Fatal(str(exc)) from None
    files, rendered, result = _recorded_run(config, run_id, with_result=pseudonymise)
    target = output_path or Path(f"evidence-{run_id}.zip")
    try:
        count = write_past_bundle(target, files, rendered, result, signing_key=signing_key, pseudonymise=pseudonymise)
    except OSError as exc:
        raise Fatal(f"cannot write {target}: {exc.strerror}") from None
    click.echo(f"{target}: evidence bundle for run {run_id} ({count + 1} files)")


def _recorded_run(config: Config, run_id: str, *,
                  with_result: bool) -> tuple[dict[str, bytes], list[str], AuditResult | None]:
    """What the history keeps of a run: its files, the names of those it makes again from the stored result, and
    (``with_result``, or when there are such names) that result; or a one-line error naming the latest runs."""
    from auditor.gctuning import bulk_allocation
    from auditor.history import History, HistoryError

    # The result read back (parsed, then decoded) lives to the end of the command: see auditor.gctuning.
    with bulk_allocation(until_exit=True):
        try:
            history = History(config.history_db)
            try:
                files = history.run_files(run_id)
                rendered = history.rendered_outputs(run_id) or []
                stored = history.run_document(run_id) if with_result or rendered else None
                known = [r.id for r in history.runs()][-5:]
            finally:
                history.close()
        except HistoryError as exc:
            raise Fatal(str(exc)) from None
        if not files and not rendered:
            raise Fatal(f"no evidence for run {run_id!r} in the history (latest runs: {', '.join(known) or 'none'})")
        return files, rendered, _stored_result(run_id, stored) if with_result or rendered else None


def _load(config_path: Path) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise Fatal(str(exc)) from None


def _past_run_into(config_path: Path, run_id: str, output_dir: Path) -> tuple[Config, set[str], AuditResult]:
    """The config, the names of a recorded run's files and its result, for a command that writes a new directory
    from the result (nothing is rendered here: the command renders what it needs)."""
    config = _load(config_path)
    if output_dir.exists():
        raise Fatal(f"{output_dir} exists: give a new directory (it is written whole or not at all)")
    files, rendered, result = _recorded_run(config, run_id, with_result=True)
    assert result is not None
    return config, {*files, *rendered}, result


def _stored_result(run_id: str, stored: dict[str, Any] | bytes | None) -> AuditResult:
    from auditor.result_store import StoredResultError, decode_result

    if stored is None:
        raise Fatal(f"run {run_id} was recorded without its scored result (by an earlier version): "
                    "its outputs can be bundled as they are, not rendered again")
    try:
        return decode_result(stored)
    except StoredResultError as exc:
        raise Fatal(f"run {run_id}: {exc}") from None


@main.command("render")
@click.option("--run", "run_id", required=True, help="The run's id (in findings.json and the report).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("auditor.toml"), show_default=True, help="The config whose history holds the run.")
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New directory for the run's report and exports (must not exist yet).")
@click.option("--pseudonymise", is_flag=True, help="Render with pseudonyms for every identifying value.")
def render_command(run_id: str, config_path: Path, output_dir: Path, pseudonymise: bool) -> None:
    """Render a past run's report and exports again from what the history stored (no source is read and
    nothing is judged again: the same bytes as the run wrote, with this version's templates)."""
    from auditor.fileio import write_set
    from auditor.outputs import JSONL, OCSF, output_names, write_outputs

    _config, names, result = _past_run_into(config_path, run_id, output_dir)
    if pseudonymise:
        from auditor.pseudonymise import Pseudonymiser

        result = Pseudonymiser(result).result()
    rendered = output_names(result, jsonl=JSONL in names, ocsf=OCSF in names)
    try:
        output_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_set(output_dir, lambda directory: list(write_outputs(directory, result, rendered)))
    except OSError as exc:
        raise Fatal(f"cannot write to {output_dir}: {exc.strerror}") from None
    click.echo(f"{output_dir}: run {run_id} rendered from the history")


@main.group("history")
def history_group() -> None:
    """Look after the history database."""


@history_group.command("prune")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("auditor.toml"), show_default=True, help="The config whose history to prune.")
@click.option("--keep-runs", type=click.IntRange(min=1),
              help="Keep the N newest runs (default: [audit] history_keep_runs).")
@click.option("--keep-days", type=click.IntRange(min=1),
              help="Keep runs of the last N days (default: [audit] history_keep_days).")
@click.option("--dry-run", is_flag=True, help="Say which runs would go; change nothing.")
def prune_command(config_path: Path, keep_runs: int | None, keep_days: int | None, dry_run: bool) -> None:
    """Remove old runs from the history. Every run kept still renders, bundles and trends, and the next audit
    still finds the snapshots it compares with; who left, and when, is kept for the life of the history."""
    from auditor.engine import prune_history
    from auditor.history import History, HistoryError

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise Fatal(str(exc)) from None
    if not (keep_runs or keep_days or config.audit.history_keep_runs or config.audit.history_keep_days):
        raise Fatal(f"{config_path}: nothing says what to keep: give --keep-runs or --keep-days, or set "
                    "[audit] history_keep_runs or history_keep_days")
    try:
        history = History(config.history_db)
        try:
            pruned = prune_history(config, history, datetime.now(UTC), keep_runs=keep_runs, keep_days=keep_days,
                                   dry_run=dry_run)
            if pruned.runs and not dry_run:
                history.compact()
        finally:
            history.close()
    except HistoryError as exc:
        raise Fatal(str(exc)) from None
    if dry_run:
        say(f"{config.history_db}: would remove {len(pruned.runs)} run(s): {', '.join(pruned.runs) or 'none'}")
    else:
        say(f"{config.history_db}: removed {len(pruned.runs)} run(s), {pruned.events} old change event(s); "
            f"{pruned.rebased} snapshot(s) stored whole again, and {pruned.rebased_events} run(s)' change events")


@main.group("review")
def review_group() -> None:
    """User-access reviews: packets for reviewers, and their decisions back into the history."""


@review_group.command("create")
@click.option("--run", "run_id", required=True, help="The audit whose accounts are reviewed.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("auditor.toml"), show_default=True, help="The config whose history holds the run.")
@click.option("--by", type=click.Choice(["manager", "source", "group"]), default="manager", show_default=True,
              help="Who reviews: each account's manager, or the owners [[review.owners]] names per source or group.")
@click.option("--output", "output_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New directory for the packets (must not exist yet).")
def review_create(run_id: str, config_path: Path, by: str, output_dir: Path) -> None:
    """Create a review campaign: one CSV to fill in and one HTML page to read per reviewer."""
    from auditor.fileio import write_set
    from auditor.history import History, HistoryError
    from auditor.reviews import packet_files, plan

    config, _names, result = _past_run_into(config_path, run_id, output_dir)
    planned = plan(result, by, config.review.owners, datetime.now(UTC).replace(microsecond=0))
    files = {name: scrub_bytes(data) for name, data in packet_files(planned, result).items()}
    try:
        history = History(config.history_db)
        try:
            history.record_campaign(planned.campaign)  # first: a packet exists only for a recorded campaign
        finally:
            history.close()
        output_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_set(output_dir, files)
    except HistoryError as exc:
        raise Fatal(str(exc)) from None
    except OSError as exc:
        raise Fatal(f"cannot write to {output_dir}: {exc.strerror}") from None
    campaign = planned.campaign
    say(f"{output_dir}: campaign {campaign.id} for run {run_id}: {len(campaign.packets)} packet(s), "
        f"{sum(len(p.accounts) for p in campaign.packets)} account(s) to review, "
        f"{len(campaign.unassigned)} without a reviewer (no-reviewer.csv)")


@review_group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("auditor.toml"), show_default=True, help="The config whose history holds the campaign.")
def review_import(files: tuple[Path, ...], config_path: Path) -> None:
    """Import filled-in packets (CSV). Every file is checked before any is stored: a packet of another campaign,
    an edited account list or an unknown decision is refused, naming the file and row."""
    from auditor.history import History, HistoryError
    from auditor.review_outcomes import completion
    from auditor.reviews import ReviewError, read_packet

    config = _load(config_path)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        history = History(config.history_db)
        try:
            campaigns = {c.id: c for c in history.review_campaigns()}
            imported = [read_packet(path, campaigns, now) for path in files]
            for packet in imported:
                history.record_decisions(packet.campaign_id, packet.packet_id, packet.decisions)
            after = {c.id: c for c in history.review_campaigns()}
        finally:
            history.close()
    except (ReviewError, HistoryError) as exc:
        raise Fatal(str(exc)) from None
    for campaign_id in sorted({p.campaign_id for p in imported}):
        done = completion(after[campaign_id])
        say(f"campaign {campaign_id}: {done['decided']} of {done['accounts']} account(s) decided")
    say(f"imported {sum(len(p.decisions) for p in imported)} decision(s) from {len(imported)} packet(s)")


@main.command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--public-key", "public_key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The signer's Ed25519 public key (PEM): also check manifest.sig. Use a copy you trust, "
                   "received apart from the bundle.")
def verify_command(bundle: Path, public_key_path: Path | None) -> None:
    """Check an evidence bundle against its manifest. Exit 1 when anything was altered, added or removed, or
    (with --public-key) when the manifest is not signed by that key."""
    from auditor.evidence import key_fingerprint, load_public_key, verify_bundle

    if not bundle.is_file():
        raise Fatal(f"cannot read {bundle}: no such file")
    public_key = None
    if public_key_path is not None:
        try:
            public_key = load_public_key(public_key_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise Fatal(f"--public-key {public_key_path}: {getattr(exc, 'strerror', None) or exc}") from None
    problems, digest = verify_bundle(bundle, public_key)  # read entry by entry, never whole into memory
    if problems:
        for problem in problems:
            click.echo(f"{bundle}: FAILED: {problem}", err=True)
        sys.exit(EXIT_FINDINGS)
    signed = (f"; the manifest is signed by {key_fingerprint(public_key)}" if public_key is not None
              else "; signature not checked (give --public-key)")
    click.echo(f"{bundle}: OK, every file matches the manifest (manifest SHA-256 {digest}){signed}")


@main.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
def check_config(config_path: Path) -> None:
    """Validate a config file without contacting any source."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise Fatal(str(exc)) from None
    problems = unavailable_secrets(config)
    if problems:  # a scheduled run would fail on them: say so now, with the key that names each
        raise Fatal("; ".join(problems))
    names = ", ".join(f"{s.name} ({s.type})" for s in config.sources) or "none"
    click.echo(f"{config_path}: OK. Sources: {names}. Exclusions: {len(config.exclusions)}. "
               f"History: {config.history_db}")


@main.command("check-access")
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def check_access_command(config_path: Path, as_json: bool) -> None:
    """Contact every enabled source with the smallest reads that prove each permission the audit needs.
    Exit 0 when everything is readable, 3 when something is missing or unreachable, 2 on config errors."""
    from auditor.access import access_document, access_table, check_sources

    config = _load(config_path)
    results = check_sources(config)
    if as_json:
        say(json.dumps(access_document(results), indent=2, ensure_ascii=False))
    else:
        say(access_table(results))
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_INCOMPLETE)


@main.command("permissions")
@click.argument("source_types", nargs=-1, metavar="[TYPE]...")
def permissions_command(source_types: tuple[str, ...]) -> None:
    """Print what each source type needs granted (Graph application permissions, directory rights, API
    scopes): for the admin who sets the audit's service account up. No TYPE: every type."""
    from auditor.access import permissions_text
    from connectors import SOURCE_TYPES

    unknown = [t for t in source_types if t not in SOURCE_TYPES]
    if unknown:
        raise Fatal(f"unknown source type {unknown[0]!r} (one of: {', '.join(SOURCE_TYPES)})")
    click.echo(permissions_text(list(source_types or SOURCE_TYPES)))


@main.command("rules")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
def list_rules(as_json: bool) -> None:
    """List rule ids, what they check and the controls they evidence."""
    from auditor.rules import RULES

    if as_json:
        click.echo(json.dumps([to_jsonable(r.meta) for r in RULES.values()], indent=2))
        return
    for rule in RULES.values():
        meta = rule.meta
        click.echo(f"{meta.id}  [{meta.severity.value}]  {meta.title}")
        click.echo(f"    {meta.description}")
        click.echo("    controls: " + "; ".join(f"{c.framework} {c.control}" for c in meta.controls))
        for parameter in meta.parameters:  # settable in the config's [rules.<id>] table
            click.echo(f"    [rules.{meta.id}] {parameter.name} = {parameter.default}  ({parameter.kind}: "
                       f"{parameter.description})")


if __name__ == "__main__":
    main()
