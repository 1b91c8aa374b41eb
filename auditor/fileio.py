"""Writing outputs: owner-only permissions and all-or-nothing replacement."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def replaced_whole(path: Path) -> Iterator[BinaryIO]:
    """A stream that becomes ``path`` when the block ends, and nothing if it fails: readers see the old file or
    the whole new one, never a part.

    The temporary file is created 0600 in the same directory (rename is atomic only within a filesystem)
    and fsynced before the rename; reports carry personal data, so the final file is owner-only too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_directory(path.parent)  # make the rename itself durable


RUNS = "runs"
LATEST = "latest"
KEEP_RUNS = 3  # run directories kept in the output directory; the history keeps every run's evidence


Writer = Callable[[Path], Collection[str]]  # writes a set's files into the directory given; their names


def publish_run(output_dir: Path, run_id: str, write: Writer, commit: Callable[[], None]) -> None:
    """Publish one run's outputs as one set: readers of ``output_dir`` see the previous set or this one whole.

    ``write`` writes the files into a private staging directory, renamed to ``runs/<run_id>`` when it is done;
    ``commit`` (recording the run in the history) runs next, and only then is ``latest`` switched to the new directory
    with one atomic rename. ``output_dir/<name>`` are links to ``latest/<name>``, so the names users open
    never change. A run killed at any point leaves the previous set in place and its own staging directory,
    swept by the next run. Directories are created 0700 and files 0600: outputs carry personal data.
    """
    runs = output_dir / RUNS
    for directory in (output_dir, runs):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in runs.glob(".*.partial"):  # staging directories of killed runs
        shutil.rmtree(stale, ignore_errors=True)
    for stale_link in output_dir.glob(".*.link"):  # links a killed run made and had not yet renamed
        with contextlib.suppress(OSError):
            stale_link.unlink()
    final = runs / run_id
    names = write_set(final, write)
    try:
        commit()
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    _link(output_dir / LATEST, f"{RUNS}/{run_id}")
    for name in names:
        _link(output_dir / name, f"{LATEST}/{name}")
    for entry in output_dir.iterdir():  # links to files the new set does not have (an old evidence zip)
        if entry.is_symlink() and not entry.exists():
            with contextlib.suppress(OSError):
                entry.unlink()
    _fsync_directory(output_dir)
    kept = sorted((p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in kept[:-KEEP_RUNS]:
        if old.name != run_id:
            shutil.rmtree(old, ignore_errors=True)


def write_set(directory: Path, files: dict[str, bytes] | Writer) -> Collection[str]:
    """Create ``directory`` holding ``files`` (or what the writer writes), whole or not at all: written in a
    private staging directory beside it (``.NAME.*.partial``, swept by the next run if killed) and renamed into
    place. The files' names."""
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent))  # 0700
    try:
        if isinstance(files, dict):
            for name, data in files.items():
                write_stream(staging / name, [data])
            names: Collection[str] = list(files)
        else:
            names = files(staging)
        _fsync_directory(staging)
        os.rename(staging, directory)
        _fsync_directory(directory.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return names


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[BinaryIO]:
    """``path`` created, a new owner-only file, to write in the block; synced to disk when the block ends."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def write_stream(path: Path, chunks: Iterable[bytes]) -> None:
    """Create ``path``, a new owner-only file, from ``chunks`` as they come; synced to disk before it returns."""
    with private_file(path) as handle:
        for chunk in chunks:
            handle.write(chunk)


def _link(path: Path, target: str) -> None:
    """Point ``path`` at ``target`` with one atomic rename (replacing a file an older version wrote there)."""
    if path.is_symlink() and os.readlink(path) == target:
        return
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.link")
    os.symlink(target, temp)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
