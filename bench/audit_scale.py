"""Benchmark: a whole audit of a large AD export, twice (issue 13's end-to-end targets).

    python -m bench.audit_scale [--accounts 1000000] [--drift 0.05] [--workdir DIR]

Writes the deterministic AD-shaped export (``bench.ad_export``) and the next audit's export with a share of
accounts changed, then runs ``auditor run`` on each in a fresh process (LDIF -> every output, the evidence
bundle, the history). Prints for each run the wall time and the peak RSS of that process, and beside it the
floor: reading the same file and splitting it into records in plain Python. For the second run it prints the
time against the first and how much the history grew against what the first run stored; then the first run's
evidence bundle made again from the history (``auditor evidence --run``), against the first run itself, and
both bundles checked with ``auditor verify``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.ad_export import AS_OF, write

TARGET_SECONDS, TARGET_RSS_MB, TARGET_SECOND_RATIO, TARGET_GROWTH = 180.0, 2048.0, 1.2, 0.15


def record_split_floor(path: Path) -> tuple[float, int]:
    """Seconds to read ``path`` and split it into records of lines, in plain Python: nothing is faster."""
    started = time.perf_counter()
    records = 0
    lines: list[bytes] = []
    with path.open("rb") as stream:
        for line in stream:
            if line == b"\n":
                if lines:
                    records += 1
                lines = []
            else:
                lines.append(line)
    records += bool(lines)
    return time.perf_counter() - started, records


def audit(config: Path, output: Path, as_of: str) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one ``auditor run`` in its own process."""
    return measured("run", "--config", str(config), "--output", str(output), "--as-of", as_of, "--quiet",
                    "--evidence")


def measured(*args: str) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of ``auditor ARGS`` in its own process."""
    command = [sys.executable, "-m", "auditor.cli", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--drift", type=float, default=0.05)
    parser.add_argument("--workdir", type=Path, help="keep the exports here and reuse them (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audit-scale-") as scratch:
        work = args.workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        first, second = work / f"ad-{args.accounts}.ldif", work / f"ad-{args.accounts}-drift{args.drift}.ldif"
        for path, drift in ((first, 0.0), (second, args.drift)):
            if not path.exists():
                started = time.perf_counter()
                write(path, args.accounts, drift=drift)
                print(f"wrote {path.name}: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s")
        run_dir = Path(tempfile.mkdtemp(prefix="runs-", dir=work))
        current = run_dir / "current.ldif"
        history = run_dir / "history.db"
        config = run_dir / "auditor.toml"
        config.write_text(f'[audit]\norganization = "Scale Test"\nhistory_db = "{history}"\n\n'
                          f'[[sources]]\nname = "ad"\ntype = "ldif"\npath = "{current}"\n')

        floor, records = record_split_floor(first)
        print(f"floor: read and split {first.name} into {records:,} records in plain Python: {floor:.1f} s")
        times: list[float] = []
        peaks: list[float] = []
        sizes = [0]
        for n, (export, as_of) in enumerate(((first, AS_OF), (second, AS_OF + timedelta(days=7))), start=1):
            current.unlink(missing_ok=True)
            current.symlink_to(export)
            seconds, rss, code = audit(config, run_dir / f"out{n}", as_of.date().isoformat())
            times.append(seconds)
            peaks.append(rss)
            sizes.append(history.stat().st_size)
            print(f"run {n}: {seconds:.1f} s ({seconds / floor:.1f}x the floor; target {TARGET_SECONDS:.0f} s), "
                  f"peak RSS {rss:,.0f} MB (target {TARGET_RSS_MB:,.0f} MB), exit {code}, "
                  f"history +{(sizes[-1] - sizes[-2]) / 1e6:.1f} MB")
            if code not in (0, 1):
                raise SystemExit(f"run {n} failed with exit code {code}")
        outputs = sum(f.stat().st_size for f in (run_dir / "out1").iterdir())
        print(f"outputs of run 1: {outputs / 1e6:.0f} MB "
              f"(report.html {(run_dir / 'out1' / 'report.html').stat().st_size / 1e6:.1f} MB)")
        growth = (sizes[2] - sizes[1]) / sizes[1]
        print(f"second run: {times[1] / times[0]:.2f}x the first (target <= {TARGET_SECOND_RATIO}); history grew "
              f"{growth:.1%} of what the first run stored (target <= {TARGET_GROWTH:.0%})")
        # The first run's bundle made again from the history, as an auditor asks for it months later.
        first_run = json.loads((run_dir / "out1" / "findings.json").read_bytes())["run_id"]
        seconds, rss, code = measured("evidence", "--run", first_run, "--config", str(config), "--output",
                                      str(run_dir / "evidence-again.zip"))
        print(f"evidence --run of run 1: {seconds:.1f} s ({seconds / times[0]:.2f}x run 1), peak RSS {rss:,.0f} MB "
              f"({rss / peaks[0]:.2f}x run 1's), exit {code}")
        if code != 0:
            raise SystemExit(f"evidence --run failed with exit code {code}")
        # Both bundles as an auditor checks them: at this size too, every entry hashed against the manifest.
        for bundle in (run_dir / "out1" / f"evidence-{first_run}.zip", run_dir / "evidence-again.zip"):
            seconds, _, code = measured("verify", str(bundle))
            print(f"verify {bundle.name} ({bundle.stat().st_size / 1e6:.0f} MB): exit {code} in {seconds:.1f} s")
            if code != 0:
                raise SystemExit(f"auditor verify failed on {bundle}")


if __name__ == "__main__":
    main()
