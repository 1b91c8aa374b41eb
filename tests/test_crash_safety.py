"""Kill real audit processes at many points: earlier history and earlier outputs must survive intact."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_small_org

OUTPUTS = ("report.html", "findings.json", "accounts.csv")


def start(config: Path, out: Path, as_of: str) -> subprocess.Popen[bytes]:
    scratch = config.parent / "tmp"  # the run's own temporary directory: what a killed run leaves there is seen
    scratch.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "auditor.cli", "run", "--config", str(config), "--output", str(out),
         "--as-of", as_of, "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(scratch)},
    )


def assert_intact(out: Path, history: Path, minimum_runs: int) -> int:
    with sqlite3.connect(history) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        orphans = db.execute("SELECT count(*) FROM snapshots WHERE run_id NOT IN (SELECT id FROM runs)").fetchone()[0]
    assert runs >= minimum_runs and orphans == 0
    # A blob is compressed into a scratch file beside the history before it is stored: unlinked from the start.
    assert not [p.name for p in history.parent.iterdir() if p.is_file() and p.name.startswith("tmp")]
    document = json.loads((out / "findings.json").read_text())  # whole JSON, old or new
    assert document["findings"]
    assert (out / "report.html").read_text().rstrip().endswith("</html>")
    assert (out / "accounts.csv").read_text("utf-8-sig").startswith("source,id,username")
    # One set: every name the user opens comes from the run "latest" points at, and that run is recorded.
    run_dir = (out / "latest").resolve()
    assert run_dir.parent == (out / "runs").resolve() and run_dir.name == document["run_id"]
    for name in OUTPUTS:
        assert (out / name).resolve() == run_dir / name
    with sqlite3.connect(history) as db:
        assert db.execute("SELECT count(*) FROM runs WHERE id = ?", (document["run_id"],)).fetchone()[0] == 1
    return int(runs)


def test_killed_runs_never_corrupt_history_or_outputs(tmp_path: Path) -> None:
    config = write_small_org(tmp_path / "org")
    history = tmp_path / "org" / "history.sqlite"
    out = tmp_path / "out"
    first = start(config, out, "2026-06-01")
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    # Measure how long one run takes in this environment, then kill runs at points spread across it.
    began = time.monotonic()
    timed = start(config, out, "2026-06-02")
    assert timed.wait(timeout=120) == 0
    duration = time.monotonic() - began
    runs = assert_intact(out, history, 2)
    day = 3
    for fraction in (0.05, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99):
        process = start(config, out, f"2026-06-{day:02d}")
        day += 1
        time.sleep(duration * fraction)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        runs_now = assert_intact(out, history, runs)
        assert runs_now in (runs, runs + 1)  # the killed run is recorded whole or not at all
        runs = runs_now
    # The next run sweeps the temporaries a killed run left, and succeeds.
    final = start(config, out, "2026-06-30")
    assert final.wait(timeout=120) == 0
    assert not list(out.glob(".*.tmp"))
    assert not list((config.parent / "tmp").iterdir())  # nothing of a killed run is left in the temporary directory
    assert assert_intact(out, history, runs + 1) == runs + 1


def test_runs_killed_while_writing_leave_one_complete_recorded_set(tmp_path: Path) -> None:
    """Many kills at random points of the end of a run, where outputs are written and published."""
    config = write_small_org(tmp_path / "org")
    history = tmp_path / "org" / "history.sqlite"
    out = tmp_path / "out"
    began = time.monotonic()
    assert start(config, out, "2026-06-01").wait(timeout=120) == 0
    duration = time.monotonic() - began
    runs = assert_intact(out, history, 1)
    chance = random.Random(20261123)  # reproducible points, spread over the write phase
    for day in range(2, 16):
        process = start(config, out, f"2026-06-{day:02d}")
        time.sleep(duration * chance.uniform(0.55, 1.05))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        runs_now = assert_intact(out, history, runs)
        assert runs_now in (runs, runs + 1)
        runs = runs_now
        assert len([d for d in (out / "runs").iterdir() if not d.name.startswith(".")]) <= 4  # pruned
    assert start(config, out, "2026-06-30").wait(timeout=120) == 0
    assert not list((out / "runs").glob(".*.partial"))  # the next run sweeps what killed runs left
    assert not list(out.glob(".*.link"))
    assert assert_intact(out, history, runs + 1) == runs + 1


def test_an_unwritable_output_directory_replaces_nothing(tmp_path: Path) -> None:
    config = write_small_org(tmp_path / "org")
    out = tmp_path / "out"
    assert start(config, out, "2026-06-01").wait(timeout=120) == 0
    before = {name: (out / name).read_bytes() for name in OUTPUTS}
    blocker = out / "runs"
    blocker.rename(tmp_path / "runs-aside")
    blocker.write_text("not a directory")  # the run directory cannot be created (root ignores permissions)
    process = start(config, out, "2026-06-02")
    assert process.wait(timeout=120) == 2
    assert b"cannot write to" in (process.stderr.read() if process.stderr else b"")
    blocker.unlink()
    (tmp_path / "runs-aside").rename(blocker)
    assert {name: (out / name).read_bytes() for name in OUTPUTS} == before  # the earlier set, untouched
