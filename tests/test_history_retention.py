"""History at scale: snapshots stored as deltas, outputs kept as the result that renders them, and retention
that keeps everything the kept runs and the next audit need."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
import zlib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import jsonio, list_delta, snapshot_delta
from auditor.cli import main
from auditor.history import History, RunRecord
from auditor.model import Account
from auditor.secrets import scrub_text
from bench.ad_export import AS_OF, write

ACCOUNTS = 400
OUTPUTS = ("findings.json", "accounts.csv", "findings.csv", "report.html", "findings.jsonl")


def _organisation(tmp_path: Path, runs: int) -> tuple[Path, list[str]]:
    """``runs`` weekly audits of one AD export drifting 5% a week; the config and the run ids, oldest first."""
    config = tmp_path / "auditor.toml"
    current = tmp_path / "current.ldif"
    config.write_text(f'[audit]\norganization = "Scale"\nhistory_db = "{tmp_path / "history.sqlite"}"\n\n'
                      f'[[sources]]\nname = "ad"\ntype = "ldif"\npath = "{current}"\n')
    run_ids = []
    for week in range(runs):
        write(current, ACCOUNTS, seed=1, drift=0.05 * week)
        out = tmp_path / f"out{week}"
        result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(out), "-q", "--jsonl",
                                           "--as-of", (AS_OF + timedelta(days=7 * week)).date().isoformat()])
        assert result.exit_code in (0, 1), result.output
        run_ids.append(json.loads((out / "findings.json").read_text())["run_id"])
    return config, run_ids


def _rendered(config: Path, run_id: str, target: Path) -> dict[str, bytes]:
    result = CliRunner().invoke(main, ["render", "--run", run_id, "--config", str(config), "--output", str(target)])
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in target.iterdir()}


def test_later_snapshots_are_deltas_and_outputs_are_not_stored_twice(tmp_path: Path) -> None:
    config, run_ids = _organisation(tmp_path, 3)
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        snapshots = {r[0]: (r[1], r[2], r[3]) for r in db.execute(
            "SELECT run_id, base_run, depth, length(accounts) FROM snapshots")}
        stored_files = {r[0] for r in db.execute("SELECT DISTINCT name FROM run_files")}
    assert snapshots[run_ids[0]][:2] == (None, 0)
    assert snapshots[run_ids[1]][:2] == (run_ids[0], 1) and snapshots[run_ids[2]][:2] == (run_ids[1], 2)
    assert snapshots[run_ids[2]][2] < snapshots[run_ids[0]][2] / 5  # the changed 5%, not the directory
    assert stored_files == {"config.json", "run.json"}  # the rest is rendered again from the stored result
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        event_lists = {r[0]: (r[1], r[2], r[3]) for r in db.execute(
            "SELECT run_id, base_run, depth, length(data) FROM run_events")}
    # The change events a result holds: a delta from the previous run's list, most of which it repeats.
    assert event_lists[run_ids[0]][:2] == (None, 0) and event_lists[run_ids[2]][:2] == (run_ids[1], 2)
    assert event_lists[run_ids[2]][2] < event_lists[run_ids[0]][2] / 3
    # Every run renders again to the bytes it wrote, through its chain of deltas.
    for week, run_id in enumerate(run_ids):
        written = tmp_path / f"out{week}" / "runs" / run_id
        again = _rendered(config, run_id, tmp_path / f"again{week}")
        assert again == {name: (written / name).read_bytes() for name in OUTPUTS}


def test_the_second_audit_grows_the_history_by_a_small_share_of_the_first(tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"
    current = tmp_path / "current.ldif"
    history = tmp_path / "history.sqlite"
    config.write_text(f'[audit]\nhistory_db = "{history}"\n\n[[sources]]\nname = "ad"\ntype = "ldif"\n'
                      f'path = "{current}"\n')
    sizes = []
    for week, drift in enumerate((0.0, 0.05)):
        write(current, 3_000, drift=drift)
        result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out"), "-q",
                                           "--evidence", "--as-of",
                                           (AS_OF + timedelta(days=7 * week)).date().isoformat()])
        assert result.exit_code in (0, 1), result.output
        with sqlite3.connect(history) as db:
            db.execute("VACUUM")
        sizes.append(history.stat().st_size)
    # The benchmark holds the 15% target at 100,000 accounts (bench/audit_scale: 12.8%); at 3,000 accounts the
    # per-run parts (findings, verdicts, events) weigh more against the directory.
    assert sizes[1] - sizes[0] < 0.35 * sizes[0]


def test_pruning_keeps_what_kept_runs_and_the_next_audit_need(tmp_path: Path) -> None:
    config, run_ids = _organisation(tmp_path, 4)
    history_path = tmp_path / "history.sqlite"
    before = {run_id: _rendered(config, run_id, tmp_path / f"before-{run_id}") for run_id in run_ids[2:]}
    bundle = tmp_path / "kept.zip"
    assert CliRunner().invoke(main, ["evidence", "--run", run_ids[3], "--config", str(config),
                                     "--output", str(bundle)]).exit_code == 0
    unpruned = tmp_path / "unpruned.sqlite"
    shutil.copy(history_path, unpruned)

    dry = CliRunner().invoke(main, ["history", "prune", "--config", str(config), "--keep-runs", "2", "--dry-run"])
    assert dry.exit_code == 0 and f"would remove 2 run(s): {run_ids[0]}, {run_ids[1]}" in dry.output
    pruned = CliRunner().invoke(main, ["history", "prune", "--config", str(config), "--keep-runs", "2"])
    assert pruned.exit_code == 0, pruned.output
    assert "removed 2 run(s)" in pruned.output and "1 snapshot(s) stored whole again" in pruned.output
    assert "and 1 run(s)' change events" in pruned.output

    history = History(history_path)
    try:
        assert [r.id for r in history.runs()] == run_ids[2:]
    finally:
        history.close()
    # The kept runs render and bundle as before; the removed ones are said to be gone.
    for run_id in run_ids[2:]:
        assert _rendered(config, run_id, tmp_path / f"after-{run_id}") == before[run_id]
    again = tmp_path / "again.zip"
    assert CliRunner().invoke(main, ["evidence", "--run", run_ids[3], "--config", str(config),
                                     "--output", str(again)]).exit_code == 0
    assert _zip_files(again) == _zip_files(bundle)
    gone = CliRunner().invoke(main, ["evidence", "--run", run_ids[0], "--config", str(config)])
    assert gone.exit_code == 2 and "no evidence for run" in gone.output

    # The next audit finds the same changes and findings as it would have in the unpruned history.
    write(tmp_path / "current.ldif", ACCOUNTS, seed=1, drift=0.2)
    as_of = (AS_OF + timedelta(days=28)).date().isoformat()
    outputs = {}
    shutil.copy(history_path, tmp_path / "pruned.sqlite")
    for name, path in (("pruned", tmp_path / "pruned.sqlite"), ("unpruned", unpruned)):
        shutil.copy(path, tmp_path / "history.sqlite")
        out = tmp_path / f"next-{name}"
        result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(out), "-q",
                                           "--as-of", as_of])
        assert result.exit_code in (0, 1), result.output
        document = json.loads((out / "findings.json").read_text())
        outputs[name] = (document["findings"], document["kpis"], (out / "accounts.csv").read_bytes())
    assert outputs["pruned"] == outputs["unpruned"]


def _zip_files(path: Path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(path) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist() if not name.startswith("manifest")}


def test_retention_from_the_config_runs_after_each_audit_and_bad_values_name_the_key(tmp_path: Path) -> None:
    config, run_ids = _organisation(tmp_path, 2)
    text = config.read_text().replace("[audit]\n", "[audit]\nhistory_keep_runs = 1\n")
    config.write_text(text)
    write(tmp_path / "current.ldif", ACCOUNTS, seed=1, drift=0.1)
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--output", str(tmp_path / "out9"), "-q",
                                       "--as-of", (AS_OF + timedelta(days=14)).date().isoformat()])
    assert result.exit_code in (0, 1), result.output
    history = History(tmp_path / "history.sqlite")
    try:
        assert len(history.runs()) == 1 and history.runs()[0].id not in run_ids
    finally:
        history.close()
    config.write_text(text.replace("history_keep_runs = 1", "history_keep_runs = 0"))
    bad = CliRunner().invoke(main, ["history", "prune", "--config", str(config)])
    assert bad.exit_code == 2 and "history_keep_runs" in bad.output and "Traceback" not in bad.output
    config.write_text(text.replace("history_keep_runs = 1\n", ""))
    unset = CliRunner().invoke(main, ["history", "prune", "--config", str(config)])
    assert unset.exit_code == 2 and "nothing says what to keep" in unset.output


_IDS = st.sampled_from([f"id{n}" for n in range(12)])


def _accounts(ids: list[str], names: list[str]) -> list[Account]:
    return [Account(source="ad", id=i, username=n, enabled=True) for i, n in zip(ids, names, strict=False)]


@settings(max_examples=300)
@given(st.lists(_IDS, unique=True), st.lists(_IDS, unique=True), st.lists(st.sampled_from("ab"), min_size=12,
                                                                           max_size=12))
def test_a_delta_gives_back_the_snapshot_in_its_order_or_there_is_none(
        before_ids: list[str], after_ids: list[str], names: list[str]) -> None:
    previous = _accounts(before_ids, ["a"] * len(before_ids))
    current = _accounts(after_ids, names)
    change = snapshot_delta.delta(previous, current)
    if change is None:  # only when the kept accounts changed their order
        kept = [i for i in after_ids if i in before_ids]
        assert kept != [i for i in before_ids if i in after_ids]
        return
    restored = snapshot_delta.apply(previous, json.loads(json.dumps(change)))
    assert restored == current
    # A change of order in a mapping is a change too: it is part of what the report shows.
    if current:
        reordered = [replace(current[0], raw={"b": "1", "a": "2"}), *current[1:]]
        first = replace(current[0], raw={"a": "2", "b": "1"})
        moved = snapshot_delta.delta([first, *current[1:]], reordered)
        assert moved is not None and moved["changed"][0]["raw"] == {"b": "1", "a": "2"}


def test_the_comparison_keeps_the_previous_ids_in_their_order_as_the_current_accounts_own_strings() -> None:
    previous = {"".join(["id-", str(n)]): bytes([n]) * 16 for n in range(5)}  # read back: strings of their own
    current = _accounts(["id-3", "id-1", "id-9"], ["a", "a", "a"])
    comparison = snapshot_delta.compare(previous, current)
    assert list(comparison.previous.items()) == list(previous.items())
    assert [any(i is a.id for a in current) for i in comparison.previous] == [False, True, False, True, False]
    assert comparison.changed == {"id-1", "id-3"}  # their digests are not these accounts' encodings


@settings(max_examples=300)
@given(st.lists(_IDS), st.lists(_IDS, unique=True), st.lists(st.sampled_from("ab"), min_size=12, max_size=12))
def test_the_stored_snapshot_compared_once_is_its_comparison_by_digests(
        before_ids: list[str], after_ids: list[str], names: list[str]) -> None:
    # The next audit reads the previous snapshot once, after the directory, comparing encodings themselves: the
    # same comparison, the same delta and the same accounts read back as with a digest of each stored first.
    previous = _accounts(before_ids, ["a"] * len(before_ids))
    current = _accounts(after_ids, names)
    stored = [(a.id, jsonio.dumps(a)) for a in previous]
    comparison, differing = snapshot_delta.compare_stored(iter(stored), current)
    digests = {i: snapshot_delta.digest(line) for i, line in stored}
    by_digests = snapshot_delta.compare(digests, current, repeated_ids=len(digests) != len(stored))
    assert list(comparison.previous) == list(by_digests.previous)
    assert comparison.repeated_ids == by_digests.repeated_ids
    if not comparison.repeated_ids:  # (a repeated id is never in a complete snapshot this version stores)
        assert comparison.changed == by_digests.changed
        gone = {i for i in digests if i not in {a.id for a in current}}
        assert differing == [line for i, line in stored if i in comparison.changed | gone]
        change = snapshot_delta.delta(comparison, current)
        assert change == snapshot_delta.delta(by_digests, current)
        as_made = snapshot_delta.change_of(comparison, current)
        assert (change is None and as_made is None) or b"".join(as_made.encoded()) == jsonio.dumps(change)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=8))
def test_the_open_finding_keys_of_a_run_read_back_whatever_their_text(keys: list[str]) -> None:
    # Only the keys are read from the stored summaries: a subject's text that looks like a summary is not one.
    summaries = [{"key": key, "rule": "r", "severity": "low", "subject": f'{key}{{"key":"{key}x"}}'} for key in keys]
    with tempfile.TemporaryDirectory() as scratch:
        history = History(Path(scratch) / "history.sqlite")
        try:
            history.record_run(RunRecord("run-1", AS_OF, AS_OF, "0", True, [], {}, []), {}, [],
                               open_findings=iter(summaries))
            assert history.open_finding_keys("run-1") == {scrub_text(key) for key in keys}
        finally:
            history.close()


_ITEMS = st.lists(st.sampled_from([b'{"a":1}', b'{"a":2}', b'"x"', b"[]", b"3", b'{"b":[1,2]}']), max_size=30)


@settings(max_examples=300)
@given(_ITEMS, _ITEMS)
def test_a_list_delta_gives_back_the_list_in_its_order(base: list[bytes], items: list[bytes]) -> None:
    stored = list_delta.delta(base, items)
    assert list_delta.apply(base, stored) == items
    assert list_delta.items_of(list_delta.whole(items)) == items
    if items and items == base:
        assert stored == b"=0,%d" % len(items)  # one copy of the whole


@settings(max_examples=300)
@given(_ITEMS, _ITEMS, _ITEMS)
def test_a_list_delta_made_from_digests_is_the_delta_made_from_items(
        oldest: list[bytes], base: list[bytes], items: list[bytes]) -> None:
    # The next run compares its events with the latest run's by digest (the items are not held): the same lines,
    # and the digests of a list stored as a delta are worked out without its items.
    digest = snapshot_delta.digest
    assert b"\n".join(list_delta.delta_lines([digest(i) for i in base], iter(items), digest)) == \
        list_delta.delta(base, items)
    stored = list_delta.delta(oldest, base)
    assert list_delta.keys([digest(i) for i in oldest], stored, digest) == [digest(i) for i in base]


def test_a_history_written_before_schema_4_reads_as_it_was(tmp_path: Path) -> None:
    """Results with their change events inside, and departed accounts stored as text, read back unchanged."""
    config, run_ids = _organisation(tmp_path, 2)
    expected = {run_id: _rendered(config, run_id, tmp_path / f"now-{run_id}") for run_id in run_ids}
    history = History(tmp_path / "history.sqlite")
    try:
        inline = {run_id: history.run_result(run_id) for run_id in run_ids}
        departed = history.departures("ad", AS_OF + timedelta(days=30))
    finally:
        history.close()
    assert departed  # the drift removed accounts
    with sqlite3.connect(tmp_path / "history.sqlite") as db:  # as version 3 wrote them
        for run_id, data in inline.items():
            assert data is not None
            db.execute("UPDATE run_results SET data=? WHERE run_id=?", (zlib.compress(data), run_id))
        db.execute("DELETE FROM run_events")
        for source, account_id, account in db.execute("SELECT source, account_id, account FROM departures")\
                .fetchall():
            db.execute("UPDATE departures SET account=? WHERE source=? AND account_id=?",
                       (zlib.decompress(account).decode(), source, account_id))
    for run_id in run_ids:
        assert _rendered(config, run_id, tmp_path / f"old-{run_id}") == expected[run_id]
    history = History(tmp_path / "history.sqlite")
    try:
        assert history.departures("ad", AS_OF + timedelta(days=30)) == departed
    finally:
        history.close()


def test_the_index_by_time_older_histories_have_is_dropped_and_periods_read_the_same(tmp_path: Path) -> None:
    """Change events have no index by time (each run's inserts wrote its pages at random); a history that has
    one loses it when opened, and a period's events read back the same, in time order."""
    _organisation(tmp_path, 2)
    path = tmp_path / "history.sqlite"
    history = History(path)
    try:
        before = history.events_between(AS_OF - timedelta(days=400), AS_OF + timedelta(days=30))
    finally:
        history.close()
    assert len(before) > 10 and [e.at for e in before] == sorted(e.at for e in before)
    with sqlite3.connect(path) as db:  # as versions before this one made it
        db.execute("CREATE INDEX change_events_by_time ON change_events (at)")
    history = History(path)
    try:
        assert history.events_between(AS_OF - timedelta(days=400), AS_OF + timedelta(days=30)) == before
    finally:
        history.close()
    with sqlite3.connect(path) as db:
        assert not db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='change_events' "
                              "AND sql IS NOT NULL").fetchall()


def test_snapshots_written_as_json_lists_read_as_they_were(tmp_path: Path) -> None:
    """Before schema 5 a whole snapshot was one JSON list; it reads back to the same accounts, digests and
    renders, and the next audit compares with it as with a snapshot of lines."""
    config, run_ids = _organisation(tmp_path, 2)
    expected = {run_id: _rendered(config, run_id, tmp_path / f"now-{run_id}") for run_id in run_ids}
    history = History(tmp_path / "history.sqlite")
    try:
        accounts = {run_id: history.snapshot_accounts(run_id, "ad") for run_id in run_ids}
        digests = {run_id: history.stored_snapshot(run_id, "ad").digests for run_id in run_ids}
    finally:
        history.close()
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        rows = db.execute("SELECT run_id, accounts FROM snapshots WHERE base_run IS NULL").fetchall()
        assert rows
        for run_id, blob in rows:
            lines = zlib.decompress(blob).splitlines()
            db.execute("UPDATE snapshots SET accounts=? WHERE run_id=?",
                       (zlib.compress(b"[" + b",".join(lines) + b"]"), run_id))
    history = History(tmp_path / "history.sqlite")
    try:
        for run_id in run_ids:
            assert history.snapshot_accounts(run_id, "ad") == accounts[run_id]
            stored = history.stored_snapshot(run_id, "ad")
            assert stored.digests == digests[run_id] and list(stored.digests) == list(digests[run_id])
            some = set(list(stored.digests)[::7])
            assert stored.accounts(some) == [a for a in accounts[run_id] if a.id in some]
    finally:
        history.close()
    for run_id in run_ids:
        assert _rendered(config, run_id, tmp_path / f"old-{run_id}") == expected[run_id]


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=20), st.integers(1, 9))
def test_a_snapshots_lines_read_in_pieces_are_its_lines(lines: list[bytes], piece_size: int) -> None:
    from auditor.history import _whole_lines

    lines = [b"{" + line for line in lines]  # accounts: JSON objects (a JSON list is the format before lines)
    assert list(_whole_lines(zlib.compress(b"".join(line + b"\n" for line in lines)), piece_size)) == lines


@settings(max_examples=300)
@given(_ITEMS, st.integers(1, 9))
def test_an_event_lists_lines_read_in_pieces_are_its_items(items: list[bytes], piece_size: int) -> None:
    # The latest run's event list is digested as it is decompressed (whole, it was 300 MB at a million accounts).
    from auditor.history import _lines

    stored = list_delta.whole(items)
    pieces = [stored[start:start + piece_size] for start in range(0, len(stored), piece_size)]
    assert list(_lines(pieces)) == list_delta.items_of(stored) == items


def test_a_blob_of_several_input_slices_reads_in_pieces_as_whole() -> None:
    # The blob is handed to zlib a megabyte at a time (not whole, which zlib copied at each call): lines cut at
    # slice and piece boundaries alike, and bytes after the stream's end ignored (they made the loop spin forever).
    from auditor.history import _whole_lines

    lines = [b'{"n":%d,"digest":"%s"}' % (n, hashlib.sha256(b"%d" % n).hexdigest().encode()) for n in range(100_000)]
    blob = zlib.compress(b"".join(line + b"\n" for line in lines), 1)
    assert len(blob) > 3 << 20  # several slices
    assert list(_whole_lines(blob + b"trailing", 1 << 16)) == lines


def test_a_secret_cannot_rewrite_an_event_lists_structure(tmp_path: Path) -> None:
    """The events go through the redaction boundary one by one; the delta's own lines are not text from anyone,
    so a secret that happens to spell one ("=0,12") leaves the list readable, and is still removed from events."""
    from auditor.history import RunRecord
    from auditor.model import ChangeAction, ChangeEvent
    from auditor.secrets import forget_secrets, register

    events = [ChangeEvent("ad", AS_OF - timedelta(days=n), f"id-{n}", ChangeAction.CREATED, username=f"u{n}")
              for n in range(12)]
    leaking = replace(events[3], detail="token =0,12 in a description")
    history = History(tmp_path / "history.sqlite")
    try:
        register("=0,12")
        for week, listed in enumerate((events, events, [*events[:3], leaking, *events[4:]])):
            run = RunRecord(f"r{week}", AS_OF + timedelta(days=7 * week), AS_OF, "0.1.0", True, [], {}, [])
            history.record_run(run, {}, listed, result=b"{}", result_events=listed)
        with sqlite3.connect(tmp_path / "history.sqlite") as db:
            assert zlib.decompress(db.execute("SELECT data FROM run_events WHERE run_id='r1'").fetchone()[0]) \
                == b"=0,12"  # the second week's list: one copy of the first's
        assert [json.loads(item)["account_id"] for item in history.run_events("r1")] == [f"id-{n}" for n in range(12)]
        third = [json.loads(item) for item in history.run_events("r2")]
        assert [e["account_id"] for e in third] == [f"id-{n}" for n in range(12)]
        assert third[3]["detail"] == "token [redacted] in a description"
    finally:
        forget_secrets()
        history.close()
