"""Deflate beside the code that makes the data: each chunk is compressed in a thread of its own while the next is
made. zlib lets other threads run while it compresses, so on two cores making a million accounts' stored result
(or report data) and compressing it overlap instead of adding up."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

_HANDOVER = 1 << 20


class Deflater:
    """zlib (``wbits=15``) or gzip (``wbits=31``, mtime 0: what ``gzip.compress(data, mtime=0)`` writes) of the
    chunks given to :meth:`add`, in order; :meth:`finish` gives the compressed bytes. Use as a context manager."""

    def __init__(self, level: int = 6, wbits: int = 15, sink: Callable[[bytes], object] | None = None) -> None:
        """``sink``: given each compressed piece as it is made, instead of keeping them for :meth:`finish`."""
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, wbits)
        self._sink = sink
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="deflate")
        self._pending: Future[bytes] | None = None
        self._parts: list[bytes] = []
        self._gathered: list[bytes] = []
        self._gathered_size = 0

    def add(self, chunk: bytes) -> None:
        # Handed over a megabyte at a time: each handover waits for the thread to get the interpreter back, and
        # at a hundred kilobytes a chunk the waits were a third of recording a run.
        self._gathered.append(chunk)
        self._gathered_size += len(chunk)
        if self._gathered_size >= _HANDOVER:
            self._hand_over()

    def _hand_over(self) -> None:
        data = b"".join(self._gathered)
        self._gathered, self._gathered_size = [], 0
        self._collect()
        self._pending = self._pool.submit(self._compressor.compress, data)  # one at a time: the compressor has state

    def finish(self) -> bytes:
        return b"".join(self.finish_parts())

    def finish_parts(self) -> list[bytes]:
        """The compressed bytes as the pieces they were made in (joined, the largest were held twice)."""
        if self._gathered:
            self._hand_over()
        self._collect()
        self._pool.shutdown()
        self._keep(self._compressor.flush())
        parts, self._parts = self._parts, []
        return parts

    def _collect(self) -> None:
        if self._pending is not None:
            self._keep(self._pending.result())
            self._pending = None

    def _keep(self, part: bytes) -> None:
        if self._sink is None:
            self._parts.append(part)
        else:
            self._sink(part)

    def __enter__(self) -> Deflater:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._pool.shutdown(wait=True)

