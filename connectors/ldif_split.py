"""A large Active Directory export read on two cores: a worker process reads and scans its last part (some 43%,
each account mapped from its own entry) while this process reads the rest; the two scans are joined in file
order and settled once (``AdScan``).

The result is what one pass gives: the same accounts in the same order, the same warnings and unread records in
the same order, with the same line numbers. When the second half repeats a DN of the first (the second record is
not audited, and said where it is), or the worker fails, this process reads the second half itself, as one pass
would have. At a million accounts, reading and mapping the export was a third of the audit.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from auditor.gctuning import bulk_allocation
from connectors.activedirectory import AdOptions, AdScan, PendingAccounts
from connectors.ldif_format import DirectoryEntry, Part, ReadState, lines_before, read_ldif, record_start

SPLIT_ABOVE = 64 << 20  # bytes: below, starting a process (some 0.3 s) costs more than it saves
_RECEIVE_EVERY = 4_096  # entries of the first half read between two looks at what the worker sent
_BATCH = 2_000  # accounts a message from the worker
# The worker also starts (some 0.4 s), pickles what it maps (some 16 us an account) and waits for a core with
# this process's receiving thread; this process also checks the whole export's encoding first and unpickles what
# the worker sends (some 13 us an account). At a million accounts, with 65% of the export here this process read
# for 55 s and the worker was done long before; with 55% it read for 49 s and then waited 0.9 s for the worker.
# At 100,000 accounts the two shares take the same time within the machine's noise.
_FIRST_SHARE = 0.57


@dataclass(frozen=True)
class SecondHalf:
    """Where the second half of an export lies: from a record's first line to the end; and which file it is (the
    worker opens it again by name, and reads nothing from another file put in its place)."""

    start: int
    end: int
    encoding: str
    identity: tuple[int, int, int, int] = (0, 0, 0, 0)  # device, inode, size, modification time (ns)

    def part(self, stream: BinaryIO) -> Part:
        return Part(self.start, self.end, lines_before(stream, self.start) + 1, self.encoding, first=False)


def parts(stream: BinaryIO, encoding: str, split_above: int = SPLIT_ABOVE) -> tuple[Part, SecondHalf | None]:
    """The export from the stream's position (its text, after a byte-order mark) as the part this process reads
    first, and the second half when it is large enough to be read apart."""
    body = stream.seek(0, 1)
    end = stream.seek(0, 2)
    cut = None
    if encoding != "utf-16" and end - body >= split_above:  # UTF-16 is read whole
        cut = record_start(stream, body + int((end - body) * _FIRST_SHARE))
    stream.seek(body)
    if cut is None:
        return Part(body, end, 1, encoding, first=True), None
    return Part(body, cut, 1, encoding, first=True), SecondHalf(cut, end, encoding, _identity(stream))


def _identity(stream: BinaryIO) -> tuple[int, int, int, int]:
    status = os.fstat(stream.fileno())
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def scan_in_two(stream: BinaryIO, path: Path, first: Iterable[DirectoryEntry], second: SecondHalf, scan: AdScan,
                warnings: list[str], incomplete: list[str], state: ReadState) -> None:
    """Scan ``first`` (the entries of the first half, read from ``stream``) here and ``second`` in a worker,
    into ``scan``; what reading the second half says goes to ``warnings``, ``incomplete`` and ``state``."""
    try:
        worker: _Worker | None = _Worker(path, second, scan.source, scan.options)
    except (OSError, ValueError, TypeError, subprocess.SubprocessError):  # no process here (a limit): one pass
        worker = None
    later = None
    try:
        for n, entry in enumerate(first, start=1):
            scan.add(entry)
            if worker is not None and n % _RECEIVE_EVERY == 0:
                worker.receive()  # unpickled as it comes: the worker's accounts never wait as bytes
        if worker is not None:
            later = worker.result(state.seen)
    finally:
        if worker is not None:
            worker.close()
    if later is None:
        for entry in read_ldif(stream, warnings, incomplete, part=second.part(stream), state=state):
            scan.add(entry)
        return
    later_scan, later_warnings, later_incomplete, skipped_changes = later
    scan.extend(later_scan)
    warnings += later_warnings
    incomplete += later_incomplete
    state.skipped_changes += skipped_changes


_Later = tuple[AdScan, list[str], list[str], int]


class _Worker:
    """The worker process and what it has sent; a thread receives its messages while this process reads.

    A plain ``python -c`` child with this process's import path, not ``multiprocessing``: its spawn start would
    import the caller's main module again in the child (a script without a main guard would run twice), and a
    fork would copy this process's threads' locks. Messages are length-prefixed pickles on a pipe of their own."""

    def __init__(self, path: Path, second: SecondHalf, source: str, options: AdOptions) -> None:
        read_end, write_end = os.pipe()
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from connectors.ldif_split import scan_second_half as s; s({write_end})"],
            stdin=subprocess.PIPE, pass_fds=(write_end,), env=environment)
        os.close(write_end)
        self._messages = os.fdopen(read_end, "rb")
        assert self._process.stdin is not None
        try:
            with self._process.stdin as arguments:
                arguments.write(pickle.dumps((str(path), second, source, options)))
        except OSError:  # the child is already gone: it sends nothing, and its half is read here
            pass
        self._batches: deque[bytes] = deque()
        self._final: bytes | None = None
        self._accounts = PendingAccounts()
        self._receiver = threading.Thread(target=self._receive_all, daemon=True)
        self._receiver.start()

    def _receive_all(self) -> None:
        try:
            while batch := _read_message(self._messages):
                self._batches.append(batch)
            self._final = _read_message(self._messages)
        except OSError:  # the worker died: its half is read here
            self._final = None

    def receive(self) -> None:
        # Our own child's pickles of our own classes: the directory's text is only ever a string inside them.
        while self._batches:
            self._accounts.extend(pickle.loads(self._batches.popleft()))  # noqa: S301

    def result(self, seen: set[str]) -> _Later | None:
        """The second half's scan, warnings, unread records and skipped change count; None when it must be read
        here (the worker failed, or it holds a DN the first half has: the first record is the one audited)."""
        self._receiver.join()
        self.receive()
        try:
            final = pickle.loads(self._final or b"")  # noqa: S301
        except Exception:  # nothing, or a cut message: the worker died
            return None
        if not isinstance(final, tuple):  # the worker's failure, in words
            return None
        scan, warnings, incomplete, skipped_changes, keys = final
        if not seen.isdisjoint(keys):
            return None
        seen |= keys
        self._accounts.extend(scan.pending)
        scan.pending, self._accounts = self._accounts, PendingAccounts()
        return scan, warnings, incomplete, skipped_changes

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._messages.close()
        self._receiver.join()


def _read_message(stream: BinaryIO) -> bytes | None:
    """One message, or None at the end of the stream (or in a cut message)."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    size = int.from_bytes(head, "little")
    data = stream.read(size)
    return data if len(data) == size else None


def scan_second_half(descriptor: int) -> None:
    """The worker (run as ``python -c``): read its arguments from stdin, read and scan the second half, and send
    on ``descriptor`` its mapped accounts a batch at a time, then an empty message and the rest of the scan (or,
    when anything failed, the failure's text)."""
    with os.fdopen(descriptor, "wb") as messages:
        def send(value: object) -> None:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            messages.write(len(data).to_bytes(8, "little"))
            messages.write(data)

        try:
            path, second, source, options = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from our parent
            with bulk_allocation(), open(path, "rb") as stream:  # see auditor.gctuning
                if second.identity != _identity(stream):
                    raise OSError(f"{path} is no longer the file being read")
                warnings: list[str] = []
                incomplete: list[str] = []
                state = ReadState()
                scan = AdScan(source, options)
                for entry in read_ldif(stream, warnings, incomplete, part=second.part(stream), state=state):
                    scan.add(entry)
                    if len(scan.pending) >= _BATCH:
                        send(scan.pending)
                        scan.pending = PendingAccounts()
                if scan.pending:
                    send(scan.pending)
                    scan.pending = PendingAccounts()
                messages.write(bytes(8))  # the empty message: no more accounts
                send((scan, warnings, incomplete, state.skipped_changes, state.seen))
        except BaseException as exc:  # the reader then reads this half itself: the audit is the same, only slower
            with contextlib.suppress(OSError):
                messages.write(bytes(8))
                send(f"{type(exc).__name__}: {exc}")
