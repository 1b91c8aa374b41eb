"""Exports are streams: written a batch at a time through the redaction boundary, never whole in memory
(issue 13), and a secret is still removed when it falls across two chunks."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import itertools
import json
import re
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.config import parse_config
from auditor.engine import AuditResult, run_audit
from auditor.history import History
from auditor.outputs import render_outputs, write_outputs
from auditor.secrets import encodings, forget_secrets, register, scrub_bytes, scrub_stream
from bench.ad_export import write

STREAMED = ["findings.json", "findings.jsonl", "accounts.csv", "findings.csv"]


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


# Text around the secret from letters the redaction mark does not have: what remains is what leaked.
_AROUND = st.text(alphabet="xyz,\n\"=+/ ", max_size=40)


@given(st.text(alphabet="wxyz#%&+/=\"'<>é", min_size=4, max_size=12), st.lists(_AROUND, min_size=1, max_size=6),
       st.lists(st.integers(min_value=0, max_value=400), max_size=12), st.data())
def test_a_secret_split_across_chunks_is_still_removed(secret: str, parts: list[str], cuts: list[int],
                                                       data: st.DataObject) -> None:
    forget_secrets()
    register(secret)
    forms = sorted(encodings(secret))
    text = b"".join(p.encode() + data.draw(st.sampled_from(forms)).encode() for p in parts)
    streamed = b"".join(scrub_stream(_cut(text, cuts)))
    # Not always scrub_bytes(text) byte for byte: where forms overlap ("PDw8PA" and "PDw8PA=="), which one a
    # chunk's scrub meets first can differ. Always: no form is left.
    assert not any(form.encode() in streamed for form in forms)
    assert not any(form.encode() in scrub_bytes(text) for form in forms)


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=10))
def test_with_no_secret_the_stream_is_unchanged(data: bytes, cuts: list[int]) -> None:
    assert b"".join(scrub_stream(_cut(data, cuts))) == data


def test_a_token_is_removed_whichever_chunk_it_ends_in() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    text = f"before,{token},after\r\n".encode()
    for cut in range(len(text)):
        assert b"".join(scrub_stream([text[:cut], text[cut:]])) == b"before,[redacted],after\r\n"


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    directory = tmp_path_factory.mktemp("streaming")
    write(directory / "ad.ldif", 5_000)
    config = parse_config(f'[audit]\nhistory_db = "{directory / "history.db"}"\n\n'
                          f'[[sources]]\nname = "ad"\ntype = "ldif"\npath = "{directory / "ad.ldif"}"\n')
    history = History(config.history_db)
    try:
        return run_audit(config, datetime(2026, 6, 30, tzinfo=UTC), history)
    finally:
        history.close()


def _peak_while_writing(result: AuditResult, name: str, directory: Path) -> tuple[int, int]:
    """(the most memory allocated at once while ``name`` was written, the file's size)."""
    directory.mkdir()
    tracemalloc.start()
    try:
        write_outputs(directory, result, [name])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, (directory / name).stat().st_size


def test_exports_are_written_without_the_whole_document_in_memory(audit: AuditResult, tmp_path: Path) -> None:
    """Four times the findings and accounts make four times the file, and no more memory while writing it."""
    fourfold = dataclasses.replace(audit, findings=audit.findings * 4, inventory=dataclasses.replace(
        audit.inventory, accounts=audit.inventory.accounts * 4))
    for name in STREAMED:
        peak, size = _peak_while_writing(audit, name, tmp_path / f"once-{name}")
        peak_fourfold, size_fourfold = _peak_while_writing(fourfold, name, tmp_path / f"fourfold-{name}")
        assert size_fourfold > 3.5 * size > 4_000_000, name
        assert peak_fourfold < 1.2 * peak + 256 * 1024, f"{name}: {peak:,} then {peak_fourfold:,} bytes at most"
        assert peak_fourfold < size_fourfold / 4, f"{name}: {peak_fourfold:,} bytes at most writing {size_fourfold:,}"


def test_streamed_files_are_the_bytes_rendered_whole(audit: AuditResult, tmp_path: Path) -> None:
    whole = render_outputs(audit, jsonl=True, ocsf=True)
    write_outputs(tmp_path, audit, list(whole))
    for name, data in whole.items():
        assert (tmp_path / name).read_bytes() == data, name
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def _report_tables(page: bytes) -> dict[str, object]:
    """The accounts and findings a report's data elements hold, inflated when they are compressed."""
    elements = dict(re.findall(rb'<script type="application/[a-z]+" id="([a-z-]+)"[^>]*>([^<]*)</script>', page))
    if b'data-encoding="gzip"' not in page:
        return dict(json.loads(elements[b"report-data"]))
    tables = json.loads(gzip.decompress(base64.b64decode(elements[b"report-data"])))
    tables["findings"] = json.loads(gzip.decompress(base64.b64decode(elements[b"findings-data"])))
    return dict(tables)


def test_the_reports_tables_compressed_as_they_are_written_read_as_written_whole(audit: AuditResult) -> None:
    """The accounts' rows go into the compressor a batch at a time once the data passes the size; wherever that
    happens, the page reads the same tables as from the uncompressed JSON."""
    from auditor.report_html import render_report

    plain = render_report(audit, compress_above=10**9)
    assert b'data-encoding="gzip"' not in plain
    tables = _report_tables(plain)
    size = len(json.dumps(tables, ensure_ascii=False, separators=(",", ":")))  # the data's length, near enough
    assert render_report(audit, compress_above=size + 1000) == plain
    # At once; after some batches of rows; once every row is read (the size passed only with the lists' text).
    for threshold in (0, 100_000, size // 3, size - 1000):
        page = render_report(audit, compress_above=threshold)
        assert b'data-encoding="gzip"' in page, threshold
        assert _report_tables(page) == tables, threshold


def _cells(tables: dict[str, Any]) -> list[dict[str, object]]:
    """Each account's row as the page reads it: a dictionary column's value looked up by its position."""
    accounts = tables["accounts"]
    lists = accounts["dictionaries"]
    return [{column: lists[column][value] if column in lists else value
             for column, value in zip(accounts["columns"], row, strict=True)} for row in accounts["rows"]]


def test_a_column_with_more_distinct_values_than_are_remembered_reads_the_same(
        audit: AuditResult, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the number of values a column's list looks up again, a value gets a new position each time it comes
    (groups that rarely repeat are not held twice); the page reads every cell as before, compressed or not."""
    from auditor import report_html

    for threshold in (10**9, 0):
        tables = _report_tables(report_html.render_report(audit, compress_above=threshold))
        monkeypatch.setattr(report_html, "_REMEMBERED_VALUES", 3)
        capped = _report_tables(report_html.render_report(audit, compress_above=threshold))
        monkeypatch.undo()
        assert _cells(capped) == _cells(tables) and len(_cells(tables)) == len(audit.inventory.accounts)
        lists, capped_lists = tables["accounts"]["dictionaries"], capped["accounts"]["dictionaries"]
        grown = [c for c in lists if len(capped_lists[c]) > len(lists[c])]
        assert grown and all(capped_lists[c][:3] == lists[c][:3] for c in lists), (grown, lists)


@given(st.lists(st.binary(max_size=50), max_size=8), st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_compressed_data_is_spliced_into_the_page_as_its_base64_written_whole(
        parts: list[bytes], around: list[str]) -> None:
    """The page's compressed data goes in as base64 a piece at a time, cut at multiples of three bytes: the same
    text as the whole encoded at once, where its token was, wherever the template's pieces were cut."""
    from auditor.report_html import _Compressed, _spliced

    token = "f" * 32
    page = [around[0] + token, *around[1:], token[:0]]
    spliced = "".join(_spliced(page, {token: _Compressed(list(parts))}))
    whole = base64.b64encode(b"".join(parts)).decode("ascii")
    assert spliced == around[0] + whole + "".join(around[1:])
