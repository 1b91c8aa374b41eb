"""auditor.deflate compresses in a thread what it is given, in order: the bytes zlib and gzip give in one call."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given
from hypothesis import strategies as st

from auditor.deflate import Deflater


@given(st.lists(st.binary(max_size=3000), max_size=12), st.sampled_from([1, 3, 6]))
def test_chunks_deflated_in_a_thread_are_the_whole_deflated_at_once(chunks: list[bytes], level: int) -> None:
    whole = b"".join(chunks)
    with Deflater(level) as deflater:
        for chunk in chunks:
            deflater.add(chunk)
        assert zlib.decompress(deflater.finish()) == whole
    with Deflater(level, wbits=31) as deflater:
        for chunk in chunks:
            deflater.add(chunk)
        packed = deflater.finish()
    # zlib's output does not depend on where the input was cut: gzip.compress's with mtime 0, byte for byte.
    assert packed == gzip.compress(whole, compresslevel=level, mtime=0)


def test_megabytes_handed_over_in_pieces_deflate_as_the_whole() -> None:
    # Chunks are gathered and handed to the thread a megabyte at a time: several handovers, cut mid-chunk or not.
    chunks = [bytes([n % 251]) * (n * 9_973 % 700_000) + b"row %d\n" % n for n in range(40)]
    whole = b"".join(chunks)
    assert len(whole) > 6 << 20
    with Deflater(6, wbits=31) as deflater:
        for chunk in chunks:
            deflater.add(chunk)
        assert deflater.finish() == gzip.compress(whole, compresslevel=6, mtime=0)
    # Given to a sink (the history's scratch file) as they are made: the same bytes, none kept.
    pieces: list[bytes] = []
    with Deflater(6, wbits=31, sink=pieces.append) as deflater:
        for chunk in chunks:
            deflater.add(chunk)
        assert deflater.finish() == b""
    assert b"".join(pieces) == gzip.compress(whole, compresslevel=6, mtime=0)
