"""Every output of a run, rendered from the scored result alone: the run writes these, and a past run (its
result read back from history) renders the same bytes again.

Each renderer gives its file as a stream of chunks; :func:`write_outputs` writes them through the redaction
boundary to disk as they come, so no export is ever whole in memory. :func:`render_outputs` joins them, for the
few callers that want bytes (a past run's bundle, the tests)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path

from auditor.engine import AuditResult
from auditor.exports import accounts_csv, findings_csv, findings_json, findings_jsonl, people_csv
from auditor.fileio import write_stream
from auditor.ocsf import findings_ocsf
from auditor.report_html import report_chunks
from auditor.secrets import scrub_stream

JSONL = "findings.jsonl"
OCSF = "findings.ocsf.jsonl"

Renderer = Callable[[AuditResult], Iterable[bytes]]
RENDERERS: dict[str, Renderer] = {
    "findings.json": findings_json,
    "accounts.csv": accounts_csv,
    "findings.csv": findings_csv,
    "report.html": report_chunks,
    "people.csv": people_csv,
    JSONL: findings_jsonl,
    OCSF: findings_ocsf,
}


def output_names(result: AuditResult, *, jsonl: bool = False, ocsf: bool = False) -> list[str]:
    """The files a run writes: people.csv when people were linked, the JSON Lines files when asked for."""
    return [name for name in RENDERERS
            if (name != "people.csv" or result.inventory.identity is not None)
            and (name != JSONL or jsonl) and (name != OCSF or ocsf)]


def render_outputs(result: AuditResult, *, jsonl: bool = False, ocsf: bool = False) -> dict[str, bytes]:
    return {name: b"".join(RENDERERS[name](result)) for name in output_names(result, jsonl=jsonl, ocsf=ocsf)}


def write_outputs(directory: Path, result: AuditResult, names: Collection[str],
                  renderers: dict[str, Renderer] = RENDERERS) -> dict[str, Path]:
    """Write the files ``names`` into ``directory`` (owner-only, new files), each streamed through the
    redaction boundary; their paths."""
    return dict(written_each(directory, result, names, renderers))


def written_each(directory: Path, result: AuditResult, names: Collection[str],
                 renderers: dict[str, Renderer] = RENDERERS) -> Iterator[tuple[str, Path]]:
    """:func:`write_outputs`, each file's name and path given as soon as it is written."""
    for name, chunks in made_each(result, names, renderers):
        path = directory / name
        write_stream(path, chunks)
        yield name, path


def made_each(result: AuditResult, names: Collection[str],
              renderers: dict[str, Renderer] = RENDERERS) -> Iterator[tuple[str, Iterator[bytes]]]:
    """Each file's name and its chunks through the redaction boundary, made as they are read: a file only a
    bundle holds is zipped as it is made, not written to disk, synced and read back."""
    for name in names:
        yield name, scrub_stream(renderers[name](result))
