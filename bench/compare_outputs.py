"""Check: the outputs of this tree are the bytes a base revision writes (issue 13: "nothing lost for speed").

    python -m bench.compare_outputs [--base HEAD] [--accounts 1000] [--drift 0.05]

Checks out ``--base`` in a temporary git worktree, writes the deterministic AD export (``bench.ad_export``) and
its drifted successor, and runs the same two audits with each tree's code (``auditor run --evidence --format
jsonl --format ocsf``, the second run a week later against the first run's history, then ``auditor evidence
--run`` of the first run from that history). Every file, and every member of each evidence bundle, is compared
after masking only what differs by design from one run to the next: run ids, the times the runs were made, the
temporary paths, the operator and host, OCSF events' own uids (digests of the run id), and the manifest's
digests (of files whose own masked bytes are compared). The history itself is internal and not compared: the
outputs a past run renders from it are.

Prints each file as identical or where it first differs; exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.ad_export import AS_OF, write

ROOT = Path(__file__).resolve().parent.parent
_RUN_ID = re.compile(rb"\d{8}T\d{6}Z-[0-9a-f]{6}")
_DIGEST = re.compile(rb"\b[0-9a-f]{64}\b")


def _masks(work: Path) -> list[tuple[re.Pattern[bytes], bytes]]:
    today = datetime.now(UTC)
    # Times the runs were made (generated_at, collected_at, a zip entry's name never): today's and yesterday's
    # date, in every form the outputs write a time (ISO 8601 with or without a fraction, "YYYY-MM-DD HH:MM").
    days = b"|".join(re.escape(f"{d:%Y-%m-%d}".encode()) for d in (today, today - timedelta(days=1)))
    return [
        (_RUN_ID, b"<run>"),
        (re.compile(rb"(?:" + days + rb")[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)?"), b"<now>"),
        (re.compile(re.escape(str(work).encode()) + rb"[^\"'\s<]*"), b"<path>"),
        (_DIGEST, b"<sha256>"),
        (re.compile(rb'"(operator|host|python)": "[^"]*"'), rb'"\1": "<machine>"'),
        # An OCSF event's own uid is a digest of the run id (its finding's uid is not, and is compared).
        (re.compile(rb'("metadata":\{"version":"[^"]*","uid":")[0-9a-f]{32}'), rb"\1<run-digest>"),
    ]


def _normalised(data: bytes, masks: list[tuple[re.Pattern[bytes], bytes]]) -> bytes:
    for pattern, replacement in masks:
        data = pattern.sub(replacement, data)
    return data


def _files(directory: Path) -> dict[str, bytes]:
    """Every regular file under ``directory`` by a name without run ids, bundles opened into their members."""
    files: dict[str, bytes] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        name = _RUN_ID.sub(b"<run>", str(path.relative_to(directory)).encode()).decode()
        if path.suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as bundle:
                for member in bundle.namelist():
                    files[f"{name}!{member}"] = bundle.read(member)
        else:
            files[name] = path.read_bytes()
    return files


def _audit(tree: Path, work: Path, first: Path, second: Path) -> Path:
    """The two runs and a past run's bundle with ``tree``'s code; the directory holding what they wrote."""
    out = work / "out"
    history = work / "history.db"
    current = work / "current.ldif"
    config = work / "auditor.toml"
    config.write_text(f'[audit]\norganization = "Compare"\nhistory_db = "{history}"\n\n'
                      f'[[sources]]\nname = "ad"\ntype = "ldif"\npath = "{current}"\n')
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    for n, (export, as_of) in enumerate(((first, AS_OF), (second, AS_OF + timedelta(days=7))), start=1):
        current.unlink(missing_ok=True)
        current.symlink_to(export)
        completed = subprocess.run(
            [sys.executable, "-m", "auditor.cli", "run", "--config", str(config), "--output", str(out / f"run{n}"),
             "--as-of", as_of.date().isoformat(), "--quiet", "--evidence", "--format", "jsonl", "--format", "ocsf"],
            cwd=tree, env=environment, check=False)
        if completed.returncode not in (0, 1):
            raise SystemExit(f"{tree}: run {n} failed with exit code {completed.returncode}")
    first_run = next((out / "run1" / "runs").iterdir()).name
    subprocess.run([sys.executable, "-m", "auditor.cli", "evidence", "--run", first_run, "--config", str(config),
                    "--output", str(out / "past" / "evidence-again.zip")],
                   cwd=tree, env=environment, check=True, stdout=subprocess.DEVNULL)
    return out


def compare(base: str, accounts: int, drift: float) -> int:
    with tempfile.TemporaryDirectory(prefix="compare-outputs-") as scratch:
        work = Path(scratch)
        first, second = work / "first.ldif", work / "second.ldif"
        write(first, accounts)
        write(second, accounts, drift=drift)
        base_tree = work / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(base_tree), base],
                       check=True)
        try:
            (work / "a").mkdir()
            (work / "b").mkdir()
            masks = _masks(work)
            before = _files(_audit(base_tree, work / "a", first, second))
            after = _files(_audit(ROOT, work / "b", first, second))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], check=False)
        differing = 0
        for name in sorted(before.keys() | after.keys()):
            if name not in before or name not in after:
                print(f"{name}: only {'after' if name in after else 'before'}")
                differing += 1
                continue
            old, new = _normalised(before[name], masks), _normalised(after[name], masks)
            if old == new:
                print(f"{name}: identical ({len(new):,} bytes)")
                continue
            differing += 1
            at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
            print(f"{name}: DIFFERS at byte {at:,}: before {old[max(at - 60, 0):at + 60]!r}, "
                  f"after {new[max(at - 60, 0):at + 60]!r}")
        print(f"{len(before | after)} files compared against {base}: {differing} differ")
        return 1 if differing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="the git revision to compare with (default: HEAD)")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--drift", type=float, default=0.05)
    args = parser.parse_args()
    raise SystemExit(compare(args.base, args.accounts, args.drift))


if __name__ == "__main__":
    main()
